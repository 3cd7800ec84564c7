"""False-accept rates at strict thresholds, from every pair of LFW, AT&T and Yale.

    python scripts/bench_far.py --model dlib-resnet-v1
    python scripts/bench_far.py --model dlib-resnet-v1 --write-package-data  # + the shipped curve
    python scripts/bench_far.py --model sface --write-package-data            # any registered model
    python scripts/bench_far.py --sets att yale --limit-people 8              # a quick check

Every photo is embedded once with the production pipeline (MTCNN with the
default settings, the face nearest the image centre, the model's 5-point
warp; a photo without a detected face is cut at the set's mean landmarks and
counted, see `facerec.evaluation.embed`), through the evaluation cache, so a
rerun or a second model re-detects nothing. Then *every* different-person pair
of a set is an impostor pair and every same-person pair a genuine pair; their
cosines are counted on a 1e-4 grid (`facerec.evaluation.far`), never stored.

LFW: all 6,922 photos of all 3,554 people in lfw/images, about 24 million
impostor pairs. That includes the people of pairs_dev.txt's five folds: these
figures are *not* from a held-out fold (no threshold is fitted to a fold here;
one threshold per target FAR is read off the whole set).

Per set and target FAR (1e-3, 1e-4, 1e-5): the smallest grid threshold whose
measured FAR <= target, the measured FAR with its exact (Clopper-Pearson) 95%
interval and the counts behind it, and the TAR there; then the same at the
thresholds shipped now (the model's registry default, and the shipped
operating points). `*` marks targets the set cannot resolve (fewer than 10
expected false accepts). JSON goes to bench-results/far_<model>.json.

A door does not compare two photos: it compares a probe photo with the
person's prototype (the normalised mean of their enrolment photos), which is
closer to strangers as well. So a second table per set enrols everyone with
more than k photos from their first k (k = 1, 3, 5) and scores every photo of
everyone else against those prototypes (genuine: their own other photos), at
the same thresholds, and gives the threshold that holds FAR <= 1e-4 there.

Strangers at a door are people the curve never saw. So LFW's people are also
split into three disjoint folds (by a hash of the name) and counted within
each fold; the shipped curves carry those counts, and a threshold is shipped
only where every fold's exact 95% upper bound is within the target
(`facerec.decisions.operating`). The "unseen people" table checks it: for each
fold, the threshold the same rule picks from the *other* two folds, and the
false accepts it lets through on this fold's strangers, pooled over the three.

`--write-package-data` also writes facerec/models/operating_points/<model>.json
(the LFW curve `facerec.decisions.operating` ships), stamped with the weights' SHA-256,
the pair counts, the date and this command.

`--write-docs` rewrites the tables that quote those shipped curves (the models
headline in README.md and docs/models.md, the prototype table in docs/thresholds.md,
the fusion's operating points in docs/accuracy.md, between their `bench_far:*` markers) from the package's files: alone it measures nothing and
takes a second; with `--write-package-data` it renders the curves just written.
Then run `python scripts/write_docs_index.py` for docs/index.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from textwrap import indent

import numpy as np
from docs_markers import replace_between

from facerec.config import Settings
from facerec.decisions.decision import format_rate
from facerec.decisions.operating import (
    DEFAULT_FPIR,
    DOOR_FAR,
    MIN_FALSE_ACCEPTS,
    CurveProvenance,
    OperatingPoint,
    clopper_pearson,
    curve_file,
    curve_for,
)
from facerec.detectors import DEFAULT_DETECTOR, Detector, DetectorKind
from facerec.errors import ModelError
from facerec.evaluation.cache import EvaluationCache
from facerec.evaluation.embed import embed_set
from facerec.evaluation.far import (
    PairCounts,
    held_out,
    pair_counts,
    person_fold,
    prototype_counts,
    shipped_rule,
    within_folds,
)
from facerec.evaluation.pairs import folder_identities
from facerec.faces.embedding import Embedder
from facerec.faces.pipeline import Pipeline
from facerec.models.registry import DEFAULT_MODEL, available_models, load_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SETS = {"lfw": "lfw/images", "att": "att_faces", "yale": "yalefaces"}
NAMES = {"lfw": "LFW", "att": "AT&T", "yale": "Yale"}
TARGETS = (1e-3, 1e-4, 1e-5)
#: 1:N gallery sizes at which the shipped identification threshold is shown.
GALLERY_SIZES = (10, 100, 1000)
#: Enrolment photos per prototype in the prototype table.
ENROL = (1, 2, 3, 5)
#: A set needs this many people to be split into folds of strangers (LFW: 3,550; AT&T: 40).
MIN_PEOPLE_FOR_FOLDS = 500
PACKAGE_DATA = ROOT / "facerec" / "models" / "operating_points"

log = logging.getLogger("bench_far")


def same_photo_under_two_names(people: dict[str, list[Path]]) -> set[Path]:
    """Photos whose exact bytes are filed under more than one name.

    The same photo cannot show two people: LFW has a few such label errors
    (Carlos_Beltran_0001 = Raul_Ibanez_0001, Bart_Hendricks_0001 =
    Ricky_Ray_0001), and each would count as an impostor pair at cosine 1.0
    that no threshold refuses. Every copy is left out.
    """
    owners: dict[str, set[str]] = {}
    files: dict[str, list[Path]] = {}
    for name, paths in people.items():
        for p in paths:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            owners.setdefault(digest, set()).add(name)
            files.setdefault(digest, []).append(p)
    return {p for d, names in owners.items() if len(names) > 1 for p in files[d]}


def production_pipeline(model: str, detector: DetectorKind | None = None) -> Pipeline:
    """What `FaceRec` builds for a session with default settings, this model and detector."""
    s = Settings(model=model)
    if detector is not None:
        s = dataclasses.replace(s, detector=dataclasses.replace(s.detector, kind=detector))
    embedder = Embedder(load_model(model), batch_size=s.batch_size, flip=s.flip)
    return Pipeline(Detector(s.detector), embedder, s.quality)


def point_row(p: OperatingPoint) -> dict[str, object]:
    row = asdict(p)
    row["resolvable"] = p.target_far is None or p.target_far * p.impostor_pairs >= MIN_FALSE_ACCEPTS
    return row


def fmt_point(label: str, p: OperatingPoint) -> str:
    star = (
        "*"
        if p.target_far is not None and p.target_far * p.impostor_pairs < MIN_FALSE_ACCEPTS
        else " "
    )
    ci = f"[{format_rate(p.far_low, 3)}, {format_rate(p.far_high, 3)}]"
    return (
        f"  {label:<24}{star}{p.threshold:>9.4f}{format_rate(p.far):>10} {ci:<22}"
        f"{p.false_accepts:>9,} / {p.impostor_pairs:<12,}{p.tar * 100:>8.2f}%"
    )


def unseen_people(
    name: str,
    folds: list[PairCounts],
    shipped: dict[str, tuple[float, float]],
) -> dict[str, object]:
    """Print and return the cross-person check of one set (see the module docstring).

    `shipped` maps a label to (threshold, the FAR it is stated for).
    """
    print(
        f"  unseen people: {len(folds)} disjoint folds of people, "
        f"{sum(f.impostor_pairs for f in folds):,} within-fold impostor pairs; "
        "threshold chosen on the other folds, FAR counted on the held-out fold"
    )
    print(
        f"  {'stated FAR':<14}{'held-out FAR':>13} {'95% CI':<22}"
        f"{'false accepts / pairs':>24}{'TAR':>9}  {'holds':<6}"
    )
    out: dict[str, object] = {}
    for target in TARGETS:
        rows = held_out(folds, target)
        fa = sum(r.false_accepts for r in rows)
        n = sum(r.impostor_pairs for r in rows)
        lo, hi = clopper_pearson(fa, n)
        tar = float(np.mean([r.tar for r in rows]))
        holds = fa / n <= target
        ci = f"[{format_rate(lo, 3)}, {format_rate(hi, 3)}]"
        print(
            f"  {format_rate(target):<14}{format_rate(fa / n):>13} {ci:<22}"
            f"{fa:>9,} / {n:<12,}{tar * 100:>8.2f}%  {'yes' if holds else 'NO':<6}"
        )
        out[f"{target:.0e}"] = {
            "false_accepts": fa,
            "impostor_pairs": n,
            "far": fa / n,
            "far_low": lo,
            "far_high": hi,
            "tar": tar,
            "holds": holds,
            "folds": [dataclasses.asdict(r) for r in rows],
        }
    at: dict[str, object] = {}
    for label, (threshold, stated) in shipped.items():
        points = [f.at(threshold) for f in folds]
        worst = max(p.far_high for p in points)
        print(
            f"  {label} {threshold:.4f} (stated {format_rate(stated)}): FAR per fold "
            + ", ".join(format_rate(p.far) for p in points)
            + f"; largest upper 95% bound {format_rate(worst, 3)}"
        )
        at[label] = {
            "threshold": threshold,
            "stated_far": stated,
            "far_per_fold": [p.far for p in points],
            "largest_far_high": worst,
        }
    return {"held_out": out, "at_shipped_thresholds": at, "set": name}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, choices=available_models())
    ap.add_argument("--detector", type=DetectorKind, default=None, choices=list(DetectorKind))
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument("--cache-dir", type=Path, default=None, help="evaluation cache directory")
    ap.add_argument("--limit-people", type=int, default=None, help="first N people per set")
    ap.add_argument("--json", type=Path, default=None, help="[bench-results/far_<model>.json]")
    ap.add_argument(
        "--write-package-data",
        action="store_true",
        help="write facerec/models/operating_points/<model>.json from the LFW counts",
    )
    ap.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite the docs' tables from the shipped curves (alone: no measurement)",
    )
    args = ap.parse_args()
    if args.write_docs and not args.write_package_data:
        write_docs()
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.write_package_data and ("lfw" not in args.sets or args.limit_people is not None):
        ap.error("--write-package-data needs the whole of LFW (--sets lfw, no --limit-people)")

    command = shlex.join(["python", "scripts/bench_far.py", *sys.argv[1:]])
    pipeline = production_pipeline(args.model, args.detector)
    identity = pipeline.embedder.identity
    spec = pipeline.embedder.spec
    cache = EvaluationCache(args.cache_dir)
    flip = pipeline.embedder.flip
    try:
        shipped = curve_for(
            identity.name, identity.weights_sha256, flip, detector=pipeline.detector.kind
        )
    except ModelError as exc:  # an outdated file, about to be replaced with --write-package-data
        print(f"shipped curve ignored: {exc}")
        shipped = None
    print(f"{identity}; cache {cache.root}")
    print(
        "FAR = false accepts / impostor pairs (all different-person pairs of the set), "
        "exact 95% CI; TAR over all same-person pairs; * = fewer than "
        f"{MIN_FALSE_ACCEPTS} expected false accepts at that target"
    )
    results: dict[str, object] = {
        "model": identity.name,
        "weights_sha256": identity.weights_sha256,
        "command": command,
        "date": datetime.date.today().isoformat(),
        "sets": {},
    }
    lfw_counts: PairCounts | None = None
    lfw_shape = (0, 0)
    lfw_protos: dict[int, PairCounts] = {}
    lfw_folds: list[PairCounts] = []
    lfw_proto_folds: dict[int, list[PairCounts]] = {}
    for key in args.sets:
        root = args.data / SETS[key]
        if not root.is_dir():
            print(f"{NAMES[key]}: {root} not found, skipped")
            continue
        people = folder_identities(root)
        names = sorted(people)[: args.limit_people]
        mislabelled = same_photo_under_two_names({n: people[n] for n in names})
        if mislabelled:
            print(
                f"{NAMES[key]}: left out {len(mislabelled)} byte-identical photo(s) filed under "
                f"two names (label errors): {', '.join(sorted(p.name for p in mislabelled))}"
            )
        kept = {n: [p for p in people[n] if p not in mislabelled] for n in names}
        names = [n for n in names if kept[n]]
        paths = [p for n in names for p in kept[n]]
        labels = np.array([i for i, n in enumerate(names) for _ in kept[n]])
        t0 = time.perf_counter()
        embedded = embed_set(pipeline, paths, progress=sys.stderr.isatty(), cache=cache)
        t1 = time.perf_counter()
        counts = pair_counts(embedded.embeddings, labels)
        t2 = time.perf_counter()
        print(
            f"\n{NAMES[key]}: {len(paths):,} photos of {len(names):,} people, "
            f"{len(embedded.missed)} without a detected face; {counts.impostor_pairs:,} impostor "
            f"and {counts.genuine_pairs:,} genuine pairs ({embedded.detected} detected, "
            f"{embedded.embedded} embedded in {t1 - t0:.0f} s; pairs counted in {t2 - t1:.1f} s)"
        )
        print(
            f"  {'operating point':<25}{'threshold':>9}{'FAR':>10} {'95% CI':<22}"
            f"{'false accepts / pairs':>24}{'TAR':>9}"
        )
        folds: list[PairCounts] = []
        person_folds = np.array([person_fold(n) for n in names])[labels]
        if len(names) >= MIN_PEOPLE_FOR_FOLDS:
            folds = within_folds(embedded.embeddings, labels, person_folds, pair_counts)
        points = {f"{t:.0e}": counts.for_far(t) for t in TARGETS}
        for label, p in points.items():
            print(fmt_point(f"FAR <= {format_rate(float(label))}", p))
        unseen_points = (
            {f"{t:.0e}": shipped_rule(counts, folds, t) for t in TARGETS} if folds else {}
        )
        for label, p in unseen_points.items():
            print(fmt_point(f"unseen FAR <= {format_rate(float(label))}", p))
        at_shipped = {f"model default {spec.threshold:g}": counts.at(spec.threshold)}
        if shipped is not None:
            door = shipped.for_far(DOOR_FAR)
            at_shipped[f"shipped door {door.threshold:.4f}"] = counts.at(door.threshold)
            for n in GALLERY_SIZES:
                t = shipped.for_gallery(n, DEFAULT_FPIR).threshold
                at_shipped[f"shipped 1:N, N={n}"] = counts.at(t)
        for label, p in at_shipped.items():
            print(fmt_point(label, p))
        thresholds = {
            k: p.threshold for k, p in at_shipped.items() if not k.startswith("shipped 1:N")
        }
        unseen: dict[str, object] = {}
        if folds:
            stated: dict[str, tuple[float, float]] = {}
            if shipped is not None:
                door = shipped.for_far(DOOR_FAR)
                stated["shipped door"] = (door.threshold, DOOR_FAR)
                for n in GALLERY_SIZES:
                    far = min(DOOR_FAR, DEFAULT_FPIR / n)
                    stated[f"shipped 1:N, N={n}"] = (shipped.for_far(far).threshold, far)
            unseen = unseen_people(NAMES[key], folds, stated)
        protos: dict[str, dict[str, object]] = {}
        proto_counts: dict[int, PairCounts] = {}
        proto_folds: dict[int, list[PairCounts]] = {}
        for k in ENROL:
            try:
                pc = prototype_counts(embedded.embeddings, labels, k)
            except ValueError:
                continue
            if folds:
                proto_folds[k] = within_folds(
                    embedded.embeddings,
                    labels,
                    person_folds,
                    lambda e, y, k=k: prototype_counts(e, y, k),  # type: ignore[misc]
                )
            rows = {"FAR <= 1e-4": pc.for_far(1e-4)} | {
                label: pc.at(t) for label, t in thresholds.items()
            }
            if k in proto_folds:
                rows["unseen FAR <= 1e-4"] = shipped_rule(pc, proto_folds[k], 1e-4)
            print(
                f"  probe vs prototype of {k} photo(s): {pc.impostor_pairs:,} impostor and "
                f"{pc.genuine_pairs:,} genuine comparisons"
            )
            for label, p in rows.items():
                print(fmt_point(label, p))
            proto_counts[k] = pc
            protos[str(k)] = {
                "impostor_comparisons": pc.impostor_pairs,
                "genuine_comparisons": pc.genuine_pairs,
                "points": {label: point_row(p) for label, p in rows.items()},
            }
        results["sets"][key] = {  # type: ignore[index]
            "root": str(root),
            "photos": len(paths),
            "people": len(names),
            "missed_faces": len(embedded.missed),
            "impostor_pairs": counts.impostor_pairs,
            "genuine_pairs": counts.genuine_pairs,
            "resolution": counts.resolution,
            "at_target_far": {k: point_row(p) for k, p in points.items()},
            "unseen_people": unseen
            | {"at_target_far": {k: point_row(p) for k, p in unseen_points.items()}},
            "at_shipped_thresholds": {k: point_row(p) for k, p in at_shipped.items()},
            "probe_vs_prototype": protos,
        }
        if key == "lfw":
            lfw_counts, lfw_shape = counts, (len(paths), len(names))
            lfw_protos = proto_counts
            lfw_folds, lfw_proto_folds = folds, proto_folds

    out = args.json or ROOT / "bench-results" / f"far_{identity.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")

    if args.write_package_data:
        assert lfw_counts is not None, "LFW was not found"
        provenance = CurveProvenance(
            dataset="LFW",
            description=(
                f"every pair of all {lfw_shape[0]:,} photos of all {lfw_shape[1]:,} people in "
                "lfw/images (including the people of pairs_dev.txt's folds: not a held-out "
                f"fold); production pipeline with default settings, {pipeline.detector.kind} "
                f"landmarks; also counted within {len(lfw_folds)} disjoint folds of people, "
                "so each threshold holds its FAR's upper 95% bound in every fold"
            ),
            photos=lfw_shape[0],
            people=lfw_shape[1],
            impostor_pairs=lfw_counts.impostor_pairs,
            genuine_pairs=lfw_counts.genuine_pairs,
            date=datetime.date.today().isoformat(),
            command=command,
        )
        detector = str(pipeline.detector.kind)
        curves = [
            lfw_counts.curve(
                identity.name,
                identity.weights_sha256,
                provenance,
                flip=flip,
                detector=detector,
                folds=lfw_folds,
            )
        ]
        for k, pc in sorted(lfw_protos.items()):
            if k == 1:
                continue  # a one-photo prototype is the photo: the pair curve above
            proto_provenance = dataclasses.replace(
                provenance,
                description=(
                    f"LFW people with more than {k} photos, each enrolled from their first {k} "
                    "as a prototype (normalised mean); impostors: every photo of everyone else "
                    "against each prototype; genuine: the person's other photos; production "
                    f"pipeline with default settings, {pipeline.detector.kind} landmarks"
                ),
                impostor_pairs=pc.impostor_pairs,
                genuine_pairs=pc.genuine_pairs,
            )
            curves.append(
                pc.curve(
                    identity.name,
                    identity.weights_sha256,
                    proto_provenance,
                    flip=flip,
                    enrolled=k,
                    detector=detector,
                    folds=lfw_proto_folds.get(k, []),
                )
            )
        for curve in curves:
            path = PACKAGE_DATA / curve_file(identity.name, curve.enrolled, curve.detector)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(curve.to_json(), separators=(",", ":")) + "\n")
            door = curve.for_far(DOOR_FAR)
            print(
                f"wrote {path.relative_to(ROOT)}: {len(curve.false_accepts)} thresholds "
                f"{curve.first:.4f}..{curve.threshold(len(curve.false_accepts) - 1):.4f}; door "
                f"(FAR <= {format_rate(DOOR_FAR)}) {door.threshold:.4f}, measured "
                f"{format_rate(door.far)} (95% CI up to {format_rate(door.far_high, 3)}), "
                f"TAR {door.tar * 100:.2f}%"
            )
    if args.write_docs:
        write_docs()
    return 0


#: The README's models headline: `--model`, its licence in short.
HEADLINE = (
    ("sface", "Apache-2.0"),
    ("dlib-resnet-v1", "public domain"),
    ("sface+dlib", "Apache-2.0 + public domain"),
)
#: The shipped curves' detectors, as the prototype table names them.
DETECTORS = (("mtcnn", "MTCNN"), ("yunet", "YuNet"))
README = ROOT / "README.md"
MODELS_PAGE = ROOT / "docs" / "models.md"
THRESHOLDS_PAGE = ROOT / "docs" / "thresholds.md"
ACCURACY_PAGE = ROOT / "docs" / "accuracy.md"
#: The fusion's operating points beside SFace's, on the curves measured with MTCNN's landmarks.
FUSION_ROWS = ("sface", "sface+dlib")


def _shipped(model: str, detector: str, enrolled: int = 1, far: float = DOOR_FAR) -> OperatingPoint:
    curve = curve_for(model, None, enrolled=enrolled, detector=detector)
    if curve is None:
        raise SystemExit(f"no shipped curve for {model} with {detector} at {enrolled} photo(s)")
    return curve.for_far(far)


def models_table() -> str:
    """The README's headline: each model's door threshold on the default detector's curve."""
    detector = DEFAULT_DETECTOR.value
    first = curve_for(HEADLINE[0][0], None, detector=detector)
    assert first is not None
    prov = first.provenance
    rows = [
        f"Door thresholds from the operating curves the package ships (every pair of "
        f"{prov.dataset}'s {prov.photos:,} photos: {prov.genuine_pairs:,} genuine, "
        f"{prov.impostor_pairs:,} "
        f"impostor pairs; {dict(DETECTORS)[detector]} landmarks, the shipped defaults), written "
        "by `python scripts/bench_far.py --write-docs`:",
        "",
        f"| `--model` | licence | door threshold (FAR {format_rate(DOOR_FAR)}) "
        "| TAR there | false accepts / impostor pairs |",
        "|---|---|---|---|---|",
    ]
    for n, (model, licence) in enumerate(HEADLINE):
        p = _shipped(model, detector)
        name = f"`{model}` (default)" if model == DEFAULT_MODEL else f"`{model}`"
        threshold = f"**{p.threshold:.4f}**" if n == 0 else f"{p.threshold:.4f}"
        rows.append(
            f"| {name} | {licence} | {threshold} | {p.tar:.2%} "
            f"| {p.false_accepts:,} / {p.impostor_pairs:,} |"
        )
    return "\n".join(rows)


def prototypes_table() -> str:
    """docs/thresholds.md: the door threshold for prototypes of 1 to 5+ photos, per curve."""
    rows = [
        "| model | "
        + " | ".join(f"{k} photo{'s' if k > 1 else ''}" for k in ENROL[:-1])
        + f" | {ENROL[-1]}+ photos |",
        "|---" * (len(ENROL) + 1) + "|",
    ]
    for model, _ in HEADLINE:
        for detector, label in DETECTORS:
            cells = [
                f"{p.threshold:.4f} ({p.tar:.2%})"
                for p in (_shipped(model, detector, k) for k in ENROL)
            ]
            name = f"{model} ({label})"
            if model == DEFAULT_MODEL and detector == DEFAULT_DETECTOR.value:
                name, cells[0] = f"**{model} ({label}, the default)**", f"**{cells[0]}**"
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def fusion_table(detector: str = "mtcnn") -> str:
    """docs/accuracy.md: threshold (TAR) at each target FAR, then the door's for prototypes."""
    rows = [
        "| model | "
        + " | ".join(
            f"**FAR {format_rate(t)} (door)**" if t == DOOR_FAR else f"FAR {format_rate(t)}"
            for t in TARGETS
        )
        + " | "
        + " | ".join(f"{k} photos" for k in ENROL[1:-1])
        + f" | {ENROL[-1]}+ photos |",
        "|---" * (1 + len(TARGETS) + len(ENROL) - 1) + "|",
    ]
    for model in FUSION_ROWS:
        points = [_shipped(model, detector, far=t) for t in TARGETS]
        points += [_shipped(model, detector, k) for k in ENROL[1:]]
        rows.append(
            f"| {model} | " + " | ".join(f"{p.threshold:.4f} ({p.tar:.2%})" for p in points) + " |"
        )
    return "\n".join(rows)


def write_docs() -> None:
    """The shipped curves' tables into README.md and docs/thresholds.md, between markers."""
    replace_between(README, "bench_far:models", models_table())
    replace_between(MODELS_PAGE, "bench_far:models", models_table())
    replace_between(ACCURACY_PAGE, "bench_far:fusion", fusion_table())
    # Inside a list item on that page: indented with it.
    replace_between(THRESHOLDS_PAGE, "bench_far:prototypes", indent(prototypes_table(), "  "))
    for page in (README, MODELS_PAGE, THRESHOLDS_PAGE, ACCURACY_PAGE):
        print(f"wrote {page.relative_to(ROOT)}")


if __name__ == "__main__":
    raise SystemExit(main())
