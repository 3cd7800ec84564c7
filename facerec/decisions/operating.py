"""Operating points: thresholds chosen for a stated false-accept rate, shipped per model.

A threshold picked for the best accuracy on balanced pairs (LFW's 50/50
protocol) sits near FAR 1e-2: one stranger in a hundred gets through a door.
A door has to be set from the other end: the false-accept rate it may have.
`scripts/bench_far.py` embeds every photo of a labelled set, compares *every*
different-person pair (LFW: about 24 million) and records how many impostor
and genuine pairs each threshold on a 1e-4 grid accepts. That table is an
`OperatingCurve`, shipped as package data per model
(`facerec/models/operating_points/<model>.json`), stamped with the weights it
was measured for and its provenance (set, pair counts, date, command).

From it:
- 1:1 (a door): the smallest threshold whose measured FAR <= `DOOR_FAR`.
- 1:N: a stranger is compared with every one of N people, so the chance that
  one of them passes (the false-positive identification rate) is about
  N x FAR. For a target FPIR the per-comparison FAR is FPIR / N, and the
  threshold rises with the gallery. It is capped at the door's FAR, so that
  naming someone from a small gallery is never easier than a 1:1 claim.
- A target FAR below what the set can measure (fewer than
  `MIN_FALSE_ACCEPTS` expected false accepts) is clamped to the strictest
  measured point, with a warning: an extrapolated tail is a guess.

A door compares a photo with a *prototype*, the normalised mean of a person's
enrolment photos, and a mean of several photos sits closer to everyone,
strangers included: at the photo-pair threshold, a prototype of three photos
lets through several times the stated FAR. So a curve is also measured for
probes against prototypes of k photos (`enrolled` = k; package data
`<model>.prototype-<k>.json`), and a decision about a person enrolled from n
photos reads the curve of the smallest measured k >= n (the stricter side;
past the largest measured k, the largest).

Strangers at a real door are people the curve never saw, and a threshold
read off the very pairs it is judged on flatters itself: LFW's other half gave
1.28e-4 at the threshold its shipped half set for 1e-4. So a curve also
carries its people split into `PEOPLE_FOLDS` disjoint folds (by a hash of the
name), each with the false accepts of its own impostor pairs, and when it has
them `for_far` picks the smallest threshold at which *every* fold's exact 95%
upper bound is within the target: each fold stands for a fresh set of
strangers, so the stated FAR is an upper bound for people outside the set,
not an average over the people inside it. `scripts/bench_far.py` checks it
the other way round (threshold chosen on the other folds, FAR counted on the
held-out one).

Thresholds resolve in one order everywhere (`resolve_threshold`): explicit,
calibrated on the user's data (`facerec calibrate`), the shipped operating
point, the model's registry default.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import logging
import math
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from facerec.decisions.decision import DecisionThreshold, ThresholdSource, format_rate
from facerec.errors import ModelError
from facerec.util.binomial import beta_quantile
from facerec.util.jsonfields import json_bool, json_int, json_ints, json_str

log = logging.getLogger(__name__)

#: The 1:1 door's false-accept rate: one stranger's attempt in 10,000 accepted.
DOOR_FAR = 1e-4
#: 1:N: one stranger face in 1,000 given a name (and never laxer than the door, see above).
DEFAULT_FPIR = 1e-3
#: The detector of curves that do not name one (all files before YuNet were MTCNN's), and
#: whose files carry no detector in their name.
DEFAULT_CURVE_DETECTOR = "mtcnn"
#: A FAR is "measured" when the set holds at least this many false accepts at it;
#: with 10 the 95% interval spans about 0.5x to 1.8x the estimate.
MIN_FALSE_ACCEPTS = 10
#: Disjoint folds of people a curve's cross-person bound is measured on.
PEOPLE_FOLDS = 3
#: False accepts a fold may hold at the strictest rate it vouches for: LFW holds a few
#: near-identical photos under two names, and one of them must not set a 1:N threshold.
FOLD_TOLERANCE = 2
#: Bumped when the package data file's layout changes.
CURVE_FORMAT = 1

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial confidence interval for k successes in n trials.

    Exact rather than normal-approximation because the interesting counts
    are tiny (a handful of false accepts in millions of pairs), where the
    normal interval dips below zero or is far too narrow.
    """
    if not (0 <= k <= n and n > 0):
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else beta_quantile(alpha / 2, k, n - k + 1)
    hi = 1.0 if k == n else beta_quantile(1 - alpha / 2, k + 1, n - k)
    return lo, hi


@dataclass(frozen=True, slots=True)
class CurveProvenance:
    """Where a curve's counts come from, so every shipped FAR can be reproduced."""

    dataset: str  # short, for messages: "LFW"
    description: str  # what exactly was compared
    photos: int
    people: int
    impostor_pairs: int
    genuine_pairs: int
    date: str  # ISO date of the run
    command: str  # the command that reproduces the file

    @property
    def evidence(self) -> str:
        return f"{self.dataset} ({self.impostor_pairs:,} impostor pairs)"


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """One threshold of a curve with its measured rates.

    `far` = `false_accepts` / `impostor_pairs`, with its exact 95% interval
    (`far_low`, `far_high`); `tar` is the share of genuine pairs accepted.
    `target_far` is what the point was chosen for (None: read at a given
    threshold) and `clamped` says that target was below the measured range.
    """

    threshold: float
    false_accepts: int
    impostor_pairs: int
    far: float
    far_low: float
    far_high: float
    tar: float
    target_far: float | None = None
    clamped: bool = False
    #: The largest exact 95% upper bound of the FAR over the curve's people folds: what
    #: the threshold promises strangers it never saw (None: the curve has no folds).
    unseen_far_high: float | None = None


@dataclass(frozen=True, slots=True)
class FoldCounts:
    """One fold of people: its own impostor pairs and how many each grid row accepts."""

    impostor_pairs: int
    false_accepts: tuple[int, ...]


@functools.lru_cache(maxsize=256)
def max_false_accepts(impostor_pairs: int, target: float) -> int:
    """The most false accepts among `impostor_pairs` whose exact 95% upper bound is <= target.

    -1 when even none is too many (the pairs are too few to vouch for the target).
    """
    lo, hi = -1, math.floor(target * impostor_pairs)
    while lo < hi:  # the upper bound grows with k: the largest k that complies
        mid = (lo + hi + 1) // 2
        if clopper_pearson(mid, impostor_pairs)[1] <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


@functools.lru_cache(maxsize=1024)
def _for_far(curve: OperatingCurve, target: float) -> OperatingPoint:
    """`OperatingCurve.for_far`, once per curve and target (curves hash by identity, and
    the shipped ones live as long as the process)."""
    return curve._for_far(target)


@functools.lru_cache(maxsize=64)
def _warn_clamped(target: float, evidence: str, min_far: float, folds: bool) -> None:
    """Say once per curve and target (not at every decision) that a target was clamped."""
    why = (
        "an upper bound in every fold of people" if folds else f"{MIN_FALSE_ACCEPTS} false accepts"
    )
    log.warning(
        "target FAR %s is below what %s can vouch for (%s, %s); using %s",
        f"{target:.2g}",
        evidence,
        f"{min_far:.2g}",
        why,
        f"{min_far:.2g}",
    )


@dataclass(frozen=True, slots=True, eq=False)
class OperatingCurve:
    """Accepted impostor and genuine pair counts on a threshold grid, for one model's weights.

    Row i is the threshold `first + i * resolution`: `false_accepts[i]`
    impostor pairs and `true_accepts[i]` genuine pairs score at or above it.
    The grid starts at the first threshold whose FAR is at most `ceiling`
    (a door is never set laxer, so the rest would be dead weight) and ends at
    the first threshold no impostor pair reaches.
    """

    model: str
    weights_sha256: str
    flip: bool  # embeddings averaged with the mirror image's (Settings.flip) when measured
    provenance: CurveProvenance
    first: float
    resolution: float
    ceiling: float
    false_accepts: tuple[int, ...]
    true_accepts: tuple[int, ...]
    #: Photos per prototype on the enrolled side: 1 = photo against photo.
    enrolled: int = 1
    #: The detector whose landmarks cut the chips (`DetectorKind` value): another
    #: detector's landmarks give other scores and other error rates.
    detector: str = DEFAULT_CURVE_DETECTOR
    #: The same grid counted within each disjoint fold of people (empty: not measured).
    folds: tuple[FoldCounts, ...] = ()

    def __post_init__(self) -> None:
        fa, ta = self.false_accepts, self.true_accepts
        if self.enrolled < 1:
            raise ValueError("a curve's prototypes hold at least one photo")
        if not fa or len(fa) != len(ta):
            raise ValueError("a curve needs equally many (>= 1) false and true accept counts")
        if not self.resolution > 0 or not -1.0 <= self.first <= 1.0:
            raise ValueError("a curve's grid must start in [-1, 1] with a positive step")
        p = self.provenance
        if p.impostor_pairs <= 0 or p.genuine_pairs <= 0:
            raise ValueError("a curve needs impostor and genuine pairs")
        if not 0 < self.ceiling < 1 or fa[0] > self.ceiling * p.impostor_pairs:
            raise ValueError("the first row's FAR must be within the curve's ceiling")
        if fa[-1] != 0:
            raise ValueError("the last row must be a threshold no impostor pair reaches")
        for name, counts, total in (
            ("false", fa, p.impostor_pairs),
            ("true", ta, p.genuine_pairs),
        ):
            if any(c < 0 or c > total for c in counts) or any(
                b > a for a, b in itertools.pairwise(counts)
            ):
                raise ValueError(f"{name} accept counts must fall from at most {total} to >= 0")
        for fold in self.folds:
            counts = fold.false_accepts
            if (
                len(counts) != len(fa)
                or not 0 < fold.impostor_pairs <= p.impostor_pairs
                or any(c < 0 or c > fold.impostor_pairs for c in counts)
                or any(b > a for a, b in itertools.pairwise(counts))
            ):
                raise ValueError("a fold's counts must follow the grid and fall within its pairs")

    # -- reading the table -----------------------------------------------------------------
    def threshold(self, i: int) -> float:
        """Row i's threshold, rounded to the grid (so 0.9301 prints as 0.9301)."""
        return round(self.first + i * self.resolution, 10)

    @property
    def impostor_pairs(self) -> int:
        return self.provenance.impostor_pairs

    @property
    def evidence(self) -> str:
        """What the rates rest on, for messages: the set, prototype size and pair count."""
        p = self.provenance
        text = (
            p.evidence
            if self.enrolled == 1
            else (
                f"{p.dataset}, prototypes of {self.enrolled} photos "
                f"({p.impostor_pairs:,} impostor comparisons)"
            )
        )
        if self.folds:
            text += f", an upper bound for unseen people ({len(self.folds)} folds of people)"
        return text

    @property
    def min_far(self) -> float:
        """The smallest FAR the set can vouch for.

        MIN_FALSE_ACCEPTS false accepts over all pairs; with folds, also the
        upper bound of a fold with FOLD_TOLERANCE of them (a smaller target
        could not be shown to hold for unseen people).
        """
        pooled = MIN_FALSE_ACCEPTS / self.impostor_pairs
        return max(pooled, self._fold_floor) if self.folds else pooled

    @property
    def _fold_floor(self) -> float:
        """The smallest rate every fold can vouch for while tolerating FOLD_TOLERANCE false
        accepts (a stray label error must not decide a threshold on its own)."""
        return max(clopper_pearson(FOLD_TOLERANCE, f.impostor_pairs)[1] for f in self.folds)

    @property
    def cross_person(self) -> bool:
        """Whether thresholds are chosen for strangers outside the set (see the module docstring)."""
        return bool(self.folds)

    def _point(self, i: int, target: float | None = None, clamped: bool = False) -> OperatingPoint:
        k, n = self.false_accepts[i], self.impostor_pairs
        lo, hi = clopper_pearson(k, n)
        unseen = (
            max(clopper_pearson(f.false_accepts[i], f.impostor_pairs)[1] for f in self.folds)
            if self.folds
            else None
        )
        return OperatingPoint(
            threshold=self.threshold(i),
            false_accepts=k,
            impostor_pairs=n,
            far=k / n,
            far_low=lo,
            far_high=hi,
            tar=self.true_accepts[i] / self.provenance.genuine_pairs,
            target_far=target,
            clamped=clamped,
            unseen_far_high=unseen,
        )

    def point_at(self, threshold: float) -> OperatingPoint | None:
        """The measured rates of any threshold: those of the grid row at or below it.

        Rounding down errs towards more false accepts. None when the threshold
        lies below the table (its FAR is above `ceiling`).
        """
        i = math.floor((threshold - self.first) / self.resolution + 1e-9)
        if i < 0:
            return None
        return self._point(min(i, len(self.false_accepts) - 1))

    def for_far(self, target: float) -> OperatingPoint:
        """The smallest threshold whose measured FAR <= target (the most lenient that complies).

        With folds, also every fold's exact 95% upper bound <= target (the
        module docstring says why). A target below `min_far` cannot be
        verified on this set: the pooled count and the folds are then each
        held to the strictest rate they can vouch for (`min_far`), the
        stricter threshold wins, with a warning, and the point says it was
        clamped.
        """
        if not 0 < target <= self.ceiling:
            raise ValueError(
                f"a target FAR must lie in (0, {self.ceiling:g}] (the curve's range), got {target:g}"
            )
        return _for_far(self, target)  # cached: a camera asks at every frame

    def _for_far(self, target: float) -> OperatingPoint:
        clamped = target < self.min_far
        if clamped:
            _warn_clamped(target, self.evidence, self.min_far, bool(self.folds))
        # The pooled count and the folds each hold the target, or where they are too few to
        # vouch for it, the strictest rate they can; the stricter threshold of the two wins, so
        # a smaller target never gets a looser threshold.
        pooled = max(target, MIN_FALSE_ACCEPTS / self.impostor_pairs) * self.impostor_pairs
        i = next(i for i, k in enumerate(self.false_accepts) if k <= pooled)
        if self.folds:
            rate = max(target, self._fold_floor)
            limits = [
                (f.false_accepts, max_false_accepts(f.impostor_pairs, rate)) for f in self.folds
            ]
            i = max(
                i,
                next(
                    j
                    for j in range(len(self.false_accepts))
                    if all(counts[j] <= most for counts, most in limits)
                ),
            )
        return self._point(i, target, clamped)

    def for_gallery(
        self, people: int, fpir: float = DEFAULT_FPIR, cap_far: float = DOOR_FAR
    ) -> OperatingPoint:
        """1:N: the threshold at FAR = min(cap_far, fpir / people); see the module docstring."""
        if people < 1:
            raise ValueError(f"a gallery has at least one person, got {people}")
        if not 0 < fpir < 1:
            raise ValueError(f"a target FPIR must lie in (0, 1), got {fpir}")
        return self.for_far(min(cap_far, fpir / people))

    # -- the package data file ---------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": CURVE_FORMAT,
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "flip": self.flip,
            "provenance": {
                "dataset": self.provenance.dataset,
                "description": self.provenance.description,
                "photos": self.provenance.photos,
                "people": self.provenance.people,
                "impostor_pairs": self.provenance.impostor_pairs,
                "genuine_pairs": self.provenance.genuine_pairs,
                "date": self.provenance.date,
                "command": self.provenance.command,
            },
            "grid": {"first": self.first, "resolution": self.resolution, "ceiling": self.ceiling},
            "false_accepts": list(self.false_accepts),
            "true_accepts": list(self.true_accepts),
            "enrolled": self.enrolled,
            "detector": self.detector,
        } | (
            {
                "people_folds": [
                    {"impostor_pairs": f.impostor_pairs, "false_accepts": list(f.false_accepts)}
                    for f in self.folds
                ]
            }
            if self.folds
            else {}
        )

    @classmethod
    def from_json(cls, data: Any) -> OperatingCurve:
        """Parse and validate; any defect raises ValueError (the caller names the file)."""
        try:
            if data["format"] != CURVE_FORMAT:
                raise ValueError(f"format {data['format']!r}, expected {CURVE_FORMAT}")
            p = data["provenance"]
            prov = CurveProvenance(
                dataset=json_str(p["dataset"]),
                description=json_str(p["description"]),
                photos=json_int(p["photos"]),
                people=json_int(p["people"]),
                impostor_pairs=json_int(p["impostor_pairs"]),
                genuine_pairs=json_int(p["genuine_pairs"]),
                date=json_str(p["date"]),
                command=json_str(p["command"]),
            )
            return cls(
                model=json_str(data["model"]),
                weights_sha256=json_str(data["weights_sha256"]),
                flip=json_bool(data["flip"]),
                provenance=prov,
                first=float(data["grid"]["first"]),
                resolution=float(data["grid"]["resolution"]),
                ceiling=float(data["grid"]["ceiling"]),
                false_accepts=json_ints(data["false_accepts"]),
                true_accepts=json_ints(data["true_accepts"]),
                enrolled=json_int(data.get("enrolled", 1)),
                detector=json_str(data.get("detector", DEFAULT_CURVE_DETECTOR)),
                folds=tuple(
                    FoldCounts(json_int(f["impostor_pairs"]), json_ints(f["false_accepts"]))
                    for f in data.get("people_folds", ())
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or mistyped field ({exc})") from None


def curve_file(model: str, enrolled: int = 1, detector: str = DEFAULT_CURVE_DETECTOR) -> str:
    """The package data file of a model's curve for prototypes of `enrolled` photos.

    `<model>[@<detector>][.prototype-<k>].json`: MTCNN's curves carry no
    detector in their name (they came first).
    """
    if not _MODEL_NAME.match(model):
        raise ModelError(f"{model!r} is not a model name")
    if not _MODEL_NAME.match(detector):
        raise ModelError(f"{detector!r} is not a detector name")
    stem = model if detector == DEFAULT_CURVE_DETECTOR else f"{model}@{detector}"
    return f"{stem}.json" if enrolled == 1 else f"{stem}.prototype-{enrolled}.json"


def _package_data() -> Traversable:
    return importlib.resources.files("facerec.models") / "operating_points"


@functools.cache
def shipped_sizes(model: str, detector: str = DEFAULT_CURVE_DETECTOR) -> tuple[int, ...]:
    """The prototype sizes (photos) a curve was shipped for, 1 (photo pairs) first."""
    prefix = curve_file(model, detector=detector)[: -len(".json")] + ".prototype-"
    sizes = {1}
    for res in _package_data().iterdir():
        name = res.name
        if name.startswith(prefix) and name.endswith(".json"):
            k = name[len(prefix) : -len(".json")]
            if k.isdigit() and int(k) > 1:
                sizes.add(int(k))
    return tuple(sorted(sizes))


def size_for(model: str, enrolled: int, detector: str = DEFAULT_CURVE_DETECTOR) -> int:
    """Which shipped curve a person enrolled from `enrolled` photos is decided on.

    The smallest measured size >= `enrolled`: a prototype's FAR grows with its
    photos, so reading a larger size's curve errs on the strict side. Beyond
    the largest measured size, the largest.
    """
    sizes = shipped_sizes(model, detector)
    return next((k for k in sizes if k >= enrolled), sizes[-1])


def shipped_curve(
    model: str, enrolled: int = 1, detector: str = DEFAULT_CURVE_DETECTOR
) -> OperatingCurve | None:
    """The curve shipped for `model` (prototypes of `enrolled` photos, landmarks from
    `detector`), or None when none was measured.

    A file that exists but cannot be parsed is a broken installation, not a
    missing measurement: it raises instead of silently loosening the door.
    """
    return _shipped_curve(model, enrolled, str(detector))  # one cache key however called


@functools.cache
def _shipped_curve(model: str, enrolled: int, detector: str) -> OperatingCurve | None:
    res = _package_data() / curve_file(model, enrolled, detector)
    if not res.is_file():
        return None
    try:
        curve = OperatingCurve.from_json(json.loads(res.read_text()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{res}: not a usable operating-point file ({exc})") from None
    if curve.model != model or curve.enrolled != enrolled or curve.detector != detector:
        raise ModelError(
            f"{res}: holds the curve of {curve.model!r} for prototypes of {curve.enrolled} "
            f"photo(s) with {curve.detector} landmarks, not of {model!r} for {enrolled} "
            f"with {detector}"
        )
    return curve


def resolve_threshold(
    *,
    explicit: float | None,
    calibrated: float | None,
    curve: OperatingCurve | None,
    default: float,
    gallery_size: int | None = None,
    door_far: float = DOOR_FAR,
    fpir: float = DEFAULT_FPIR,
) -> DecisionThreshold:
    """The threshold in force and what is known about it.

    Order: explicit > calibrated > the curve's operating point > `default`.
    `curve` must already be the one measured for the active weights (or
    None). `gallery_size` None asks for the 1:1 threshold; a number asks for
    1:N over that many people (FPIR scaling, see the module docstring).
    """
    one_to_n = gallery_size is not None
    people = max(1, gallery_size) if gallery_size is not None else 1
    point: OperatingPoint | None
    if explicit is not None:
        value, source = float(explicit), ThresholdSource.EXPLICIT
    elif calibrated is not None:
        value, source = float(calibrated), ThresholdSource.CALIBRATED
    elif curve is not None:
        point = (
            curve.for_gallery(people, fpir, cap_far=door_far)
            if one_to_n
            else curve.for_far(door_far)
        )
        return _described(
            point.threshold, ThresholdSource.OPERATING_POINT, curve, point, gallery_size
        )
    else:
        value, source = float(default), ThresholdSource.MODEL_DEFAULT
    point = curve.point_at(value) if curve is not None else None
    return _described(value, source, curve, point, gallery_size)


def _described(
    value: float,
    source: ThresholdSource,
    curve: OperatingCurve | None,
    point: OperatingPoint | None,
    gallery_size: int | None,
) -> DecisionThreshold:
    far = point.far if point is not None else None
    fpir = None
    if far is not None and gallery_size is not None:
        fpir = min(1.0, max(1, gallery_size) * far)
    evidence = ""
    if curve is not None:
        evidence = curve.evidence
        if point is None:  # below the table
            evidence = f"FAR above {format_rate(curve.ceiling)} on {evidence}"
    return DecisionThreshold(
        value=value,
        source=source,
        far=far,
        evidence=evidence,
        target_far=point.target_far if point is not None else None,
        gallery_size=gallery_size,
        fpir=fpir,
    )


def curve_for(
    model: str,
    weights_sha256: str | None,
    flip: bool = False,
    enrolled: int = 1,
    detector: str = DEFAULT_CURVE_DETECTOR,
) -> OperatingCurve | None:
    """The shipped curve if it was measured for these weights, flip setting and detector.

    Each detector places the landmarks a little differently, so the chips,
    the scores and the error rates differ: a curve applies only to the
    detector it was measured with, and with any other there is none.

    `enrolled`: photos in the prototype decided on; the curve read is
    `size_for`'s (photo pairs for 1, or where no prototype curve was shipped).

    `weights_sha256` None means "the model's own default weights, not loaded
    yet": the shipped curve applies. Any other weights (a fine-tuned
    checkpoint) or flip averaging give other scores and other error rates,
    so no curve applies to them.
    """
    detector = str(detector)
    curve = shipped_curve(model, size_for(model, max(1, enrolled), detector), detector)
    if curve is None or curve.flip != flip:
        return None
    if weights_sha256 is not None and weights_sha256 != curve.weights_sha256:
        return None
    return curve
