"""cpu_priority.lower_priority: every thread of the process, those started before and after, and the processes
it starts, run at the lowered priority. Each case runs in a process of its own (a lowered process cannot
raise itself again)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Prints the policy and nice value of: the main thread, a thread started before the call, one started after,
# and a child process started after.
PROBE = r"""
import json, os, subprocess, sys, threading
from cpu_priority import lower_priority
def state(tid):
    return [os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)]
stop = threading.Event()
ids = {}
def sleeper(name):
    ids[name] = threading.get_native_id()
    stop.wait()
before = threading.Thread(target=sleeper, args=("before",)); before.start()
while "before" not in ids: pass
said = lower_priority(sys.argv[1])
after = threading.Thread(target=sleeper, args=("after",)); after.start()
while "after" not in ids: pass
child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))"],
                       capture_output=True, text=True, check=True).stdout.split()
out = {"said": said, "main": state(threading.get_native_id()), "before": state(ids["before"]),
       "after": state(ids["after"]), "child": [int(x) for x in child]}
stop.set()
print(json.dumps(out))
"""

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")


def probe(priority: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, priority], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_idle_reaches_every_thread_and_child():
    out = probe("idle")
    assert out["said"].startswith("idle (SCHED_IDLE")
    for who in ("main", "before", "after", "child"):
        assert out[who][0] == os.SCHED_IDLE, (who, out)


def test_low_is_nice_19_on_every_thread_and_child():
    out = probe("low")
    assert out["said"] == "low (nice 19)"
    for who in ("main", "before", "after", "child"):
        assert out[who] == [os.SCHED_OTHER, 19], (who, out)


def test_normal_changes_nothing():
    base = [os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)]
    out = probe("normal")
    assert out["said"] == "normal"
    for who in ("main", "before", "after", "child"):
        assert out[who] == base, (who, out)


def test_an_unknown_priority_is_refused():
    from cpu_priority import lower_priority
    with pytest.raises(ValueError, match="idle, low, normal"):
        lower_priority("high")
