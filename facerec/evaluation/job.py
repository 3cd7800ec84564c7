"""The work of `facerec evaluate` and `facerec calibrate`, on an open `FaceRec`.

Both embed their set through `evaluation.embed` with the on-disk
`EvaluationCache`, so calibrating a set that was just evaluated (or evaluating
it with another protocol) detects nothing again. The commands
(`facerec.evaluation.cli`) declare the options, open the gallery, call
`evaluate` or `calibrate` and print what they return. Importing this module
loads no model library: they load when a function runs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facerec.errors import FacerecError
from facerec.extras import installed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from facerec.api import FaceRec
    from facerec.evaluation.cache import EvaluationCache
    from facerec.evaluation.embed import EmbeddedSet
    from facerec.evaluation.episodes import EpisodeSets
    from facerec.evaluation.pairs import Pair
    from facerec.evaluation.report import VerificationReport
    from facerec.faces.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class EvaluateOptions:
    """`facerec evaluate`'s options besides the model's (see its `--help`).

    `episodes` 0 runs no few-shot episodes; `train_on` None trains the
    learned heads on a seeded half of the set's people; `train_steps` None is
    the heads' default; `cache_dir` None the user cache dir.
    """

    target: Path
    out: Path = Path("evaluation")
    episodes: int = 0
    train_on: Path | None = None
    train_steps: int | None = None
    seed: int = 0
    cache_dir: Path | None = None
    no_cache: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """What `evaluate` measured and wrote.

    `report` is report.json's content (and the command's --json output);
    `heads_text` the few-shot heads' table, None without episodes.
    """

    report: dict[str, object]
    verification: VerificationReport
    embedded: EmbeddedSet
    cache: EvaluationCache | None
    images: int
    heads_text: str | None
    report_path: Path
    roc_path: Path | None  # None: matplotlib is not installed (the 'plot' extra)


def evaluate(fr: FaceRec, o: EvaluateOptions, *, progress: bool = False) -> Evaluation:
    """Verification (k-fold), one-shot identification and episodes on `o.target`; writes `o.out`."""
    from facerec.evaluation.embed import embed_set
    from facerec.evaluation.report import one_shot_identification, plot_roc, verification_report

    pairs, people = pairs_of(o.target, o.seed)
    paths = sorted(
        {p.a for p in pairs}
        | {p.b for p in pairs}
        | {x for ps in (people or {}).values() for x in ps}
    )
    cache = open_cache(o.cache_dir, o.no_cache)
    embedded = embed_set(fr.pipeline, paths, progress=progress, cache=cache)
    vectors = embedded.lookup()
    ver, r = verification_report(pairs, vectors)
    result: dict[str, object] = {
        "target": str(o.target),
        "model": fr.spec.name,
        "images": len(paths),
        "missed_faces": len(embedded.missed),
        "detected": embedded.detected,
        "embedded": embedded.embedded,
        "verification": dataclasses.asdict(ver),
    }
    if people is not None:
        result["identification"] = dataclasses.asdict(
            one_shot_identification(people, vectors, seed=o.seed)
        )
        if o.episodes:
            result["episodes"] = _episodes(people, vectors, o.episodes, o.seed)
    heads_text = None
    if o.episodes:
        sets = _episode_sets(
            o.target,
            pairs,
            people,
            vectors,
            fr.pipeline,
            cache,
            o.train_on,
            o.seed,
            progress=progress,
        )
        heads_text = _compare_heads(sets, o.episodes, o.seed, o.train_steps, result)
    o.out.mkdir(parents=True, exist_ok=True)
    report_path = o.out / "report.json"
    roc_path: Path | None = None
    if installed("matplotlib"):
        roc_path = o.out / "roc.png"
        plot_roc(r, roc_path, f"{o.target.name}: {result['model']}, AUC {ver.auc:.4f}")
    report_path.write_text(json.dumps(result, indent=2))
    return Evaluation(result, ver, embedded, cache, len(paths), heads_text, report_path, roc_path)


def _episodes(
    people: dict[str, list[Path]],
    vectors: dict[Path, npt.NDArray[np.float32]],
    episodes: int,
    seed: int,
) -> list[dict[str, Any]]:
    """5-way 1- and 5-shot episodes over a folder's people, with and without fine-tuning."""
    import numpy as np

    from facerec.evaluation.fewshot import run_episodes

    labels = {n: i for i, n in enumerate(sorted(people))}
    rows = [(vectors[p], labels[n]) for n, ps in people.items() for p in ps]
    emb = np.stack([v for v, _ in rows])
    lab = np.array([y for _, y in rows])
    counts = np.bincount(lab)
    return [
        dataclasses.asdict(
            run_episodes(emb, lab, n_way=5, k_shot=k, episodes=episodes, finetune=ft, seed=seed)
        )
        for k in (1, 5)
        if (counts >= k + 1).sum() >= 5  # 5-way needs 5 people with k + 1 photos
        for ft in (False, True)
    ]


@dataclass(frozen=True, slots=True, eq=False)
class Calibration:
    """The threshold `calibrate` stored, with the TAR it has on the set's pairs."""

    model: str
    threshold: float
    far: float
    tar: float
    pairs: int
    embedded: EmbeddedSet
    cache: EvaluationCache | None


def calibrate(
    fr: FaceRec,
    pairs: list[Pair],
    far: float,
    *,
    cache: EvaluationCache | None,
    progress: bool = False,
) -> Calibration:
    """The threshold at FAR `far` on `pairs` (`pairs_of`), stored in `fr`'s gallery."""
    from facerec.evaluation.embed import embed_set
    from facerec.evaluation.metrics import roc, tar_at_far

    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    embedded = embed_set(fr.pipeline, paths, progress=progress, cache=cache)
    vectors = embedded.lookup()
    scores = [float(vectors[p.a] @ vectors[p.b]) for p in pairs]
    tar, threshold = tar_at_far(roc(scores, [p.same for p in pairs]), far)
    fr.set_threshold(threshold, target_far=far)
    return Calibration(fr.spec.name, threshold, far, tar, len(pairs), embedded, cache)


def open_cache(cache_dir: Path | None, no_cache: bool) -> EvaluationCache | None:
    """The on-disk cache of detections and embeddings, or None to detect and embed everything."""
    from facerec.evaluation.cache import EvaluationCache

    return None if no_cache else EvaluationCache(cache_dir)


def pairs_of(target: Path, seed: int) -> tuple[list[Pair], dict[str, list[Path]] | None]:
    """The pairs of a set, and its people when it is a <person>/<photo> folder (None: a pairs file)."""
    from facerec.evaluation.pairs import folder_identities, folder_pairs, read_lfw_pairs

    if target.is_file():
        return read_lfw_pairs(target), None
    if target.is_dir():
        people = folder_identities(target)
        return folder_pairs(people, folds=min(10, len(people)), seed=seed), people
    raise FacerecError(f"{target}: no such pairs file or folder")


def _folder_of(target: Path) -> Path:
    """The <person>/<photo> folder of a set: itself, or a pairs file's images/ folder."""
    return target.parent / "images" if target.is_file() else target


def _episode_sets(
    target: Path,
    pairs: list[Pair],
    people: dict[str, list[Path]] | None,
    vectors: dict[Path, npt.NDArray[np.float32]],
    pipeline: Pipeline,
    cache: EvaluationCache | None,
    train_on: Path | None,
    seed: int,
    *,
    progress: bool,
) -> EpisodeSets:
    """Who the few-shot heads are evaluated on and who trains them (people never in both).

    A folder set's people are all candidates for evaluation. For a pairs file
    they are the people named in its pairs, with all their photos in images/;
    the other people there (LFW: those outside pairs_dev.txt) only ever train.
    Without `train_on`, a seeded half of the candidates is evaluated and the
    rest train; with it, every candidate is evaluated and `train_on`'s people
    train (a transfer test when it is another set).
    """
    from facerec.evaluation.embed import embed_set
    from facerec.evaluation.episodes import EpisodeSets, labelled, split_people
    from facerec.evaluation.pairs import folder_identities

    def people_of(root: Path) -> tuple[dict[str, list[Path]], dict[Path, npt.NDArray[np.float32]]]:
        found = folder_identities(root)
        paths = sorted(p for ps in found.values() for p in ps)
        return found, embed_set(pipeline, paths, progress=progress, cache=cache).lookup()

    if train_on is not None and not train_on.exists():
        raise FacerecError(f"{train_on}: no such pairs file or folder")
    if people is None:  # a pairs file: its people, every photo of theirs
        pool, pool_vectors = people_of(_folder_of(target))
        named = {p.a.parent.name for p in pairs} | {p.b.parent.name for p in pairs}
        missing = sorted(named - pool.keys())
        if missing:
            raise FacerecError(
                f"{target}: no photos of {len(missing)} people of its pairs, e.g. {missing[0]}"
            )
        candidates, extra = frozenset(named), frozenset(pool.keys() - named)
    else:
        pool, pool_vectors = people, vectors
        candidates, extra = frozenset(people), frozenset()
    what = f"{target.name} people"
    if train_on is None:
        train_names, evaluated = split_people(sorted(candidates), seed)
        ev_emb, ev_lab = labelled(pool, pool_vectors, evaluated)
        tr_emb, tr_lab = labelled(pool, pool_vectors, train_names | extra)
        evaluated_text = f"{len(evaluated):,} {what} (a half drawn with seed {seed})"
        trained_text = f"the other {len(train_names):,}" + (
            f" and {len(extra):,} people outside the pairs" if extra else ""
        )
    else:
        train_root = _folder_of(train_on)
        trainers, train_vectors = people_of(train_root)
        shared = sorted(trainers.keys() & candidates)
        if shared:
            raise FacerecError(
                f"{train_on}: {len(shared)} of its people are evaluated too (e.g. {shared[0]}); "
                "the heads must be trained on other people (omit --train-on to split one set "
                "in halves)"
            )
        ev_emb, ev_lab = labelled(pool, pool_vectors, candidates)
        tr_emb, tr_lab = labelled(trainers, train_vectors)
        evaluated_text = f"all {len(candidates):,} {what}"
        trained_text = f"{len(trainers):,} people of {train_root}"
    return EpisodeSets(ev_emb, ev_lab, tr_emb, tr_lab, evaluated_text, trained_text)


def _compare_heads(
    sets: EpisodeSets,
    episodes: int,
    seed: int,
    train_steps: int | None,
    result: dict[str, object],
) -> str:
    """Run the few-shot head comparison into `result["episode_heads"]`; returns its text.

    A set too small for it (fewer than 5 evaluated people with 2+ photos) is
    said so, not an error: the rest of the evaluation still stands.
    """
    from facerec.cli_common import jsonable
    from facerec.evaluation.episodes import compare_heads
    from facerec.evaluation.fewshot_heads import EpisodicTraining

    try:
        report = compare_heads(
            sets.evaluated,
            sets.evaluated_labels,
            sets.training,
            sets.training_labels,
            episodes=episodes,
            seed=seed,
            train_config=None if train_steps is None else EpisodicTraining(steps=train_steps),
        )
    except ValueError as exc:
        result["episode_heads"] = {"skipped": str(exc)}
        return f"few-shot heads: skipped ({exc})"
    result["episode_heads"] = {
        "evaluated": sets.evaluated_text,
        "trained_on": sets.trained_text,
        **jsonable(report),
    }
    fpir = report.target_fpir
    return "\n".join(
        [
            f"few-shot heads, {report.episodes} episodes per column, mean ± 95% CI "
            f"({report.n_way}-way, up to {report.n_query} queries per person):",
            f"  evaluated on {sets.evaluated_text}; heads trained on {sets.trained_text}",
            f"  open set: + {report.n_unknown} unknown people per episode; DIR at the threshold "
            f"passing {100 * fpir:g}% of unknown queries (per head, pooled over its episodes), "
            "bootstrap interval",
            report.table(),
        ]
    )
