"""Which structure answers 1:N search, as a setting light enough for `facerec.config` to hold.

Kept apart from `facerec.gallery.index` (which imports FAISS) so that the
settings every command builds, `people` and `info` included, cost no FAISS import.
"""

from __future__ import annotations

import os
from enum import StrEnum

from facerec.errors import GalleryError

#: Environment variable naming the index kind when no option does.
ENV_INDEX = "FACEREC_INDEX"


class IndexKind(StrEnum):
    """Which FAISS structure holds the prototypes; AUTO picks by gallery size.

    The same on SQLite and PostgreSQL (a FAISS cache over the database). HNSW,
    PostgreSQL only, searches with pgvector's HNSW index in the database
    instead of a cache (approximate, and slower at scale: docs/search.md).
    """

    AUTO = "auto"
    EXACT = "exact"
    IVF = "ivf"
    HNSW = "hnsw"


def index_kind_from_env() -> IndexKind:
    """$FACEREC_INDEX, else AUTO; a value that names no kind is an error, not a silent AUTO."""
    raw = os.environ.get(ENV_INDEX, "").strip().lower()
    if not raw:
        return IndexKind.AUTO
    try:
        return IndexKind(raw)
    except ValueError:
        kinds = ", ".join(k.value for k in IndexKind)
        raise GalleryError(
            f"${ENV_INDEX}={raw!r} names no index kind; choose from {kinds}"
        ) from None
