"""`facerec` command line: the Python API's verbs, one command each.

Exit codes are part of the interface, because door scripts and cron jobs act
on them: 0 success (verify: accepted), 1 verify rejected, 2 any error, with a
one-line reason on stderr. `--json` prints machine-readable results on stdout.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from facerec.api import ImageIdentification
from facerec.cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    DbOpt,
    JsonOpt,
    LargestOpt,
    MinFaceOpt,
    ModelOpt,
    ThresholdOpt,
    WeightsOpt,
    emit,
    make_settings,
    progress,
    session,
)
from facerec.config import Settings

app = typer.Typer(
    name="facerec",
    help="Face verification and recognition: enroll people, verify a claim, identify faces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]", which rich would eat as a tag
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
    with session(db, make_settings(model, weights, min_face_size=min_face_size)) as fr:
        result = fr.enroll(name, images, largest=largest, progress=progress())
        emit(
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
    with session(db, make_settings(model, weights, threshold, min_face_size)) as fr:
        result = fr.verify(name, image, largest=largest)
        emit(
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
        if res.damage is not None:
            typer.echo(f"warning: {res.source}: {res.damage}", err=True)
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
    settings = dataclasses.replace(
        make_settings(model, weights, threshold, min_face_size), top_k=top_k
    )
    with session(db, settings) as fr:
        results = fr.identify_many(images, progress=progress())
        emit(as_json, results, _print_identifications)
        if as_json:
            for res in results:
                if res.error is not None:
                    typer.echo(f"error: {res.source}: {res.error}", err=True)
                elif res.damage is not None:
                    typer.echo(f"warning: {res.source}: {res.damage}", err=True)
    if any(r.error is not None for r in results):
        raise typer.Exit(EXIT_ERROR)


@app.command()
def people(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List enrolled people."""
    with session(db, Settings()) as fr:
        result = fr.people()

        def human(rows: list[Any]) -> None:
            if not rows:
                typer.echo("no one is enrolled")
            for p in rows:
                typer.echo(f"{p.name}\t{p.n_samples} sample(s)")

        emit(as_json, result, human)


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The person to delete.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete NAME with every sample and prototype."""
    with session(db, Settings()) as fr:
        n = fr.remove(name)
        emit(
            as_json,
            {"name": name, "samples_removed": n},
            lambda r: typer.echo(f"removed {name} ({n} sample(s))"),
        )


@app.command()
def info(db: DbOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Gallery, model and threshold in use."""
    with session(db, make_settings(model)) as fr:
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

        emit(as_json, result, human)


@app.command()
def reembed(
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every sample with the chosen model from its stored aligned crop."""
    with session(db, make_settings(model, weights)) as fr:
        n = fr.reembed(progress=progress())
        ident = fr.pipeline.embedder.identity
        emit(
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


def _register_apps() -> None:
    """The apps on top of the core add their own commands (their heavy imports stay lazy)."""
    from facerec.album.cli import album_app
    from facerec.camera.cli import register as register_camera
    from facerec.evaluation.cli import register as register_evaluation
    from facerec.server.cli import register as register_server
    from facerec.training.cli import register as register_training

    app.add_typer(album_app, name="album")
    register_evaluation(app)
    register_camera(app)
    register_server(app)
    register_training(app)


_register_apps()
