"""What every `facerec album` command shares: the session wrapper, the refresh line, an option.

Its own module so the command modules (`cli.py`, `correction_cli.py`) both
import it and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from facerec.cli_common import fail, session
from facerec.config import Settings

if TYPE_CHECKING:
    from facerec.album.api import Album
    from facerec.album.records import RefreshResult

ClusterThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--cluster-threshold",
        help="Cosine at which unknown faces are grouped [default: match threshold + 0.02].",
        min=-1.0,
        max=1.0,
    ),
]


@contextmanager
def album_session(
    db: str | None,
    settings: Settings,
    cluster_threshold: float | None = None,
    fold_threshold: float | None = None,
    *,
    as_json: bool = False,
) -> Iterator[Album]:
    """The session wrapper of every album command: errors become one line and exit code 2."""
    from facerec.album.api import Album, AlbumSettings

    with session(db, settings, as_json=as_json) as fr:
        try:
            with Album(fr, AlbumSettings(cluster_threshold, fold_threshold)) as album:
                yield album
        except ValueError as exc:  # e.g. an invalid person name
            fail(str(exc), as_json=as_json, kind=type(exc).__name__)


def refresh_line(r: RefreshResult) -> str:
    return f"{r.matched} face(s) matched, {r.unknown} unknown in {r.clusters} cluster(s)" + (
        f", {r.folded} folded" if r.folded else ""
    )
