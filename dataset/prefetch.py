"""Training batches made ahead, in a thread, while the current step runs on the accelerator.

Why: on the GPU the step of the 4.2M-parameter default is short and the batch is made on the CPU in the
same loop: random windows, then the FIM rewrite (decode each document, cut it, re-encode the parts: ~20 ms
per 128-row batch on one core, docs/training.md). Made in line, that time adds to every step and the GPU
waits. Made one or two steps ahead in a thread, it overlaps the step: the training thread spends the step
waiting on CUDA (`loss.item()`) with the GIL released, and `encode_batch` releases it too (Rust threads).

Exactness: batches are made in the same order by the same generators as in line, so a run with prefetching
trains on exactly the batches of a run without. Each batch comes with the generators' state *after* it was
made; `state` is that of the last batch *taken*, which is what a checkpoint must save: a resumed run makes
again the batches that were made ahead but never trained on, as an uninterrupted run would train on them.

On the CPU the thread would take cores from the step itself, so train.py prefetches only on CUDA by default.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable


class Prefetcher:
    """`make()` -> (batch, state after it) called `depth` batches ahead in a thread; `next()` takes them in
    order. depth 0: `make` is called in `next()` itself (no thread), with the same results."""

    def __init__(self, make: Callable[[], tuple[Any, Any]], initial_state: Any, depth: int = 2):
        self.make, self.state = make, initial_state
        self._stop = threading.Event()
        self._thread = None
        if depth > 0:
            self._queue: queue.Queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._run, name="batch-prefetch", daemon=True)
            self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                item = ("ok", self.make())
            except BaseException as e:  # handed to the training thread, which raises it
                item = ("error", e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[0] == "error":
                return

    def next(self) -> Any:
        if self._thread is None:
            batch, self.state = self.make()
            return batch
        kind, value = self._queue.get()
        if kind == "error":
            raise value
        batch, self.state = value
        return batch

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
