"""Prototype search on SQLite: a FAISS index, a disposable cache of the `prototypes` table.

Every write follows one rule, taken from InsightFace's server guide: the
`Gallery` changes the database and bumps the `meta.revision` counter in ONE
transaction, commits, then this cache is brought along and stamped with the
new revision. If the index is not exactly one revision behind (another
process wrote in between, or the file is missing, stale or damaged), it is
rebuilt from the `prototypes` table instead of patched. Before every search
the stamp is compared with the database's revision, so a write made by
another process is seen by the next search. A write that raises rolls back
and never reaches the index.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from facerec.errors import GalleryError
from facerec.gallery.index import IndexPolicy, IndexStamp, PrototypeIndex
from facerec.gallery.records import Hit
from facerec.gallery.schema import Identity, Prototype
from facerec.gallery.search import check_query_dim
from facerec.gallery.state import GalleryState, PrototypeChange, checked, read_state
from facerec.storage import Database

log = logging.getLogger(__name__)


def stamp_of(state: GalleryState) -> IndexStamp | None:
    """What an index of this gallery must be stamped with; None: nothing to index yet."""
    if state.model is None or state.dim is None:
        return None
    return IndexStamp(state.revision, state.model.name, state.model.weights_sha256, state.dim)


class FaissSearch:
    """The FAISS index of one SQLite gallery, in memory and saved at `index_path`.

    Thread-safe: the index and the id -> name map are guarded by one lock.
    """

    def __init__(
        self, database: Database, index_path: Path, policy: IndexPolicy | None = None
    ) -> None:
        self._db = database
        self._index_path = index_path
        self._policy = policy or IndexPolicy()
        self._lock = threading.RLock()
        self._index: PrototypeIndex | None = None
        self._names: dict[int, str] = {}
        self._names_revision: int | None = None

    @property
    def index_path(self) -> Path:
        return self._index_path

    def close(self) -> None:
        with self._lock:
            self._index = None
            self._names = {}
            self._names_revision = None

    def search(self, queries: npt.NDArray[np.float32], k: int) -> list[list[Hit]]:
        with self._lock:
            current = self._current_index()
            if current is None or queries.shape[0] == 0:
                return [[] for _ in range(queries.shape[0])]
            index, names = current
            check_query_dim(queries, index.dim, index.stamp.model_name)
            sims, ids = index.search(queries, k)
            return [
                [
                    Hit(names[int(i)], float(sim))
                    for sim, i in zip(srow, irow, strict=True)
                    if i >= 0
                ]
                for srow, irow in zip(sims, ids, strict=True)
            ]

    def dimension_pinned(self, s: Session, dim: int | None) -> None:
        """Nothing: the next index is built for whatever dimension the stamp says."""

    def forgetting(self) -> None:
        """Delete the file (and the copy in memory) before a deletion: it holds the prototype.

        Deleted before the transaction and rebuilt after it, so a process
        killed at any point leaves no copy of the prototype beside a
        committed deletion (and a failed deletion costs only a rebuild).
        """
        with self._lock:
            self._index = None
            try:
                self._index_path.unlink(missing_ok=True)
            except OSError as exc:
                raise GalleryError(
                    f"{self._index_path}: cannot delete the prototype index: {exc}"
                ) from exc

    def committed(
        self, old_revision: int, after: GalleryState, change: PrototypeChange | None
    ) -> None:
        """Bring the index from `old_revision` to the committed state `after`.

        Patches the index when it is exactly at `old_revision` (in memory or on
        disk); otherwise, or for a wholesale change, rebuilds it from the
        database. The database is already committed: a failure here is logged
        and the index dropped, to be rebuilt by the next search.
        """
        with self._lock:
            stamp = stamp_of(after)
            try:
                if stamp is None:
                    self._index = None
                    return
                expected = IndexStamp(old_revision, stamp.model_name, stamp.model_sha256, stamp.dim)
                index = (
                    self._index
                    if self._index is not None and self._index.stamp == expected
                    else None
                )
                if index is None and change is not None:
                    index = PrototypeIndex.load(self._index_path, expected, self._policy)
                if index is None or change is None:
                    self._index = None
                    self._current_index(try_file=False)  # the file predates this commit
                    return
                index.remove(list(change.removed))
                index.upsert(
                    [u[0] for u in change.upserts],
                    np.stack([u[2] for u in change.upserts])
                    if change.upserts
                    else np.zeros((0, stamp.dim), np.float32),
                )
                index.restamp(after.revision)
                if self._names_revision == old_revision:
                    for identity_id in change.removed:
                        self._names.pop(identity_id, None)
                    self._names.update({u[0]: u[1] for u in change.upserts})
                    self._names_revision = after.revision
                self._index = index
                self._save(index)
            except Exception:
                log.warning(
                    "could not update the prototype index; it will be rebuilt", exc_info=True
                )
                self._index = None

    def _current_index(
        self, *, try_file: bool = True
    ) -> tuple[PrototypeIndex, dict[int, str]] | None:
        """The index and id->name map at the database's current revision.

        The index in memory if its stamp matches, else the saved file if its
        stamp matches (`try_file`), else one rebuilt from the database and saved.
        """
        with self._db.read() as s:
            state = read_state(s)
            stamp = stamp_of(state)
            if stamp is None:
                self._index = None
                return None
            refreshed = False
            if self._index is None or self._index.stamp != stamp:
                self._index = (
                    PrototypeIndex.load(self._index_path, stamp, self._policy) if try_file else None
                )
                refreshed = True
            if self._names_revision != state.revision:
                self._names = dict(s.execute(select(Identity.id, Identity.name)).all())
                self._names_revision = state.revision
                refreshed = True
            index = self._index
            if index is not None and refreshed and set(index.ids().tolist()) != self._names.keys():
                log.warning(
                    "prototype index %s disagrees with the gallery; rebuilding it", self._index_path
                )
                index = None
            if index is None:
                index = self._rebuild(s, stamp)
                self._index = index
            return index, self._names

    def _rebuild(self, s: Session, stamp: IndexStamp) -> PrototypeIndex:
        """A new index from the prototypes table (inside the caller's snapshot), saved to disk."""
        rows = s.execute(
            select(Prototype.identity_id, Prototype.vector).order_by(Prototype.identity_id)
        ).all()
        ids = np.array([i for i, _ in rows], dtype=np.int64)
        vectors = (
            np.stack([checked(v, stamp.dim, f"prototype {i}") for i, v in rows])
            if rows
            else np.zeros((0, stamp.dim), np.float32)
        )
        index = PrototypeIndex.build(ids, vectors, stamp, self._policy)
        log.info(
            "rebuilt prototype index %s: %d people, revision %d",
            self._index_path,
            len(rows),
            stamp.revision,
        )
        self._save(index)
        return index

    def _save(self, index: PrototypeIndex) -> None:
        try:
            index.save(self._index_path)
        except OSError as exc:
            # The database is fine; the next process just rebuilds the index.
            log.warning("cannot save prototype index %s: %s", self._index_path, exc)
