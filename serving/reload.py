"""A checkpoint that changes under a running server: the server notices and serves the new model.

Why. `make train SOURCES=...` ends by renaming the fine-tuned model onto `checkpoints/personal.pt`, and the
user retrains as the code moves on; a team's server gets a new model from whoever trains it. A server
started with `--model checkpoints/personal.pt` should serve each new file without a restart: a restart
drops the editor's requests for the seconds it loads (503 or refused connections), and on a shared server
it is someone else's job.

What is watched (`CheckpointWatcher`). The path, polled every `--reload-interval` seconds (2 by default;
0: never), by its signature `(device, inode, size, mtime)`: one `os.stat`, a few microseconds, no
dependency (inotify would need one, and would see nothing across some network file systems). A changed
signature is acted on once its writer has stopped (`FileWatch`: its time is 0.5 s old, or it held for 0.5 s,
one more look sooner than the interval), so a file copied in place (`cp`, not a rename) is read only after the
writer stopped; `make train` renames, so a new inode appears whole. A path that vanishes is waited for
(nothing is reloaded, the loaded model keeps serving). SIGUSR1 reloads at once, whether or not the file
changed (for `--reload-interval 0`, or a file system whose times do not move). Not SIGHUP, nginx's and gunicorn's reload signal: closing the terminal of
`make serve` sends SIGHUP to the whole foreground group, and that must still end the server.

How the engine changes, no request lost (`ModelReloader`, the engines' `reload()`):
- Worker pool (`WorkerPool.reload`): a second set of workers is started beside the serving ones, each
  loading the file as it is now; only when all are ready are they swapped in, under the pool's lock, one
  list assignment. A request already sent to an old worker finishes there; each old worker is stopped once
  it has none in flight. The surge costs a second set of workers' memory and a core's worth of loading for
  a few seconds. If one new worker fails to load (a truncated or broken file), the new ones are stopped and
  the old ones keep serving: the error is logged and shown by /health, and the next change is tried again.
- In-process engine (`--workers 0`, `LocalEngine.reload`): the new Predictor is built on the reloader's
  thread, then replaces the old one in one assignment; a request keeps the Predictor it started with.
Each engine's caches belong to its model, so the new one starts cold: a client's first request after the
swap costs what the first request after a start costs. Every answer names the model that computed it (its
`model` field, the sha256 prefix /health shows), so a client that caches answers (the extension) knows when to
drop them.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone

log = logging.getLogger("autocomplete.reload")
SETTLE_S = 0.5  # a changed file is read once it has not changed for this long (or one interval, if shorter)


def file_signature(path: str) -> tuple | None:
    """(device, inode, size, mtime in ns) of `path`, None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class FileWatch:
    """When to read again a file that is replaced or rewritten under a running server: the checkpoint it
    serves (`CheckpointWatcher`), a named model (models.py), the tokens file (tokens.py).

    `change(now)` looks (one os.stat) at most every `interval_s`, and every SETTLE_S while a change settles. A
    signature other than `known` (the one last read, or tried and failed: not tried again) is ready to read
    once its writer has stopped: its mtime is SETTLE_S old already (a file renamed into place by a writer that
    finished), or the same signature was seen SETTLE_S before (a file copied in place, `cp`, written while we
    look). A file that is gone is ready too with `gone_is_change` (it is read, fails, and says so), else it is
    waited for (what was read from it keeps serving). The caller reads the file and sets `known` to what it
    read. `monotonic` times; not thread-safe (each user holds its own lock or is its own thread)."""

    def __init__(self, path: str, interval_s: float, known: tuple | None, gone_is_change: bool = False):
        self.path = path
        self.interval_s = interval_s
        self.known = known
        self.gone_is_change = gone_is_change
        self.checked = time.monotonic()
        self.seen: tuple | None = None  # a changed signature waiting to settle, first seen at `seen_at`
        self.seen_at = 0.0

    @property
    def wait_s(self) -> float:
        """Until the next look: sooner while a change settles."""
        return min(self.interval_s, SETTLE_S) if self.seen else self.interval_s

    def change(self, now: float, due: bool = False) -> tuple[tuple | None] | None:
        """(the signature to read,) when the file has changed and settled; None when there is nothing to read
        (or `wait_s` has not passed since the last look, unless `due`: a caller that waited it already)."""
        if not due and now - self.checked < self.wait_s:
            return None
        self.checked = now
        signature = file_signature(self.path)
        if signature == self.known or (signature is None and not self.gone_is_change):
            self.seen = None
            return None
        if signature is None or time.time() - signature[3] / 1e9 >= SETTLE_S:
            self.seen = None
            return (signature,)
        if signature != self.seen:
            self.seen, self.seen_at = signature, now
            return None
        if now - self.seen_at < SETTLE_S:
            return None
        self.seen = None
        return (signature,)


class ModelReloader:
    """Runs one reload at a time on the app's engine and keeps what /health and /metrics show of them.

    `state`: the server's AppState (its `engine` must have `reload() -> model info`, raising on failure)."""

    def __init__(self, state, path: str):
        self.state = state
        self.path = path
        self.signature = file_signature(path)  # what the serving model was loaded from
        self.ok = 0
        self.failed = 0
        self.error: str | None = None           # the last attempt's error; None once one succeeds
        self.loaded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.last_seconds: float | None = None  # how long the last successful reload took
        self._lock = threading.Lock()

    def reload(self, reason: str) -> bool:
        """Load the file as it is now and swap it in; False (the old model keeps serving) on failure."""
        with self._lock:
            signature = file_signature(self.path)
            t0 = time.perf_counter()
            log.info("reloading %s (%s)", self.path, reason)
            try:
                info = self.state.engine.reload()
            except Exception as e:  # noqa: BLE001 - a bad file must never stop the server
                self.failed += 1
                self.error = " ".join(str(e).split())[:500] or type(e).__name__
                self.signature = signature  # tried: wait for the next change rather than retry every poll
                self.state.metrics.reload("failed")
                log.error("reload of %s failed, still serving the model loaded at %s: %s", self.path,
                          self.loaded_at, self.error)
                return False
            self.last_seconds = time.perf_counter() - t0
            self.signature = signature
            self.ok += 1
            self.error = None
            self.loaded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.state.model_info = {**self.state.config.model_info, **info}
            self.state.metrics.reload("ok")
            log.info("serving %s (sha256 %s, step %s), swapped in after %.1f s", self.path, info.get("sha256"),
                     info.get("step"), self.last_seconds)
            return True

    def snapshot(self) -> dict:
        """What /health shows under "reload"."""
        return {"ok": self.ok, "failed": self.failed, "error": self.error, "loaded_at": self.loaded_at,
                "seconds": None if self.last_seconds is None else round(self.last_seconds, 2)}


class CheckpointWatcher(threading.Thread):
    """Looks at the reloader's path every `interval_s` (a FileWatch) and reloads once a change has settled."""

    def __init__(self, reloader: ModelReloader, interval_s: float):
        super().__init__(name="checkpoint-watcher", daemon=True)
        self.reloader = reloader
        self.watch = FileWatch(reloader.path, interval_s, reloader.signature)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.watch.wait_s):
            self.watch.known = self.reloader.signature  # SIGUSR1 may have reloaded meanwhile
            if self.watch.change(time.monotonic(), due=True) is not None:
                self.reloader.reload("the file changed")

    def stop(self) -> None:
        self.stopped.set()
