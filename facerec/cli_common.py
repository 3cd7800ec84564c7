"""Pieces every `facerec` command shares: options, the session wrapper, JSON output, exit codes.

The core commands (`facerec.cli`) and the apps' commands (album, camera, serve) all
use these, so every command takes `--db` and `--json` the same way and maps
anticipated failures to exit code 2 with one line on stderr; under `--json`
the failure is also a JSON object on stdout (`facerec.schemas.ErrorEnvelopeJSON`),
so a script reading stdout always gets JSON.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import numpy as np
import typer

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.detectors import DetectorKind
from facerec.errors import FacerecError, ModelMismatchError, MultipleFacesError
from facerec.gallery.index_kind import ENV_INDEX, IndexKind
from facerec.models.registry import DEFAULT_MODEL, MODELS_HELP, weights_file
from facerec.runtime import default_threads
from facerec.schemas import ErrorEnvelopeJSON, error_json
from facerec.storage import DatabaseUrl

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2

#: A string, not a Path: a Path would turn `postgresql://user@host/db` into `postgresql:/user@host/db`.
#: `facerec.storage.parse_url` reads it (a plain path stays a SQLite file, `~` expanded).
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Gallery database: a SQLite file, or a PostgreSQL URL such as "
        "postgresql://user@host/facerec [default: $FACEREC_DB or the user data dir].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help=f"Embedding model: {MODELS_HELP} [default: $FACEREC_MODEL, else the model the gallery was filled with, else {DEFAULT_MODEL}].",
    ),
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights", help="Weights/checkpoint file for the model [default: $FACEREC_WEIGHTS]."
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="Cosine threshold, -1 to 1 [default: calibrated, else the model's].",
        min=-1.0,
        max=1.0,
    ),
]
LargestOpt = Annotated[
    bool, typer.Option("--largest", help="Use the largest face when a photo shows several.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads for detection and embedding [default: $FACEREC_THREADS, else "
        f"{default_threads()} with yunet, 1 with mtcnn; 1 gives the steadiest latency on a busy machine].",
    ),
]
MinFaceOpt = Annotated[
    int,
    typer.Option("--min-face-size", help="Smallest face the detector looks for, in pixels.", min=1),
]
IndexOpt = Annotated[
    IndexKind,
    typer.Option(
        "--index",
        envvar=ENV_INDEX,
        case_sensitive=False,
        help="1:N search: auto (a FAISS cache, exact, then IVF for large galleries), exact, "
        "ivf, or hnsw (PostgreSQL only: pgvector's index in the database).",
    ),
]
ENV_DETECTOR = "FACEREC_DETECTOR"
DetectorOpt = Annotated[
    DetectorKind | None,
    typer.Option(
        "--detector",
        envvar=ENV_DETECTOR,
        case_sensitive=False,
        help="Face detector [default: the one that enrolled the gallery, else yunet]; "
        "thresholds are measured per detector.",
        show_default=False,
    ),
]


def make_settings(
    model: str | None = None,
    weights: Path | None = None,
    threshold: float | None = None,
    min_face_size: int = 20,
    detector: DetectorKind | None = None,
    threads: int | None = None,
    index: IndexKind | None = None,
) -> Settings:
    from facerec.detectors import DetectorConfig

    return Settings(
        model=model,
        weights=weights,
        threshold=threshold,
        detector=DetectorConfig(min_face_size=min_face_size, kind=detector),
        threads=threads,
        index=index,
    )


def error_envelope(message: str, kind: str, source: str | None = None) -> ErrorEnvelopeJSON:
    """What a failed command prints on stdout under --json."""
    return ErrorEnvelopeJSON(error=error_json(message, kind, source=source, exit_code=EXIT_ERROR))


def fail(
    message: str, *, as_json: bool, kind: str = "Error", source: str | None = None
) -> NoReturn:
    """End a command with exit code 2: one line on stderr and, under --json, the error on stdout."""
    typer.echo(f"error: {message}", err=True)
    if as_json:
        print_json(error_envelope(message, kind, source))
    raise typer.Exit(EXIT_ERROR)


def describe(exc: FacerecError, weights: Path | None = None) -> str:
    """The error's message with the remedy in CLI terms (the core's messages name no options).

    `weights` is the weights file this command loaded (--weights or
    $FACEREC_WEIGHTS), None for the model's original weights.
    """
    if isinstance(exc, MultipleFacesError):
        return f"{exc} (use --largest to take the largest face)"
    if isinstance(exc, ModelMismatchError):
        return f"{exc}. {_mismatch_remedy(exc, weights)}"
    return str(exc)


def _mismatch_remedy(exc: ModelMismatchError, weights: Path | None) -> str:
    """How to get the pinned model back: the pin stores the weights' SHA-256, not their path."""
    pinned, given = exc.pinned, exc.given
    sha = f"its sha256 is {pinned.weights_sha256} (`sha256sum FILE` prints a file's)"
    if pinned.name != given.name:
        return (
            f"Pass --model {pinned.name}, with --weights FILE if the gallery was filled from a "
            f"checkpoint ({sha}); or run `facerec reembed --model {given.name}` to convert the "
            f"gallery to {given.name}"
        )
    if weights is None:
        return (
            f"The gallery was filled with other {pinned.name} weights than the original ones "
            f"(e.g. a `facerec train` checkpoint): pass that file with --weights FILE; {sha}. "
            "Or run `facerec reembed` to convert the gallery to the original weights"
        )
    return (
        f"The gallery was not filled with --weights {weights}: pass the file it was filled "
        f"with instead ({sha}), or no --weights if that was the model's original weights. "
        f"Or run `facerec reembed --weights {weights}` to convert the gallery to {weights.name}"
    )


@contextmanager
def reported_errors(*, as_json: bool = False, weights: Path | None = None) -> Iterator[None]:
    """Anticipated failures and Ctrl-C become one line on stderr and exit code 2, not a traceback.

    `weights` (the file the command loaded, if any) lets a model mismatch say what to pass.
    """
    try:
        yield
    except FacerecError as exc:
        source = getattr(exc, "source", None)
        fail(
            describe(exc, weights),
            as_json=as_json,
            kind=type(exc).__name__,
            source=source if isinstance(source, str) else None,
        )
    except KeyboardInterrupt:
        fail("interrupted", as_json=as_json, kind="KeyboardInterrupt")


@contextmanager
def session(
    db: str | DatabaseUrl | None, settings: Settings, *, as_json: bool = False
) -> Iterator[FaceRec]:
    """Open the API inside `reported_errors` (a `--db` that names no usable database exits 2)."""
    weights = weights_file(settings.weights)
    with reported_errors(as_json=as_json, weights=weights), FaceRec(db, settings) as fr:
        yield fr


def jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
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


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(jsonable(obj), indent=2))


def progress() -> bool:
    return sys.stderr.isatty()


T = TypeVar("T")


def emit(
    as_json: bool,
    result: T,
    human: Callable[[T], None],
    wire: Callable[[T], object] | None = None,
) -> None:
    """Print `result` for a person, or as JSON: in its `facerec.schemas` form when `wire` gives one."""
    if as_json:
        print_json(wire(result) if wire is not None else result)
    else:
        human(result)
