"""`facerec train`'s job (`facerec.training.job.run`) on a tiny LFW-format set: a fold left out
of training and validated on, as `--exclude-pairs F --fold N --val-pairs F` asks."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from facerec.training.job import TrainOptions, run
from facerec.training.trainer import TrainingError

from ..conftest import shared_file

#: Trained on: A, B (in fold 1's pairs) and E, F (in no pair); fold 2's C and D are left out.
PEOPLE = {
    "A": "Abdoulaye_Wade",
    "B": "Abdullah",
    "C": "Abel_Pacheco",
    "D": "Adam_Sandler",
    "E": "Abdullah_Gul",
    "F": "Abid_Hamid_Mahmud_Al-Tikriti",
}
PAIRS = """2 3
{A} 1 2
{A} 1 3
{B} 1 2
{A} 1 {B} 1
{A} 2 {B} 2
{A} 3 {B} 3
{C} 1 2
{C} 1 3
{D} 1 2
{C} 1 {D} 1
{C} 2 {D} 2
{C} 3 {D} 3
"""


@pytest.fixture(scope="module")
def lfw_tiny(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/images/<name>/<name>_000i.jpg (3 photos each) and ROOT/pairs.txt."""
    src = shared_file(shared, "lfw/images")
    root = tmp_path_factory.mktemp("lfw-tiny")
    for name in PEOPLE.values():
        (root / "images" / name).mkdir(parents=True)
        for i in (1, 2, 3):
            photo = f"{name}_{i:04d}.jpg"
            shutil.copyfile(src / name / photo, root / "images" / name / photo)
    (root / "pairs.txt").write_text(PAIRS.format(**PEOPLE))
    return root


def _options(root: Path, tmp_path: Path, **changes: object) -> TrainOptions:
    pairs = root / "pairs.txt"
    base = TrainOptions(
        data_dir=root / "images",
        out=tmp_path / "out",
        p=2,
        k=2,
        epochs=1,
        steps_per_epoch=1,
        train_last=0,
        exclude_pairs=pairs,
        fold=2,
        val_pairs=pairs,
        cache=tmp_path / "cache",
        seed=1,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_left_out_fold_is_not_trained_on_and_is_validated_on(
    lfw_tiny: Path, tmp_path: Path
) -> None:
    report = run(_options(lfw_tiny, tmp_path))
    assert report["data"]["excluded_identities"] == 2  # C and D, fold 2's people
    assert report["data"]["identities"] == 4 and report["data"]["chips"] == 12
    result = report["result"]
    assert result.steps == 1
    # --val-fold defaults to --fold when the files are the same: fold 2's 6 pairs
    assert result.initial_validation.pairs == 6 and result.history[0].validation.pairs == 6


def test_a_fold_the_file_lacks_is_refused(lfw_tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"has folds 1\.\.2, not 3"):
        run(_options(lfw_tiny, tmp_path, val_fold=3))


def test_exclude_pairs_needs_a_fold(lfw_tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="go together"):
        run(_options(lfw_tiny, tmp_path, fold=None))
