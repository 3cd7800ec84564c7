"""Prototype search through a FAISS cache of the `prototypes` table, on SQLite and PostgreSQL.

The database is the one source of truth; the cache (`PrototypeIndex`) only
makes 1:N search fast, and is stamped with the gallery revision it reflects.
Every write follows one rule, taken from InsightFace's server guide: the
`Gallery` changes the database and bumps `meta.revision` in ONE transaction,
commits, then the cache is brought along. A write that raises rolls back and
never reaches the cache.

Every search is one read transaction (one snapshot) that first reads the
gallery revision, so a write committed by another process or machine is seen
by the next search. A cache that is behind catches up inside that same
snapshot rather than being rebuilt: the prototype rows written after its
revision are upserted and the tombstones after it removed (migration 0011
keeps both by trigger). Only when it cannot (another model or dimension,
tombstones pruned past its revision, no cache at all) is it rebuilt from
every row. The nearest ids are then named from the `identities` rows of the
same snapshot, so a person deleted anywhere is never named, whatever a cache
holds.

Where the cache lives: on SQLite, in memory and in a file beside the
database (the next process loads and patches it instead of rebuilding); on
PostgreSQL, in each process's memory only, so that no copy of a face is
written to disk outside the database. A process that only writes never
builds one: the first search does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.types import ARRAY, BigInteger

from facerec.errors import GalleryError
from facerec.gallery.index import IndexPolicy, IndexStamp, PrototypeIndex
from facerec.gallery.records import Hit
from facerec.gallery.schema import (
    META_REVISION,
    PROTOTYPE_HNSW_INDEX,
    Identity,
    Meta,
    Prototype,
    PrototypeTombstone,
)
from facerec.gallery.search import check_query_dim
from facerec.gallery.state import GalleryState, PrototypeChange, checked, read_state
from facerec.storage import Database

log = logging.getLogger(__name__)

#: The revision and the names of the hits in one statement (PostgreSQL: one array parameter).
_REVISION_AND_NAMES_PG = (
    "SELECT m.value, i.id, i.name FROM meta AS m"
    f" LEFT JOIN identities AS i ON i.id = ANY(%(ids)s::bigint[]) WHERE m.key = '{META_REVISION}'"
)
#: Identity ids named per statement on SQLite.
_SQLITE_IDS = 10_000
#: Prototype rows fetched at a time when a cache is built or patched on PostgreSQL.
_FETCH_ROWS = 50_000
#: Prototype rows packed by the server: their ids as one array, their vectors' binary forms
#: as one bytea. The next `:n` rows after id `:after` (a build), or the rows `:ids` (a patch).
_PACKED = (
    "SELECT array_agg(identity_id ORDER BY identity_id),"
    " string_agg(vector_send(vector), ''::bytea ORDER BY identity_id)"
    " FROM (SELECT identity_id, vector FROM prototypes WHERE {where}) AS chunk"
)
_CHUNK_AFTER_PG = text(_PACKED.format(where="identity_id > :after ORDER BY identity_id LIMIT :n"))
_CHUNK_OF_PG = text(_PACKED.format(where="identity_id = ANY(:ids)")).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger()))
)


def stamp_of(state: GalleryState) -> IndexStamp | None:
    """What an index of this gallery must be stamped with; None: nothing to index yet."""
    if state.model is None or state.dim is None:
        return None
    return IndexStamp(state.revision, state.model.name, state.model.weights_sha256, state.dim)


class FaissSearch:
    """The FAISS cache of one gallery: in memory, and saved at `index_path` when there is one.

    Thread-safe: the cache is guarded by one lock.
    """

    def __init__(
        self, database: Database, index_path: Path | None, policy: IndexPolicy | None = None
    ) -> None:
        """`index_path` None: the cache lives in this process's memory only (PostgreSQL)."""
        self._db = database
        self._index_path = index_path
        self._policy = policy or IndexPolicy()
        self._lock = threading.RLock()
        self._index: PrototypeIndex | None = None
        self._connection: Connection | None = None  # PostgreSQL: see _revision_and_names

    @property
    def index_path(self) -> Path | None:
        return self._index_path

    @property
    def cached(self) -> PrototypeIndex | None:
        """The cache in memory as it stands (None: not built yet); for diagnostics and tests."""
        return self._index

    def close(self) -> None:
        with self._lock:
            self._index = None
            self._drop_connection()

    def search(self, queries: npt.NDArray[np.float32], k: int) -> list[list[Hit]]:
        """Search the cache, then name the hits in ONE statement that also reads the revision.

        When that revision is the cache's, the names and the cache describe
        the same snapshot and the answer stands; otherwise (another process
        wrote) the cache catches up in a read transaction and the search runs
        again. Either way a person deleted before the statement ran is never
        named: names come only from rows that statement still sees.
        """
        with self._lock:
            index = self._index
            refreshed = index is None or index.dim != queries.shape[1]
            if refreshed:
                index = self._refresh()
            while True:
                if index is None or queries.shape[0] == 0:
                    return [[] for _ in range(queries.shape[0])]
                check_query_dim(queries, index.dim, index.stamp.model_name)
                sims, ids = index.search(queries, k)
                revision, names = self._revision_and_names(ids)
                if refreshed or revision == index.stamp.revision:
                    break
                index, refreshed = self._refresh(), True
            return [
                [
                    Hit(names[int(i)], float(sim))
                    for sim, i in zip(srow, irow, strict=True)
                    if int(i) in names
                ]
                for srow, irow in zip(sims, ids, strict=True)
            ]

    def _refresh(self) -> PrototypeIndex | None:
        with self._db.read() as s:
            return self._current(s)

    def _revision_and_names(self, ids: npt.NDArray[np.int64]) -> tuple[int, dict[int, str]]:
        """The gallery revision and the names of `ids` (-1 skipped), read by one statement.

        On PostgreSQL the statement runs on a connection this search keeps
        (autocommit: no BEGIN, COMMIT or pool ping around it), as round trips
        to the server are most of a query's time; a connection the server
        dropped is replaced once. SQLite reads in an ordinary transaction.
        """
        wanted = np.unique(ids[ids >= 0]).tolist()
        if self._db.path is None:
            rows = self._autocommit(_REVISION_AND_NAMES_PG, {"ids": wanted})
            revision = int(rows[0][0]) if rows else 0
            return revision, {int(i): str(n) for _, i, n in rows if i is not None}
        # SQLite: one transaction, the ids in slices (it allows 32,766 variables a statement).
        names: dict[int, str] = {}
        with self._db.read() as s:
            revision = int(s.scalar(select(Meta.value).where(Meta.key == META_REVISION)) or 0)
            for lo in range(0, len(wanted), _SQLITE_IDS):
                part = wanted[lo : lo + _SQLITE_IDS]
                found = s.execute(select(Identity.id, Identity.name).where(Identity.id.in_(part)))
                names.update((int(i), str(n)) for i, n in found)
        return revision, names

    def _autocommit(self, sql: str, params: dict[str, Any]) -> Sequence[Any]:
        """`sql` on the kept autocommit connection, through psycopg itself, prepared once.

        The driver's own call skips SQLAlchemy's per-statement work, a good
        part of a query's CPU. A connection the server dropped (restart,
        idle timeout) is replaced once; any other error is the database's.
        """
        for attempt in (1, 2):
            if self._connection is None:
                try:
                    self._connection = self._db.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                except OperationalError as exc:
                    raise self._db.error(exc) from exc
            driver: Any = self._connection.connection.driver_connection
            try:
                rows: Sequence[Any] = driver.execute(sql, params, prepare=True).fetchall()
                return rows
            except self._connection.dialect.loaded_dbapi.Error as exc:
                lost = bool(driver.closed or driver.broken)
                self._connection.invalidate()
                self._drop_connection()
                if attempt == 2 or not lost:
                    reason = " ".join(str(exc).split())
                    raise GalleryError(f"{self._db.display}: {reason}") from exc
        raise AssertionError("unreachable")

    def _drop_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                connection.close()

    def dimension_pinned(self, s: Session, dim: int | None) -> None:
        """Drop pgvector's HNSW index if a `--index hnsw` process made one: it holds one dimension.

        The next cache is built for whatever dimension the stamp says.
        """
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"DROP INDEX IF EXISTS {PROTOTYPE_HNSW_INDEX}"))

    def forgetting(self) -> None:
        """Delete the file before a deletion: it holds the prototype.

        Deleted before the transaction and written again (patched) after it,
        so a process killed at any point leaves no copy of the prototype
        beside a committed deletion. The copy in memory is patched by
        `committed`; it dies with the process anyway.
        """
        if self._index_path is None:
            return
        with self._lock:
            try:
                self._index_path.unlink(missing_ok=True)
            except OSError as exc:
                raise GalleryError(
                    f"{self._index_path}: cannot delete the prototype index: {exc}"
                ) from exc

    def committed(
        self, old_revision: int, after: GalleryState, change: PrototypeChange | None
    ) -> None:
        """Bring the cache from `old_revision` to the committed state `after`.

        Applies `change` when the cache in memory is exactly at `old_revision`;
        otherwise catches up from the database (patch, else rebuild) if there
        is a cache to keep: one in memory, or a file. The database is already
        committed: a failure here is logged and the cache dropped, to be
        rebuilt by the next search.
        """
        with self._lock:
            try:
                stamp = stamp_of(after)
                index = self._index
                if stamp is None:
                    self._index = None
                    return
                expected = IndexStamp(old_revision, stamp.model_name, stamp.model_sha256, stamp.dim)
                if change is not None and index is not None and index.stamp == expected:
                    _apply(index, list(change.removed), change.upserts, stamp.dim)
                    index.restamp(after.revision)
                    self._save(index)
                elif index is not None or self._index_path is not None:
                    with self._db.read() as s:
                        self._current(s)
            except Exception:
                log.warning(
                    "could not update the prototype index; it will be rebuilt", exc_info=True
                )
                self._index = None

    def _current(self, s: Session) -> PrototypeIndex | None:
        """The cache at the revision of `s`'s snapshot: as it is, patched, loaded or rebuilt."""
        state = read_state(s)
        stamp = stamp_of(state)
        if stamp is None:
            self._index = None
            return None
        index = self._index
        if index is not None and index.stamp == stamp:
            return index
        self._index = None  # until it is current again: a failure below leaves no half-patch
        loaded = False
        if index is not None and not _patchable(index.stamp, stamp, state.tombstones_from):
            index = None
        if index is None and self._index_path is not None:
            index = PrototypeIndex.load(
                self._index_path, stamp, self._policy, since=state.tombstones_from
            )
            loaded = index is not None
        patched = index is not None and index.stamp != stamp
        if index is not None and patched:
            _catch_up(s, index, stamp)
        if index is not None and loaded and not _holds_the_rows(s, index):
            log.warning(
                "prototype index %s disagrees with the gallery; rebuilding it", self._index_path
            )
            index = None
        if index is None:
            index = self._rebuild(s, stamp)
        elif patched:
            self._save(index)
        self._index = index
        return index

    def _rebuild(self, s: Session, stamp: IndexStamp) -> PrototypeIndex:
        """A new cache from the prototypes table (inside the caller's snapshot), saved if on disk."""
        ids, vectors = read_prototypes(s, stamp.dim)
        index = PrototypeIndex.build(ids, vectors, stamp, self._policy)
        log.info(
            "rebuilt prototype index%s: %d people, revision %d",
            f" {self._index_path}" if self._index_path is not None else "",
            len(ids),
            stamp.revision,
        )
        self._save(index)
        return index

    def _save(self, index: PrototypeIndex) -> None:
        if self._index_path is None:
            return
        try:
            index.save(self._index_path)
        except OSError as exc:
            # The database is fine; the next process just rebuilds the index.
            log.warning("cannot save prototype index %s: %s", self._index_path, exc)


def _patchable(found: IndexStamp, wanted: IndexStamp, tombstones_from: int) -> bool:
    """Whether a cache stamped `found` can catch up to `wanted` from rows and tombstones."""
    return (found.model_name, found.model_sha256, found.dim) == (
        wanted.model_name,
        wanted.model_sha256,
        wanted.dim,
    ) and tombstones_from <= found.revision <= wanted.revision


def _catch_up(s: Session, index: PrototypeIndex, stamp: IndexStamp) -> None:
    """Patch `index` to `stamp.revision` with the rows and tombstones written after its revision.

    A row present in the snapshot wins over a tombstone of the same id: the
    snapshot is the truth.
    """
    since = index.stamp.revision
    ids, vectors = read_prototypes(s, stamp.dim, since=since)
    gone = set(
        s.scalars(select(PrototypeTombstone.identity_id).where(PrototypeTombstone.revision > since))
    )
    gone.difference_update(ids.tolist())
    index.remove(np.array(sorted(gone), dtype=np.int64))
    index.upsert(ids, vectors)
    index.restamp(stamp.revision)
    log.info(
        "prototype index caught up from revision %d to %d: %d written, %d deleted",
        since,
        stamp.revision,
        len(ids),
        len(gone),
    )


def _apply(
    index: PrototypeIndex,
    removed: list[int],
    upserts: tuple[tuple[int, str, npt.NDArray[np.float32]], ...],
    dim: int,
) -> None:
    index.remove(removed)
    index.upsert(
        [u[0] for u in upserts],
        np.stack([u[2] for u in upserts]) if upserts else np.zeros((0, dim), np.float32),
    )


def _holds_the_rows(s: Session, index: PrototypeIndex) -> bool:
    """Whether a cache read from a file holds exactly the ids of the prototype rows."""
    held = np.sort(index.ids())
    rows = np.fromiter(
        s.scalars(select(Prototype.identity_id).order_by(Prototype.identity_id)), dtype=np.int64
    )
    return np.array_equal(held, rows)


def read_prototypes(
    s: Session, dim: int, *, since: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Ids and vectors (n, dim) of the prototype rows (those written after revision `since`).

    On PostgreSQL each vector travels in pgvector's binary form
    (`vector_send`), and the server packs `_FETCH_ROWS` rows at a time into
    one id array and one byte string (`_CHUNK_PG`): a handful of values to
    decode rather than a Python row per person.
    """
    where = Prototype.revision > since if since is not None else None
    if s.get_bind().dialect.name != "postgresql":
        stmt = select(Prototype.identity_id, Prototype.vector).order_by(Prototype.identity_id)
        rows = s.execute(stmt if where is None else stmt.where(where)).all()
        ids = np.array([i for i, _ in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, dim), np.float32)
        return ids, np.stack([checked(v, dim, f"prototype {i}") for i, v in rows])
    ids_parts: list[npt.NDArray[np.int64]] = []
    vector_parts: list[npt.NDArray[np.float32]] = []
    row_bytes = 4 + 4 * dim  # int16 dimension, int16 unused, then big-endian float32s
    written = (
        None
        if since is None
        else sorted(s.scalars(select(Prototype.identity_id).where(Prototype.revision > since)))
    )
    after = -1
    while True:
        if written is None:
            got_ids, blob = s.execute(_CHUNK_AFTER_PG, {"after": after, "n": _FETCH_ROWS}).one()
        else:
            at = len(ids_parts) * _FETCH_ROWS
            part = written[at : at + _FETCH_ROWS]
            got_ids, blob = s.execute(_CHUNK_OF_PG, {"ids": part}).one() if part else (None, b"")
        if not got_ids:
            break
        chunk_ids = np.asarray(got_ids, dtype=np.int64)
        if len(blob) != row_bytes * len(chunk_ids):
            raise GalleryError(f"a prototype does not have the gallery's dimension {dim}")
        raw = np.frombuffer(blob, dtype=np.uint8).reshape(len(chunk_ids), row_bytes)
        if np.any(raw[:, :2].copy().view(">i2").reshape(-1) != dim):
            raise GalleryError(f"a prototype does not have the gallery's dimension {dim}")
        ids_parts.append(chunk_ids)
        vector_parts.append(raw[:, 4:].copy().view(">f4").astype(np.float32))
        after = int(chunk_ids[-1])
    if not ids_parts:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    ids = np.concatenate(ids_parts)
    vectors = np.concatenate(vector_parts)
    return ids, vectors
