"""Settings shared by the Python API and the CLI, and where the gallery lives by default.

The gallery database is named the same way everywhere (`--db`, `$FACEREC_DB`,
`FaceRec(db=...)`): a SQLite file path, `sqlite:///PATH`, or a PostgreSQL URL
(`postgresql://user@host/db`), as `facerec.storage.parse_url` reads them.

Thresholds resolve in one order everywhere: an explicit override, else the
threshold calibrated into the gallery for its model (`facerec calibrate`), else
the operating point shipped for the model's weights at `target_far` (1:1) or
`target_fpir` (1:N, see `facerec.decisions.operating`), else the model's registry default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from facerec.decisions.operating import DEFAULT_FPIR, DOOR_FAR
from facerec.detectors import DetectorConfig
from facerec.faces.quality import QualityLimits
from facerec.gallery.index_kind import IndexKind
from facerec.storage import DatabaseUrl, parse_url

ENV_DB = "FACEREC_DB"


def default_database() -> DatabaseUrl:
    """$FACEREC_DB (a path or a URL), else `gallery.db` in the user data dir (~/.local/share/facerec).

    A value that is not a usable database raises `GalleryError` naming it.
    """
    env = os.environ.get(ENV_DB)
    if env:
        return parse_url(env)
    return parse_url(platformdirs.user_data_path("facerec", appauthor=False) / "gallery.db")


def database_url(db: str | os.PathLike[str] | DatabaseUrl | None) -> DatabaseUrl:
    """What a `--db` option or a `db=` argument names: `db` parsed, or the default for None."""
    if isinstance(db, DatabaseUrl):
        return db
    return default_database() if db is None else parse_url(db)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything tunable about a FaceRec session; the CLI maps its options onto these."""

    model: str | None = None  # None: $FACEREC_MODEL, else the registry default
    weights: Path | None = None  # None: $FACEREC_WEIGHTS, else the model's own file
    threshold: float | None = None  # None: calibrated, else the operating point, else the default
    target_far: float = DOOR_FAR  # 1:1: the false-accept rate the shipped operating point is at
    target_fpir: float = DEFAULT_FPIR  # 1:N: false-positive identification rate for the gallery
    softmax_scale: float = 30.0
    top_k: int = 5
    flip: bool = False
    batch_size: int = 32
    # CPU threads of the model runtimes, applied process-wide when FaceRec loads its models
    # (torch and OpenCV have one pool per process). None: $FACEREC_THREADS, else
    # runtime.default_threads().
    threads: int | None = None
    # 1:N search structure (a FAISS cache, exact or IVF; PostgreSQL also pgvector's hnsw).
    # None: $FACEREC_INDEX, else auto (chosen by the gallery's size).
    index: IndexKind | None = None
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    quality: QualityLimits = field(default_factory=QualityLimits)
