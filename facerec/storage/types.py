"""The declarative base every facerec table shares, and the column types that differ by database.

One `Base` (one `MetaData`) for the gallery's, the album's and the apps'
tables: they live in one database and point at each other with foreign keys,
and one Alembic history migrates them together.

`Embedding` is the one column type for face vectors. On SQLite it is a
little-endian float32 blob, byte for byte what galleries have always stored
(so no data migration); on PostgreSQL it is a pgvector `vector`, so the
database itself can search by cosine distance. Either way the application
reads and writes 1-D float32 numpy arrays. The column has no fixed
dimension: a gallery is re-embedded by another model in place (`reembed`),
and the dimension a gallery is pinned to lives in its `meta` table.

Nothing here imports torch or FAISS (the Alembic CLI imports it), and
pgvector is imported only when a PostgreSQL database is actually used: it
belongs to the optional `postgres` extra.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

from facerec.errors import GalleryError

# Named constraints: Alembic's batch mode (how SQLite alters tables) can only
# drop or recreate a constraint it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC as a naive timestamp and hands back aware datetimes.

    SQLite has no time zones; without this a naive local time and an aware UTC
    time would be stored alike and compare wrongly after reading back. The same
    naive-UTC storage (`timestamp without time zone`) is used on PostgreSQL, so
    both databases hold and return identical values.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the gallery; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: A 64-bit integer: SQLite's INTEGER already is one (and the DDL stays `INTEGER`, as in
#: every existing gallery file); PostgreSQL's `integer` is 32-bit, too small for
#: nanosecond timestamps and file sizes, so it gets `bigint`.
BigInt = Integer().with_variant(BigInteger(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads a plain dict)


class Embedding(TypeDecorator[npt.NDArray[np.float32]]):
    """A face vector: float32 little-endian BLOB on SQLite, pgvector `vector` on PostgreSQL.

    In: any 1-D array-like of finite numbers (converted to float32). Out: a
    1-D float32 array. The length is not checked here; the gallery checks it
    against its pinned dimension and names the row that disagrees.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_pgvector_type())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        v = np.asarray(value, dtype=np.float32)
        if v.ndim != 1:
            raise ValueError(f"an embedding must be 1-D, got shape {v.shape}")
        if dialect.name == "postgresql":
            return v  # pgvector's bind processor writes the text form, exact for float32
        # float32 little-endian, whatever the machine: the file may move between machines.
        return v.astype("<f4").tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> npt.NDArray[np.float32] | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return np.frombuffer(value, dtype="<f4").astype(np.float32)
        return np.asarray(value, dtype=np.float32)


def _pgvector_type() -> TypeEngine[Any]:
    """pgvector's SQLAlchemy `VECTOR` (no fixed dimension), or a GalleryError saying what to install."""
    try:
        from pgvector.sqlalchemy import VECTOR
    except ImportError as exc:
        raise GalleryError(
            "a PostgreSQL gallery needs the pgvector package: pip install 'facerec[postgres]'"
        ) from exc
    vector: TypeEngine[Any] = VECTOR()
    return vector
