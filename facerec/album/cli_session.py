"""What every `facerec album` command shares: the session wrapper, the refresh line, the options.

Its own module so the command modules (`cli.py`, `correction_cli.py`) both
import it and neither imports the other.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_type_hints

import typer

from facerec.cli_common import DbOpt, JsonOpt, ThresholdOpt, emit, fail, session
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


R = TypeVar("R")

#: The options of every command that changes the album, after the command's own arguments.
_OPTIONS = tuple(
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
    for name, kind, default in (
        ("cluster_threshold", ClusterThresholdOpt, None),
        ("threshold", ThresholdOpt, None),
        ("db", DbOpt, None),
        ("as_json", JsonOpt, False),
    )
)


def album_command(
    human: Callable[[R, str | None], None],
) -> Callable[[Callable[..., R]], Callable[..., None]]:
    """A command that runs `verb(album, ...)` and prints its result: --json, else `human(result,
    db)`. Its parameters are the verb's after `album`, then `_OPTIONS`.

    One definition of the four options and of opening the album, instead of the same
    parameters and `with` line in every command that corrects the album.
    """

    def decorate(verb: Callable[..., R]) -> Callable[..., None]:
        # `Album` is imported for type checking only: it loads the model stack, which
        # `facerec --help` must not; the verb's `album` parameter is no command parameter.
        hints = get_type_hints(verb, localns={"Album": Any}, include_extras=True)
        own = list(inspect.signature(verb).parameters.values())[1:]
        params = [p.replace(annotation=hints[p.name]) for p in own] + list(_OPTIONS)

        @functools.wraps(verb)
        def command(
            *,
            cluster_threshold: float | None,
            threshold: float | None,
            db: str | None,
            as_json: bool,
            **args: Any,
        ) -> None:
            settings = Settings(threshold=threshold)
            with album_session(db, settings, cluster_threshold, as_json=as_json) as album:
                emit(as_json, verb(album, **args), lambda r: human(r, db))

        del command.__wrapped__  # Typer reads the signature below, not the verb's
        command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return command

    return decorate
