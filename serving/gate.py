"""The bounded FIFO in front of one engine slot (moved from server.py; one per slot with worker pools)."""
from __future__ import annotations

import threading
from collections import deque


class QueueFull(Exception):
    pass


class ModelGate:
    """Mutual exclusion on the model with a bounded FIFO of waiters.

    `enter(timeout)` returns True when the caller owns the model, False when it waited `timeout`
    seconds in vain, and raises QueueFull when `capacity` callers already wait. `leave()` hands the
    model straight to the oldest waiter (FIFO keeps the tail latency fair under load).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._mutex = threading.Lock()
        self._busy = False
        self._waiters: deque[threading.Event] = deque()

    @property
    def depth(self) -> int:
        return len(self._waiters)

    def enter(self, timeout: float) -> bool:
        with self._mutex:
            if not self._busy and not self._waiters:
                self._busy = True
                return True
            if len(self._waiters) >= self.capacity:
                raise QueueFull
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out: we own it
                return True
            self._waiters.remove(turn)
            return False

    def leave(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays busy: ownership passes on
            else:
                self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._waiters)
