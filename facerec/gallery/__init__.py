"""The gallery: SQLite (SQLAlchemy + Alembic) as the source of truth, FAISS as a derived cache.

The public names are re-exported here but imported on first use (PEP 562):
`facerec.gallery.records` pulls in `facerec.models.base` and with it torch,
several seconds of start-up, while the Alembic CLI only needs
`facerec.gallery.schema`, which should not pay for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facerec.util.lazy import lazy_exports

if TYPE_CHECKING:
    from facerec.gallery.index import IndexStamp, PrototypeIndex
    from facerec.gallery.records import (
        EnrollResult,
        GalleryInfo,
        Hit,
        NewSample,
        Person,
        PersonSnapshot,
        StoredSample,
    )
    from facerec.gallery.store import Gallery, validate_name

_EXPORTS = {
    "EnrollResult": "facerec.gallery.records",
    "Gallery": "facerec.gallery.store",
    "GalleryInfo": "facerec.gallery.records",
    "Hit": "facerec.gallery.records",
    "IndexStamp": "facerec.gallery.index",
    "NewSample": "facerec.gallery.records",
    "Person": "facerec.gallery.records",
    "PersonSnapshot": "facerec.gallery.records",
    "PrototypeIndex": "facerec.gallery.index",
    "StoredSample": "facerec.gallery.records",
    "validate_name": "facerec.gallery.store",
}

__all__ = [
    "EnrollResult",
    "Gallery",
    "GalleryInfo",
    "Hit",
    "IndexStamp",
    "NewSample",
    "Person",
    "PersonSnapshot",
    "PrototypeIndex",
    "StoredSample",
    "validate_name",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
