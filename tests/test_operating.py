"""Operating points: exact binomial intervals, the curve's threshold choice, FPIR scaling with the
gallery, the resolution order of thresholds, and the package data file."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from facerec.decisions.decision import (
    DecisionThreshold,
    ThresholdSource,
    format_rate,
    identify,
    verify,
)
from facerec.decisions.operating import (
    DOOR_FAR,
    MIN_FALSE_ACCEPTS,
    CurveProvenance,
    FoldCounts,
    OperatingCurve,
    clopper_pearson,
    curve_file,
    curve_for,
    resolve_threshold,
    shipped_curve,
    shipped_sizes,
    size_for,
)
from facerec.errors import ModelError
from facerec.models.registry import DEFAULT_MODEL, available_models

# -- Clopper-Pearson -------------------------------------------------------------------------


def test_clopper_pearson_hand_computed() -> None:
    # k = 0: the lower bound is 0 and the upper solves (1 - p)^n = alpha / 2.
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-12)
    # k = n: mirror image.
    lo, hi = clopper_pearson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10), rel=1e-12)
    # k = 1, n = 2: the lower bound solves 1 - (1 - p)^2 = 0.025, the upper p^2 = 0.025.
    lo, hi = clopper_pearson(1, 2)
    assert lo == pytest.approx(1 - math.sqrt(0.975), rel=1e-12)
    assert hi == pytest.approx(math.sqrt(0.975), rel=1e-12)


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (3, 7), (1, 1000), (7, 78_000), (240, 24_000_000), (5, 5)]
)
def test_clopper_pearson_matches_scipy(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(ci.low, rel=1e-9, abs=1e-300)
    assert hi == pytest.approx(ci.high, rel=1e-9)


@pytest.mark.parametrize(
    ("k", "n"),
    [(1, 24_000_000), (10, 23_866_505), (2_400, 23_866_505), (240_000, 23_866_505),
     (12_000_000, 24_000_000), (23_999_990, 24_000_000), (4_999, 10_000), (37, 12_345)],
)  # fmt: skip
def test_clopper_pearson_matches_scipy_on_gallery_sized_counts(k: int, n: int) -> None:
    """The shipped curves' counts: tens of millions of pairs, from a handful to most accepted."""
    from scipy.special import betaincinv

    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(float(betaincinv(k, n - k + 1, 0.025)), rel=1e-9)
    assert hi == pytest.approx(float(betaincinv(k + 1, n - k, 0.975)), rel=1e-9)


def test_clopper_pearson_refuses_nonsense() -> None:
    for k, n in ((-1, 5), (6, 5), (0, 0)):
        with pytest.raises(ValueError):
            clopper_pearson(k, n)


# -- the curve -------------------------------------------------------------------------------

N_IMPOSTORS, N_GENUINE = 1_000_000, 10_000


def make_curve(
    false_accepts: tuple[int, ...] = (90_000, 5_000, 1_000, 100, 50, 10, 3, 0),
    true_accepts: tuple[int, ...] = (10_000, 9_990, 9_950, 9_800, 9_500, 9_000, 8_000, 7_000),
) -> OperatingCurve:
    """Thresholds 0.9000, 0.9001, ... 0.9007."""
    return OperatingCurve(
        model="test-model",
        weights_sha256="ab" * 32,
        flip=False,
        provenance=CurveProvenance(
            dataset="TESTSET",
            description="synthetic",
            photos=1_000,
            people=100,
            impostor_pairs=N_IMPOSTORS,
            genuine_pairs=N_GENUINE,
            date="2024-01-01",
            command="python make_curve()",
        ),
        first=0.9,
        resolution=1e-4,
        ceiling=0.1,
        false_accepts=false_accepts,
        true_accepts=true_accepts,
    )


# -- cross-person folds ------------------------------------------------------------------------


def with_folds(*folds: tuple[int, ...], pairs: int = 200_000) -> OperatingCurve:
    import dataclasses

    return dataclasses.replace(make_curve(), folds=tuple(FoldCounts(pairs, f) for f in folds))


def test_every_fold_must_vouch_for_the_target() -> None:
    """A fold of strangers the pooled count hides moves the threshold up."""
    # Pooled: 100 of 1e6 at 0.9003 meets 1e-4. With folds of 200,000 pairs each, 1e-4 allows
    # at most the k whose exact upper bound is <= 1e-4 (k = 10: upper 9.2e-5; 11: 9.8e-5).
    even = (18_000, 1_000, 200, 8, 5, 2, 0, 0)
    assert with_folds(even, even).for_far(1e-4).threshold == pytest.approx(0.9003)
    skewed = (18_000, 1_000, 200, 40, 5, 2, 0, 0)  # one fold of strangers at 2e-4
    point = with_folds(even, skewed).for_far(1e-4)
    assert point.threshold == pytest.approx(0.9004)
    assert point.unseen_far_high == pytest.approx(clopper_pearson(5, 200_000)[1])
    assert point.unseen_far_high is not None and point.unseen_far_high <= 1e-4
    # Without folds the pooled rule alone, as before.
    assert make_curve().for_far(1e-4).unseen_far_high is None


def test_max_false_accepts_is_the_largest_count_whose_bound_complies() -> None:
    from facerec.decisions.operating import max_false_accepts

    for n, target in ((200_000, 1e-4), (1_000_000, 1e-5), (4_800_000, 1e-4), (1_000, 1e-4)):
        k = max_false_accepts(n, target)
        if k >= 0:
            assert clopper_pearson(k, n)[1] <= target
        assert clopper_pearson(k + 1, n)[1] > target


def test_folds_raise_the_smallest_vouchable_far(caplog: pytest.LogCaptureFixture) -> None:
    curve = with_folds((0,) * 8, (0,) * 8)
    assert curve.min_far == pytest.approx(clopper_pearson(2, 200_000)[1])
    with caplog.at_level(logging.WARNING):
        assert curve.for_far(1e-6).clamped


def test_a_stray_pair_in_one_fold_does_not_set_a_strict_threshold() -> None:
    """Below what the folds vouch for, a fold may keep FOLD_TOLERANCE false accepts: one
    near-identical photo under two names must not push a 1:N threshold to the top."""
    stray = (18_000, 1_000, 200, 8, 5, 1, 1, 0)
    point = with_folds(stray, stray).for_far(1e-6)
    assert point.clamped and point.threshold == pytest.approx(0.9005)  # pooled 10, the stray kept


@pytest.mark.parametrize("enrolled", [1, 2, 3, 5])
def test_a_smaller_target_never_gets_a_looser_threshold(enrolled: int) -> None:
    curve = curve_for(DEFAULT_MODEL, None, enrolled=enrolled, detector="yunet")
    assert curve is not None and curve.cross_person
    targets = [1e-3, 3e-4, 1e-4, 4e-5, 1e-5, 3e-6, 1e-6, 1e-7]
    thresholds = [curve.for_far(t).threshold for t in targets]
    assert thresholds == sorted(thresholds)


def test_folds_round_trip_and_must_follow_the_grid() -> None:
    curve = with_folds((18_000, 1_000, 200, 8, 5, 2, 0, 0))
    again = OperatingCurve.from_json(json.loads(json.dumps(curve.to_json())))
    assert again.folds == curve.folds and again.cross_person
    assert "unseen people" in again.evidence
    with pytest.raises(ValueError, match="fold"):
        with_folds((5, 1, 0))  # not the grid's length
    with pytest.raises(ValueError, match="fold"):
        with_folds((0, 1, 0, 0, 0, 0, 0, 0))  # rising


def test_held_out_check_counts_on_strangers_the_threshold_never_saw() -> None:
    from facerec.evaluation.far import held_out, pair_counts, person_fold

    rng = np.random.default_rng(0)
    people, per = 300, 4
    centres = rng.normal(size=(people, 32))
    e = np.repeat(centres, per, axis=0) + 0.6 * rng.normal(size=(people * per, 32))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = np.repeat(np.arange(people), per)
    folds = np.array([person_fold(f"person {i}", 3) for i in labels])
    from facerec.evaluation.far import within_folds

    counts = within_folds(e, labels, folds, pair_counts)
    rows = held_out(counts, 1e-3)
    assert [r.fold for r in rows] == [0, 1, 2]
    for r, fold in zip(rows, counts, strict=True):
        assert r.impostor_pairs == fold.impostor_pairs
        assert r.false_accepts == fold.at(r.threshold).false_accepts


def test_for_far_takes_the_smallest_complying_threshold() -> None:
    c = make_curve()
    p = c.for_far(1e-4)  # 100 of 1e6 allowed: row 3 (exactly 100) is the first
    assert p.threshold == 0.9003 and p.false_accepts == 100
    assert p.far == pytest.approx(1e-4) and p.tar == pytest.approx(0.98)
    assert p.far_low < 1e-4 < p.far_high
    assert (p.far_low, p.far_high) == pytest.approx(clopper_pearson(100, N_IMPOSTORS))
    assert p.target_far == 1e-4 and not p.clamped
    assert c.for_far(9.9e-5).threshold == 0.9004  # 99 allowed: 100 no longer complies
    assert c.for_far(0.1).threshold == 0.9  # the ceiling: the first row


def test_for_far_clamps_below_the_measured_range(caplog: pytest.LogCaptureFixture) -> None:
    c = make_curve()
    assert c.min_far == MIN_FALSE_ACCEPTS / N_IMPOSTORS
    with caplog.at_level(logging.WARNING, logger="facerec.decisions.operating"):
        p = c.for_far(1e-7)  # 0.1 expected false accepts: not measurable on 1e6 pairs
    assert p.clamped and p.threshold == 0.9005 and p.false_accepts == 10
    assert "below what TESTSET" in caplog.text
    with pytest.raises(ValueError, match="range"):
        c.for_far(0.2)  # above the ceiling: the table does not hold it


def test_point_at_reads_the_grid_row_at_or_below() -> None:
    c = make_curve()
    assert c.point_at(0.9003).false_accepts == 100  # type: ignore[union-attr]
    assert c.point_at(0.90035).false_accepts == 100  # type: ignore[union-attr]  # rounds down
    assert c.point_at(0.95).false_accepts == 0  # type: ignore[union-attr]
    assert c.point_at(0.8999) is None  # below the table: FAR above the ceiling


def test_fpir_scales_the_threshold_with_the_gallery() -> None:
    c = make_curve()
    # One person: a 1:N answer is never easier to get than the 1:1 door (FAR 1e-4).
    assert c.for_gallery(1, fpir=1e-3).target_far == DOOR_FAR
    assert c.for_gallery(10, fpir=1e-3).target_far == pytest.approx(1e-4)
    p = c.for_gallery(20, fpir=1e-3)  # FAR 5e-5: 50 false accepts allowed
    assert p.target_far == pytest.approx(5e-5) and p.threshold == 0.9004
    assert c.for_gallery(20, fpir=1e-3).threshold > c.for_gallery(10, fpir=1e-3).threshold
    # A gallery so large the FAR it needs is below the measured range: clamped, flagged.
    big = c.for_gallery(1_000_000, fpir=1e-3)
    assert big.clamped and big.threshold == 0.9005
    with pytest.raises(ValueError):
        c.for_gallery(0)


def test_curve_rejects_inconsistent_tables() -> None:
    with pytest.raises(ValueError, match="fall"):
        make_curve(false_accepts=(100, 200, 0), true_accepts=(3, 2, 1))
    with pytest.raises(ValueError, match="last row"):
        make_curve(false_accepts=(100, 50, 1), true_accepts=(3, 2, 1))
    with pytest.raises(ValueError, match="ceiling"):
        make_curve(false_accepts=(500_000, 50, 0), true_accepts=(3, 2, 1))


def test_json_round_trip_and_junk() -> None:
    c = make_curve()
    back = OperatingCurve.from_json(json.loads(json.dumps(c.to_json())))
    assert back.false_accepts == c.false_accepts and back.provenance == c.provenance
    assert back.for_far(1e-4) == c.for_far(1e-4)
    bad = c.to_json()
    bad["false_accepts"] = "many"
    with pytest.raises(ValueError):
        OperatingCurve.from_json(bad)
    del bad["provenance"]
    with pytest.raises(ValueError, match="missing"):
        OperatingCurve.from_json(bad)
    with pytest.raises(ValueError, match="format"):
        OperatingCurve.from_json({**c.to_json(), "format": 99})
    older = c.to_json()
    del older["enrolled"]  # files written before prototype curves: photo pairs
    assert OperatingCurve.from_json(older).enrolled == 1


# -- threshold resolution -------------------------------------------------------------------


def test_resolution_order_and_what_each_reports() -> None:
    c = make_curve()
    args = {"curve": c, "default": 0.5}
    t = resolve_threshold(explicit=0.9003, calibrated=0.8, **args)  # type: ignore[arg-type]
    assert t.source is ThresholdSource.EXPLICIT and t.value == 0.9003
    assert t.far == pytest.approx(1e-4) and "FAR estimated on TESTSET" in t.describe()
    t = resolve_threshold(explicit=None, calibrated=0.9005, **args)  # type: ignore[arg-type]
    assert t.source is ThresholdSource.CALIBRATED and t.far == pytest.approx(1e-5)
    t = resolve_threshold(explicit=None, calibrated=None, **args)  # type: ignore[arg-type]
    assert t.source is ThresholdSource.OPERATING_POINT and t.value == 0.9003
    assert t.target_far == DOOR_FAR
    assert t.describe() == "operating point FAR<=1e-4 on TESTSET (1,000,000 impostor pairs)"
    t = resolve_threshold(explicit=None, calibrated=None, curve=None, default=0.5)
    assert t.source is ThresholdSource.MODEL_DEFAULT and t.far is None
    assert t.describe() == "model default, FAR unknown"
    # A calibrated threshold under the table: its FAR is only known to exceed the ceiling.
    t = resolve_threshold(explicit=None, calibrated=0.7, **args)  # type: ignore[arg-type]
    assert t.far is None and "FAR above 0.1 on TESTSET" in t.describe()


def test_one_to_n_reports_fpir() -> None:
    c = make_curve()
    t = resolve_threshold(explicit=None, calibrated=None, curve=c, default=0.5, gallery_size=20)
    assert t.value == 0.9004 and t.gallery_size == 20
    assert t.fpir == pytest.approx(20 * 50 / N_IMPOSTORS)
    assert "1:N, 20 people" in t.describe()
    t = resolve_threshold(explicit=0.9, calibrated=None, curve=c, default=0.5, gallery_size=20)
    assert t.fpir == 1.0  # 20 x 9% : the union bound saturates


def test_decisions_carry_far_and_source() -> None:
    t = DecisionThreshold(
        0.9,
        ThresholdSource.OPERATING_POINT,
        far=9e-5,
        evidence="LFW (5 impostor pairs)",
        target_far=1e-4,
    )
    v = verify("a", np.array([1.0, 0.0]), np.array([1.0, 0.0]), t)
    assert v.accepted and v.far == 9e-5
    assert v.source == "operating point FAR<=1e-4 on LFW (5 impostor pairs)"
    bare = verify("a", np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.5)
    assert bare.far is None and bare.source == "explicit, FAR unknown"
    ident = identify(["a"], [0.95], DecisionThreshold(0.9, far=1e-4, gallery_size=1, fpir=1e-4))
    assert ident.known and ident.far == 1e-4 and ident.fpir == 1e-4


def test_format_rate() -> None:
    assert [format_rate(x) for x in (1e-4, 2.34e-5, 0.012, 0.0, 1e-3)] == [
        "1e-4",
        "2.3e-5",
        "0.012",
        "0",
        "1e-3",
    ]


# -- the package data ------------------------------------------------------------------------


def test_the_default_model_ships_a_curve() -> None:
    c = shipped_curve(DEFAULT_MODEL)
    assert c is not None, "run: python scripts/bench_far.py --write-package-data"
    assert c.model == DEFAULT_MODEL and c.provenance.dataset == "LFW"
    assert c.provenance.impostor_pairs > 20_000_000  # every pair of all of LFW
    door = c.for_far(DOOR_FAR)
    assert door.far <= DOOR_FAR and not door.clamped
    assert "bench_far.py" in c.provenance.command


def test_a_curve_applies_only_to_its_weights() -> None:
    c = shipped_curve(DEFAULT_MODEL)
    assert c is not None
    assert curve_for(DEFAULT_MODEL, c.weights_sha256) is c
    assert curve_for(DEFAULT_MODEL, None) is c  # the default weights, not loaded yet
    assert curve_for(DEFAULT_MODEL, "0" * 64) is None  # e.g. a fine-tuned checkpoint
    assert curve_for(DEFAULT_MODEL, c.weights_sha256, flip=True) is None  # other embeddings


@pytest.mark.parametrize("model", ["sface", "dlib-resnet-v1", "sface+dlib"])
def test_prototype_curves_raise_the_threshold_with_the_photos_behind_it(model: str) -> None:
    """A mean of k photos sits closer to strangers: the same FAR needs a higher threshold."""
    assert shipped_sizes(model) == (1, 2, 3, 5)
    assert [size_for(model, n) for n in (1, 2, 3, 4, 5, 40)] == [1, 2, 3, 5, 5, 5]
    doors = []
    for n in (1, 2, 3, 5):
        c = curve_for(model, None, enrolled=n)
        assert c is not None and c.enrolled == n and c.model == model
        assert c.impostor_pairs >= 1_000_000  # FAR 1e-4 resolved: >= 100 false accepts
        door = c.for_far(DOOR_FAR)
        assert door.far <= DOOR_FAR and not door.clamped
        doors.append(door.threshold)
        if n > 1:
            assert f"prototypes of {n} photos" in c.evidence
            # What the photo-pair threshold really lets through against such prototypes.
            photo_door = curve_for(model, None).for_far(DOOR_FAR).threshold  # type: ignore[union-attr]
            assert c.point_at(photo_door).far > DOOR_FAR  # type: ignore[union-attr]
    assert doors == sorted(doors) and doors[-1] > doors[0]
    assert curve_for(model, None, enrolled=4) is curve_for(model, None, enrolled=5)


def test_models_without_a_curve_and_bad_names() -> None:
    unmeasured = [m for m in available_models() if shipped_curve(m) is None]
    for m in unmeasured:
        assert curve_for(m, None) is None
    with pytest.raises(ModelError):
        curve_file("../etc/passwd")


def test_operating_points_ship_in_the_wheel() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]
    assert "operating_points/*.json" in data["facerec.models"]
