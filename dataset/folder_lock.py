"""One job at a time per output folder: `make data` builds into it, `make train` fine-tunes in it.

Two jobs writing the same folder clobber each other's files (a corpus half rebuilt under a running trainer,
two trainers saving the same last.pt). Each job holds an flock on FOLDER/.NAME.lock while it runs. The kernel
releases it however the holder ends, SIGKILL and power loss included, so a stale lock never needs clearing by
hand, as a pid file would. A corpus build waits for the other build (its result is what the second wanted
too); a fine-tune refuses at once, naming the process that holds the folder, since the user who started it
twice wants to know, not to wait 15 minutes.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


class FolderBusy(RuntimeError):
    pass


@contextmanager
def folder_lock(folder: Path, name: str, wait: bool = True):
    """Hold FOLDER/.NAME.lock (created with the folder if absent) for the `with` body. wait=False: raise
    FolderBusy at once if another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.lock"
    with open(path, "a+") as handle:  # not "w": that would erase the holder's pid before we read it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FolderBusy(f"{folder} is in use by another {name} (pid {holder}); wait for it to end or "
                             f"use another folder") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
