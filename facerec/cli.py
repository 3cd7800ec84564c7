"""`facerec` command line: the Python API's verbs, one command each.

Exit codes are part of the interface, because door scripts and cron jobs act
on them: 0 success (verify: accepted), 1 verify rejected, 2 any error, with a
one-line reason on stderr. `--json` prints machine-readable results on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer

from facerec.api import FaceRec, ImageIdentification
from facerec.config import Settings
from facerec.errors import FacerecError

app = typer.Typer(
    name="facerec",
    help="Face verification and recognition: enroll people, verify a claim, identify faces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Gallery database file [default: $FACEREC_DB or the user data dir]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Embedding model [default: $FACEREC_MODEL or dlib-resnet-v1]."),
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights", help="Weights/checkpoint file for the model [default: $FACEREC_WEIGHTS]."
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option("--threshold", help="Cosine threshold [default: calibrated, else the model's]."),
]
LargestOpt = Annotated[
    bool, typer.Option("--largest", help="Use the largest face when a photo shows several.")
]
MinFaceOpt = Annotated[
    int, typer.Option("--min-face-size", help="Smallest face the detector looks for, in pixels.")
]


def _settings(
    model: str | None = None,
    weights: Path | None = None,
    threshold: float | None = None,
    min_face_size: int = 20,
) -> Settings:
    from facerec.detection import DetectorConfig

    return Settings(
        model=model,
        weights=weights,
        threshold=threshold,
        detector=DetectorConfig(min_face_size=min_face_size),
    )


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def _session(db: Path | None, settings: Settings) -> Iterator[FaceRec]:
    """Open the API, turning anticipated failures into one line on stderr and exit code 2."""
    try:
        with FaceRec(db, settings) as fr:
            yield fr
    except FacerecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_ERROR) from None


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.floating | np.integer):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, bytes | np.ndarray):
        return None
    return obj


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_jsonable(obj), indent=2))


def _progress() -> bool:
    return sys.stderr.isatty()


T = TypeVar("T")


def _emit(as_json: bool, result: T, human: Callable[[T], None]) -> None:
    if as_json:
        _print_json(result)
    else:
        human(result)


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    images: Annotated[list[Path], typer.Argument(help="One or more photos of that person.")],
    largest: LargestOpt = False,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Enroll NAME from one face per photo (all photos or none)."""
    with _session(db, _settings(model, weights, min_face_size=min_face_size)) as fr:
        result = fr.enroll(name, images, largest=largest, progress=_progress())
        _emit(
            as_json,
            result,
            lambda r: typer.echo(
                f"enrolled {r.person.name}: {r.added} sample(s) added, {r.skipped} already there, "
                f"{r.person.n_samples} in all"
            ),
        )


@app.command(name="verify")
def verify_cmd(
    name: Annotated[str, typer.Argument(help="The claimed identity.")],
    image: Annotated[Path, typer.Argument(help="A photo showing one face.")],
    largest: LargestOpt = False,
    threshold: ThresholdOpt = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Is the face in IMAGE the enrolled NAME? Exit 0 accepted, 1 rejected."""
    with _session(db, _settings(model, weights, threshold, min_face_size)) as fr:
        result = fr.verify(name, image, largest=largest)
        _emit(
            as_json,
            result,
            lambda r: typer.echo(
                f"{'ACCEPTED' if r.accepted else 'REJECTED'} {r.name}: "
                f"similarity {r.similarity:.4f} (threshold {r.threshold:.4f})"
            ),
        )
    raise typer.Exit(EXIT_OK if result.accepted else EXIT_REJECTED)


def _print_identifications(results: list[ImageIdentification]) -> None:
    for res in results:
        if res.error is not None:
            typer.echo(f"error: {res.source}: {res.error}", err=True)
            continue
        typer.echo(f"{res.source}: {len(res.faces)} face(s)")
        for i, face in enumerate(res.faces):
            box = ",".join(f"{v:.0f}" for v in face.box)
            ident = face.identification
            if ident is None:
                typer.echo(f"  [{i}] box {box}: refused ({'; '.join(face.quality.reasons)})")
                continue
            label = ident.name if ident.known else "unknown"
            best = ident.candidates[0] if ident.candidates else None
            detail = (
                f"nearest {best.name} cos {best.similarity:.4f} p {best.probability:.3f}"
                if best
                else "gallery is empty"
            )
            typer.echo(f"  [{i}] box {box}: {label} ({detail}; threshold {ident.threshold:.4f})")


@app.command(name="identify")
def identify_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos to identify every face in.")],
    threshold: ThresholdOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Candidates listed per face.")] = 5,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Name every face in each IMAGE, or call it unknown."""
    settings = dataclasses.replace(_settings(model, weights, threshold, min_face_size), top_k=top_k)
    with _session(db, settings) as fr:
        results = fr.identify_many(images, progress=_progress())
        _emit(as_json, results, _print_identifications)
        if as_json:
            for res in results:
                if res.error is not None:
                    typer.echo(f"error: {res.source}: {res.error}", err=True)
    if any(r.error is not None for r in results):
        raise typer.Exit(EXIT_ERROR)


@app.command()
def people(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List enrolled people."""
    with _session(db, Settings()) as fr:
        result = fr.people()

        def human(rows: list[Any]) -> None:
            if not rows:
                typer.echo("no one is enrolled")
            for p in rows:
                typer.echo(f"{p.name}\t{p.n_samples} sample(s)")

        _emit(as_json, result, human)


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The person to delete.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete NAME with every sample and prototype."""
    with _session(db, Settings()) as fr:
        n = fr.remove(name)
        _emit(
            as_json,
            {"name": name, "samples_removed": n},
            lambda r: typer.echo(f"removed {name} ({n} sample(s))"),
        )


@app.command()
def info(db: DbOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Gallery, model and threshold in use."""
    with _session(db, _settings(model)) as fr:
        result = fr.info()

        def human(r: Any) -> None:
            g = r.gallery
            typer.echo(f"gallery:   {g.path}")
            typer.echo(f"index:     {g.index_path}")
            typer.echo(f"schema:    {g.schema_revision}   revision: {g.revision}")
            typer.echo(f"people:    {g.n_people}   samples: {g.n_samples}")
            typer.echo(f"pinned to: {g.model or 'no model yet'}")
            typer.echo(f"model:     {r.model} ({r.embedding_dim}-d, {r.input_size}px chips)")
            typer.echo(f"threshold: {r.threshold:.4f} (cosine)")
            typer.echo(f"licence:   {r.licence}")
            typer.echo(f"origin:    {r.origin}")

        _emit(as_json, result, human)


@app.command()
def reembed(
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every sample with the chosen model from its stored aligned crop."""
    with _session(db, _settings(model, weights)) as fr:
        n = fr.reembed(progress=_progress())
        ident = fr.pipeline.embedder.identity
        _emit(
            as_json,
            {"samples": n, "model": ident.name, "weights_sha256": ident.weights_sha256},
            lambda r: typer.echo(f"re-embedded {n} sample(s) with {ident}"),
        )


def main() -> None:
    """Console entry point: an unanticipated crash still exits 2, never 1 ("rejected")."""
    try:
        app()
    except SystemExit:
        raise
    except Exception:
        logging.getLogger("facerec").exception("unexpected error")
        sys.exit(EXIT_ERROR)
