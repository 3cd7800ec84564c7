from __future__ import annotations

from pathlib import Path

import pytest

from facerec.errors import FacerecError
from facerec.evaluation.pairs import folder_pairs, read_lfw_pairs

from ..conftest import shared_file


def test_reads_the_standard_format(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nCid\t2\t4\nCid\t1\tDee\t1\n")
    pairs = read_lfw_pairs(f)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[0].a == tmp_path / "images" / "Ann" / "Ann_0001.jpg"
    assert pairs[1].b == tmp_path / "images" / "Bob" / "Bob_0003.jpg"


@pytest.mark.parametrize("text", ["", "garbage\n", "1\t1\nAnn\t1\n", "2\t1\nAnn\t1\t2\n"])
def test_rejects_malformed_files(tmp_path: Path, text: str) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text(text)
    with pytest.raises(FacerecError):
        read_lfw_pairs(f)


def test_shared_lfw_pairs(shared: Path) -> None:
    f = shared_file(shared, "lfw/pairs_dev.txt")
    pairs = read_lfw_pairs(f)
    assert len(pairs) == 3000 and sum(p.same for p in pairs) == 1500
    assert all(p.a.exists() and p.b.exists() for p in pairs)
    people_by_fold: dict[int, set[str]] = {}
    for p in pairs:
        people_by_fold.setdefault(p.fold, set()).update({p.a.parent.name, p.b.parent.name})
    folds = list(people_by_fold.values())
    assert all(
        not (a & b) for i, a in enumerate(folds) for b in folds[i + 1 :]
    )  # identity-disjoint


def test_folder_pairs_all_positives_seeded_negatives() -> None:
    people = {
        n: [Path(f"{n}/{i}.jpg") for i in range(k)]
        for n, k in [("a", 3), ("b", 2), ("c", 4), ("d", 1)]
    }
    pairs = folder_pairs(people, folds=2, seed=1)
    pos = [p for p in pairs if p.same]
    assert len(pos) == 3 + 1 + 6
    assert len(pairs) - len(pos) == len(pos)
    assert pairs == folder_pairs(people, folds=2, seed=1)
    assert pairs != folder_pairs(people, folds=2, seed=2)
    for p in pos:  # a person's positives share one fold
        assert {q.fold for q in pos if q.a.parent == p.a.parent} == {p.fold}
    assert all(p.a.parent != p.b.parent for p in pairs if not p.same)
