"""The continuity cue: does the face change from frame to frame as a head does?

A live head moves continuously: two consecutive frames of it show nearly the
same face, a little turned, lit or blurred differently, and never the mirror
image of the previous one. Two replays fake the nose parallax that the planar
cue (`facerec.liveness.parallax`) looks for without any continuous motion:

- a *mirror flip*: one photo swapped for its horizontal mirror image every
  few frames. The mirror turns the face the other way, so the nose jumps
  against the eyes and mouth, but each frame is exactly the photo or its
  mirror: the aligned face of frame t is almost equal to the *mirrored*
  aligned face of frame t-1, and further from the unmirrored one;
- a *slideshow*: different photos of the person, each held for a while.
  The face is frozen (frames nearly identical, only sensor noise differs)
  then jumps in one or two frames to another face that no motion led to.

Both are read on the aligned face chip (`Face.chip`: the face warped to the
model's template, so the comparison is independent of where the face is in
the frame), reduced to a small grey `appearance` normalised for brightness and
contrast. A step is the pair of consecutive evidence frames; its `direct`
similarity compares the two appearances, its `mirrored` one compares the
second with the mirror image of the first (correlations, 1 = identical, each
at the best of small turns, scalings and shifts: the chips of a face and of
its mirror image are aligned on landmarks that are not exact mirror images of
each other).

- a *mirror step*: `mirrored` is high and the mirrored difference (1 - mirrored)
  is at most `mirror_ratio` of the direct one: the frame is a mirror copy of
  its predecessor. A face is nearly symmetric, so `mirrored` alone proves
  nothing; only "much closer to the mirror than to itself" does. One is enough:
  a real head would have to turn from one side to the exact mirror pose within
  one frame interval;
- a *cut*: one or two steps that change the face a lot (direct below `jump`)
  between frozen stretches (direct at least `frozen` on both sides), landing on
  a face that differs from the one before (so a glance away and back is not
  one). Two cuts make an attack; one leaves the cue undecided (the door keeps
  looking).

What it cannot see: a slideshow changing photo at every analysed frame (no
frozen frame, each step looks like a fast movement), a video of the person,
a 3-D mask. The cue needs `min_frames` frames before it says "live", so a
slow slideshow has time to show its second cut.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facerec.liveness.verdict import Cue, CueResult, Verdict

FloatArray = npt.NDArray[np.float32]

#: Side of the grey appearance (pixels): enough for pose and expression, blind to sensor noise.
APPEARANCE_SIDE = 32
#: The misalignments searched when comparing two appearances: turns (degrees), scalings and
#: shifts (appearance pixels, about 6% of the face), over the middle (a MARGIN-pixel border out).
ANGLES = (-6.0, -3.0, 0.0, 3.0, 6.0)
SCALES = (0.94, 1.0, 1.06)
MAX_SHIFT = 2
MARGIN = 4


@dataclass(frozen=True, slots=True)
class ContinuityLimits:
    """Which frame-to-frame similarities mean "frozen", "a jump" and "a mirror copy"."""

    min_frames: int = 8  # before "live": a slideshow holding each photo 0.3 s shows two cuts
    frozen: float = 0.95  # direct similarity of frames with nothing but sensor noise between them
    jump: float = 0.85  # below this a step changed the face a lot
    max_cut_steps: int = 2  # a change this short between frozen stretches is a cut, not a motion
    mirror_min: float = 0.8  # a mirror copy is at least this similar to the mirrored predecessor
    mirror_ratio: float = 0.5  # and at least 1 / this times closer than to the predecessor itself
    max_cuts: int = 1  # more cuts than this: a slideshow

    def __post_init__(self) -> None:
        if not -1.0 <= self.jump < self.frozen <= 1.0:
            raise ValueError(f"need -1 <= jump < frozen <= 1, got {self.jump}, {self.frozen}")
        if self.min_frames < 2 or self.max_cut_steps < 1:
            raise ValueError("need min_frames >= 2 and max_cut_steps >= 1")


@dataclass(frozen=True, slots=True)
class Step:
    """Two consecutive appearances compared as they are and with the first one mirrored."""

    direct: float
    mirrored: float


@dataclass(frozen=True, slots=True)
class ContinuityMeasure:
    """The steps of a track of appearances, and the discontinuities found in them."""

    frames: int
    mirrors: int  # steps that are a mirror copy of their predecessor
    cuts: int  # abrupt changes between frozen stretches
    moving: int  # steps that are neither frozen nor mirror copies
    least_direct: float  # the smallest direct similarity of a step (1.0 without steps)
    most_mirrored: float  # the largest mirrored similarity of a step (-1.0 without steps)
    mirror_ratio: float  # smallest (1 - mirrored) / (1 - direct) of a step (inf without steps)


def appearance(chip: npt.NDArray[np.uint8]) -> FloatArray:
    """A face chip as a small grey image of zero mean and unit norm (all zero if uniform).

    Zero mean and unit norm make the dot product of two appearances their
    correlation: the same under a change of brightness or contrast.
    """
    pixels = np.asarray(chip)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8 or pixels.size == 0:
        raise ValueError(f"expected an (H, W, 3) uint8 face chip, got {pixels.shape} {pixels.dtype}")
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(grey, (APPEARANCE_SIDE, APPEARANCE_SIDE), interpolation=cv2.INTER_AREA)
    centred = small.astype(np.float64) - float(small.mean())
    norm = float(np.linalg.norm(centred))
    if norm < 1e-3 * APPEARANCE_SIDE:  # RMS below a thousandth of a grey level: no pattern
        return np.zeros_like(small)
    return np.asarray(centred / norm, dtype=np.float32)


def _poses(prev: FloatArray) -> list[FloatArray]:
    """`prev` turned and scaled by each of ANGLES x SCALES about its centre."""
    h, w = prev.shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    out = []
    for angle in ANGLES:
        for scale in SCALES:
            m = cv2.getRotationMatrix2D(centre, angle, scale)
            turned = cv2.warpAffine(prev, m, (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT)  # fmt: skip
            out.append(np.asarray(turned, dtype=np.float32))
    return out


def similarity(cur: FloatArray, prev: FloatArray) -> float:
    """Correlation of `cur` with `prev` at the best of small turns, scalings and shifts.

    The middle of `cur` (a border of `MARGIN` left out) is compared with every
    window of `prev`, turned by one of `ANGLES`, scaled by one of `SCALES` and
    shifted by up to `MAX_SHIFT` pixels. Landmarks of a face and of its mirror
    image are not exact mirror images of each other, so neither are their
    aligned chips: without the search a mirror copy can look merely similar.
    The same search on the direct comparison keeps the two on equal terms.
    """
    if cur.shape != prev.shape:
        raise ValueError(f"appearances of different shapes: {cur.shape}, {prev.shape}")
    h, w = cur.shape
    if h != w or h <= 2 * MARGIN:
        raise ValueError(f"appearances must be square and larger than {2 * MARGIN}, got {cur.shape}")
    return _similarity(cur.astype(np.float32).tobytes(), prev.astype(np.float32).tobytes(), h)


@functools.lru_cache(maxsize=512)
def _similarity(cur_bytes: bytes, prev_bytes: bytes, side: int) -> float:
    """`similarity` on the raw bytes, remembered: the door asks again at every frame about the
    same consecutive pairs (the evidence window slides one frame at a time)."""
    cur = np.frombuffer(cur_bytes, dtype=np.float32).reshape(side, side)
    prev = np.frombuffer(prev_bytes, dtype=np.float32).reshape(side, side)
    middle = np.ascontiguousarray(cur[MARGIN : side - MARGIN, MARGIN : side - MARGIN])
    if float(middle.std()) < 1e-6:
        return 0.0  # no pattern to compare
    lo, hi = MARGIN - MAX_SHIFT, side - MARGIN + MAX_SHIFT
    best = -1.0
    for pose in _poses(prev):
        # TM_CCOEFF_NORMED: the correlation (zero mean, unit norm) at every shift of `middle`.
        scores = cv2.matchTemplate(np.ascontiguousarray(pose[lo:hi, lo:hi]), middle,
                                   cv2.TM_CCOEFF_NORMED)  # fmt: skip
        if np.isfinite(scores).any():
            best = max(best, float(np.nanmax(scores)))
    return best


def steps(track: Sequence[FloatArray]) -> list[Step]:
    """Each consecutive pair of appearances: (direct, mirrored) similarity."""
    return [
        Step(similarity(cur, prev), similarity(cur, np.ascontiguousarray(prev[:, ::-1])))
        for prev, cur in itertools.pairwise(track)
    ]


def is_mirror(step: Step, limits: ContinuityLimits) -> bool:
    """The second frame is a mirror copy of the first (much closer to it than to the first)."""
    return step.mirrored >= limits.mirror_min and _ratio(step) <= limits.mirror_ratio


def count_cuts(track: Sequence[FloatArray], found: Sequence[Step], limits: ContinuityLimits) -> int:
    """Short runs of big changes between frozen steps that land on another face."""
    frozen = [s.direct >= limits.frozen for s in found]
    cuts, i = 0, 1
    while i < len(found):
        if frozen[i] or not frozen[i - 1]:
            i += 1
            continue
        end = i  # the run of unfrozen steps starting at i
        while end < len(found) and not frozen[end]:
            end += 1
        run = found[i:end]
        if end < len(found) and len(run) <= limits.max_cut_steps:
            # Steps i..end-1 lead from appearance i to appearance end.
            landed = similarity(track[end], track[i])
            if min(s.direct for s in run) < limits.jump and landed < limits.jump:
                cuts += 1
        i = end + 1
    return cuts


def measure(track: Sequence[FloatArray], limits: ContinuityLimits) -> ContinuityMeasure:
    """Mirror copies and cuts over a track of appearances (one per frame, oldest first)."""
    found = steps(track)
    mirrors = sum(is_mirror(s, limits) for s in found)
    moving = sum(not is_mirror(s, limits) and s.direct < limits.frozen for s in found)
    return ContinuityMeasure(
        frames=len(track),
        mirrors=mirrors,
        cuts=count_cuts(track, found, limits),
        moving=moving,
        least_direct=min((s.direct for s in found), default=1.0),
        most_mirrored=max((s.mirrored for s in found), default=-1.0),
        mirror_ratio=min((_ratio(s) for s in found), default=math.inf),
    )


def _ratio(step: Step) -> float:
    """How much closer to the mirror image than to the frame itself (below 1: closer)."""
    return (1.0 - step.mirrored) / max(1.0 - step.direct, 1e-6)


def judge(m: ContinuityMeasure, limits: ContinuityLimits, *, required: bool = True) -> CueResult:
    """Attack on a mirror copy or repeated cuts; live once enough frames changed smoothly."""
    steps_ = max(m.frames - 1, 0)
    if m.mirrors > 0:
        verdict = Verdict.ATTACK
        why = (
            f"the face flips to its mirror image between frames ({m.mirrors} of {steps_} steps):"
            " a photo and its mirror image replayed"
        )
    elif m.cuts > limits.max_cuts:
        verdict = Verdict.ATTACK
        why = (
            f"the face jumps between still pictures ({m.cuts} jumps in {steps_} steps):"
            " a slideshow of photos"
        )
    elif m.frames < limits.min_frames:
        verdict, why = Verdict.UNDECIDED, f"{m.frames} frame(s), need {limits.min_frames}"
    elif m.cuts > 0:
        verdict, why = Verdict.UNDECIDED, "the face jumped once between still pictures; watching"
    elif m.moving == 0:
        verdict, why = Verdict.UNDECIDED, "the face has not changed between frames"
    else:
        verdict, why = Verdict.LIVE, f"changes smoothly between frames ({steps_} steps)"
    return CueResult(Cue.CONTINUITY, verdict, float(m.mirrors + m.cuts), why, required)
