"""Every pair of a labelled set, counted on a fine threshold grid: FAR, TAR and their thresholds.

A false-accept rate of 1e-4 or 1e-5 can only be measured on many impostor
pairs: LFW's 6,922 photos of 3,554 people give about 24 million, and the
standard 3,000 View-2 pairs measure nothing below 1e-3. Storing 24 million
cosines is not needed either: a door's threshold is set to a grid, and
`counts >= t` for every grid threshold t follows from a histogram of the
scores at that resolution (1e-4 by default, finer than any threshold anyone
types). Scores are computed in row chunks of the similarity matrix, in
float64, so memory stays at a few tens of MB whatever the set size.

A grid threshold t accepts the scores in its own bin and every bin above:
`accepted(t) = sum(counts[bin(t):])`, exact up to scores within float
rounding of a bin edge.

Photo pairs are not quite what a door compares: it scores a probe photo
against a person's *prototype*, the normalised mean of their enrolment
photos. A mean sits nearer the centre of face space than any one photo, so
it is more similar to strangers as well as to its own person;
`prototype_counts` measures that comparison directly.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.decisions.operating import (
    DEFAULT_CURVE_DETECTOR,
    PEOPLE_FOLDS,
    CurveProvenance,
    FoldCounts,
    OperatingCurve,
    OperatingPoint,
    clopper_pearson,
)
from facerec.decisions.prototypes import normalised_mean

log = logging.getLogger(__name__)

#: Default bin width of the cosine histogram.
RESOLUTION = 1e-4

Counts = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class PairCounts:
    """Histograms over [-1, 1] of the cosine of every different-person (impostor) and
    same-person (genuine) pair of a set; bin k starts at threshold `-1 + k * resolution`."""

    resolution: float
    impostor: Counts
    genuine: Counts

    @property
    def impostor_pairs(self) -> int:
        return int(self.impostor.sum())

    @property
    def genuine_pairs(self) -> int:
        return int(self.genuine.sum())

    def threshold(self, k: int) -> float:
        """Bin k's lower edge, rounded to the grid's decimals."""
        return round(-1.0 + k * self.resolution, _decimals(self.resolution))

    def bin(self, threshold: float) -> int:
        """The first bin a threshold accepts (thresholds between edges round up)."""
        k = math.ceil((threshold + 1.0) / self.resolution - 1e-9)
        return min(max(k, 0), len(self.impostor))

    def _accepted(self) -> tuple[Counts, Counts]:
        """Pairs at or above each bin's threshold (reverse cumulative sums)."""
        return (
            np.cumsum(self.impostor[::-1])[::-1],
            np.cumsum(self.genuine[::-1])[::-1],
        )

    def at(self, threshold: float, target_far: float | None = None) -> OperatingPoint:
        """Measured FAR (with its exact 95% interval) and TAR of a threshold."""
        k = self.bin(threshold)
        fa = int(self.impostor[k:].sum())
        ta = int(self.genuine[k:].sum())
        n = self.impostor_pairs
        lo, hi = clopper_pearson(fa, n)
        return OperatingPoint(
            threshold=self.threshold(k) if k < len(self.impostor) else threshold,
            false_accepts=fa,
            impostor_pairs=n,
            far=fa / n,
            far_low=lo,
            far_high=hi,
            tar=ta / self.genuine_pairs,
            target_far=target_far,
        )

    def for_far(self, target: float) -> OperatingPoint:
        """The smallest grid threshold whose measured FAR <= target."""
        if not 0 < target < 1:
            raise ValueError(f"a target FAR must lie in (0, 1), got {target}")
        fa, _ = self._accepted()
        ok = fa <= target * self.impostor_pairs
        if not ok.any():
            raise ValueError("impostor pairs at cosine 1.0 exceed the target at every threshold")
        k = int(np.argmax(ok))  # counts fall along the grid, so the first is the smallest
        return self.at(self.threshold(k), target)

    def curve(
        self,
        model: str,
        weights_sha256: str,
        provenance: CurveProvenance,
        ceiling: float = 0.1,
        flip: bool = False,
        enrolled: int = 1,
        detector: str = DEFAULT_CURVE_DETECTOR,
        folds: Sequence[PairCounts] = (),
    ) -> OperatingCurve:
        """The shippable table: from the first threshold with FAR <= `ceiling` to the first
        threshold no impostor pair reaches; `folds` (`within_folds`) on the same rows."""
        if provenance.impostor_pairs != self.impostor_pairs or (
            provenance.genuine_pairs != self.genuine_pairs
        ):
            raise ValueError("the provenance's pair counts are not these counts'")
        fa, ta = self._accepted()
        first = int(np.argmax(fa <= ceiling * self.impostor_pairs))
        last = int(np.argmax(fa == 0)) if (fa == 0).any() else len(fa) - 1
        if fa[last] != 0:
            # Pairs at cosine 1.0: the same photo under two names (LFW has a few such label
            # errors), which no threshold can refuse; the curve keeps their count honestly.
            log.warning(
                "%d impostor pair(s) score 1.0 (duplicate photos under two names?)", int(fa[last])
            )
        return OperatingCurve(
            model=model,
            weights_sha256=weights_sha256,
            flip=flip,
            provenance=provenance,
            first=self.threshold(first),
            resolution=self.resolution,
            ceiling=ceiling,
            false_accepts=tuple(int(x) for x in fa[first : last + 1]),
            true_accepts=tuple(int(x) for x in ta[first : last + 1]),
            enrolled=enrolled,
            detector=str(detector),
            folds=tuple(
                FoldCounts(
                    f.impostor_pairs,
                    tuple(int(x) for x in np.cumsum(f.impostor[::-1])[::-1][first : last + 1]),
                )
                for f in folds
            ),
        )


def _bin_of(sims: npt.NDArray[np.float64], resolution: float, bins: int) -> npt.NDArray[np.int64]:
    """Each cosine's histogram bin (bin k starts at -1 + k * resolution; 1.0 in the last)."""
    idx = np.floor((np.clip(sims, -1.0, 1.0) + 1.0) / resolution).astype(np.int64)
    np.clip(idx, 0, bins - 1, out=idx)
    return idx


def _decimals(resolution: float) -> int:
    return max(0, -math.floor(math.log10(resolution))) + 2


def pair_counts(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    resolution: float = RESOLUTION,
    chunk: int = 512,
) -> PairCounts:
    """Histograms of the cosine of every unordered pair i < j: impostor when the labels
    differ, genuine when they agree. Embeddings are L2-normalised rows."""
    e = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if e.ndim != 2 or len(e) != len(y):
        raise ValueError("need (N, D) embeddings and N labels")
    if len(e) < 2:
        raise ValueError("need at least two photos")
    bins = round(2.0 / resolution) + 1  # the last bin holds cosine 1.0 exactly
    impostor = np.zeros(bins, dtype=np.int64)
    genuine = np.zeros(bins, dtype=np.int64)
    n = len(e)
    for a in range(0, n - 1, chunk):
        b = min(a + chunk, n)
        sims = e[a:b] @ e[a:].T  # rows a..b-1 against columns a..n-1
        rows = np.arange(a, b)[:, None]
        cols = np.arange(a, n)[None, :]
        upper = cols > rows  # each unordered pair once, no self-pairs
        same = y[a:b, None] == y[None, a:]
        idx = _bin_of(sims, resolution, bins)
        impostor += np.bincount(idx[upper & ~same], minlength=bins)
        genuine += np.bincount(idx[upper & same], minlength=bins)
    return PairCounts(resolution, impostor, genuine)


def prototype_counts(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    enrol: int,
    *,
    resolution: float = RESOLUTION,
    chunk: int = 256,
) -> PairCounts:
    """Histograms of probe-photo vs prototype cosines, the way the gallery decides.

    Every person with more than `enrol` photos is enrolled from their first
    `enrol` photos (in the given order) by the gallery's own prototype rule
    (`facerec.decisions.prototypes`). Impostor comparisons: each prototype against every
    photo of everyone else (enrolled or not). Genuine: each prototype against
    its own person's photos that were not enrolled.
    """
    if enrol < 1:
        raise ValueError(f"enrol at least one photo, got {enrol}")
    e = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if e.ndim != 2 or len(e) != len(y):
        raise ValueError("need (N, D) embeddings and N labels")
    enrolled = np.zeros(len(e), dtype=bool)
    protos, owners = [], []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        if len(rows) > enrol:
            chosen = rows[:enrol]
            enrolled[chosen] = True
            protos.append(normalised_mean(e[chosen]))
            owners.append(label)
    if not protos:
        raise ValueError(f"no person has more than {enrol} photos")
    p = np.stack(protos)
    # A prototype against the photos it was made of is no genuine comparison (a view, not a copy).
    made_of = np.broadcast_to(enrolled, (len(p), len(e)))
    return cross_counts(
        p, np.asarray(owners), e, y, same_photo=made_of, resolution=resolution, chunk=chunk
    )


def cross_counts(
    probes: npt.ArrayLike,
    probe_labels: npt.ArrayLike,
    gallery: npt.ArrayLike,
    gallery_labels: npt.ArrayLike,
    *,
    same_photo: npt.ArrayLike | None = None,
    resolution: float = RESOLUTION,
    chunk: int = 256,
) -> PairCounts:
    """Histograms of every probe against every gallery photo, when probes and gallery are
    different sets (a degraded probe against clean enrolment photos).

    Impostor: the labels differ; genuine: they agree, except where
    `same_photo[i, j]` is true (probe i is a copy of gallery photo j: not a
    comparison of two photos of a person).
    """
    p = np.asarray(probes, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    yp, yg = np.asarray(probe_labels), np.asarray(gallery_labels)
    if p.ndim != 2 or g.ndim != 2 or len(p) != len(yp) or len(g) != len(yg):
        raise ValueError("need (N, D) probes, (M, D) gallery and their labels")
    skip = (
        np.zeros((len(p), len(g)), dtype=bool)
        if same_photo is None
        else np.asarray(same_photo, dtype=bool)
    )
    bins = round(2.0 / resolution) + 1
    impostor = np.zeros(bins, dtype=np.int64)
    genuine = np.zeros(bins, dtype=np.int64)
    for a in range(0, len(p), chunk):
        sims = p[a : a + chunk] @ g.T
        same = yp[a : a + chunk, None] == yg[None, :]
        idx = _bin_of(sims, resolution, bins)
        impostor += np.bincount(idx[~same], minlength=bins)
        genuine += np.bincount(idx[same & ~skip[a : a + chunk]], minlength=bins)
    return PairCounts(resolution, impostor, genuine)


def person_fold(name: str, folds: int = PEOPLE_FOLDS) -> int:
    """A person's fold, from the name alone: every model and every run splits people alike."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % folds


Counter = Callable[[npt.NDArray[np.float64], npt.NDArray[np.int64]], PairCounts]


def within_folds(
    embeddings: npt.ArrayLike, labels: npt.ArrayLike, folds: npt.ArrayLike, counter: Counter
) -> list[PairCounts]:
    """`counter` (e.g. `pair_counts`) run on each fold's photos alone, fold 0 first.

    `folds` gives each photo its person's fold, so no pair crosses folds and
    each fold's counts are a set of strangers of their own.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    f = np.asarray(folds)
    return [counter(e[f == k], y[f == k]) for k in np.unique(f)]


def merged(counts: Sequence[PairCounts]) -> PairCounts:
    """The histograms of several disjoint sets of pairs added up."""
    if not counts or len({c.resolution for c in counts}) != 1:
        raise ValueError("need one or more counts on the same grid")
    return PairCounts(
        counts[0].resolution,
        np.sum([c.impostor for c in counts], axis=0),
        np.sum([c.genuine for c in counts], axis=0),
    )


@dataclass(frozen=True, slots=True)
class HeldOut:
    """One fold's FAR at the threshold chosen, by the shipped rule, on the other folds alone."""

    fold: int
    threshold: float
    false_accepts: int
    impostor_pairs: int
    tar: float


def held_out(folds: Sequence[PairCounts], target: float) -> list[HeldOut]:
    """For each fold: the threshold `OperatingCurve.for_far` picks from the other folds'
    counts (folds included), then what it accepts on this fold's strangers.

    The check of a cross-person curve: a shipped threshold promises a FAR to
    people it never saw, and here it is chosen without the people it is
    counted on.
    """
    out = []
    for k, fold in enumerate(folds):
        others = [f for j, f in enumerate(folds) if j != k]
        threshold = shipped_rule(merged(others), others, target).threshold
        point = fold.at(threshold)
        out.append(HeldOut(k, threshold, point.false_accepts, point.impostor_pairs, point.tar))
    return out


def shipped_rule(counts: PairCounts, folds: Sequence[PairCounts], target: float) -> OperatingPoint:
    """The point a curve of `counts` with these `folds` ships for `target`
    (`OperatingCurve.for_far`, so the check and the product share one rule)."""
    provenance = CurveProvenance(
        dataset="counts",
        description="",
        photos=0,
        people=0,
        impostor_pairs=counts.impostor_pairs,
        genuine_pairs=counts.genuine_pairs,
        date="",
        command="",
    )
    curve = counts.curve("counts", "", provenance, ceiling=max(0.1, 2 * target), folds=folds)
    return curve.for_far(target)
