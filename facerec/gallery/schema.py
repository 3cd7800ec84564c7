"""The gallery's tables (SQLAlchemy 2 declarative) and the one way to open its SQLite engine.

These classes describe the schema that Alembic revision 0001 creates; the
migrations, not `create_all`, build the database, and a test compares the two
so they cannot drift. Nothing here imports torch or FAISS, so the Alembic CLI
(`migrations/env.py`) can import it cheaply.

`create_sqlite_engine` is shared by the `Gallery` and the Alembic CLI so every
connection, whoever opens it, runs with the same pragmas and the same
transaction handling.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

#: Pragmas applied to every new connection. foreign_keys makes ON DELETE CASCADE
#: work (SQLite ignores foreign keys by default); WAL lets readers run while a
#: writer commits; busy_timeout makes a second process wait for the write lock
#: instead of failing at once; synchronous=NORMAL is durable across application
#: crashes in WAL mode and much faster than FULL. secure_delete overwrites deleted
#: rows with zeros: a removed person's embeddings, crops and thumbnails must not
#: linger in free pages of the file (it costs writing the freed pages once).
PRAGMAS: tuple[tuple[str, str], ...] = (
    ("foreign_keys", "ON"),
    ("journal_mode", "WAL"),
    ("busy_timeout", "10000"),
    ("synchronous", "NORMAL"),
    ("secure_delete", "ON"),
)

#: Execution option read by the "begin" hook: "IMMEDIATE" for write transactions.
BEGIN_OPTION = "facerec_begin"

#: Meta keys.
META_REVISION = "revision"
META_MODEL_NAME = "model_name"
META_MODEL_SHA256 = "model_sha256"
META_EMBEDDING_DIM = "embedding_dim"

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
    """Stores UTC as a naive SQLite timestamp and hands back aware datetimes.

    SQLite has no time zones; without this a naive local time and an aware UTC
    time would be stored alike and compare wrongly after reading back.
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads a plain dict)


class Meta(Base):
    """Key/value facts about the whole gallery: the write revision and the pinned model."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Threshold(Base):
    """A cosine threshold calibrated for one model (`facerec calibrate`)."""

    __tablename__ = "thresholds"

    model_name: Mapped[str] = mapped_column(Text, primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)
    target_far: Mapped[float | None] = mapped_column(Float)
    calibrated_at: Mapped[datetime]


class Identity(Base):
    """A person. AUTOINCREMENT: ids are FAISS ids and never reused, so a stale cache cannot
    attribute one person's vector to the next person created."""

    __tablename__ = "identities"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Sample(Base):
    """One enrolled face. AUTOINCREMENT: `reembed` keys new embeddings by sample id, so an id
    must never come back for a different crop."""

    __tablename__ = "samples"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian
    crop: Mapped[bytes] = mapped_column(LargeBinary)  # PNG of the aligned crop
    crop_landmarks: Mapped[str] = mapped_column(Text)  # JSON [[x, y], ...]
    source: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(Text)
    box: Mapped[str] = mapped_column(Text)  # JSON [x1, y1, x2, y2]
    det_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[str] = mapped_column(Text)  # JSON {metric: value}
    created_at: Mapped[datetime]


class Prototype(Base):
    """A person's prototype: the normalised mean of their normalised sample embeddings."""

    __tablename__ = "prototypes"

    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian
    n_samples: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


def create_sqlite_engine(url: str) -> Engine:
    """An engine whose connections carry `PRAGMAS` and whose transactions are real.

    Python's sqlite3 module starts transactions only before INSERT/UPDATE/DELETE,
    so SELECTs before the first write see no snapshot and DDL runs outside any
    transaction. SQLAlchemy's documented fix is applied: the driver's own
    transaction handling is switched off and the "begin" hook emits BEGIN itself,
    as BEGIN IMMEDIATE when the engine carries `BEGIN_OPTION="IMMEDIATE"`. Write
    transactions take the write lock up front, so two writers queue on
    busy_timeout instead of one failing with SQLITE_BUSY when it upgrades a read.
    """
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for name, value in PRAGMAS:
                cursor.execute(f"PRAGMA {name}={value}")
                cursor.fetchall()  # journal_mode answers with a row
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE"):
            raise ValueError(f"unknown {BEGIN_OPTION} {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
