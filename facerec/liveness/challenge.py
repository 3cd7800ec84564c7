"""The active cue: ask the person to turn their head one way, and check that they did.

The direction is drawn at random (`secrets`) when the claim starts, so a
pre-recorded video passes only if it happens to turn the right way first:
one chance in two, which is why this cue adds to the others and replaces
none. The turn is read off the yaw track (`facerec.faces.quality.pose_from_landmarks`:
the nose's offset from the eye midpoint along the eye line, in eye
distances): the person must be seen roughly frontal first and then turned
past `turned_yaw` towards the asked side, in frames that matched the claimed
person. A turn the wrong way is not an attack (people confuse left and
right, and a mirrored preview swaps them); the cue just stays undecided.

Sign convention: MTCNN's first eye is the one on the image's left, so a
positive yaw is a nose pointing to the image's right, which for a camera
facing the person (not mirrored) is the person's own left.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from facerec.liveness.verdict import Cue, CueResult, Verdict


class Turn(StrEnum):
    """Which way to turn, from the person's point of view."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def sign(self) -> float:
        return 1.0 if self is Turn.LEFT else -1.0

    @property
    def prompt(self) -> str:
        return f"turn your head to your {self.value}"


def draw_turn() -> Turn:
    """A direction nobody can predict (not even a replayed video)."""
    return secrets.choice((Turn.LEFT, Turn.RIGHT))


@dataclass(frozen=True, slots=True)
class TurnLimits:
    """Yaw (eye distances) that counts as frontal, and as turned (quality gate refuses past 0.40)."""

    frontal_yaw: float = 0.10
    turned_yaw: float = 0.18

    def __post_init__(self) -> None:
        if not 0 <= self.frontal_yaw < self.turned_yaw:
            raise ValueError(f"need 0 <= frontal_yaw < turned_yaw, got {self}")


def judge_turn(asked: Turn, yaws: Sequence[float], limits: TurnLimits) -> CueResult:
    """Live once a frontal frame is followed by one turned past the limit the asked way."""
    frontal_seen = False
    peak = 0.0
    for yaw in yaws:
        signed = yaw * asked.sign
        if abs(yaw) <= limits.frontal_yaw:
            frontal_seen = True
        elif frontal_seen:
            peak = max(peak, signed)
            if signed >= limits.turned_yaw:
                return CueResult(
                    Cue.CHALLENGE, Verdict.LIVE, signed, f"turned {asked.value} (yaw {yaw:+.2f})"
                )
    what = "no frontal frame yet" if not frontal_seen else f"largest turn {peak:.2f}"
    return CueResult(Cue.CHALLENGE, Verdict.UNDECIDED, peak, f"asked to {asked.prompt}: {what}")
