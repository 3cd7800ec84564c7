"""Pieces every `facerec` command shares: options, the session wrapper, JSON output, exit codes.

The core commands (`facerec.cli`) and the apps' commands (album, camera, serve) all
use these, so every command takes `--db` and `--json` the same way and maps
anticipated failures to exit code 2 with one line on stderr.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.errors import FacerecError
from facerec.runtime import default_threads

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
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads for detection and embedding [default: $FACEREC_THREADS, else "
        f"{default_threads()}: steady latency on a busy machine; more can be faster on an idle one].",
    ),
]
MinFaceOpt = Annotated[
    int, typer.Option("--min-face-size", help="Smallest face the detector looks for, in pixels.")
]


def make_settings(
    model: str | None = None,
    weights: Path | None = None,
    threshold: float | None = None,
    min_face_size: int = 20,
    threads: int | None = None,
) -> Settings:
    from facerec.detection import DetectorConfig

    return Settings(
        model=model,
        weights=weights,
        threshold=threshold,
        detector=DetectorConfig(min_face_size=min_face_size),
        threads=threads,
    )


@contextmanager
def reported_errors() -> Iterator[None]:
    """Anticipated failures and Ctrl-C become one line on stderr and exit code 2, not a traceback."""
    try:
        yield
    except FacerecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_ERROR) from None


@contextmanager
def session(db: Path | None, settings: Settings) -> Iterator[FaceRec]:
    """Open the API inside `reported_errors`."""
    with reported_errors(), FaceRec(db, settings) as fr:
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


def emit(as_json: bool, result: T, human: Callable[[T], None]) -> None:
    if as_json:
        print_json(result)
    else:
        human(result)
