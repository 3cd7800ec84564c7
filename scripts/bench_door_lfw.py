"""The door as a user meets it: `FaceRec.enroll` + `FaceRec.verify` with every default, on LFW pairs.

    python scripts/bench_door_lfw.py                      # all 3,000 pairs of pairs_dev.txt
    python scripts/bench_door_lfw.py --limit 200          # a quick look: 100 matched + 100 mismatched
    python scripts/bench_door_lfw.py --model sface        # another registered model, its own defaults

For each pair the first photo is enrolled under a fresh name in an otherwise empty
gallery and the second photo is verified against it, through the public Python API
with default settings (one loaded pipeline shared by every pair; the person is removed
again afterwards, so every enrolment meets an empty gallery). Counted per fold and in
total: owners accepted (matched pairs), strangers accepted (mismatched pairs), and
photos refused before any comparison, by reason and by step (enrol or verify). The
threshold and where it comes from (`FaceRec.info()`) are printed with the table,
since every accept rate depends on it. JSON goes to bench-results/door_lfw.json.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from facerec.api import FaceRec, Settings
from facerec.cli_common import jsonable
from facerec.errors import FacerecError, ImageError, MultipleFacesError, NoFaceError
from facerec.evaluation.pairs import balanced_head, read_lfw_pairs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Words of the refusal messages, and the short reason each is counted under (first match).
REASONS = (
    ("the main face", "main face refused by the quality gate"),
    ("sideways", "yaw"),
    ("up or down", "pitch"),
    ("head tilted", "roll"),
    ("blurry", "blur"),
    ("too small", "face too small"),
    ("detector score", "detector score"),
)


def reason(exc: FacerecError) -> str:
    """A short name for why a photo was refused before any comparison."""
    if isinstance(exc, MultipleFacesError):
        return "several faces of similar size"
    if isinstance(exc, ImageError):
        return "unreadable image"
    if isinstance(exc, NoFaceError):
        text = str(exc)
        if "(" not in text:
            return "no face detected"
        return next((name for words, name in REASONS if words in text), "quality")
    return type(exc).__name__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw" / "pairs_dev.txt")
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only the first N/2 matched and N/2 mismatched pairs",
    )
    ap.add_argument("--model", default=None, help="registered model [facerec default]")
    ap.add_argument("--json", type=Path, default=None, help="[bench-results/door_lfw_MODEL.json]")
    args = ap.parse_args()
    settings = Settings(model=args.model)

    pairs = balanced_head(read_lfw_pairs(args.pairs), args.limit)
    folds = sorted({p.fold for p in pairs})
    counts = {f: collections.Counter[str]() for f in folds}
    refusals: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, FaceRec(Path(tmp) / "door.db", settings) as fr:
        info = fr.info()  # threshold and its source, before the first enrolment pins a model
        for i, pair in enumerate(pairs):
            c = counts[pair.fold]
            kind = "owners" if pair.same else "strangers"
            c[kind] += 1
            name = f"person {i}"
            step = "enrol"
            try:
                fr.enroll(name, [pair.a])
                step = "verify"
                accepted = fr.verify(name, pair.b).accepted
            except FacerecError as exc:
                c["refused"] += 1
                refusals[f"{step}: {reason(exc)}"] += 1
                accepted = None
            finally:
                if fr.has(name):
                    fr.remove(name)
            if accepted:
                c[f"{kind}_accepted"] += 1
            if (i + 1) % 100 == 0:
                print(
                    f"{i + 1}/{len(pairs)} pairs, {time.perf_counter() - start:.0f} s",
                    file=sys.stderr,
                )
    seconds = time.perf_counter() - start
    total = sum(counts.values(), collections.Counter[str]())

    extra = {k: v for k, v in dataclasses.asdict(info).items() if k not in ("gallery", "threshold")}
    print(f"\n{args.pairs.name}: {len(pairs)} pairs, {seconds:.0f} s")
    print(f"threshold {info.threshold:.4f} ({info.model}); info: {json.dumps(jsonable(extra))}\n")
    print("| fold | owners accepted | strangers accepted | refused before comparison |")
    print("|---|---|---|---|")
    rows = [(str(f + 1), counts[f]) for f in folds] + [("all", total)]
    for label, c in rows:
        print(
            f"| {label} | {c['owners_accepted']} / {c['owners']} "
            f"({_pct(c['owners_accepted'], c['owners'])}) | {c['strangers_accepted']} / "
            f"{c['strangers']} ({_pct(c['strangers_accepted'], c['strangers'])}) | "
            f"{c['refused']} |"
        )
    print("\n| refused at | reason | pairs |")
    print("|---|---|---|")
    for key, n in refusals.most_common():
        step, why = key.split(": ", 1)
        print(f"| {step} | {why} | {n} |")
    if args.json is None:
        args.json = Path(f"bench-results/door_lfw_{info.model}.json")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "pairs_file": str(args.pairs),
                "pairs": len(pairs),
                "seconds": seconds,
                "info": jsonable(info),
                "folds": {str(f + 1): dict(counts[f]) for f in folds},
                "total": dict(total),
                "refusals": dict(refusals),
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json}")


def _pct(n: int, d: int) -> str:
    return f"{n / d:.1%}" if d else "-"


if __name__ == "__main__":
    main()
