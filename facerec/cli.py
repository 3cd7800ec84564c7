"""`facerec` command line: the Python API's verbs, one command each.

Exit codes are part of the interface, because door scripts and cron jobs act
on them: 0 success (verify: accepted), 1 verify rejected, 2 any error, with a
one-line reason on stderr. `--json` prints machine-readable results on stdout
(`facerec.schemas`, the HTTP API's shapes) and, on any error, usage errors
included, `{"error": {...}}` there too.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from facerec import schemas
from facerec.api import Forgotten, ImageIdentification
from facerec.cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    DbOpt,
    DetectorOpt,
    IndexOpt,
    JsonOpt,
    LargestOpt,
    MinFaceOpt,
    ModelOpt,
    ThreadsOpt,
    ThresholdOpt,
    WeightsOpt,
    emit,
    error_envelope,
    make_settings,
    print_json,
    progress,
    session,
)
from facerec.config import Settings
from facerec.decisions.decision import format_rate
from facerec.decisions.operating import DEFAULT_FPIR
from facerec.gallery import Person
from facerec.gallery.index_kind import IndexKind
from facerec.runtime import quiet_waits
from facerec.storage.database import leftover_bytes

#: Commands without the --json flag: `serve` prints a log, `album report --json FILE` writes a file.
WITHOUT_JSON = ("serve", "album report")

app = typer.Typer(
    name="facerec",
    help="Face verification and recognition: enroll people, verify a claim, identify faces. "
    "Exit codes: 0 success (verify: accepted), 1 verify rejected, 2 any error. "
    f"Every command but {' and '.join(WITHOUT_JSON)} takes --json: results as JSON on stdout, "
    'and an error as {"error": {"message": ..., "exit_code": 2, ...}} there too.',
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
    quiet_waits()  # before any command loads torch


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    images: Annotated[list[Path], typer.Argument(help="One or more photos of that person.")],
    largest: LargestOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Enroll even photos that do not match NAME's other photos or match someone else.",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse a new NAME whose photos already match someone enrolled."
        ),
    ] = False,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 20,
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enroll NAME from one face per photo (all photos or none).

    Each photo must match NAME (its enrolled samples, or the other photos given)
    at the verification threshold and match no one else better; otherwise
    nothing is enrolled and the exit code is 2.
    """
    settings = make_settings(
        model, weights, min_face_size=min_face_size, detector=detector, threads=threads
    )
    with session(db, settings, as_json=as_json) as fr:
        result = fr.enroll(
            name, images, largest=largest, force=force, strict=strict, progress=progress()
        )
        for source, n in zip(images, result.ignored_faces, strict=False):
            _note_ignored(str(source), n)
        if result.lookalike is not None:
            typer.echo(
                f"warning: {result.person.name!r} was not enrolled before, but its photos match "
                f"enrolled {result.lookalike.name!r} (similarity "
                f"{result.lookalike.similarity:.4f}); the same person under two names? "
                "(--strict refuses this)",
                err=True,
            )
        emit(
            as_json,
            result,
            lambda r: typer.echo(
                f"enrolled {r.person.name} in {fr.display}: {r.added} sample(s) added, "
                f"{r.skipped} already there, "
                f"{r.person.n_samples} in all"
            ),
            schemas.enrollment_json,
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
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is the face in IMAGE the enrolled NAME? Exit 0 accepted, 1 rejected."""
    settings = make_settings(model, weights, threshold, min_face_size, detector, threads=threads)
    with session(db, settings, as_json=as_json) as fr:
        result = fr.verify(name, image, largest=largest)
        _note_ignored(str(image), result.ignored_faces)
        emit(
            as_json,
            result,
            lambda r: typer.echo(
                f"{'ACCEPTED' if r.accepted else 'REJECTED'} {r.name}: "
                f"similarity {r.similarity:.4f} ({_threshold_note(r.threshold, r.far, r.source)})"
            ),
            schemas.verification_json,
        )
    raise typer.Exit(EXIT_OK if result.accepted else EXIT_REJECTED)


def _threshold_note(threshold: float, far: float | None, source: str) -> str:
    """E.g. `threshold 0.9301, FAR 9.8e-5: operating point FAR<=1e-4 on LFW (...)`: a
    decision that can open a door states the false-accept rate it was set for."""
    rate = f", FAR {format_rate(far)}" if far is not None else ""
    return f"threshold {threshold:.4f}{rate}: {source}"


def _note_ignored(source: str, n: int) -> None:
    if n:
        typer.echo(f"note: {source}: used the main face, {n} other face(s) ignored", err=True)


def _print_identifications(results: list[ImageIdentification]) -> None:
    used = next(
        (f.identification for r in results for f in r.faces if f.identification is not None),
        None,
    )
    if used is not None:
        fpir = f", FPIR {format_rate(used.fpir)}" if used.fpir is not None else ""
        typer.echo(f"{_threshold_note(used.threshold, used.far, used.source)}{fpir}")
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
            best = ident.candidates[0] if ident.candidates else None
            if best is None:
                detail = "gallery is empty"
            elif ident.known:
                detail = f"cos {best.similarity:.4f}, p {best.probability:.2f}"
            else:
                detail = (
                    f"p {ident.p_unknown:.2f}; nearest {best.name} cos {best.similarity:.4f}, "
                    f"p {best.probability:.2f}"
                )
            label = ident.name if ident.known else "unknown"
            typer.echo(f"  [{i}] box {box}: {label} ({detail}; threshold {ident.threshold:.4f})")


@app.command(name="identify")
def identify_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos to identify every face in.")],
    threshold: ThresholdOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Candidates listed per face.", min=1)] = 5,
    fpir: Annotated[
        float,
        typer.Option(
            "--fpir",
            min=1e-9,
            max=0.5,
            help="Target false-positive identification rate (a stranger given a name); the "
            "shipped threshold rises with the number of people (FAR = FPIR / N, never above "
            "the 1:1 door's FAR).",
        ),
    ] = DEFAULT_FPIR,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 20,
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
    index: IndexOpt = IndexKind.AUTO,
    as_json: JsonOpt = False,
) -> None:
    """Name every face in each IMAGE, or call it unknown."""
    settings = dataclasses.replace(
        make_settings(
            model, weights, threshold, min_face_size, detector, threads=threads, index=index
        ),
        top_k=top_k,
        target_fpir=fpir,
    )
    with session(db, settings, as_json=as_json) as fr:
        results = fr.identify_many(images, progress=progress())
        emit(
            as_json, results, _print_identifications, lambda rs: [schemas.image_json(r) for r in rs]
        )
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
    """List enrolled people (tab-separated under a header; --json: a list)."""
    with session(db, Settings(), as_json=as_json) as fr:
        result = fr.people()

        def human(rows: list[Person]) -> None:
            if not rows:
                typer.echo("no one is enrolled")
                return
            typer.echo("name\tsamples\tenrolled (UTC)\tchanged (UTC)")
            for p in rows:
                typer.echo(
                    f"{p.name}\t{p.n_samples}\t{p.created_at:%Y-%m-%d %H:%M}"
                    f"\t{p.updated_at:%Y-%m-%d %H:%M}"
                )

        emit(as_json, result, human, lambda rows: [schemas.person_json(p) for p in rows])


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The person to forget.")],
    keep_album: Annotated[
        bool,
        typer.Option(
            "--keep-album",
            help="Delete only the enrolment and door-camera records: their album faces stay, "
            "as unknown faces (clustered by the next album scan).",
        ),
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forget NAME: samples, prototype, album faces and thumbnails, door-camera events and images.

    Every stored face matched to NAME or reaching the verification threshold
    against their prototype goes, in one transaction; album photos stay
    (without the face, which a rescan does not add back).
    """
    with session(db, Settings(), as_json=as_json) as fr:
        result = fr.remove(name, keep_album=keep_album)

        def human(r: Forgotten) -> None:
            album = (
                "album left as it is"
                if r.album_kept
                else f"{r.album.faces} album face(s) in {r.album.photos} photo(s), "
                f"{r.album.negatives} 'not' record(s)"
            )
            typer.echo(
                f"forgot {r.name} in {fr.display}: {r.samples} sample(s), {album}, "
                f"{r.audit.events} door-camera "
                f"event(s), {r.audit.images} door-camera image(s) of them in other events"
            )
            if not r.compacted:
                typer.echo(f"note: {leftover_bytes(fr.database.dialect)}", err=True)
            if r.audit.unchecked:
                typer.echo(
                    f"warning: {r.audit.unchecked} door-camera image(s) could not be checked "
                    "(no face found, or another model)",
                    err=True,
                )
            if r.album.unchecked:
                typer.echo(
                    f"warning: {r.album.unchecked} album face(s) of another model could not be "
                    "checked; rescan the album and remove again",
                    err=True,
                )

        emit(as_json, result, human, schemas.removal_json)


@app.command()
def info(db: DbOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Gallery, model and threshold in use."""
    with session(db, make_settings(model), as_json=as_json) as fr:
        result = fr.info()

        def human(r: Any) -> None:
            g = r.gallery
            typer.echo(f"gallery:   {g.database}")
            typer.echo(f"index:     {g.index_path or 'in memory (a FAISS cache of the database)'}")
            typer.echo(f"schema:    {g.schema_revision}   revision: {g.revision}")
            typer.echo(f"people:    {g.n_people}   samples: {g.n_samples}")
            typer.echo(f"pinned to: {g.model or 'no model yet'}")
            typer.echo(f"model:     {r.model} ({r.embedding_dim}-d, {r.input_size}px chips)")
            typer.echo(f"threshold: {r.threshold:.4f} (cosine)")
            v, i = r.verification, r.identification
            typer.echo(f"  1:1:     {_threshold_note(v.value, v.far, v.describe())}")
            fpir = f", FPIR {format_rate(i.fpir)}" if i.fpir is not None else ""
            typer.echo(f"  1:N:     {_threshold_note(i.value, i.far, i.describe())}{fpir}")
            if len(r.verification_by_photos) > 1:
                sizes = sorted(r.verification_by_photos)
                by = ", ".join(
                    f"{k}{'+' if k == sizes[-1] else ''}: {r.verification_by_photos[k].value:.4f}"
                    for k in sizes
                )
                typer.echo(f"  1:1 by photos enrolled (a prototype of more needs more): {by}")
            op = r.operating_points
            if op is None:
                typer.echo("operating points: none measured for these weights")
            else:
                typer.echo(
                    f"operating points: {op.dataset}, {op.description}; {op.impostor_pairs:,} "
                    f"impostor / {op.genuine_pairs:,} genuine pairs; {op.date}; {op.command}"
                )
            typer.echo(f"licence:   {r.licence}")
            typer.echo(f"origin:    {r.origin}")
            if r.non_commercial:
                typer.echo("WARNING:   these weights are for non-commercial research use only")

        emit(as_json, result, human)


@app.command()
def reembed(
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every sample with the chosen model from its stored aligned crop."""
    with session(db, make_settings(model, weights, threads=threads), as_json=as_json) as fr:
        n = fr.reembed(progress=progress())
        ident = fr.check_model()  # the model the gallery is now pinned to
        emit(
            as_json,
            {"samples": n, "model": ident.name, "weights_sha256": ident.weights_sha256},
            lambda r: typer.echo(f"re-embedded {n} sample(s) in {fr.display} with {ident}"),
        )


#: Click's error base class. Typer 0.26+ vendors click in a private module, so it is
#: reached through the public `typer.BadParameter`, which derives from it in every version.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def main() -> None:
    """Console entry point: an unanticipated crash still exits 2, never 1 ("rejected").

    Click runs without its own error handling here so that a usage error (a
    missing argument, `--workers -1`) of a command run with --json is answered
    with JSON on stdout, as every other error of that command is.
    """
    try:
        rc = app(standalone_mode=False)
    except _ClickException as exc:
        exc.show()  # type: ignore[attr-defined]  # usage and reason on stderr, as click would
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and _takes_json_flag(ctx.command) and "--json" in sys.argv[1:]:
            message = exc.format_message()  # type: ignore[attr-defined]
            print_json(error_envelope(message, "UsageError"))
        sys.exit(EXIT_ERROR)  # click's code for a usage error too
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except SystemExit:
        raise
    except Exception:
        logging.getLogger("facerec").exception("unexpected error")
        sys.exit(EXIT_ERROR)
    sys.exit(rc if isinstance(rc, int) else EXIT_OK)


def _takes_json_flag(command: object) -> bool:
    """Has `command` the --json flag (not a value option such as `album report --json FILE`)?

    The argument list decides whether it was given, not the parsed options:
    parsing stopped at the error.
    """
    return any(
        getattr(p, "is_flag", False) and "--json" in getattr(p, "opts", ())
        for p in getattr(command, "params", ())
    )


def _register_apps() -> None:
    """The apps on top of the core add their own commands (their heavy imports stay lazy)."""
    from facerec.album.cli import album_app
    from facerec.camera.cli import register as register_camera
    from facerec.door.cli import register as register_door
    from facerec.evaluation.cli import register as register_evaluation
    from facerec.server.cli import register as register_server
    from facerec.training.cli import register as register_training

    app.add_typer(album_app, name="album")
    register_evaluation(app)
    register_camera(app)
    register_door(app)
    register_server(app)
    register_training(app)


_register_apps()
