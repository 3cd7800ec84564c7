"""The gallery: enrolled people in the database (the truth) and a search over their prototypes.

`Gallery` owns the gallery's tables in one `facerec.storage.Database`
(a SQLite file or PostgreSQL) and one `PrototypeSearch`: a FAISS cache
(`faiss_search`; beside a SQLite file, in memory over PostgreSQL), or, with
`--index hnsw` on PostgreSQL, pgvector inside the database
(`pgvector_search`). Every write changes the tables and bumps the
`meta.revision` counter in ONE transaction, queued behind every other
facerec writer (see `facerec.storage.database`), then tells the search what
it did. A write that raises rolls back and never reaches the search, so a
failed enrolment leaves both exactly as they were.

Each person is represented for 1:N search by a prototype, the normalised mean
of their normalised sample embeddings: one vector per person keeps the index
small and makes the similarity to a person independent of how many photos of
them were enrolled.

A gallery is pinned to one model (name + weights hash, and its embedding
dimension) at the first enrolment: embeddings of different models live in
unrelated spaces, and comparing them gives confident nonsense.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facerec.decisions.names import name_key as _name_key
from facerec.decisions.names import validate_name
from facerec.decisions.prototypes import prototype as _prototype
from facerec.errors import (
    GalleryError,
    ModelMismatchError,
    PersonChangedError,
    UnknownPersonError,
)
from facerec.gallery.faiss_search import FaissSearch
from facerec.gallery.forget import ForgetTarget
from facerec.gallery.index import IndexPolicy
from facerec.gallery.index_kind import IndexKind
from facerec.gallery.pgvector_search import PgvectorSearch
from facerec.gallery.records import (
    EnrollResult,
    GalleryInfo,
    Hit,
    NewSample,
    Person,
    PersonSnapshot,
    PersonVersion,
    StoredSample,
)
from facerec.gallery.schema import (
    META_DETECTOR,
    META_EMBEDDING_DIM,
    META_MODEL_NAME,
    META_MODEL_SHA256,
    META_REVISION,
    META_TOMBSTONES_FROM,
    Identity,
    Meta,
    Prototype,
    PrototypeTombstone,
    Sample,
    Threshold,
)
from facerec.gallery.search import PrototypeSearch
from facerec.gallery.state import GalleryState, PrototypeChange, checked, read_state
from facerec.models.base import ModelIdentity
from facerec.storage import Database, DatabaseUrl, insert
from facerec.storage.migrate import stored_revision

log = logging.getLogger(__name__)

T = TypeVar("T")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Writes whose deletions keep their tombstones: a search cache further behind rebuilds.
TOMBSTONES_KEPT = 100_000
#: Tombstones are pruned on every this many-th write.
TOMBSTONE_PRUNE_EVERY = 1_000


@dataclass(frozen=True, slots=True, eq=False)
class _Prepared:
    """A validated `NewSample`, converted to column values."""

    embedding: npt.NDArray[np.float32]
    crop: bytes
    crop_landmarks: str
    source: str
    content_sha256: str
    box: str
    det_score: float
    quality: str


class Gallery:
    """One gallery in a database, plus the prototype search that follows it. Open with `Gallery.open`.

    Safe to share between threads (writes are serialised by a lock, the
    search guards itself) and between processes and machines (every write
    queues behind the others in the database; see `facerec.storage.database`).
    """

    def __init__(
        self,
        database: Database,
        *,
        index_path: Path | None = None,
        index: IndexKind = IndexKind.AUTO,
        owns_database: bool = False,
    ) -> None:
        """Use `Gallery.open`. `database` must be migrated; it is closed with the gallery if owned.

        `index_path`: where a SQLite gallery keeps its FAISS cache (default:
        beside the database, `gallery.db.faiss`). A PostgreSQL gallery keeps
        its cache in memory only and takes no index file.
        `index`: the FAISS layout (`auto`: exact, then IVF from
        `facerec.gallery.index.EXACT_BELOW` people); `hnsw`, PostgreSQL only,
        searches with pgvector's HNSW index in the database instead.
        """
        self._db = database
        self._owns_db = owns_database
        self._search: PrototypeSearch
        self._index_path: Path | None = None
        if index is IndexKind.HNSW:
            if database.path is not None:
                raise GalleryError(
                    f"{database.display}: --index hnsw is pgvector's index, for PostgreSQL "
                    "galleries; a SQLite gallery searches with FAISS (auto, exact or ivf)"
                )
            if index_path is not None:
                raise ValueError(
                    f"{database.display}: --index hnsw searches in the database; "
                    "it has no index file"
                )
            hnsw = PgvectorSearch(database)
            hnsw.ensure_index()
            self._search = hnsw
        elif database.path is not None:
            self._index_path = (
                Path(index_path).expanduser().absolute()
                if index_path is not None
                else database.path.with_suffix(database.path.suffix + ".faiss")
            )
            self._search = FaissSearch(database, self._index_path, IndexPolicy(kind=index))
        else:
            if index_path is not None:
                raise ValueError(
                    f"{database.display}: a PostgreSQL gallery keeps its search cache in "
                    "memory; it has no index file"
                )
            self._search = FaissSearch(database, None, IndexPolicy(kind=index))
        self._lock = threading.RLock()
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str] | DatabaseUrl | Database,
        *,
        index_path: Path | None = None,
        index: IndexKind = IndexKind.AUTO,
    ) -> Gallery:
        """Open (creating if needed) the gallery at `target` and migrate it to the current schema.

        `target`: a SQLite file path, a `sqlite:///` or `postgresql://` URL
        (`facerec.storage.parse_url`), or an open `Database` (shared: the
        gallery does not close it). A SQLite gallery's FAISS index lives next
        to the file unless `index_path` says otherwise; it is loaded lazily,
        on the first search or write, so listing people stays instant on a
        large gallery.
        """
        if isinstance(target, Database):
            return cls(target, index_path=index_path, index=index)
        database = Database.open(target)
        try:
            return cls(database, index_path=index_path, index=index, owns_database=True)
        except BaseException:
            database.close()
            raise

    def close(self) -> None:
        """Release the search's memory and, if the gallery opened it, the database. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._search.close()
            if self._owns_db:
                self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({self._db.display!r})"

    # -- properties -----------------------------------------------------------------------------
    @property
    def database(self) -> Database:
        """The database the gallery lives in, for the stores whose tables live beside it."""
        return self._db

    @property
    def display(self) -> str:
        """The gallery's database for messages (a path, or a URL without its password)."""
        return self._db.display

    @property
    def path(self) -> Path:
        """The SQLite file. A PostgreSQL gallery has none: GalleryError (use `database`)."""
        if self._db.path is None:
            raise GalleryError(
                f"{self._db.display}: a PostgreSQL gallery has no file; "
                "stores beside it must open `Gallery.database`"
            )
        return self._db.path

    @property
    def index_path(self) -> Path | None:
        """The FAISS index file of a SQLite gallery; None on PostgreSQL (the cache is in memory)."""
        return self._index_path

    @property
    def model(self) -> ModelIdentity | None:
        """The pinned model, read from the database (another process may have re-pinned it)."""
        with self._read() as s:
            return read_state(s).model

    @property
    def detector(self) -> str | None:
        """The detector that cut the enrolled faces (None: nothing enrolled yet).

        Sessions default to it, so queries are cut like the enrolled faces
        and the shipped operating points (measured per detector) apply.
        """
        with self._read() as s:
            return read_state(s).detector

    @property
    def revision(self) -> int:
        """Number of committed writes; stamps the index."""
        with self._read() as s:
            return read_state(s).revision

    # -- model pin ------------------------------------------------------------------------------
    def check_model(self, model: ModelIdentity) -> None:
        """Raise ModelMismatchError if the gallery is pinned to a model other than `model`.

        Called before any comparison so that a query embedded by one model is
        never scored against prototypes of another.
        """
        pinned = self.model
        if pinned is not None and pinned != model:
            raise ModelMismatchError(self._db.display, pinned, model)

    # -- writes ---------------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        samples: Sequence[NewSample],
        model: ModelIdentity,
        detector: str | None = None,
        *,
        expect: PersonSnapshot | None = None,
    ) -> EnrollResult:
        """Add `samples` to `name` (created if new) in one transaction; all or nothing.

        With `expect` (what an enrolment check read, `person_snapshot`), the
        write is refused with `PersonChangedError` when the person's samples
        are no longer what the check saw: the comparison runs under the write
        lock, so of two enrolments that checked one new name at once, the
        second is sent back to check against the first.

        A sample whose source file (`content_sha256`) is already enrolled for
        this person, or appears twice in `samples`, is skipped and counted:
        re-running an enrolment must not weight a photo twice. The first
        enrolment pins `model` and its embedding dimension, and records
        `detector` (the one that found these faces) when given.
        """
        name = validate_name(name)
        if not samples:
            raise ValueError(f"enrolling {name!r} needs at least one sample")
        total = len(samples)
        prepared = [_prepare(pos, total, smp) for pos, smp in enumerate(samples, 1)]

        def work(s: Session, state: GalleryState) -> tuple[EnrollResult, PrototypeChange]:
            dim = self._pin_model(s, state, model, detector, int(prepared[0].embedding.shape[0]))
            now = _now()
            identity = s.scalar(select(Identity).where(Identity.name == name))
            if expect is not None and _version(s, identity) != expect.version:
                raise PersonChangedError(name)
            if identity is None:
                identity = Identity(name=name, created_at=now, updated_at=now)
                s.add(identity)
                s.flush()
            added, skipped = _add_samples(s, identity.id, prepared, dim, model, now)
            change = PrototypeChange()
            if added:
                identity.updated_at = now
                s.flush()
                vector = _store_prototype(s, identity.id, dim, now)
                change = PrototypeChange(upserts=((identity.id, name, vector),))
            n_samples = s.scalar(
                select(func.count()).select_from(Sample).where(Sample.identity_id == identity.id)
            )
            person = Person(name, int(n_samples or 0), identity.created_at, identity.updated_at)
            return EnrollResult(person, added, skipped), change

        return self._commit(work)

    def _pin_model(
        self,
        s: Session,
        state: GalleryState,
        model: ModelIdentity,
        detector: str | None,
        dim: int,
    ) -> int:
        """The gallery's embedding dimension; the first enrolment pins `model`, `detector` and
        `dim` (the first sample's), a later one with another model is refused."""
        if state.model is None:
            _set_meta(s, META_MODEL_NAME, model.name)
            _set_meta(s, META_MODEL_SHA256, model.weights_sha256)
            if detector is not None:
                _set_meta(s, META_DETECTOR, str(detector))
        elif state.model != model:
            raise ModelMismatchError(self._db.display, state.model, model)
        if state.dim is not None:
            return state.dim
        _set_meta(s, META_EMBEDDING_DIM, str(dim))
        self._search.dimension_pinned(s, dim)
        return dim

    def remove(self, name: str) -> int:
        """Delete `name` with all their samples and prototype; returns how many samples went.

        Only the enrolment: `FaceRec.forget` also deletes their faces from
        the album and the audit log, in the same transaction.
        """
        return self.forget(name, 1.0, _nothing_else)[0]

    def forget(
        self, name: str, threshold: float, erase: Callable[[Session, ForgetTarget], T]
    ) -> tuple[int, T]:
        """Delete `name` and, in the SAME transaction, whatever `erase` deletes of their faces.

        `erase` gets this transaction's session and the person (their
        prototype, the `threshold` at which a face is theirs) before their rows
        go, so the other tables of this file can find faces matched to them or
        like them; if it raises, nothing is deleted. Returns the number of
        samples deleted and what `erase` returned.

        A FAISS index file (SQLite) holds their prototype: it is deleted
        before the transaction and written again, without them, after it, so
        a process killed at any point leaves no copy of the prototype beside a
        committed deletion (and a failed one costs only a rebuild). Every
        other process's cache drops them at its next search (the tombstone). On SQLite deleted rows are
        overwritten with zeros (`secure_delete`); `compact` says what is left
        elsewhere (the write-ahead log; PostgreSQL's dead tuples).
        """
        key = _name_key(name)
        if not self.has(key):
            raise UnknownPersonError(key)
        self._search.forgetting()

        def work(s: Session, state: GalleryState) -> tuple[tuple[int, T], PrototypeChange]:
            row = s.execute(
                select(Identity.id, Prototype.vector)
                .outerjoin(Prototype, Prototype.identity_id == Identity.id)
                .where(Identity.name == key)
            ).first()
            if row is None:
                raise UnknownPersonError(key)
            identity_id, stored = row
            n = s.scalar(
                select(func.count()).select_from(Sample).where(Sample.identity_id == identity_id)
            )
            if stored is None or state.model is None:
                raise GalleryError(
                    f"{self._db.display}: {key!r} has no prototype; the gallery is damaged"
                )
            prototype = checked(stored, state.dim, f"prototype of {key!r}")
            prototype = (prototype / np.linalg.norm(prototype)).astype(np.float32)
            target = ForgetTarget(identity_id, key, state.model, prototype, float(threshold))
            erased = erase(s, target)
            # Samples and the prototype go with it: ON DELETE CASCADE (foreign_keys=ON on SQLite).
            s.execute(delete(Identity).where(Identity.id == identity_id))
            return (int(n or 0), erased), PrototypeChange(removed=(identity_id,))

        return self._commit(work)

    def compact(self) -> bool:
        """After a deletion, leave no deleted byte in the database's files; True when done.

        SQLite: VACUUM and an emptied write-ahead log (False when another
        process kept the log busy). PostgreSQL: always False; deleted rows stay
        as dead tuples until autovacuum, and in the WAL and backups
        (`facerec.storage.Database.compact` says what an operator does).
        """
        with self._lock:
            self._check_open()
            return self._db.compact()

    def reembed(self, model: ModelIdentity, embeddings: Mapping[int, npt.ArrayLike]) -> None:
        """Replace every sample's embedding with one from `model`, re-pin, recompute prototypes.

        `embeddings` maps sample id (`StoredSample.id`) to the new embedding and
        must cover exactly the gallery's samples: a partial re-embed would leave
        two models' vectors mixed in one person's prototype. One transaction.
        """
        vectors = {
            int(k): _as_vector(v, f"new embedding for sample {k}") for k, v in embeddings.items()
        }
        dims = {int(v.shape[0]) for v in vectors.values()}
        if len(dims) > 1:
            raise ValueError(f"new embeddings have mixed dimensions {sorted(dims)}")
        dim = dims.pop() if dims else None

        def work(s: Session, state: GalleryState) -> tuple[None, None]:
            owners = dict(s.execute(select(Sample.id, Sample.identity_id)).all())
            missing = sorted(owners.keys() - vectors.keys())
            extra = sorted(vectors.keys() - owners.keys())
            if missing or extra:
                raise ValueError(
                    "reembed needs a new embedding for every sample and no others: "
                    f"{len(missing)} missing (ids {missing[:5]}), {len(extra)} unknown "
                    f"(ids {extra[:5]}); was the gallery changed meanwhile?"
                )
            _set_meta(s, META_MODEL_NAME, model.name)
            _set_meta(s, META_MODEL_SHA256, model.weights_sha256)
            if dim is None:  # no samples: the next enrolment pins the dimension
                s.execute(delete(Meta).where(Meta.key == META_EMBEDDING_DIM))
                self._search.dimension_pinned(s, None)
                return None, None
            _set_meta(s, META_EMBEDDING_DIM, str(dim))
            if dim != state.dim:  # before the vectors change: an index holds one dimension
                self._search.dimension_pinned(s, None)
            s.execute(update(Sample), [{"id": sid, "embedding": v} for sid, v in vectors.items()])
            members: dict[int, list[int]] = defaultdict(list)
            for sid, identity_id in owners.items():
                members[identity_id].append(sid)
            now = _now()
            s.execute(
                update(Prototype),
                [
                    {
                        "identity_id": identity_id,
                        "vector": _prototype(np.stack([vectors[i] for i in sids])),
                        "n_samples": len(sids),
                        "updated_at": now,
                    }
                    for identity_id, sids in members.items()
                ],
            )
            if dim != state.dim:
                self._search.dimension_pinned(s, dim)
            return None, None  # new model, new vectors: rebuild the index

        self._commit(work)

    def set_threshold(
        self, model_name: str, threshold: float, target_far: float | None = None
    ) -> None:
        """Store a calibrated cosine threshold for `model_name` (and the FAR it was chosen for)."""
        if not model_name:
            raise ValueError("model_name must not be empty")
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise ValueError(f"a cosine threshold must lie in [-1, 1], got {threshold}")
        if target_far is not None and not (math.isfinite(target_far) and 0.0 < target_far <= 1.0):
            raise ValueError(f"target FAR must lie in (0, 1], got {target_far}")

        def work(s: Session, state: GalleryState) -> tuple[None, PrototypeChange]:
            values = {
                "threshold": float(threshold),
                "target_far": None if target_far is None else float(target_far),
                "calibrated_at": _now(),
            }
            stmt = insert(s, Threshold).values(model_name=model_name, **values)
            s.execute(
                stmt.on_conflict_do_update(index_elements=[Threshold.model_name], set_=values)
            )
            return None, PrototypeChange()  # prototypes untouched: only the stamp moves

        self._commit(work)

    # -- reads ----------------------------------------------------------------------------------
    def threshold(self, model_name: str) -> float | None:
        """The calibrated threshold for `model_name`, or None if it was never calibrated here."""
        with self._read() as s:
            return s.scalar(select(Threshold.threshold).where(Threshold.model_name == model_name))

    def people(self) -> list[Person]:
        """Everyone enrolled, sorted by name."""
        stmt = (
            select(Identity.name, func.count(Sample.id), Identity.created_at, Identity.updated_at)
            .outerjoin(Sample, Sample.identity_id == Identity.id)
            .group_by(Identity.id)
            .order_by(Identity.name)
        )
        with self._read() as s:
            return [Person(n, int(c), ca, ua) for n, c, ca, ua in s.execute(stmt)]

    def sample_count(self, name: str) -> int:
        """How many photos `name`'s prototype is the mean of (UnknownPersonError if none)."""
        key = _name_key(name)
        with self._read() as s:
            row = s.execute(
                select(Identity.id, func.count(Sample.id))
                .outerjoin(Sample, Sample.identity_id == Identity.id)
                .where(Identity.name == key)
                .group_by(Identity.id)
            ).first()
        if row is None:
            raise UnknownPersonError(key)
        return int(row[1])

    def size_and_most_samples(self) -> tuple[int, int]:
        """(people enrolled, the most photos behind any one prototype), in one read."""
        per_person = (
            select(func.count(Sample.id).label("n"))
            .select_from(Identity)
            .outerjoin(Sample, Sample.identity_id == Identity.id)
            .group_by(Identity.id)
            .subquery()
        )
        with self._read() as s:
            people, most = s.execute(select(func.count(), func.max(per_person.c.n))).one()
        return int(people), int(most or 0)

    def has(self, name: str) -> bool:
        with self._read() as s:
            return s.scalar(select(Identity.id).where(Identity.name == _name_key(name))) is not None

    def prototype(self, name: str) -> npt.NDArray[np.float32]:
        """`name`'s prototype (unit length), read from the database rather than the cache."""
        key = _name_key(name)
        with self._read() as s:
            state = read_state(s)
            vector = s.scalar(
                select(Prototype.vector)
                .join(Identity, Identity.id == Prototype.identity_id)
                .where(Identity.name == key)
            )
            if vector is None:
                raise UnknownPersonError(key)
            return checked(vector, state.dim, f"prototype of {key!r}")

    def person_snapshot(self, name: str) -> PersonSnapshot:
        """`name`'s prototype (None if they have none) and version, from one read transaction."""
        key = validate_name(name)
        with self._read() as s:
            identity = s.scalar(select(Identity).where(Identity.name == key))
            vector = (
                None
                if identity is None
                else s.scalar(select(Prototype.vector).where(Prototype.identity_id == identity.id))
            )
            prototype = (
                None
                if vector is None
                else checked(vector, read_state(s).dim, f"prototype of {key!r}")
            )
            return PersonSnapshot(key, _version(s, identity), prototype)

    def prototypes(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """All names (sorted) and their prototypes as an (N, D) matrix, from one snapshot."""
        stmt = (
            select(Identity.name, Prototype.vector)
            .join(Prototype, Prototype.identity_id == Identity.id)
            .order_by(Identity.name)
        )
        with self._read() as s:
            state = read_state(s)
            rows = s.execute(stmt).all()
            names = [n for n, _ in rows]
            if not rows:
                return names, np.zeros((0, state.dim or 0), np.float32)
            return names, np.stack([checked(v, state.dim, f"prototype of {n!r}") for n, v in rows])

    def samples(self) -> Iterator[StoredSample]:
        """Every stored sample, in id order, from one consistent snapshot (streamed)."""
        stmt = (
            select(Sample, Identity.name)
            .join(Identity, Identity.id == Sample.identity_id)
            .order_by(Sample.id)
            .execution_options(yield_per=256)
        )
        with self._read() as s:
            dim = read_state(s).dim
            for row, name in s.execute(stmt):
                embedding = checked(row.embedding, dim, f"sample {row.id}")
                embedding.flags.writeable = False
                yield StoredSample(
                    id=row.id,
                    name=name,
                    embedding=embedding,
                    crop_png=row.crop,
                    crop_landmarks=tuple(
                        (float(x), float(y)) for x, y in json.loads(row.crop_landmarks)
                    ),
                    source=row.source,
                    content_sha256=row.content_sha256,
                    box=_box(json.loads(row.box)),
                    det_score=row.det_score,
                    quality={str(k): float(v) for k, v in json.loads(row.quality).items()},
                    created_at=row.created_at,
                )

    def search(self, queries: npt.ArrayLike, k: int) -> list[list[Hit]]:
        """The `k` most similar people for each query row (cosine similarity, best first).

        Queries are re-normalised, so raw embeddings work too. `k` is clipped to
        the number of people; an empty gallery gives an empty list per query.
        """
        q = np.array(queries, dtype=np.float32)
        if q.ndim != 2:
            raise ValueError(f"queries must be a 2-D array (n, dim), got shape {q.shape}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self._check_open()
        return self._search.search(_normalise_rows(q) if q.shape[0] else q, k)

    def info(self) -> GalleryInfo:
        """Counts, pin, revisions and threshold from one snapshot."""
        with self._read() as s:
            state = read_state(s)
            n_people = s.scalar(select(func.count()).select_from(Identity)) or 0
            n_samples = s.scalar(select(func.count()).select_from(Sample)) or 0
            threshold = None
            if state.model is not None:
                threshold = s.scalar(
                    select(Threshold.threshold).where(Threshold.model_name == state.model.name)
                )
            schema = stored_revision(s.connection())
        return GalleryInfo(
            path=self._db.path,
            index_path=self._index_path,
            database=self._db.display,
            model=state.model,
            revision=state.revision,
            schema_revision=schema,
            n_people=int(n_people),
            n_samples=int(n_samples),
            threshold=threshold,
        )

    # -- transactions ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise GalleryError(f"{self._db.display}: the gallery is closed")

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read transaction: every query inside sees the same snapshot."""
        self._check_open()
        with self._db.read() as s:
            yield s

    def _commit(
        self, work: Callable[[Session, GalleryState], tuple[T, PrototypeChange | None]]
    ) -> T:
        """Run `work` in one write transaction with the revision bump, then tell the search.

        `work` returns its result and what it did to the prototypes (None: too
        much to patch, rebuild). If `work` raises, the transaction rolls back
        and the search is not told.
        """
        with self._lock:
            self._check_open()
            with self._db.write() as s:
                before = read_state(s)
                _set_meta(s, META_REVISION, str(before.revision + 1))
                result, change = work(s, before)
                s.flush()
                _prune_tombstones(s, before.revision + 1, before.tombstones_from)
                after = read_state(s)
            self._search.committed(before.revision, after, change)
            return result


# -- helpers ----------------------------------------------------------------------------------------
def _nothing_else(s: Session, target: ForgetTarget) -> None:
    """`Gallery.remove`: the enrolment only."""


def _prune_tombstones(s: Session, revision: int, tombstones_from: int) -> None:
    """Every `TOMBSTONE_PRUNE_EVERY` writes, forget tombstones older than `TOMBSTONES_KEPT` writes.

    A tombstone holds no face, only an id; they are pruned so the table stays
    small on a gallery that turns over. A cache further behind than that
    rebuilds (`meta.tombstones_from` says so).
    """
    cut = revision - TOMBSTONES_KEPT
    if revision % TOMBSTONE_PRUNE_EVERY or cut <= tombstones_from:
        return
    s.execute(delete(PrototypeTombstone).where(PrototypeTombstone.revision <= cut))
    _set_meta(s, META_TOMBSTONES_FROM, str(cut))


def _version(s: Session, identity: Identity | None) -> PersonVersion:
    if identity is None:
        return None
    samples = s.execute(
        select(Sample.id, Sample.content_sha256)
        .where(Sample.identity_id == identity.id)
        .order_by(Sample.id)
    )
    return identity.id, tuple((int(i), str(sha)) for i, sha in samples)


def _now() -> datetime:
    return datetime.now(UTC)


def _set_meta(s: Session, key: str, value: str) -> None:
    stmt = insert(s, Meta).values(key=key, value=value)
    s.execute(stmt.on_conflict_do_update(index_elements=[Meta.key], set_={"value": value}))


def _as_vector(value: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    """A finite, non-zero 1-D float32 vector, or ValueError naming `what`."""
    v = np.array(value, dtype=np.float32)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{what}: expected a 1-D embedding, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what}: embedding contains NaN or infinity")
    if not np.any(v):
        raise ValueError(f"{what}: embedding is all zeros")
    return v


def _finite(value: object, what: str) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: not a number: {value!r}") from exc
    if not math.isfinite(f):
        raise ValueError(f"{what}: not finite: {f}")
    return f


def _add_samples(
    s: Session,
    identity_id: int,
    prepared: Sequence[_Prepared],
    dim: int,
    model: ModelIdentity,
    now: datetime,
) -> tuple[int, int]:
    """Write the samples whose file the person does not have yet; (added, skipped)."""
    seen = set(s.scalars(select(Sample.content_sha256).where(Sample.identity_id == identity_id)))
    added = skipped = 0
    total = len(prepared)
    for pos, p in enumerate(prepared, 1):
        if p.embedding.shape[0] != dim:
            raise ValueError(
                f"sample {pos} of {total} ({p.source}): embedding has dimension "
                f"{p.embedding.shape[0]}, but the gallery's model {model} gives {dim}"
            )
        if p.content_sha256 in seen:
            skipped += 1
            continue
        seen.add(p.content_sha256)
        s.add(
            Sample(
                identity_id=identity_id,
                embedding=p.embedding,
                crop=p.crop,
                crop_landmarks=p.crop_landmarks,
                source=p.source,
                content_sha256=p.content_sha256,
                box=p.box,
                det_score=p.det_score,
                quality=p.quality,
                created_at=now,
            )
        )
        added += 1
    return added, skipped


def _prepare(pos: int, total: int, sample: NewSample) -> _Prepared:
    """Validate one NewSample before the transaction; the dimension is checked inside it."""
    where = f"sample {pos} of {total} ({sample.source})"
    if not isinstance(sample.crop_png, bytes) or not sample.crop_png.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{where}: crop_png is not PNG data")
    if not sample.content_sha256:
        raise ValueError(f"{where}: content_sha256 is empty")
    landmarks = [[_finite(c, f"{where}: landmark") for c in pt] for pt in sample.crop_landmarks]
    if not landmarks or any(len(pt) != 2 for pt in landmarks):
        raise ValueError(f"{where}: crop_landmarks must be (x, y) pairs")
    box = [_finite(c, f"{where}: box") for c in sample.box]
    if len(box) != 4:
        raise ValueError(f"{where}: box must be (x1, y1, x2, y2)")
    # Quality metrics may legitimately be NaN (e.g. pose undefined); JSON keeps NaN.
    quality = {str(k): float(v) for k, v in sample.quality.items()}
    return _Prepared(
        embedding=_as_vector(sample.embedding, where),
        crop=sample.crop_png,
        crop_landmarks=json.dumps(landmarks),
        source=str(sample.source),
        content_sha256=sample.content_sha256,
        box=json.dumps(box),
        det_score=_finite(sample.det_score, f"{where}: det_score"),
        quality=json.dumps(quality, sort_keys=True),
    )


def _box(values: Sequence[float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def _normalise_rows(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Unit-length rows; refuse NaN/inf and zero rows rather than return NaN similarities."""
    if not np.all(np.isfinite(x)):
        raise ValueError("queries contain NaN or infinity")
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("a query embedding is all zeros")
    return (x / norms).astype(np.float32)


def _store_prototype(
    s: Session, identity_id: int, dim: int, now: datetime
) -> npt.NDArray[np.float32]:
    """Recompute and store one person's prototype from all their samples (flushed)."""
    stored = s.scalars(select(Sample.embedding).where(Sample.identity_id == identity_id)).all()
    vector = _prototype(
        np.stack([checked(v, dim, f"a sample of identity {identity_id}") for v in stored])
    )
    values = {"vector": vector, "n_samples": len(stored), "updated_at": now}
    stmt = insert(s, Prototype).values(identity_id=identity_id, **values)
    s.execute(stmt.on_conflict_do_update(index_elements=[Prototype.identity_id], set_=values))
    return vector
