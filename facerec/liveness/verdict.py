"""What each liveness cue says, and how the cues are combined into one verdict.

Every cue answers with one of three words. `LIVE` and `ATTACK` are claims the
cue can back with a measurement; `UNDECIDED` says the evidence is not there
yet (too few frames, too little motion, no turn). Undecided is never a pass:
a door opens on `LIVE` only.

Fusion (`fuse`): any cue that says `ATTACK` makes the verdict `ATTACK` (an
attack needs to fool every cue, the defence only one); the verdict is `LIVE`
when every *required* cue says `LIVE`; otherwise it is `UNDECIDED`, and a door
keeps looking until it decides or its time runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

#: The authors' rule is "class 1 wins"; p(live) >= 0.5 is the same rule for two classes and a
#: slightly stricter one for three. What it refuses and accepts here: scripts/bench_liveness.py.
DEFAULT_MIN_REAL = 0.5


class Verdict(StrEnum):
    LIVE = "live"
    ATTACK = "attack"
    UNDECIDED = "undecided"


class Cue(StrEnum):
    PASSIVE = "passive"  # the anti-spoofing CNN on each frame (`facerec.liveness.passive`)
    PARALLAX = "parallax"  # does the face move like a plane (`facerec.liveness.parallax`)
    CHALLENGE = "challenge"  # did the person turn as asked (`facerec.liveness.challenge`)
    CONTINUITY = "continuity"  # does the face change smoothly (`facerec.liveness.continuity`)


@dataclass(frozen=True, slots=True)
class CueResult:
    """One cue's verdict over a set of frames, its main measurement and why it decided so."""

    cue: Cue
    verdict: Verdict
    score: float | None  # passive: mean p(live); parallax: nose parallax in eye distances;
    # continuity: mirror copies + cuts found
    reason: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class LivenessVerdict:
    """The fused verdict and every cue it rests on."""

    verdict: Verdict
    reason: str
    cues: tuple[CueResult, ...]

    def cue(self, cue: Cue) -> CueResult | None:
        return next((c for c in self.cues if c.cue is cue), None)


def fuse(cues: Sequence[CueResult]) -> LivenessVerdict:
    """Attack if any cue says attack; live if every required cue says live; else undecided."""
    cues = tuple(cues)
    attacks = [c for c in cues if c.verdict is Verdict.ATTACK]
    if attacks:
        return LivenessVerdict(
            Verdict.ATTACK, "; ".join(f"{c.cue}: {c.reason}" for c in attacks), cues
        )
    waiting = [c for c in cues if c.required and c.verdict is not Verdict.LIVE]
    if waiting or not any(c.required for c in cues):
        why = "; ".join(f"{c.cue}: {c.reason}" for c in waiting) or "no cue required"
        return LivenessVerdict(Verdict.UNDECIDED, why, cues)
    return LivenessVerdict(Verdict.LIVE, "; ".join(f"{c.cue}: {c.reason}" for c in cues), cues)
