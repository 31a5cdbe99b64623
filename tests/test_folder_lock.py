"""dataset/folder_lock.py: one job per folder, across real processes; the kernel frees a killed holder's lock."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset.folder_lock import FolderBusy, folder_lock

REPO = Path(__file__).resolve().parent.parent
HOLD = """
import sys, time
from pathlib import Path
from dataset.folder_lock import folder_lock
with folder_lock(Path(sys.argv[1]), "job"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def holder(folder: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_folder_is_refused_naming_the_holder_and_freed_when_it_is_killed(tmp_path):
    proc = holder(tmp_path / "work", 60)
    try:
        with pytest.raises(FolderBusy, match=rf"in use by another job \(pid {proc.pid}\)"):
            with folder_lock(tmp_path / "work", "job", wait=False):
                pass
        with folder_lock(tmp_path / "work", "other", wait=False):  # another name is another lock
            pass
        proc.send_signal(signal.SIGKILL)  # no clean-up runs: the kernel releases the lock
        proc.wait(10)
        with folder_lock(tmp_path / "work", "job", wait=False):
            assert (tmp_path / "work" / ".job.lock").read_text().strip() == str(os.getpid())
    finally:
        proc.kill()


def test_waiting_takes_the_lock_when_the_holder_ends(tmp_path):
    proc = holder(tmp_path, 1.0)
    t0 = time.monotonic()
    with folder_lock(tmp_path, "job"):
        waited = time.monotonic() - t0
    assert waited > 0.5  # the holder slept 1 s after taking it
    proc.wait(10)
