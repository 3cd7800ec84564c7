"""Pair protocols: LFW's standard `pairs.txt`, and all-pairs from a folder-per-identity set.

LFW View 2 (Huang et al., 2007) fixes which pairs are compared and splits
them into identity-disjoint folds, so that a threshold is always chosen on
people other than those it is tested on. A folder set has no such file, so we
draw every positive pair and a fixed, seeded sample of negatives, with folds
assigned by identity for the same reason.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from facerec.errors import FacerecError
from facerec.faces.images import IMAGE_SUFFIXES


@dataclass(frozen=True, slots=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int


def read_lfw_pairs(pairs_file: Path, images_dir: Path | None = None) -> list[Pair]:
    """Parse the standard LFW format: a header `folds n`, then per fold n matched
    (`name i j`) and n mismatched (`name1 i name2 j`) lines."""
    images_dir = images_dir or pairs_file.parent / "images"
    try:
        lines = [ln.split() for ln in pairs_file.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise FacerecError(f"{pairs_file}: cannot read ({exc.strerror})") from None
    if not lines or len(lines[0]) != 2:
        raise FacerecError(
            f"{pairs_file}: not an LFW pairs file (first line must be 'folds pairs')"
        )
    folds, per = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != folds * 2 * per:
        raise FacerecError(
            f"{pairs_file}: expected {folds * 2 * per} pair lines, found {len(body)}"
        )

    def img(name: str, idx: str) -> Path:
        return images_dir / name / f"{name}_{int(idx):04d}.jpg"

    out = []
    for n, parts in enumerate(body):
        fold = n // (2 * per)
        if len(parts) == 3:
            out.append(Pair(img(parts[0], parts[1]), img(parts[0], parts[2]), True, fold))
        elif len(parts) == 4:
            out.append(Pair(img(parts[0], parts[1]), img(parts[2], parts[3]), False, fold))
        else:
            raise FacerecError(
                f"{pairs_file}: line {n + 2} is neither a matched nor a mismatched pair"
            )
    return out


def balanced_head(pairs: Sequence[Pair], n: int | None) -> list[Pair]:
    """The first n/2 matched and n/2 mismatched pairs, in file order (all of them for None).

    A quick run on the first n lines of an LFW pairs file would see matched
    pairs only (each fold lists its matched pairs first), and no false accepts.
    """
    if n is None:
        return list(pairs)
    same = [p for p in pairs if p.same][: (n + 1) // 2]
    diff = [p for p in pairs if not p.same][: n // 2]
    keep = {id(p) for p in same + diff}
    return [p for p in pairs if id(p) in keep]


def folder_identities(root: Path) -> dict[str, list[Path]]:
    """`root/<person>/<image>` → person → sorted image paths (people with any image)."""
    people = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        imgs = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if imgs:
            people[d.name] = imgs
    if not people:
        raise FacerecError(f"{root}: no <person>/<image> folders found")
    return people


def folder_pairs(
    people: Mapping[str, Sequence[Path]],
    *,
    negatives: int | None = None,
    folds: int = 10,
    seed: int = 0,
) -> list[Pair]:
    """Every positive pair and `negatives` (default: as many as positives) seeded random
    negative pairs; folds assigned by identity (a person's positives all in one fold,
    a negative in the fold of its first person)."""
    rng = random.Random(seed)
    names = sorted(people)
    fold_of = {n: i % folds for i, n in enumerate(rng.sample(names, len(names)))}
    pos = [Pair(a, b, True, fold_of[n]) for n in names for a, b in combinations(people[n], 2)]
    want = len(pos) if negatives is None else negatives
    seen: set[tuple[Path, Path]] = set()
    neg: list[Pair] = []
    max_possible = sum(len(people[a]) * len(people[b]) for a, b in combinations(names, 2))
    want = min(want, max_possible)
    while len(neg) < want:
        n1, n2 = rng.sample(names, 2)
        a, b = rng.choice(people[n1]), rng.choice(people[n2])
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        neg.append(Pair(a, b, False, fold_of[n1]))
    return pos + neg
