"""Strangers at the door: telling one unknown face from another, without a name for either.

Every unknown face votes `None`, so the vote window alone cannot tell three
strangers in turn from one stranger who stays: it used to announce one
`unknown` for all three, and one stranger who stepped away for a few seconds
came back as a second visitor. `RecentStrangers` remembers the embeddings of
the unknown faces seen lately and gives each a number: a face close to a
remembered one (the core's `cosine`, at the door's 1:1 threshold, against
any of the stranger's last `VIEWS` faces: a head that turns drifts away
from its first view) is the same stranger, anything else is a new one. A
face that matches two remembered strangers shows they were one person seen
from two sides (a head turned away, then back): they are merged. A stranger is announced once; they are
forgotten after `cooldown_s` without being seen, and only then can the same
face be announced again. Memory is bounded (`MAX_STRANGERS`, oldest first out)
because a door watches for days.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from facerec.decisions.decision import cosine

#: Recent faces kept per stranger: a turned head is compared with views close to it.
VIEWS = 8
#: Unknown visitors remembered at most (the least recently seen is forgotten first).
MAX_STRANGERS = 64
#: A stranger seen again within this many seconds is the same visit, not a new event.
DEFAULT_UNKNOWN_COOLDOWN_S = 60.0


@dataclass(slots=True)
class _Stranger:
    number: int
    last_seen: float
    views: deque[npt.NDArray[np.float32]] = field(default_factory=lambda: deque(maxlen=VIEWS))
    announced: bool = False


class RecentStrangers:
    """The unknown faces seen within the last `cooldown_s` seconds, each with a number."""

    def __init__(self, threshold: float, cooldown_s: float = DEFAULT_UNKNOWN_COOLDOWN_S) -> None:
        if not cooldown_s >= 0:
            raise ValueError(f"the unknown cooldown must not be negative, got {cooldown_s} s")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._seen: list[_Stranger] = []
        self._count = 0

    def __len__(self) -> int:
        return len(self._seen)

    def see(self, embedding: npt.NDArray[np.float32], t: float) -> int:
        """The number of the stranger this face belongs to (a new number for a new face)."""
        self._seen = [s for s in self._seen if t - s.last_seen <= self.cooldown_s]
        matches = [
            s for s in self._seen if max(cosine(v, embedding) for v in s.views) >= self.threshold
        ]
        best = min(matches, key=lambda s: s.number) if matches else None
        for other in matches:
            if other is not best and best is not None:  # one person after all: keep the first
                best.views.extend(other.views)
                best.announced = best.announced or other.announced
                self._seen.remove(other)
        if best is None:
            self._count += 1
            best = _Stranger(self._count, t)
            self._seen.append(best)
            if len(self._seen) > MAX_STRANGERS:
                self._seen.remove(min(self._seen, key=lambda s: s.last_seen))
        best.views.append(np.array(embedding, dtype=np.float32))
        best.last_seen = t
        return best.number

    def announce(self, number: int) -> bool:
        """True the first time stranger `number` is announced within their visit."""
        for s in self._seen:
            if s.number == number:
                new = not s.announced
                s.announced = True
                return new
        return True  # already forgotten (memory full): announcing again beats staying silent
