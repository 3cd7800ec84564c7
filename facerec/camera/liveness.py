"""Liveness at the door: the claimed face's evidence over the decision window.

Every frame whose face matched the claim is scored by the anti-spoofing CNN
and its landmarks and appearance (a small grey copy of the aligned face, for
the continuity cue) kept; frames older than the vote window (`window_s`) fall
out, as votes do, so liveness is judged over the same stretch of time as the
identity. Frames of anybody else never enter: the parallax of a track that
jumps between two people would look like depth.
"""

from __future__ import annotations

from collections import deque

from facerec.faces.images import RGBImage
from facerec.faces.pipeline import Face
from facerec.liveness.continuity import appearance
from facerec.liveness.passive import AntiSpoof
from facerec.liveness.policy import FrameEvidence, LivenessPolicy, assess
from facerec.liveness.verdict import LivenessVerdict

#: Evidence frames kept at most (5 fps for 10 s is 50; this only bounds a misconfiguration).
MAX_EVIDENCE = 600


class LivenessTracker:
    """Evidence of the claimed face within the last `window_s` seconds, and its verdict."""

    def __init__(self, antispoof: AntiSpoof, policy: LivenessPolicy, window_s: float) -> None:
        self.antispoof = antispoof
        self.policy = policy
        self.window_s = window_s
        self._frames: deque[FrameEvidence] = deque(maxlen=MAX_EVIDENCE)

    @property
    def frames(self) -> tuple[FrameEvidence, ...]:
        return tuple(self._frames)

    def add(self, pixels: RGBImage, face: Face, t: float) -> FrameEvidence:
        """Score one frame's claimed face and keep it as evidence."""
        score = self.antispoof.score(pixels, face.detection.box)
        evidence = FrameEvidence(
            t, score.p_real, face.detection.landmarks, face.quality.yaw, appearance(face.chip)
        )
        self._frames.append(evidence)
        self.expire(t)
        return evidence

    def expire(self, now: float) -> None:
        while self._frames and self._frames[0].t < now - self.window_s:
            self._frames.popleft()

    def reset(self) -> None:
        self._frames.clear()

    def verdict(self) -> LivenessVerdict:
        return assess(self._frames, self.policy)
