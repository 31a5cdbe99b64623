"""Training on the CPU the editor leaves idle: `scripts/finetune.py --priority idle` (its default).

`make train SOURCES=...` runs on the machine whose server answers the editor. At the normal priority the
trainer's threads and the server's workers share the cores as equals, so every completion waits its turn:
measured on a 2-core CPU, a typist's median latency doubled beside a fine-tune (23.4 -> 47.2 ms, p99 51.6 ->
93.7 ms; README "Benchmarks", `python -m benchmarks.finetune_beside`).

Linux's SCHED_IDLE class gives a thread a core only when no normal thread wants it. The fine-tune then
costs the editor nothing measurable (23.5 ms, p99 43.0), and while nobody types it runs as fast as at the
normal priority (the same benchmark); the price is that a busy server stretches the fine-tune. Elsewhere
(macOS, BSD) `low`'s nice 19 is the nearest: the kernel gives a nice-19 thread a small share (CFS weight 15
against nice 0's 1024 on Linux) instead of none.

Linux keeps the policy and the nice value per thread, so both are set on every thread that exists
(/proc/self/task); threads and processes started later inherit them. An unprivileged process cannot raise
its priority again: call this in a process that does nothing else (the trainer), never in a test runner or
a server.
"""
from __future__ import annotations

import os
import sys

PRIORITIES = ("idle", "low", "normal")
NICEST = 19


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no procfs (macOS): 0 is "this process" to setpriority, where it is per process
        return [0]


def _each_thread(apply) -> None:
    for tid in _thread_ids():
        try:
            apply(tid)
        except ProcessLookupError:  # a thread that ended since the listing
            pass


def lower_priority(priority: str) -> str:
    """Lower this process (every thread, and all it starts later) to `priority`; returns what was done, as
    the run's log says it. `normal` leaves it as it is."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
    if priority == "normal":
        return "normal"
    if priority == "idle" and hasattr(os, "SCHED_IDLE"):
        try:
            _each_thread(lambda tid: os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0)))
            return "idle (SCHED_IDLE: only the CPU time nothing else wants)"
        except OSError as e:  # a container that forbids it: nice 19 still helps
            print(f"warning: SCHED_IDLE refused ({e}); nice {NICEST} instead", file=sys.stderr)
    if not hasattr(os, "setpriority"):  # Windows
        return "normal (this platform cannot lower it)"
    _each_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, NICEST))
    return f"low (nice {NICEST})"
