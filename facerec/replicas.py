"""One copy of a stateful network per concurrent caller, created on demand and reused.

OpenCV's `dnn.Net` and `FaceDetectorYN` keep per-call state (input size,
blobs), so two threads must never share one. A lock would make them take
turns, and a scan that detects two photos at once on two cores would run at
the speed of one. A pool instead lends each caller a replica of its own: it
holds as many as were ever in use at the same time (the scan's worker count,
one for a camera), each built once by `make` and kept for the next caller.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class ReplicaPool(Generic[T]):
    """Lends each concurrent caller its own replica built by `make`."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._free: queue.SimpleQueue[T] = queue.SimpleQueue()
        self.created = 0
        self._free.put(self._new())  # the first one now, so a bad file fails at load time

    def _new(self) -> T:
        replica = self._make()
        self.created += 1
        return replica

    @contextmanager
    def borrow(self) -> Iterator[T]:
        """A replica no other caller holds until the block ends."""
        try:
            replica = self._free.get_nowait()
        except queue.Empty:
            replica = self._new()
        try:
            yield replica
        finally:
            self._free.put(replica)
