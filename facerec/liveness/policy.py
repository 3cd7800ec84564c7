"""Which liveness cues a decision needs, and the verdict over one decision's frames.

The default asks for three cues: the anti-spoofing CNN must find the face
live on average over the frames, the face must have moved in depth (nose
parallax), *and* it must have changed smoothly from frame to frame (no
mirror copy, no jumps between still pictures: a replay that fakes parallax).
A still face therefore never opens the door by itself: it stays undecided
until the person moves their head (the door keeps looking) or the time runs
out. `require_motion=False` accepts on the CNN
alone (the motion cues can still refuse an attack they see); the CNN is trained on camera recaptures (prints, screens) and cannot
be relied on for digital replays (see scripts/bench_liveness.py). With a
`challenge`, the person must also turn their head the asked way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from facerec.liveness import continuity, parallax, passive
from facerec.liveness.challenge import Turn, TurnLimits, judge_turn
from facerec.liveness.continuity import ContinuityLimits
from facerec.liveness.parallax import ParallaxLimits
from facerec.liveness.verdict import LivenessVerdict, fuse

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class FrameEvidence:
    """What one frame of the claimed face contributes: p(live), landmarks, yaw, appearance.

    `appearance` is `continuity.appearance` of the aligned face chip; frames
    without one (callers that have no chip) are left out of the continuity
    cue, which then waits for enough frames that have one.
    """

    t: float  # stream time, seconds
    p_real: float
    landmarks: tuple[Point, Point, Point, Point, Point]
    yaw: float
    appearance: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """Thresholds of each cue, and which cues must say "live" before a door opens."""

    min_real: float = passive.DEFAULT_MIN_REAL
    require_motion: bool = True
    parallax: ParallaxLimits = field(default_factory=ParallaxLimits)
    continuity: ContinuityLimits = field(default_factory=ContinuityLimits)
    challenge: Turn | None = None
    turn: TurnLimits = field(default_factory=TurnLimits)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_real <= 1.0:
            raise ValueError(f"the p(live) threshold must lie in [0, 1], got {self.min_real}")


def assess(frames: Sequence[FrameEvidence], policy: LivenessPolicy) -> LivenessVerdict:
    """The fused verdict over `frames` (oldest first), every cue measured on the same frames."""
    cues = [
        passive.judge([f.p_real for f in frames], policy.min_real),
        parallax.judge(
            parallax.measure([f.landmarks for f in frames]),
            policy.parallax,
            required=policy.require_motion,
        ),
        continuity.judge(
            continuity.measure(
                [f.appearance for f in frames if f.appearance is not None], policy.continuity
            ),
            policy.continuity,
            required=policy.require_motion,
        ),
    ]
    if policy.challenge is not None:
        cues.append(judge_turn(policy.challenge, [f.yaw for f in frames], policy.turn))
    return fuse(cues)
