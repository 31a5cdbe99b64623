"""Process memory: what the server reads (/proc) and how glibc malloc is kept from hoarding (no torch
import here: the HTTP process of a worker pool never loads torch).

glibc raises its mmap threshold dynamically once large blocks are freed, after which the 0.25-2 MB
tensors of model states come from the heap and may fragment it; and every thread that allocates gets its
own arena. What is set here: at most 2 arenas; a fixed mmap threshold of 32 MiB and a trim threshold of
64 MiB, so that the states a search allocates and frees come from the heap and are reused, not mmapped and
unmapped; and `malloc_trim` (worker.py) when a worker has been idle for a moment and every 2 s under
load, which gives what is free back to the OS. Why not a small mmap threshold (256 KiB, the first version:
every state its own mapping, returned to the OS when freed): each request then faulted ~1,500 fresh pages
(`ru_minflt`), 1,537 against 110 per request with 32 MiB, a few ms of every keystroke in a worker on this
VM. The byte bounds of the engine caches are in caches.py. Measured: docs/server.md.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path


def proc_memory_kib(pid: int | str = "self", rollup: bool = True) -> dict[str, int]:
    """VmRSS / VmHWM from /proc/PID/status and, with `rollup`, Pss / Private (USS) from smaps_rollup, in KiB.
    status costs ~0.03 ms; smaps_rollup ~5 ms in a process that has loaded torch (it walks every mapping)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        for line in (Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if rollup else ()):
            key, _, value = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    if "Private_Clean" in out:
        out["USS"] = out["Private_Clean"] + out.get("Private_Dirty", 0)
    return out


_libc = None


def _glibc():
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    return _libc or None


def tune_malloc(arenas: int = 2, mmap_threshold: int = 32 * 2**20, trim_threshold: int = 64 * 2**20) -> None:
    """Cap glibc's arenas and fix its mmap and trim thresholds (see the module docstring), unless the
    environment sets MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ itself. Call
    before threads start."""
    libc = _glibc()
    if libc is None:
        return
    try:
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(-8, arenas)  # M_ARENA_MAX
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (also stops its dynamic growth)
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
            libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD: free() keeps this much at the heap's top
    except AttributeError:
        pass


def trim() -> None:
    """Hand freed heap pages back to the OS (glibc malloc_trim)."""
    libc = _glibc()
    if libc is not None:
        try:
            libc.malloc_trim(0)
        except AttributeError:
            pass
