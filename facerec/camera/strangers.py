"""Strangers at the door: telling one unknown face from another, without a name for either.

Every unknown face votes `None`, so the vote window alone cannot tell three
strangers in turn from one stranger who stays: it used to announce one
`unknown` for all three, and one stranger who stepped away for a few seconds
came back as a second visitor. `RecentStrangers` remembers the embeddings of
the unknown faces seen lately and gives each a number: a face close to a
remembered one (the core's `cosine`, at the door's 1:1 threshold) is the same
stranger, anything else is a new one. A stranger is announced once; they are
forgotten after `cooldown_s` without being seen, and only then can the same
face be announced again. Memory is bounded (`MAX_STRANGERS`, oldest first out)
because a door watches for days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.decision import cosine

#: Unknown visitors remembered at most (the least recently seen is forgotten first).
MAX_STRANGERS = 64
#: A stranger seen again within this many seconds is the same visit, not a new event.
DEFAULT_UNKNOWN_COOLDOWN_S = 60.0


@dataclass(slots=True)
class _Stranger:
    number: int
    embedding: npt.NDArray[np.float32]
    last_seen: float
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
        best: _Stranger | None = None
        best_score = -1.0
        for s in self._seen:
            score = cosine(s.embedding, embedding)
            if score > best_score:
                best, best_score = s, score
        if best is None or best_score < self.threshold:
            self._count += 1
            best = _Stranger(self._count, np.array(embedding, dtype=np.float32), t)
            self._seen.append(best)
            if len(self._seen) > MAX_STRANGERS:
                self._seen.remove(min(self._seen, key=lambda s: s.last_seen))
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
