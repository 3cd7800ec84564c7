"""`Database`: snapshots, queued writers, the dialect's upsert, exact vectors, errors that name it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select, text

from facerec.errors import GalleryError
from facerec.gallery.schema import Identity, Meta, Prototype
from facerec.storage import Database, insert
from facerec.storage.database import BUSY_TIMEOUT_MS, PG_MAX_OVERFLOW, PG_POOL_SIZE

from ..db_rows import is_postgres, rows, vectors


@pytest.fixture()
def db(db_url: str) -> Iterator[Database]:
    with Database.open(db_url) as database:
        yield database


def meta(db: Database, key: str) -> str | None:
    with db.read() as s:
        return s.scalar(select(Meta.value).where(Meta.key == key))


def test_open_says_what_it_is(db: Database, db_url: str) -> None:
    postgres = is_postgres(db_url)
    assert db.dialect == ("postgresql" if postgres else "sqlite")
    assert (db.path is None) == postgres
    if postgres:
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow) == (PG_POOL_SIZE, PG_MAX_OVERFLOW)
        with db.read() as s:
            assert s.scalar(text("SHOW transaction_isolation")) == "repeatable read"
            assert s.scalar(text("SHOW transaction_read_only")) == "on"
            assert s.scalar(text("SHOW lock_timeout")) == "10s"


def test_upsert_on_both(db: Database) -> None:
    for value in ("one", "two"):
        with db.write() as s:
            stmt = insert(s, Meta).values(key="k", value=value)
            s.execute(stmt.on_conflict_do_update(index_elements=[Meta.key], set_={"value": value}))
    assert meta(db, "k") == "two"
    with db.write() as s:
        s.execute(insert(s, Meta).values(key="k", value="three").on_conflict_do_nothing())
    assert meta(db, "k") == "two"


def test_a_failed_write_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError, match="half way"), db.write() as s:
        s.execute(insert(s, Meta).values(key="k", value="v"))
        raise RuntimeError("half way")
    assert meta(db, "k") is None


def test_a_read_is_one_snapshot(db: Database) -> None:
    """A write committed while a read is open is not seen by that read, only by the next."""
    with db.read() as s:
        assert s.scalar(select(Meta.value).where(Meta.key == "revision")) == "0"
        done = threading.Event()

        def writer() -> None:
            with db.write() as w:
                w.execute(text("UPDATE meta SET value = '1' WHERE key = 'revision'"))
            done.set()

        t = threading.Thread(target=writer)
        t.start()
        assert done.wait(30), "a writer waited for a reader"
        t.join()
        assert s.scalar(select(Meta.value).where(Meta.key == "revision")) == "0"
    assert meta(db, "revision") == "1"


def test_writers_queue(db_url: str) -> None:
    """A second writer (its own Database, as another process would have) waits for the first.

    The second increments what the first committed, so the counter ends at 2:
    neither lost the other's update, and the second started only after the
    first had committed.
    """
    with Database.open(db_url) as one, Database.open(db_url) as two:
        events: list[str] = []
        first_in = threading.Event()

        def bump(db: Database, who: str, hold: float) -> None:
            with db.write() as s:
                # The lock is taken with the transaction's first statement.
                value = int(s.scalar(text("SELECT value FROM meta WHERE key = 'revision'")))
                events.append(f"{who} in")
                first_in.set()
                time.sleep(hold)
                s.execute(
                    text("UPDATE meta SET value = :v WHERE key = 'revision'"), {"v": str(value + 1)}
                )
                events.append(f"{who} out")

        a = threading.Thread(target=bump, args=(one, "a", 0.5))
        a.start()
        assert first_in.wait(30)
        b = threading.Thread(target=bump, args=(two, "b", 0.0))
        b.start()
        a.join()
        b.join()
        assert events == ["a in", "a out", "b in", "b out"]
        assert meta(one, "revision") == "2"


def test_embeddings_round_trip_exactly(db: Database, db_url: str) -> None:
    """Every float32 comes back bit for bit; SQLite stores today's little-endian blob."""
    rng = np.random.default_rng(5)
    v = np.concatenate(
        [
            rng.normal(size=500).astype(np.float32),
            np.array([1 / 3, -0.0, 1e-38, 1.4e-45, 3.4e38, np.nextafter(1, 2)], np.float32),
        ]
    )
    now = datetime.now(UTC)
    with db.write() as s:
        s.add(Identity(id=1, name="x", created_at=now, updated_at=now))
        s.flush()
        s.add(Prototype(identity_id=1, vector=v, n_samples=1, updated_at=now))
    with db.read() as s:
        back = s.scalar(select(Prototype.vector))
    assert back is not None and back.dtype == np.float32
    assert back.tobytes() == v.tobytes()
    ((stored,),) = rows(db_url, "SELECT vector FROM prototypes")
    if is_postgres(db_url):  # pgvector's own text form holds the same float32 values
        (parsed,) = vectors(db_url, "SELECT vector FROM prototypes")
        assert parsed.tobytes() == v.tobytes()
    else:  # byte for byte what galleries stored before PostgreSQL support
        assert stored == v.astype("<f4").tobytes()


def test_closed_database_refuses_work(db_url: str) -> None:
    db = Database.open(db_url)
    db.close()
    db.close()
    with pytest.raises(GalleryError, match="closed"), db.read():
        pass


def test_an_unreachable_server_is_a_gallery_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://face:s3cret@/facerec?host=/nonexistent-socket-dir"
    with pytest.raises(GalleryError) as err:
        Database.open(url)
    message = str(err.value)
    assert "postgresql+psycopg://face:***@/facerec" in message
    assert "s3cret" not in message


def test_compact(db: Database) -> None:
    """SQLite rewrites the file; PostgreSQL cannot promise deleted bytes are gone, and says so."""
    assert db.compact() is (db.dialect == "sqlite")


@pytest.mark.slow
def test_a_writer_waits_at_most_the_busy_timeout(db_url: str) -> None:
    """A writer held up longer than BUSY_TIMEOUT_MS gets a GalleryError naming the database."""
    with Database.open(db_url) as one, Database.open(db_url) as two, one.write() as s:
        s.execute(text("UPDATE meta SET value = value WHERE key = 'revision'"))  # takes the lock
        if one.dialect == "postgresql":
            # This holder sits idle while it waits for `two` below; PostgreSQL would end it
            # after WRITER_IDLE_TIMEOUT_MS (tests/storage/test_stuck_writer.py). Here it stands
            # for a writer that is busy, which is never ended, so `two` must give up.
            s.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        started = time.monotonic()
        with pytest.raises(GalleryError) as err, two.write() as w:
            w.execute(text("SELECT 1"))
        waited = time.monotonic() - started
    assert BUSY_TIMEOUT_MS / 1000 - 1 <= waited <= BUSY_TIMEOUT_MS / 1000 + 10
    assert str(err.value).startswith(f"{two.display}: ")
    assert "lock" in str(err.value)
