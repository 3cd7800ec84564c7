"""Does the door's stated FAR hold on the faces a door camera sees? FAR, TAR and refusals per
probe condition, on the LFW dev photos.

    OMP_NUM_THREADS=1 python scripts/bench_conditions.py                 # every condition
    python scripts/bench_conditions.py --probes 200 --conditions clean "face 24 px"  # a quick look

Gallery (the enrolment side, clean as at a door): the 3,811 photos of
pairs_dev.txt, each embedded once through the evaluation cache
(`facerec.evaluation.embed`: the default detector and model with default
settings, the face nearest the centre); photos without a detected face are
left out, as an enrolment would refuse them. Each gallery photo stands for a
person enrolled from that one photo, so the threshold is the one the door
uses for such a person: `FaceRec.decision_threshold(enrolled=1)`, the shipped
operating point for FAR `DOOR_FAR` (what `facerec camera --claim` resolves
through `FaceRec.claim`).

Probes: the first `--probes` photos of a seeded permutation of the gallery
photos whose person has another gallery photo (so every probe has genuine
comparisons). Each condition (`facerec.evaluation.conditions`) degrades the
probe photo, and the frame then takes the door's road: the same detector and
model, but with the door's 40-px minimum face (`facerec camera` and `facerec
door`), then `select_subject` with the pipeline's quality gate, as
`facerec.camera.door.DoorCamera` picks the face that votes. A probe the
detector misses or the gate refuses is a refusal: it is compared with no one
and opens nothing.
The yaw condition degrades nothing: its probes are every gallery photo whose
clean landmarks show a head turned more than about 30 degrees (also of people
with one photo, who add impostor comparisons only).

Per condition: impostor comparisons (each probe against every gallery photo
of other people, `facerec.evaluation.far.cross_counts` on the shipped curve's
grid); FAR at the door threshold among the faces the door decided on, with
its exact (Clopper-Pearson) 95% interval, and over every attempt (a refused
face accepts no one); TAR over the genuine comparisons of every probe (a
refused owner is not let in); refusals by reason. A condition *holds* when
the upper 95% bound of the decided faces' FAR is at most 2x the stated FAR,
or when the door refused every probe; where one does not, the door must
refuse those faces (`facerec.faces.quality`) or raise its threshold for them.

Each condition's probe results (the subject's quality measures and
embedding, or why there was none) are cached under the evaluation cache's
`conditions/` folder, keyed by the model, detector, pipeline gate, seed, the
conditions' code and the probe photos: a rerun embeds nothing.
JSON goes to bench-results/conditions.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.decisions.decision import format_rate
from facerec.decisions.operating import DOOR_FAR, clopper_pearson
from facerec.detectors import Detector
from facerec.errors import MultipleFacesError, NoFaceError
from facerec.evaluation import conditions
from facerec.evaluation.cache import EvaluationCache, detector_key, embedding_key
from facerec.evaluation.conditions import CONDITIONS, Condition, probe_rng
from facerec.evaluation.embed import embed_set
from facerec.evaluation.far import cross_counts
from facerec.evaluation.pairs import read_lfw_pairs
from facerec.faces.images import LoadedImage, load_image
from facerec.faces.pipeline import Pipeline, select_subject
from facerec.faces.quality import pose_from_landmarks

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: Bumped when what a cached probe record means changes.
RECORD_VERSION = 1
#: A condition holds when its FAR's upper 95% bound is at most this many times the stated FAR.
SLACK = 2.0
BATCH = 16
#: The minimum face size `facerec camera` and `facerec door` detect with (`--min-face-size`).
DOOR_MIN_FACE = 40
MEASURES = ("face_px", "score", "blur", "roll_deg", "yaw", "pitch")


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ProbeRecords:
    """Per probe: `status` "" (a subject passed the pipeline's gate) or why not, the subject's
    quality measures (NaN without one) and its embedding (zeros without one)."""

    status: list[str]
    measures: npt.NDArray[np.float64]  # (N, len(MEASURES))
    embeddings: npt.NDArray[np.float32]  # (N, D)


def _category(reason: str) -> str:
    """The reason without its measured value: "too blurry (sharpness 3.1 < 10.0)" -> "too blurry"."""
    return reason.split(" (")[0]


def run_probes(
    pipeline: Pipeline,
    paths: list[Path],
    face_px: npt.NDArray[np.float64],
    cond: Condition,
    seed: int,
) -> ProbeRecords:
    """Every probe of one condition through the door's road, up to the decision."""
    dim = pipeline.embedder.spec.embedding_dim
    status: list[str] = []
    measures = np.full((len(paths), len(MEASURES)), np.nan)
    embeddings = np.zeros((len(paths), dim), dtype=np.float32)
    for start in range(0, len(paths), BATCH):
        images = []
        for i in range(start, min(start + BATCH, len(paths))):
            pixels = load_image(paths[i]).pixels
            if cond.degrade is not None:
                pixels = cond.degrade(pixels, float(face_px[i]), probe_rng(seed, i, cond.name))
            images.append(LoadedImage(source=str(paths[i]), pixels=pixels, sha256=""))
        for j, (image, faces) in enumerate(zip(images, pipeline.faces_batch(images), strict=True)):
            i = start + j
            try:
                face = select_subject(faces, image).face
            except MultipleFacesError:
                status.append("several faces of similar size")
                continue
            except NoFaceError:
                if not faces:
                    status.append("no face detected")
                    continue
                main = max(faces, key=lambda f: min(f.detection.width, f.detection.height))
                first = main.quality.reasons[0] if main.quality.reasons else "refused"
                status.append(f"gate: {_category(first)}")
                continue
            status.append("")
            q = face.quality.as_dict()
            measures[i] = [q[m] for m in MEASURES]
            embeddings[i] = face.embedding
        print(f"  {cond.name}: {min(start + BATCH, len(paths))}/{len(paths)}", file=sys.stderr)
    return ProbeRecords(status, measures, embeddings)


def _cache_file(cache: EvaluationCache, key: str, cond: Condition) -> Path:
    name = hashlib.sha256(cond.name.encode()).hexdigest()[:16]
    return cache.root / "conditions" / key / f"{name}.npz"


def cached_probes(
    cache: EvaluationCache,
    key: str,
    pipeline: Pipeline,
    paths: list[Path],
    face_px: npt.NDArray[np.float64],
    cond: Condition,
    seed: int,
) -> tuple[ProbeRecords, bool]:
    """`run_probes`, read from the cache when this exact run was made before; (records, hit)."""
    path = _cache_file(cache, key, cond)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["condition"]) == cond.name and len(z["status"]) == len(paths):
                return ProbeRecords(
                    [str(s) for s in z["status"]], z["measures"], z["embeddings"]
                ), True
    records = run_probes(pipeline, paths, face_px, cond, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
        np.savez(
            f,
            condition=np.array(cond.name),
            status=np.array(records.status, dtype=str),
            measures=records.measures,
            embeddings=records.embeddings,
        )
    os.replace(f.name, path)
    return records, False


def _rate_ci(k: int, n: int) -> dict[str, float | int]:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return {"false_accepts": k, "comparisons": n, "far": k / n if n else 0.0, "low": lo, "high": hi}


def _fmt_far(r: dict[str, float | int]) -> str:
    if not r["comparisons"]:
        return "-"
    return (
        f"{format_rate(float(r['far']))} [{format_rate(float(r['low']))}, "
        f"{format_rate(float(r['high']))}]"
    )


def main() -> int:
    names = [c.name for c in CONDITIONS]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw" / "pairs_dev.txt")
    ap.add_argument("--probes", type=int, default=1000, help="probe photos per condition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conditions", nargs="+", default=names, choices=names, metavar="NAME")
    ap.add_argument("--cache-dir", type=Path, default=None, help="evaluation cache directory")
    ap.add_argument("--json", type=Path, default=ROOT / "bench-results" / "conditions.json")
    args = ap.parse_args()
    command = shlex.join(["python", "scripts/bench_conditions.py", *sys.argv[1:]])
    cache = EvaluationCache(args.cache_dir)
    t0 = time.perf_counter()

    with (
        tempfile.TemporaryDirectory() as tmp,
        FaceRec(Path(tmp) / "door.db", Settings(threads=1)) as fr,
    ):
        threshold = fr.decision_threshold(enrolled=1)
        enrol = fr.pipeline
        # The door's detector looks for faces of DOOR_MIN_FACE px and more; the rest is the same.
        door_detector = dataclasses.replace(
            fr.resolved_settings().detector, min_face_size=DOOR_MIN_FACE
        )
        pipeline = Pipeline(Detector(door_detector, threads=1), enrol.embedder, fr.settings.quality)
        pairs = read_lfw_pairs(args.pairs)
        photos = sorted({p for pair in pairs for p in (pair.a, pair.b)})
        embedded = embed_set(enrol, photos, progress=sys.stderr.isatty(), cache=cache)
        enrol_key = detector_key(enrol.detector.config)
        det_key = detector_key(pipeline.detector.config)
        gallery = [p for p in photos if p not in embedded.missed]
        vec = embedded.lookup()
        g_emb = np.stack([vec[p] for p in gallery])
        g_lab = np.array([p.parent.name for p in gallery])
        owners = Counter(g_lab.tolist())
        eligible = [p for p in gallery if owners[p.parent.name] > 1]
        yaw = {}
        for p in gallery:
            det = cache.detection(enrol_key, hashlib.sha256(p.read_bytes()).hexdigest())
            assert det is not None and det.landmarks is not None
            yaw[p] = pose_from_landmarks(np.asarray(det.landmarks))[1]
        sample = sorted(np.random.default_rng(args.seed).permutation(len(eligible))[: args.probes])
        base = [eligible[i] for i in sample]
        print(
            f"{fr.info().model} with {pipeline.detector.kind}; door threshold "
            f"{threshold.value:.4f} (FAR {format_rate(DOOR_FAR)}, {threshold.source}); gallery "
            f"{len(gallery):,} clean photos of {len(owners):,} people "
            f"({len(embedded.missed)} without a face left out); {len(base)} probes (seed "
            f"{args.seed}) of {len(eligible):,} photos whose person has another"
        )
        run_key = hashlib.sha256(
            json.dumps(
                {
                    "version": RECORD_VERSION,
                    "detector": det_key,
                    "model": embedding_key(
                        pipeline.embedder.identity, pipeline.template, pipeline.embedder.flip
                    ),
                    "gate": repr(pipeline.limits),
                    "seed": args.seed,
                    # What a condition does to a photo: any edit of it is another run.
                    "conditions": hashlib.sha256(
                        Path(conditions.__file__).read_bytes()
                    ).hexdigest(),
                }
            ).encode()
        ).hexdigest()[:16]

        clean_px: dict[Path, float] = {}
        rows = []
        for cond in [c for c in CONDITIONS if c.name in args.conditions or c.name == "clean"]:
            if cond.min_abs_yaw is not None:
                # Every turned photo, also of people with one photo: impostor comparisons
                # only (turned faces are few; the genuine comparisons come from the rest).
                paths = [p for p in gallery if abs(yaw[p]) >= cond.min_abs_yaw]
            else:
                paths = base
            px = np.array([clean_px.get(p, np.nan) for p in paths])
            px[np.isnan(px)] = np.nanmedian(px) if np.isfinite(px).any() else 100.0
            key = hashlib.sha256(
                (run_key + "\n".join(str(p.relative_to(p.parents[1])) for p in paths)).encode()
            ).hexdigest()[:16]
            tc = time.perf_counter()
            records, hit = cached_probes(cache, key, pipeline, paths, px, cond, args.seed)
            if cond.name == "clean":
                clean_px = {p: m[0] for p, m in zip(paths, records.measures, strict=True)}
            if cond.name not in args.conditions:
                continue
            scored = score_probes(paths, records, g_emb, g_lab, gallery, threshold.value)
            rows.append(
                _row(cond, records, scored)
                | {"seconds": round(time.perf_counter() - tc, 1), "cached": hit}
            )
            print(_line(rows[-1]), file=sys.stderr)
    seconds = time.perf_counter() - t0
    _print_table(rows, threshold.value)
    result = {
        "command": command,
        "date": datetime.date.today().isoformat(),
        "model": fr.info().model,
        "detector": str(pipeline.detector.kind),
        "threshold": threshold.value,
        "threshold_source": str(threshold.source),
        "stated_far": DOOR_FAR,
        "slack": SLACK,
        "gallery_photos": len(gallery),
        "gallery_people": len(owners),
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "conditions": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\n{seconds:.0f} s; wrote {args.json}")
    return 0


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Scored:
    """Per probe, at the door threshold: false accepts among its impostor comparisons and true
    accepts among its genuine ones (0 for a probe without a subject), and how many of each."""

    false_accepts: npt.NDArray[np.int64]
    impostors: npt.NDArray[np.int64]
    true_accepts: npt.NDArray[np.int64]
    genuine: npt.NDArray[np.int64]


def score_probes(
    paths: list[Path],
    records: ProbeRecords,
    g_emb: npt.NDArray[np.float32],
    g_lab: npt.NDArray[np.str_],
    gallery: list[Path],
    threshold: float,
) -> Scored:
    """Each probe against every gallery photo (its own photo left out), on the shipped grid."""
    index = {p: j for j, p in enumerate(gallery)}
    n = len(paths)
    fa, imp, ta, gen = (np.zeros(n, dtype=np.int64) for _ in range(4))
    for i, p in enumerate(paths):
        same = np.zeros((1, len(gallery)), dtype=bool)
        same[0, index[p]] = True
        label = np.array([p.parent.name])
        imp[i] = int((g_lab != label[0]).sum())
        gen[i] = int((g_lab == label[0]).sum()) - 1
        if records.status[i]:
            continue
        counts = cross_counts(records.embeddings[i : i + 1], label, g_emb, g_lab, same_photo=same)
        k = counts.bin(threshold)
        fa[i], ta[i] = int(counts.impostor[k:].sum()), int(counts.genuine[k:].sum())
    return Scored(fa, imp, ta, gen)


def _row(cond: Condition, records: ProbeRecords, scored: Scored) -> dict[str, object]:
    """One condition's figures (see the module docstring)."""
    status = records.status
    ok = np.array([s == "" for s in status])
    fa = int(scored.false_accepts[ok].sum())
    ta = int(scored.true_accepts[ok].sum())
    decided = _rate_ci(fa, int(scored.impostors[ok].sum()))
    genuine_all = int(scored.genuine.sum())
    genuine_decided = int(scored.genuine[ok].sum())
    refused = Counter(s for s in status if s)
    verdict = (
        "refused" if not ok.any() else "holds" if decided["high"] <= SLACK * DOOR_FAR else "FAILS"
    )
    return {
        "condition": cond.name,
        "description": cond.description,
        "probes": len(status),
        "decided": int(ok.sum()),
        "refused": int((~ok).sum()),
        "refusals": dict(refused.most_common()),
        "impostor_comparisons": int(scored.impostors.sum()),
        "far_decided": decided,
        "far_attempts": _rate_ci(fa, int(scored.impostors.sum())),
        "genuine_comparisons": genuine_all,
        "true_accepts": ta,
        "tar": ta / genuine_all if genuine_all else 0.0,
        "tar_decided": ta / genuine_decided if genuine_decided else None,
        "verdict": verdict,
    }


def _pct(x: object) -> str:
    return "-" if x is None else f"{float(x):.2%}"


def _line(r: dict[str, object]) -> str:
    return (
        f"{r['condition']}: {r['decided']}/{r['probes']} decided, FAR "
        f"{_fmt_far(r['far_decided'])}, TAR {float(r['tar']):.2%}, {r['verdict']}"
    )


def _print_table(rows: list[dict[str, object]], threshold: float) -> None:
    print(
        f"\nthreshold {threshold:.4f}, stated FAR {format_rate(DOOR_FAR)}; holds = FAR "
        f"upper 95% bound <= {SLACK:g}x stated, or every probe refused\n"
    )
    print(
        "| condition | probes | impostor comparisons | FAR, decided faces [95% CI] | "
        "FAR, all attempts | TAR (decided faces) | refused | refusals by reason | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        refusals = r["refusals"]
        assert isinstance(refusals, dict)
        why = ", ".join(f"{k} {v}" for k, v in refusals.items()) or "-"
        probes = int(r["probes"])
        print(
            f"| {r['condition']} | {probes:,} | {int(r['impostor_comparisons']):,} | "
            f"{_fmt_far(r['far_decided'])} | "
            f"{format_rate(float(r['far_attempts']['far']))} | "
            f"{float(r['tar']):.2%} ({_pct(r['tar_decided'])}) | {int(r['refused'])} ({int(r['refused']) / probes:.1%}) | "
            f"{why} | {r['verdict']} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
