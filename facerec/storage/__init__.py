"""Storage: the one owner of the database (SQLite file or PostgreSQL + pgvector) and its schema.

`Database` opens, migrates and hands out read and write transactions;
`insert` is the dialect's INSERT (with ON CONFLICT); `Base` is the declarative
base of every facerec table and `Embedding` its vector column type. Importing
this package costs SQLAlchemy and numpy only (no torch, no FAISS, no driver).
"""

from __future__ import annotations

from facerec.storage.database import Database, insert
from facerec.storage.types import Base, Embedding, UTCDateTime
from facerec.storage.urls import DatabaseUrl, Dialect, parse_url

__all__ = [
    "Base",
    "Database",
    "DatabaseUrl",
    "Dialect",
    "Embedding",
    "UTCDateTime",
    "insert",
    "parse_url",
]
