"""`Database`: the one owner of the engine and of the transactions, on SQLite or PostgreSQL.

Every facerec table lives in one database, and every store reads and writes
it through a `Database`: `read()` gives one consistent snapshot, `write()`
one transaction that queues behind every other facerec writer, whichever
process or machine it runs on. Queueing writers, not merely isolating them,
is what the gallery's invariants rest on: the `meta.revision` counter is
read, bumped and written back in one transaction (two writers must not both
read 41 and write 42), a new name is looked up and then inserted, and the
FAISS cache of each process trusts that revision N+1 is exactly one write
after N.

* SQLite: `BEGIN IMMEDIATE` takes the file's single write lock up front, so a
  second writer waits (busy_timeout) instead of failing when it upgrades a
  read lock; WAL lets readers go on meanwhile.
* PostgreSQL: a write transaction first takes a transaction-scoped advisory
  lock (`pg_advisory_xact_lock(WRITE_LOCK_KEY)`), released at commit or
  rollback. That gives exactly SQLite's discipline (one facerec writer per
  database at a time, readers never blocked) with READ COMMITTED writes that
  see everything committed before the lock was granted. SERIALIZABLE was the
  alternative; it would abort one of two concurrent enrolments with a
  serialization failure and every caller would need a retry loop, for no
  gain at the write rates of a face gallery. Advisory locks are scoped to the
  database, so two facerec databases on one server do not wait for each other.
  Reads run REPEATABLE READ (one snapshot for all queries of a read, as WAL
  gives on SQLite) and READ ONLY.

Both wait at most `BUSY_TIMEOUT_MS` for the lock (SQLite's busy_timeout,
PostgreSQL's lock_timeout), then fail with a `GalleryError` naming the
database. On PostgreSQL that error also names the session holding the lock
(its `application_name` says which facerec process on which host), and a
writer that stops talking inside its transaction (a process frozen by a
debugger, `kill -STOP`, a hung NFS read) cannot hold every other writer on
every machine hostage: its session is ended by the server after
`WRITER_IDLE_TIMEOUT_MS` idle inside the transaction (rolled back, lock
released), shorter than the waiters' timeout so that they get the lock. Connection and lock errors always surface as `GalleryError`
naming the database in its display form (no password).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from sqlalchemy import URL, Connection, Engine, Table, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from facerec.errors import GalleryError
from facerec.storage.urls import DatabaseUrl, Dialect, parse_url

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

    from facerec.storage.types import Base

log = logging.getLogger(__name__)
#: How long a writer waits for another writer's transaction (ms), on both databases.
BUSY_TIMEOUT_MS = 10_000

#: How long a PostgreSQL write transaction may sit idle (the client sending nothing)
#: before the server ends its session; below `BUSY_TIMEOUT_MS` so waiting writers
#: outlive a stuck one. facerec's own writes never pause that long inside a transaction.
WRITER_IDLE_TIMEOUT_MS = 5_000

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
    ("busy_timeout", str(BUSY_TIMEOUT_MS)),
    ("synchronous", "NORMAL"),
    ("secure_delete", "ON"),
)

#: Execution option read by SQLite's "begin" hook: "IMMEDIATE" for write transactions.
BEGIN_OPTION = "facerec_begin"

#: The advisory lock every PostgreSQL write transaction takes first ("facerecW" as a bigint).
WRITE_LOCK_KEY = int.from_bytes(b"facerecW", "big")

#: PostgreSQL connection pool per process: a CLI command uses one connection, a
#: server a few (reads run in request threads); 5 kept + 5 on demand keeps a
#: fleet of facerec processes well inside a default max_connections of 100.
PG_POOL_SIZE = 5
PG_MAX_OVERFLOW = 5


class Database:
    """One database (SQLite file or PostgreSQL), its engine and its read/write transactions.

    Open with `Database.open`. Safe to share between threads: sessions come
    from a pool, each `read()`/`write()` uses its own.
    """

    def __init__(self, where: DatabaseUrl, engine: Engine) -> None:
        """Use `Database.open`, which creates and migrates the database first."""
        self._where = where
        self._engine = engine
        reads: Engine
        writes: Engine
        if where.dialect == "sqlite":
            reads = engine
            writes = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        else:
            reads = engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            writes = engine
        self._reads = sessionmaker(bind=reads, expire_on_commit=False)
        self._writes = sessionmaker(bind=writes, expire_on_commit=False)
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, target: str | os.PathLike[str] | DatabaseUrl, *, migrate: bool = True
    ) -> Database:
        """Connect to `target` (a path, `sqlite:///...` or `postgresql://...`), migrated to head.

        SQLite: the file and its folder are created if missing. PostgreSQL: the
        database must exist; the pgvector extension is created in it on the
        first migration if it is not there yet (that needs a role allowed to
        create it, or an administrator who ran `CREATE EXTENSION vector` once).
        `migrate=False` only connects (for tools that inspect a database as it is).
        """
        where = target if isinstance(target, DatabaseUrl) else parse_url(target)
        if where.path is not None:
            if where.path.is_dir():
                raise GalleryError(f"{where.path}: is a directory, not a gallery database")
            try:
                where.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GalleryError(f"{where.path}: cannot create its folder: {exc}") from exc
        engine = create_engine_for(where)
        if migrate:
            from facerec.storage.migrate import migrate as run_migrations

            try:
                run_migrations(engine, where.display)
            except BaseException:
                engine.dispose()
                raise
        return cls(where, engine)

    def close(self) -> None:
        """Release every pooled connection. Idempotent."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self._where.display!r})"

    # -- what it is -----------------------------------------------------------------------------
    @property
    def dialect(self) -> Dialect:
        return self._where.dialect

    @property
    def display(self) -> str:
        """The database for messages: the SQLite path, or the URL without its password."""
        return self._where.display

    @property
    def path(self) -> Path | None:
        """The SQLite file; None on PostgreSQL."""
        return self._where.path

    @property
    def url(self) -> DatabaseUrl:
        return self._where

    @property
    def engine(self) -> Engine:
        """For what sessions cannot do (VACUUM, pragmas, inspection); prefer `read`/`write`."""
        return self._engine

    @property
    def closed(self) -> bool:
        return self._closed

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Session]:
        """One read transaction: every query inside sees the same snapshot."""
        self._check_open()
        try:
            with self._reads() as s, s.begin():
                yield s
        except OperationalError as exc:
            raise self.error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction, queued behind any other facerec writer; commits on exit.

        An exception inside rolls everything back.
        """
        self._check_open()
        try:
            with self._writes.begin() as s:
                if self._where.dialect == "postgresql":
                    s.execute(
                        text(
                            "SELECT set_config('idle_in_transaction_session_timeout', :idle, true),"
                            " pg_advisory_xact_lock(:key)"
                        ),
                        {"idle": str(WRITER_IDLE_TIMEOUT_MS), "key": WRITE_LOCK_KEY},
                    )
                yield s
        except OperationalError as exc:
            raise self._write_error(exc) from exc

    def _write_error(self, exc: OperationalError) -> GalleryError:
        """A failed write's error; for a lock wait, who waited and who held the lock."""
        code = getattr(exc.orig, "sqlstate", None)
        if code == "55P03":  # lock_not_available: lock_timeout ran out
            return GalleryError(
                f"{self._where.display}: {application_name()} waited {BUSY_TIMEOUT_MS / 1000:g} s "
                f"for the write lock and gave up; it is held by {self._lock_holder()}"
            )
        if code == "25P03":  # idle_in_transaction_session_timeout
            return GalleryError(
                f"{self._where.display}: this write sat idle in its transaction for over "
                f"{WRITER_IDLE_TIMEOUT_MS / 1000:g} s and PostgreSQL ended it so that other "
                "writers could go on; nothing was written"
            )
        return self.error(exc)

    def _lock_holder(self) -> str:
        """The session holding the write lock, as PostgreSQL's statistics describe it."""
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT a.pid, a.application_name, a.client_addr, a.state,"
                        " extract(epoch FROM now() - a.xact_start)"
                        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.locktype = 'advisory' AND l.granted"
                        " AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1"
                    ),
                    {"hi": WRITE_LOCK_KEY >> 32, "lo": WRITE_LOCK_KEY & 0xFFFFFFFF},
                ).first()
        except OperationalError:
            row = None
        if row is None:
            return "a session PostgreSQL no longer lists (it has just finished)"
        pid, app, addr, state, held = row
        where = f" from {addr}" if addr is not None else ""
        return (
            f"server process {pid} ({app or 'no application name'}{where}), {state}, "
            f"in its transaction for {float(held or 0):.0f} s"
        )

    def error(self, exc: OperationalError) -> GalleryError:
        """`exc` as the GalleryError users see: the database (no password) and the driver's reason."""
        # One line: psycopg's reasons carry a second line ("Is the server running...?").
        reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
        return GalleryError(f"{self._where.display}: {reason}")

    def compact(self) -> bool:
        """Leave no deleted byte in the database's files; True when that is done.

        SQLite: deleted rows are already zeroed (`secure_delete`), but the old
        page versions may survive in the WAL file until the next checkpoint,
        and pages freed before `secure_delete` was on (older galleries) may
        still hold deleted rows. VACUUM rebuilds the file from live rows only,
        and a TRUNCATE checkpoint copies the log back and empties it. Another
        process reading an old snapshot can keep the log from being emptied;
        that is reported (False), never an error: SQLite checkpoints again when
        the last connection closes.

        PostgreSQL: always False, and nothing is run. A deleted row stays in its
        table's pages as a dead tuple until (auto)vacuum reclaims the space
        (and even then the bytes are only overwritten when the space is
        reused), and it stays in the write-ahead log, its archive and any base
        backup. Deletion is correct at once (no query sees the row); erasing the
        bytes is the operator's job: VACUUM FULL of the touched tables rewrites
        them, and WAL/backup retention decides how long old copies exist.
        """
        self._check_open()
        if self._where.dialect != "sqlite":
            return False
        raw = self._engine.raw_connection()  # autocommit: VACUUM refuses a transaction
        try:
            cursor = raw.cursor()
            try:
                cursor.execute("VACUUM")
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                row = cursor.fetchone()
                busy = row[0] if row is not None else 1
            finally:
                cursor.close()
        except Exception as exc:  # sqlite3.OperationalError: busy, disk full
            log.warning(
                "%s: could not compact the database after a deletion: %s", self.display, exc
            )
            return False
        finally:
            raw.close()
        return bool(busy == 0)

    def _check_open(self) -> None:
        if self._closed:
            raise GalleryError(f"{self._where.display}: the database is closed")


#: Tables from which `facerec remove` deletes a person's rows.
FORGETTING_TABLES = (
    "identities",
    "samples",
    "prototypes",
    "album_faces",
    "album_negatives",
    "audit_events",
)


def leftover_bytes(dialect: Dialect) -> str:
    """What an operator must still do after a deletion that `compact` could not finish.

    Said with every removal that leaves bytes behind, not only in `--json`:
    whoever removes a person is the one who must know their face is still on disk.
    """
    if dialect == "postgresql":
        return (
            "the deleted rows are gone for every query, but PostgreSQL keeps their bytes in "
            "its data files until you run VACUUM FULL " + ", ".join(FORGETTING_TABLES)
            + ", and in its write-ahead log, WAL archive and backups until they expire"
        )
    return (
        "another process has the gallery open, so the deleted bytes may stay in its "
        "write-ahead log until the last process closes it"
    )


def insert(bind: Session | Connection, table: type[Base] | Table) -> SqliteInsert | PostgresInsert:
    """An INSERT for `bind`'s database; both kinds offer `on_conflict_do_update/_do_nothing`."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def create_engine_for(where: DatabaseUrl) -> Engine:
    """The engine for `where`, with the connection settings described in the module docstring."""
    if where.dialect == "sqlite":
        return create_sqlite_engine(where.url)
    try:
        return create_engine(
            where.url,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_pre_ping=True,  # a server restart or idle timeout costs a reconnect, not an error
            connect_args={
                "options": f"-c lock_timeout={BUSY_TIMEOUT_MS}",
                # Shown in pg_stat_activity, and by a blocked writer's error.
                "application_name": application_name(),
            },
        )
    except ImportError as exc:
        raise GalleryError(
            f"{where.display}: PostgreSQL needs the psycopg driver: pip install 'facerec[postgres]'"
        ) from exc


def application_name() -> str:
    """This process as PostgreSQL's `application_name` shows it: which facerec, where."""
    return f"facerec pid {os.getpid()} on {socket.gethostname()}"[:63]


def create_sqlite_engine(url: str | URL) -> Engine:
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
