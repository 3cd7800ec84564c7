"""The sliding-window vote: decide when k of the last n frames, all within T seconds, agree.

A single frame is a poor witness: motion blur, a half-turned head, a hand in
front of the face or a compression artefact can push one similarity over or
under the threshold. So no frame decides alone. Each frame with a usable face
casts one vote: a person's name (the claimed person matched, or a watched
person was recognised) or `None` (the claim did not match; an unknown face).
Frames without a usable face cast no vote at all: a person still walking up is
not evidence against their claim.

A decision needs `k` equal votes among the last `n` votes, all cast within
`window_s` seconds of stream time of the newest one. This applies alike to
"yes, it is X" and to "no": with the defaults (3 of 5 in 10 s), one bad frame
can neither open the door nor refuse it. Older votes simply fall out of the
window, so someone who was refused twice and then looks straight at the
camera is still judged on their best three frames.

Watching a lobby is about appearances, not frames: `Presence` remembers who
is in view, so a person who stays in front of the camera for a minute is
reported once, not every few frames, and again only after they have been
gone (no vote for them) for a cooldown.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

#: Watch mode: someone is "gone" after this many seconds without a vote for them.
DEFAULT_COOLDOWN_S = 3.0


@dataclass(frozen=True, slots=True)
class WindowRule:
    """k agreeing votes out of the last n, within `window_s` seconds."""

    k: int = 3
    n: int = 5
    window_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"need 1 <= k <= n, got k={self.k}, n={self.n}")
        if not self.window_s > 0:
            raise ValueError(f"the window must be positive, got {self.window_s} s")


@dataclass(frozen=True, slots=True)
class Vote:
    """What one frame said: `label` is a person's name, or None for "not them" / unknown."""

    t: float  # stream time of the frame, seconds
    label: str | None
    score: float  # the cosine similarity the vote rests on
    frame: int = -1  # frame index in the stream


@dataclass(frozen=True, slots=True)
class WindowDecision:
    """`label` None is the negative decision; `votes` is the window that decided (oldest first)."""

    label: str | None
    votes: tuple[Vote, ...]

    @property
    def supporting(self) -> tuple[Vote, ...]:
        """The votes for the decided label."""
        return tuple(v for v in self.votes if v.label == self.label)


class SlidingWindow:
    """The last `n` votes within `window_s` seconds, and the decision they reach, if any."""

    def __init__(self, rule: WindowRule) -> None:
        self.rule = rule
        self._votes: deque[Vote] = deque(maxlen=rule.n)

    @property
    def votes(self) -> tuple[Vote, ...]:
        return tuple(self._votes)

    def reset(self) -> None:
        """Forget every vote (after a decision, the next one starts from fresh evidence)."""
        self._votes.clear()

    def expire(self, now: float) -> None:
        """Drop votes older than the window at stream time `now`."""
        while self._votes and self._votes[0].t < now - self.rule.window_s:
            self._votes.popleft()

    def push(self, vote: Vote) -> WindowDecision | None:
        """Add one vote; the decision if its label now has k votes in the window."""
        if self._votes and vote.t < self._votes[-1].t:
            raise ValueError(f"votes must come in time order ({vote.t} after {self._votes[-1].t})")
        self._votes.append(vote)
        self.expire(vote.t)
        count = Counter(v.label for v in self._votes)[vote.label]
        if count >= self.rule.k:
            return WindowDecision(vote.label, tuple(self._votes))
        return None


class Presence:
    """Who is in view: a label (a name, or None for an unknown face) announced and not yet gone.

    A label becomes present when a decision about it is announced (`arrive`),
    and stays present while votes for it keep coming (`heard`); after
    `cooldown_s` seconds without any, it is gone (`expire`) and its next
    decision is a new appearance. Votes alone never make a label present: one
    stray frame is not an appearance.
    """

    def __init__(self, cooldown_s: float) -> None:
        if not cooldown_s >= 0:
            raise ValueError(f"the cooldown must not be negative, got {cooldown_s} s")
        self.cooldown_s = cooldown_s
        self._last: dict[str | None, float] = {}

    @property
    def present(self) -> frozenset[str | None]:
        return frozenset(self._last)

    def heard(self, vote: Vote) -> None:
        """A vote keeps its label present (if it is)."""
        if vote.label in self._last:
            self._last[vote.label] = vote.t

    def expire(self, now: float) -> None:
        """Forget labels without a vote for more than the cooldown at stream time `now`."""
        for label, last in list(self._last.items()):
            if now - last > self.cooldown_s:
                del self._last[label]

    def arrive(self, label: str | None, t: float) -> bool:
        """A decision about `label` at `t`: True if it is a new appearance (to announce)."""
        self.expire(t)
        new = label not in self._last
        self._last[label] = t
        return new
