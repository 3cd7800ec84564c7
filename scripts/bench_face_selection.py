"""Which face a photo is about: the old rule ("any second usable face is an error") vs `select_subject`.

    python scripts/bench_face_selection.py                 # every photo of LFW pairs_dev.txt
    python scripts/bench_face_selection.py --limit 300     # the photos of 150 matched + 150 mismatched pairs

Each photo goes through the pipeline once; both rules then choose from the same faces:

- old: the single face that passes the quality gate; none -> refused (no face / quality),
  two or more -> refused (MultipleFacesError);
- new: `facerec.faces.pipeline.select_subject` (the dominant face in frame, see its docstring).

Printed: refusals by reason for each rule, how often the chosen face is not the centred one
(LFW crops are centred on their subject, so an off-centre choice is a bystander), and the
pair outcomes each rule leads to at the verification threshold (enrol photo A, verify photo
B, one face each, no enrolment checks): owners and strangers accepted, and pairs refused
before any comparison. The last table is the enrolment check's cost and benefit on the
same pairs: a two-photo enrolment is refused when its photos' similarity is below the
threshold, so same-person pairs measure needless refusals and different-person pairs the
mix-ups it stops. JSON goes to bench-results/face_selection.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.errors import FacerecError, MultipleFacesError, NoFaceError
from facerec.evaluation.pairs import Pair, balanced_head, read_lfw_pairs
from facerec.faces.images import LoadedImage, load_image
from facerec.faces.pipeline import Face, select_subject

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: A chosen face whose centre is further than this (in half image sides) from the image
#: centre is not LFW's subject.
OFF_CENTRE = 0.5


#: Words of the quality gate's reasons, and the short name each is counted under.
REASONS = {
    "too small": "size",
    "detector score": "score",
    "blurry": "blur",
    "sideways": "yaw",
    "up or down": "pitch",
    "head tilted": "roll",
}


def _reasons(text: str) -> str:
    return ", ".join(sorted({name for words, name in REASONS.items() if words in text}))


def old_rule(faces: Sequence[Face]) -> Face | str:
    usable = [f for f in faces if f.quality.ok]
    if not faces:
        return "no face detected"
    if not usable:
        return "quality: " + _reasons(" ".join(r for f in faces for r in f.quality.reasons))
    if len(usable) > 1:
        return "several faces"
    return usable[0]


def new_rule(faces: Sequence[Face], image: LoadedImage) -> Face | str:
    try:
        return select_subject(faces, image).face
    except MultipleFacesError:
        return "several faces"
    except NoFaceError as exc:
        if not faces:
            return "no face detected"
        main = "main face " if "the main face" in str(exc) else ""
        return f"quality: {main}" + _reasons(str(exc))


def off_centre(face: Face, image: LoadedImage) -> bool:
    h, w = image.pixels.shape[:2]
    x1, y1, x2, y2 = face.detection.box
    d = np.hypot((x1 + x2) / 2 - w / 2, (y1 + y2) / 2 - h / 2) / (min(h, w) / 2)
    return bool(d > OFF_CENTRE)


Pick = Face | str  # the chosen face, or why the photo was refused


def pair_outcomes(
    pairs: Sequence[Pair], picks: dict[Path, Pick], threshold: float
) -> dict[str, int]:
    out: collections.Counter[str] = collections.Counter()
    for pr in pairs:
        a, b = picks[pr.a], picks[pr.b]
        out["owners" if pr.same else "strangers"] += 1
        if isinstance(a, str) or isinstance(b, str):
            out["refused"] += 1
        elif float(a.embedding @ b.embedding) >= threshold:
            out["owners_accepted" if pr.same else "strangers_accepted"] += 1
    keys = ("owners", "owners_accepted", "strangers", "strangers_accepted", "refused")
    return {k: out[k] for k in keys}


def enrolment_check(
    pairs: Sequence[Pair], picks: dict[Path, Pick], threshold: float
) -> dict[str, dict[str, int]]:
    out = {k: {"pairs": 0, "refused": 0} for k in ("same person", "two people")}
    for pr in pairs:
        a, b = picks[pr.a], picks[pr.b]
        if isinstance(a, str) or isinstance(b, str):
            continue
        c = out["same person" if pr.same else "two people"]
        c["pairs"] += 1
        c["refused"] += int(float(a.embedding @ b.embedding) < threshold)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw" / "pairs_dev.txt")
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only the first N/2 matched and N/2 mismatched pairs",
    )
    ap.add_argument("--threads", type=int, default=None, help="model threads [facerec default]")
    ap.add_argument("--json", type=Path, default=Path("bench-results/face_selection.json"))
    args = ap.parse_args()

    pairs = balanced_head(read_lfw_pairs(args.pairs), args.limit)
    photos = sorted({p for pr in pairs for p in (pr.a, pr.b)})
    rules = ("old", "new")
    chosen: dict[str, dict[Path, Pick]] = {r: {} for r in rules}
    off: dict[str, list[str]] = {r: [] for r in rules}
    with (
        tempfile.TemporaryDirectory() as tmp,
        FaceRec(Path(tmp) / "g.db", Settings(threads=args.threads)) as fr,
    ):
        threshold = fr.threshold()  # an empty gallery: the override or the model's default
        pipeline = fr.pipeline
        start = time.perf_counter()
        for i, path in enumerate(photos, 1):
            try:
                image = load_image(path)
            except FacerecError:
                chosen["old"][path] = chosen["new"][path] = "unreadable"
                continue
            faces = pipeline.faces(image)
            chosen["old"][path] = old_rule(faces)
            chosen["new"][path] = new_rule(faces, image)
            for rule in rules:
                pick = chosen[rule][path]
                if not isinstance(pick, str) and off_centre(pick, image):
                    off[rule].append(path.name)
            if i % 200 == 0:
                print(
                    f"{i}/{len(photos)} photos, {time.perf_counter() - start:.0f} s",
                    file=sys.stderr,
                )

    report: dict[str, object] = {"photos": len(photos), "pairs": len(pairs), "threshold": threshold}
    print(f"\n{len(photos)} photos of {len(pairs)} pairs, threshold {threshold:.4f}\n")
    print("| rule | photos used | refused | by reason | off-centre choices |")
    print("|---|---|---|---|---|")
    outcomes = {}
    for rule in rules:
        picks = chosen[rule]
        reasons = collections.Counter(v for v in picks.values() if isinstance(v, str))
        refused = sum(reasons.values())
        print(
            f"| {rule} | {len(photos) - refused} | {refused} ({refused / len(photos):.1%}) | "
            + "; ".join(f"{k} {n}" for k, n in reasons.most_common())
            + f" | {len(off[rule])} |"
        )
        outcomes[rule] = pair_outcomes(pairs, picks, threshold)
        report[rule] = {
            "refused": refused,
            "reasons": dict(reasons),
            "off_centre": off[rule],
            "pairs": outcomes[rule],
        }
    print("\n| rule | owners accepted | strangers accepted | pairs refused before comparison |")
    print("|---|---|---|---|")
    for rule in rules:
        o = outcomes[rule]
        print(
            f"| {rule} | {o['owners_accepted']} / {o['owners']} | "
            f"{o['strangers_accepted']} / {o['strangers']} | {o['refused']} |"
        )
    check = enrolment_check(pairs, chosen["new"], threshold)
    report["two_photo_enrolment"] = check
    print("\n| two-photo enrolment (new rule) | pairs | refused by the check |")
    print("|---|---|---|")
    for kind, c in check.items():
        print(
            f"| {kind} | {c['pairs']} | {c['refused']} ({c['refused'] / max(1, c['pairs']):.1%}) |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
