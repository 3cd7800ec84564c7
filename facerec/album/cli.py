"""`facerec album ...` commands: scan, name, not, unfold, report.

Thin wrappers over `facerec.album.api.Album`; the album's modules (and with
them torch) are imported inside the commands so `facerec --help` stays fast.
A photo that cannot be read does not fail a scan: it is recorded with its
reason, counted in the summary and listed in the report, and the exit code
stays 0 (rerunning would not fix it). Anticipated failures (no such cluster,
unknown person, model mismatch) exit 2 with one line on stderr.

Every command that changes a decision (scan, name, not, unfold) ends with a
refresh of all matches and clusters, so `--threshold` and
`--cluster-threshold` are accepted by each of them: pass the same values you
scanned with, or the refresh re-decides with the defaults.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facerec.album.cli_session import ClusterThresholdOpt, album_command
from facerec.album.cli_session import album_session as _album
from facerec.album.cli_session import refresh_line as _refresh_line

# At run time: the commands' signatures name them (`album_command` reads them).
from facerec.album.records import NameResult, NotResult, UnfoldResult
from facerec.cli_common import (
    EXIT_ERROR,
    DbOpt,
    DetectorOpt,
    IndexOpt,
    JsonOpt,
    ModelOpt,
    ThresholdOpt,
    WeightsOpt,
    emit,
    fail,
    make_settings,
    progress,
)
from facerec.config import Settings, database_url
from facerec.gallery.index_kind import IndexKind

if TYPE_CHECKING:
    from facerec.album.api import Album
    from facerec.album.records import ScanSummary

album_app = typer.Typer(
    help="Batch-recognise photo albums: scan, name clusters, report.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@album_app.command()
def scan(
    folder: Annotated[Path, typer.Argument(help="Folder of photos, searched recursively.")],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Decoder threads; 0 decodes inline [default: cores - 1].", min=0
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="Photos per detection batch and commit [default: 8].", min=1
        ),
    ] = None,
    max_side: Annotated[
        int | None,
        typer.Option(
            "--max-side",
            help="Decode larger photos at this many pixels (longer side) and detect faces "
            "at that size; 0 keeps them whole [default: 1600].",
            min=0,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="Photos detected and embedded at once, one model thread each "
            "[default: one per core].",
            min=1,
        ),
    ] = None,
    index: IndexOpt = IndexKind.AUTO,
    thumbnails: Annotated[
        bool,
        typer.Option("--thumbnails/--no-thumbnails", help="Store small face JPEGs for reports."),
    ] = True,
    fold_confident: Annotated[
        bool,
        typer.Option(
            "--fold-confident",
            help="Fold matches above --fold-threshold into the person's album prototype "
            "(undo with `facerec album unfold NAME`).",
        ),
    ] = False,
    fold_threshold: Annotated[
        float | None,
        typer.Option(
            "--fold-threshold", help="[default: match threshold + 0.05].", min=-1.0, max=1.0
        ),
    ] = None,
    cluster_threshold: ClusterThresholdOpt = None,
    threshold: ThresholdOpt = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: Annotated[
        int,
        typer.Option(
            "--min-face-size",
            help="Smallest face looked for, in pixels [default: 24, the quality gate's floor: "
            "smaller faces would be refused for matching anyway].",
            min=1,
        ),
    ] = 24,
    detector: DetectorOpt = None,
    on_ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Decode, detect and embed on Ray (extra 'distributed'): $RAY_ADDRESS, else "
            "a Ray cluster running on this machine, else one started for the scan.",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Scan on this Ray cluster (implies --ray): 'auto' (one running on this "
            "machine), 'local' (a new one for the scan), HOST:PORT or ray://HOST:10001. "
            "The folder must be at the same path on every node.",
        ),
    ] = None,
    ray_cpus: Annotated[
        int | None,
        typer.Option(
            "--ray-cpus", help="With --ray: CPUs (and threads) per worker [default: 1].", min=1
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Scan FOLDER: new and changed photos are detected, embedded, matched and clustered."""
    from facerec.album import scan as scan_mod
    from facerec.runtime import limit_heap_fragmentation

    cluster = None
    on_ray = on_ray or ray_address is not None
    if not on_ray and not folder.expanduser().is_dir():  # before any model loads
        fail(f"{folder}: is not a folder", as_json=as_json, kind="ImageError")
    if ray_cpus is not None and not on_ray:
        fail("--ray-cpus applies to a scan with --ray", as_json=as_json)
    if on_ray:
        if workers is not None or threads is not None:
            fail(
                "--workers and --threads do not apply with --ray (see --ray-cpus)", as_json=as_json
            )
        try:
            from facerec.album.distributed import RayCluster
        except ModuleNotFoundError as exc:
            fail(str(exc), as_json=as_json, kind=type(exc).__name__)
        cluster = RayCluster(address=ray_address, cpus_per_worker=ray_cpus or 1)
    limit_heap_fragmentation()  # this process exists to scan: keep its peak RSS flat
    side = scan_mod.DEFAULT_MAX_SIDE if max_side is None else (max_side or None)
    settings = make_settings(model, weights, threshold, min_face_size, detector, index=index)
    # One size for decoding and detection: the detector would otherwise shrink again.
    settings = dataclasses.replace(
        settings, detector=dataclasses.replace(settings.detector, max_side=side)
    )
    with _album(db, settings, cluster_threshold, fold_threshold, as_json=as_json) as album:
        result = album.scan(
            folder,
            workers=workers,
            batch_size=batch_size or scan_mod.DEFAULT_BATCH_SIZE,
            max_side=side,
            thumbnails=thumbnails,
            threads=threads,
            fold=fold_confident,
            progress=progress(),
            ray=cluster,
        )

        def human(r: ScanSummary) -> None:
            typer.echo(
                f"{r.root}: {r.found} photo(s) found, {r.unchanged} unchanged, "
                f"{r.duplicates} already known, {r.processed} processed ({r.faces} face(s)), "
                f"{r.errors} unreadable, {r.skipped} skipped (not regular files), "
                f"{r.pruned} gone from disk (removed); {r.seconds:.1f} s, "
                f"{r.photos_per_second:.2f} photos/s, "
                f"{r.faces_per_second:.2f} faces/s"
            )
            typer.echo(_refresh_line(r.refresh))
            typer.echo(f"gallery: {database_url(db).display}")

        emit(as_json, result, human)


def _named(r: NameResult, db: str | None) -> None:
    typer.echo(
        f"cluster {r.cluster} is {r.name} in {database_url(db).display}: "
        f"{r.added} sample(s) enrolled, "
        f"{r.skipped} already there, {r.confirmed} face(s) confirmed"
    )
    if r.missing:
        typer.echo(f"  not enrolled (photo gone or changed): faces {list(r.missing)}")
    if r.excluded:
        typer.echo(f"  left out (marked not {r.name}): faces {list(r.excluded)}")
    typer.echo(_refresh_line(r.refresh))


@album_app.command(name="name")
@album_command(_named)
def name_cmd(
    album: Album,
    cluster: Annotated[int, typer.Argument(help="Cluster id (from `facerec album report`).")],
    name: Annotated[str, typer.Argument(help="The person's name (new or already enrolled).")],
) -> NameResult:
    """Enrol unknown-face cluster CLUSTER as NAME, with a prototype from all its faces."""
    return album.name(cluster, name)


def _not_shown(r: NotResult, db: str | None) -> None:
    undone = " (its match was undone)" if r.was_matched else ""
    typer.echo(f"face {r.face} is not {r.name}{undone}")
    typer.echo(_refresh_line(r.refresh))


@album_app.command(name="not")
@album_command(_not_shown)
def not_cmd(
    album: Album,
    face: Annotated[int, typer.Argument(help="Album face id (from `facerec album report`).")],
    name: Annotated[str, typer.Argument(help="The enrolled person this face is not.")],
) -> NotResult:
    """Record that album face FACE is not NAME; matching respects it from now on."""
    return album.not_(face, name)


def _unfolded(r: UnfoldResult, db: str | None) -> None:
    typer.echo(f"{r.unfolded} folded match(es) of {r.name} undone")
    typer.echo(_refresh_line(r.refresh))


@album_app.command()
@album_command(_unfolded)
def unfold(
    album: Album,
    name: Annotated[str, typer.Argument(help="The person whose folded matches to undo.")],
) -> UnfoldResult:
    """Take NAME's folded album matches out of their album prototype."""
    return album.unfold(name)


@album_app.command()
def report(
    html_dir: Annotated[
        Path | None, typer.Option("--html", help="Write a static report into this folder.")
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write one row per face ('-': stdout).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write photos, people, clusters ('-': stdout).")
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Title of the HTML page.")] = "Album",
    copy_photos: Annotated[
        bool,
        typer.Option(
            "--copy-photos",
            help="Copy resized previews of the photos into the HTML report, so the folder "
            "works wherever it is moved (else photos are linked relative to it).",
        ),
    ] = False,
    db: DbOpt = None,
) -> None:
    """Write the album as HTML (people, unknown clusters, photos), CSV and/or JSON."""
    from facerec.album import report as rep

    if html_dir is None and csv_file is None and json_file is None:
        typer.echo("error: give --html DIR, --csv FILE and/or --json FILE", err=True)
        raise typer.Exit(EXIT_ERROR)
    with _album(db, Settings()) as album:
        view = album.view()
        if csv_file is not None:
            rep.write_csv(view, sys.stdout if str(csv_file) == "-" else csv_file)
        if json_file is not None:
            rep.write_json(view, sys.stdout if str(json_file) == "-" else json_file)
        if html_dir is not None:
            page = rep.write_html(view, album.store, html_dir, title=title, copy_photos=copy_photos)
            typer.echo(f"report: {page}", err=True)


from facerec.album.correction_cli import register  # noqa: E402  (rename, merge, ..., undo)

register(album_app)
