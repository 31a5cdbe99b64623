"""Worker processes without an idle forkserver: adopt the workers, stop the forkserver once they run.

Workers are forked from multiprocessing's forkserver, which imported torch once, so that torch's pages are
shared. But sharing wears off: every page a worker writes (a Python object's reference count, a heap chunk
reused) is copied into that worker, and the forkserver keeps the original, which nobody else maps any
more. Measured (docs/server.md, 3-minute soak, 16 clients): the idle forkserver's private memory grows from
17 to 71 MiB, plus torch's code pages only it touched at import; ~120 MiB PSS of the server's ~530 held by
a process that computes nothing. With it stopped, a page written by both workers exists twice, not three
times, and what only the forkserver held is freed.

How:
- the HTTP process becomes a child subreaper (Linux `prctl(PR_SET_CHILD_SUBREAPER)`): when the forkserver
  exits, its children (the workers) are re-parented to the HTTP process, not to init. So they stay the
  server's descendants (what `ps`, the benchmarks and an operator see), their pids cannot be reused before
  the pool reaps them, and the pool can `waitpid` and kill them by pid;
- a worker closes the forkserver's "alive" pipe it inherits (`leave_forkserver()`): the forkserver exits
  when no process holds that pipe's write end, which every child of it inherits, so that it outlives them;
- `stop_forkserver()` once no spawn is under way (pool.py); the next spawn (a replacement) starts a new
  forkserver through multiprocessing's own `ensure_running` (it re-imports torch: ~2 s more for that
  replacement), which is stopped again once the replacement runs;
- multiprocessing's `Process` object of a worker reads its exit status from the forkserver, so once the
  forkserver is gone it reports every worker as exited (code 255): the pool tracks workers by pid with
  `alive`, `kill`, `reap` and `reap_or_kill` here instead.
"""
from __future__ import annotations

import os
import signal
import time

from .memory import _glibc

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux). False where it is not supported."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except AttributeError:
        return False


def stop_forkserver() -> bool:
    """Stop multiprocessing's forkserver if it runs (its workers live on); it restarts on the next
    forkserver Process.start(). False when this Python's multiprocessing has no way to stop it."""
    from multiprocessing import forkserver
    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)  # CPython 3.8-3.13: used by its own tests
    if stop is None or getattr(server, "_forkserver_pid", None) is None:
        return False
    stop()
    return True


def leave_forkserver() -> None:
    """In a process forked by the forkserver: close the inherited write end of its "alive" pipe, so that
    the forkserver can exit while this process lives on."""
    from multiprocessing import forkserver
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` s for `pid` to exit and collect its status if it is our child (an adopted
    worker); True once it is gone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:  # not our child (its forkserver still runs and reaps it)
            if not alive(pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def reap_or_kill(pid: int, grace: float) -> None:
    """Give `pid` `grace` s to exit by itself, then kill it; collect it either way."""
    if not reap(pid, grace):
        kill(pid)
        reap(pid, 5)
