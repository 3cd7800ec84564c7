"""`facerec evaluate` and `facerec calibrate`.

Both embed their set through `evaluation.embed` with the on-disk
`EvaluationCache`, so calibrating a set that was just evaluated (or evaluating
it with another protocol) detects nothing again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facerec.cli_common import (
    DbOpt,
    DetectorOpt,
    JsonOpt,
    MinFaceOpt,
    ModelOpt,
    ThreadsOpt,
    WeightsOpt,
    fail,
    jsonable,
    make_settings,
    print_json,
    progress,
    reported_errors,
    session,
)
from facerec.errors import FacerecError
from facerec.extras import PLOT_HINT, installed, require_torch

if TYPE_CHECKING:  # the heavy modules load only when a command runs
    import numpy as np
    import numpy.typing as npt

    from facerec.evaluation.cache import EvaluationCache
    from facerec.evaluation.embed import EmbeddedSet
    from facerec.evaluation.episodes import EpisodeSets
    from facerec.evaluation.pairs import Pair
    from facerec.pipeline import Pipeline

TargetArg = Annotated[
    Path,
    typer.Argument(
        help="An LFW-style pairs.txt (images in images/ beside it) or a <person>/<photo> folder."
    ),
]

CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Where detections and embeddings of evaluation photos are cached "
        "[default: evaluation/ in the user cache dir].",
    ),
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Detect and embed every photo again; write no cache.")
]
TrainOnOpt = Annotated[
    Path | None,
    typer.Option(
        "--train-on",
        help="People who train the learned few-shot heads of --episodes, none of them evaluated: "
        "an LFW pairs.txt (everyone in its images/ folder) or a <person>/<photo> folder "
        "[default: a seeded half of the evaluated set's people].",
    ),
]


def _cache(cache_dir: Path | None, no_cache: bool) -> EvaluationCache | None:
    from facerec.evaluation.cache import EvaluationCache

    return None if no_cache else EvaluationCache(cache_dir)


def _cache_line(embedded: EmbeddedSet, cache: EvaluationCache | None) -> str:
    n = len(embedded.paths)
    if cache is None:
        return f"{n} photos detected and embedded (no cache)"
    return (
        f"{n} photos: {embedded.detected} detected, {embedded.embedded} embedded, "
        f"the rest from the cache ({cache.root})"
    )


def _pairs(target: Path, seed: int):  # type: ignore[no-untyped-def]
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
        return found, embed_set(pipeline, paths, progress=progress(), cache=cache).lookup()

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
    from facerec.evaluation.episodes import compare_heads
    from facerec.fewshot_heads import EpisodicTraining

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


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        target: TargetArg,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for report.json and roc.png.")
        ] = Path("evaluation"),
        episodes: Annotated[
            int,
            typer.Option(
                "--episodes",
                help="Also compare every few-shot head on N 5-way 1/5-shot episodes, "
                "closed-set and with unknown people (0: none).",
                min=0,
            ),
        ] = 0,
        train_on: TrainOnOpt = None,
        train_steps: Annotated[
            int | None,
            typer.Option(
                "--train-steps",
                help="Adam steps (of 16 episodes each) per learned few-shot head; fewer is "
                "quicker and rougher [default: 300].",
                min=0,
            ),
        ] = None,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        db: DbOpt = None,
        model: ModelOpt = None,
        weights: WeightsOpt = None,
        min_face_size: MinFaceOpt = 20,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        detector: DetectorOpt = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Verification accuracy (k-fold), AUC, EER, TAR@FAR; one-shot identification; episodes."""
        import dataclasses

        import numpy as np

        from facerec.evaluation.embed import embed_set
        from facerec.evaluation.report import one_shot_identification, plot_roc, verification_report

        if episodes:
            with reported_errors(as_json=as_json):
                require_torch("--episodes (the few-shot heads)")
        settings = make_settings(
            model, weights, min_face_size=min_face_size, detector=detector, threads=threads
        )
        with session(db, settings, as_json=as_json) as fr:
            pairs, people = _pairs(target, seed)
            paths = sorted(
                {p.a for p in pairs}
                | {p.b for p in pairs}
                | {x for ps in (people or {}).values() for x in ps}
            )
            cache = _cache(cache_dir, no_cache)
            embedded = embed_set(fr.pipeline, paths, progress=progress(), cache=cache)
            vectors = embedded.lookup()
            ver, r = verification_report(pairs, vectors)
            result: dict[str, object] = {
                "target": str(target),
                "model": fr.spec.name,
                "images": len(paths),
                "missed_faces": len(embedded.missed),
                "detected": embedded.detected,
                "embedded": embedded.embedded,
                "verification": dataclasses.asdict(ver),
            }
            if people is not None:
                result["identification"] = dataclasses.asdict(
                    one_shot_identification(people, vectors, seed=seed)
                )
                if episodes:
                    from facerec.fewshot import run_episodes

                    labels = {n: i for i, n in enumerate(sorted(people))}
                    rows = [(vectors[p], labels[n]) for n, ps in people.items() for p in ps]
                    emb = np.stack([v for v, _ in rows])
                    lab = np.array([y for _, y in rows])
                    counts = np.bincount(lab)
                    result["episodes"] = [
                        dataclasses.asdict(
                            run_episodes(
                                emb,
                                lab,
                                n_way=5,
                                k_shot=k,
                                episodes=episodes,
                                finetune=ft,
                                seed=seed,
                            )
                        )
                        for k in (1, 5)
                        if (counts >= k + 1).sum() >= 5  # 5-way needs 5 people with k + 1 photos
                        for ft in (False, True)
                    ]
            if episodes:
                sets = _episode_sets(
                    target, pairs, people, vectors, fr.pipeline, cache, train_on, seed
                )
                heads_text = _compare_heads(sets, episodes, seed, train_steps, result)
            out.mkdir(parents=True, exist_ok=True)
            written = [out / "report.json"]
            if installed("matplotlib"):
                plot_roc(r, out / "roc.png", f"{target.name}: {result['model']}, AUC {ver.auc:.4f}")
                written.append(out / "roc.png")
            else:
                typer.echo(
                    f"note: roc.png not drawn, matplotlib is not installed: {PLOT_HINT}", err=True
                )
            (out / "report.json").write_text(json.dumps(result, indent=2))
        if as_json:
            print_json(result)
            return
        typer.echo(
            f"{target}: {len(paths)} images, {len(embedded.missed)} without a detected face (fallback crop)"
        )
        typer.echo(_cache_line(embedded, cache))
        typer.echo(
            f"{'pairs':>8}{'accuracy':>18}{'AUC':>9}{'EER':>8}"
            + "".join(f"{'TAR@' + k:>12}" for k in ver.tar_at_far)
        )
        typer.echo(
            f"{ver.pairs:>8}{ver.accuracy * 100:>10.2f} ± {ver.accuracy_std * 100:4.2f}{ver.auc:>9.4f}{ver.eer * 100:>7.2f}%"
            + "".join(f"{v * 100:>11.2f}%" for v in ver.tar_at_far.values())
        )
        typer.echo(f"threshold (mean of {ver.folds} folds): {ver.threshold:.4f}")
        if "identification" in result:
            ident = result["identification"]
            assert isinstance(ident, dict)
            typer.echo(
                f"one-shot identification: {ident['people']} people, {ident['probes']} probes, "
                f"rank-1 {ident['rank1'] * 100:.2f}%, rank-5 {ident['rank5'] * 100:.2f}%, "
                + ", ".join(f"DIR@FAR={k} {v * 100:.2f}%" for k, v in ident["dir_at_far"].items())
            )
        if episodes:
            typer.echo(heads_text)
        typer.echo(f"wrote {' and '.join(str(w) for w in written)}")

    @app.command()
    def calibrate(
        target: TargetArg,
        far: Annotated[
            float, typer.Option("--far", help="Target false accept rate, 0 to 1.", min=0.0, max=1.0)
        ] = 1e-3,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        db: DbOpt = None,
        model: ModelOpt = None,
        weights: WeightsOpt = None,
        min_face_size: MinFaceOpt = 20,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        detector: DetectorOpt = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Choose the threshold for a target FAR on a labelled set; store it in the gallery."""
        from facerec.evaluation.embed import embed_set
        from facerec.evaluation.metrics import roc, tar_at_far

        settings = make_settings(
            model, weights, min_face_size=min_face_size, detector=detector, threads=threads
        )
        with session(db, settings, as_json=as_json) as fr:
            pairs, _ = _pairs(target, seed)
            negatives = sum(not p.same for p in pairs)
            if negatives * far < 1:
                fail(
                    f"{negatives} negative pairs cannot measure FAR {far:g}",
                    as_json=as_json,
                    kind="UsageError",
                )
            paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
            cache = _cache(cache_dir, no_cache)
            embedded = embed_set(fr.pipeline, paths, progress=progress(), cache=cache)
            vectors = embedded.lookup()
            scores = [float(vectors[p.a] @ vectors[p.b]) for p in pairs]
            tar, threshold = tar_at_far(roc(scores, [p.same for p in pairs]), far)
            name = fr.spec.name
            fr.set_threshold(threshold, target_far=far)
            gallery = fr.display
            result = {
                "model": name,
                "threshold": threshold,
                "far": far,
                "tar": tar,
                "pairs": len(pairs),
                "detected": embedded.detected,
                "embedded": embedded.embedded,
            }
        if as_json:
            print_json(result)
        else:
            typer.echo(_cache_line(embedded, cache))
            typer.echo(
                f"{name}: threshold {threshold:.4f} for FAR {far:g} (TAR {tar * 100:.2f}% on {len(pairs)} pairs), stored in {gallery}"
            )
