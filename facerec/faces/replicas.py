"""One copy of a stateful network per concurrent caller, created on demand and reused.

OpenCV's `dnn.Net` and `FaceDetectorYN` keep per-call state (input size,
blobs), so two threads must never share one. A lock would make them take
turns, and a scan that detects two photos at once on two cores would run at
the speed of one. A pool instead lends each caller a replica of its own: it
holds as many as were ever in use at the same time (the scan's worker count,
one for a camera), each built once by `make` and kept for the next caller.
`limit` caps the copies for a network too big to hold several of: callers
past it wait for one to come back, as they would at a lock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class ReplicaPool(Generic[T]):
    """Lends each concurrent caller its own replica built by `make`."""

    def __init__(self, make: Callable[[], T], limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._make = make
        self._free: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(limit) if limit is not None else None
        self.created = 0
        self._free.put(self._new())  # the first one now, so a bad file fails at load time

    def _new(self) -> T:
        replica = self._make()
        self.created += 1
        return replica

    @contextmanager
    def borrow(self) -> Iterator[T]:
        """A replica no other caller holds until the block ends."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            try:
                replica = self._free.get_nowait()
            except queue.Empty:
                replica = self._new()
            try:
                yield replica
            finally:
                self._free.put(replica)
        finally:
            if self._slots is not None:
                self._slots.release()
