"""`facerec album` correction commands: rename, merge, move, split, ignore, confirm, undo, log.

Each calls one `Album` method (the web app calls the same ones), which writes
the correction and its log row in one transaction and refreshes the album;
`undo` takes back the last correction of any interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facerec.album.cli_session import ClusterThresholdOpt, album_command
from facerec.album.cli_session import album_session as _album
from facerec.album.cli_session import refresh_line as _refresh_line
from facerec.album.records import CorrectionResult  # at run time: the commands' signatures
from facerec.cli_common import DbOpt, JsonOpt, ThresholdOpt, emit
from facerec.config import Settings

if TYPE_CHECKING:
    from facerec.album.api import Album
    from facerec.album.corrections import Correction


FacesArg = Annotated[
    list[int], typer.Argument(help="Album face ids (from `facerec album report`).")
]


def _show(r: CorrectionResult, db: str | None) -> None:
    typer.echo(f"correction {r.id}: {r.summary}")
    typer.echo(_refresh_line(r.refresh))


correction = album_command(_show)


@correction
def rename(
    album: Album,
    old: Annotated[str, typer.Argument(help="The person's name now.")],
    new: Annotated[str, typer.Argument(help="Their new name.")],
) -> CorrectionResult:
    """Rename a person everywhere (undo: `facerec album undo`)."""
    return album.rename(old, new)


@correction
def merge(
    album: Album,
    source: Annotated[str, typer.Argument(help="The person who goes.")],
    target: Annotated[str, typer.Argument(help="The person who stays, with both's faces.")],
) -> CorrectionResult:
    """Merge SOURCE into TARGET: samples, album faces and 'not' records move; SOURCE goes."""
    return album.merge(source, target)


@correction
def move(
    album: Album,
    name: Annotated[str, typer.Argument(help="The enrolled person these faces are.")],
    faces: FacesArg,
) -> CorrectionResult:
    """Say FACES are NAME (confirmed: kept by every rescan)."""
    return album.move(faces, name)


@correction
def confirm(album: Album, faces: FacesArg) -> CorrectionResult:
    """Accept the automatic matches of FACES (all matched to one person)."""
    return album.confirm(faces)


@correction
def split(album: Album, faces: FacesArg) -> CorrectionResult:
    """Split FACES off their unknown-face cluster; clustering keeps them apart from then on."""
    return album.split(faces)


@correction
def ignore(
    album: Album,
    faces: Annotated[list[int] | None, typer.Argument(help="Album face ids.")] = None,
    cluster: Annotated[
        int | None, typer.Option("--cluster", help="Ignore every face of this cluster.")
    ] = None,
) -> CorrectionResult:
    """Leave FACES (or a whole --cluster) out of matching and clustering."""
    if cluster is not None:
        return album.ignore_cluster(cluster)
    return album.ignore(faces or [])


@correction
def add_face(
    album: Album,
    photo: Annotated[int, typer.Argument(help="Album photo id (from `facerec album report`).")],
    box: Annotated[
        tuple[float, float, float, float],
        typer.Argument(help="X1 Y1 X2 Y2 around the missed face, in the photo's pixels."),
    ],
) -> CorrectionResult:
    """Add a face the scan missed: detected inside BOX, embedded and matched like any other."""
    return album.add_face(photo, box)


def export(
    xmp: Annotated[
        bool, typer.Option("--xmp", help="Write MWG-RS face regions to XMP sidecars.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the sidecars here [default: beside each photo]."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace sidecars that exist (else left alone).")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the album's named faces as XMP sidecars (photo.jpg.xmp); photos are never touched."""
    if not xmp:
        typer.echo("error: give --xmp (the only export format)", err=True)
        raise typer.Exit(2)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    with _album(db, Settings(), as_json=as_json) as album:
        r = album.export_xmp(out, overwrite=overwrite)
    emit(as_json, r, lambda r: typer.echo(
        f"{r.written} sidecar(s) written with {r.regions} face region(s)"
        + (f"; {r.existing} left alone (exist; --overwrite replaces them)" if r.existing else "")
    ))  # fmt: skip


def import_(
    xmp: Annotated[
        bool, typer.Option("--xmp", help="Read MWG-RS face regions from XMP sidecars.")
    ] = False,
    cluster_threshold: ClusterThresholdOpt = None,
    threshold: ThresholdOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Name album faces after the face regions in the sidecars beside their photos."""
    if not xmp:
        typer.echo("error: give --xmp (the only import format)", err=True)
        raise typer.Exit(2)
    with _album(db, Settings(threshold=threshold), cluster_threshold, as_json=as_json) as album:
        r = album.import_xmp()
    emit(as_json, r, lambda r: typer.echo(
        f"{r.regions} region(s): {r.confirmed} face(s) confirmed, {r.enrolled} enrolled under a "
        f"new name, {r.unmatched} over no album face, {r.unreadable} sidecar(s) unreadable"
    ))  # fmt: skip


@correction
def remove_sample(
    album: Album,
    sample: Annotated[
        int, typer.Argument(help="Enrolment sample id (the person's page lists them).")
    ],
) -> CorrectionResult:
    """Remove one enrolment sample of a person (a bad photo); `undo` puts it back."""
    return album.remove_sample(sample)


@correction
def undo(album: Album) -> CorrectionResult:
    """Take back the last correction (from the CLI, the web app or Python)."""
    return album.undo()


def log_cmd(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List the corrections, newest first."""
    with _album(db, Settings(), as_json=as_json) as album:
        rows = album.corrections()

    def human(items: list[Correction]) -> None:
        for c in items:
            state = " (undone)" if c.undone else ""
            typer.echo(f"{c.id}\t{c.created_at:%Y-%m-%d %H:%M}\t{c.summary}{state}")

    emit(as_json, list(rows), human)


def register(album_app: typer.Typer) -> None:
    """Add the correction commands to `facerec album`."""
    for command in (rename, merge, move, confirm, split, ignore, undo):
        album_app.command()(command)
    album_app.command(name="add-face")(add_face)
    album_app.command(name="remove-sample")(remove_sample)
    album_app.command(name="export")(export)
    album_app.command(name="import")(import_)
    album_app.command(name="log")(log_cmd)
