"""The gallery: enrolled people in SQLite (the truth) and a FAISS index over their prototypes.

`Gallery` is the only owner of the database session and of the in-memory
`PrototypeIndex`. Every write follows one rule, taken from InsightFace's
server guide: change SQLite and bump the `meta.revision` counter in ONE
transaction, commit, then bring the index along and stamp it with the new
revision. If the index is not exactly one revision behind (another process
wrote in between, or the file is missing, stale or damaged), it is rebuilt from
the `prototypes` table instead of patched. Before every search the stamp is
compared with the database's revision, so a write made by another process is
seen by the next search. A write that raises rolls back and never reaches the
index, so a failed enrolment leaves both exactly as they were.

Each person is represented for 1:N search by a prototype, the normalised mean
of their normalised sample embeddings: one vector per person keeps the index
small and makes the similarity to a person independent of how many photos of
them were enrolled.

A gallery is pinned to one model (name + weights hash, and its embedding
dimension) at the first enrolment: embeddings of different models live in
unrelated spaces, and comparing them gives confident nonsense.
"""

from __future__ import annotations

import ast
import importlib.resources
import json
import logging
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from facerec.errors import GalleryError, ModelMismatchError, UnknownPersonError
from facerec.gallery.forget import ForgetTarget
from facerec.gallery.index import IndexStamp, PrototypeIndex
from facerec.gallery.records import (
    EnrollResult,
    GalleryInfo,
    Hit,
    NewSample,
    Person,
    StoredSample,
)
from facerec.gallery.schema import (
    BEGIN_OPTION,
    META_EMBEDDING_DIM,
    META_MODEL_NAME,
    META_MODEL_SHA256,
    META_REVISION,
    Identity,
    Meta,
    Prototype,
    Sample,
    Threshold,
    create_sqlite_engine,
)
from facerec.models.base import ModelIdentity
from facerec.names import name_key as _name_key
from facerec.names import validate_name
from facerec.prototypes import prototype as _prototype

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

T = TypeVar("T")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class _State:
    """The `meta` table, parsed."""

    revision: int
    model: ModelIdentity | None
    dim: int | None

    def stamp(self) -> IndexStamp | None:
        """What an index of this gallery must be stamped with; None: nothing to index yet."""
        if self.model is None or self.dim is None:
            return None
        return IndexStamp(self.revision, self.model.name, self.model.weights_sha256, self.dim)


@dataclass(frozen=True, slots=True, eq=False)
class _IndexChange:
    """What one committed write did to the prototypes, so the index can follow without a rebuild."""

    upserts: tuple[
        tuple[int, str, npt.NDArray[np.float32]], ...
    ] = ()  # (identity id, name, vector)
    removed: tuple[int, ...] = ()


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
    """One gallery database plus the FAISS index derived from it. Open with `Gallery.open`.

    Safe to share between threads (writes and index access are serialised by a
    lock) and between processes (SQLite WAL + busy_timeout; the revision stamp
    tells each process when its index is outdated).
    """

    def __init__(self, path: Path, index_path: Path, engine: Engine) -> None:
        """Use `Gallery.open`, which creates and migrates the database first."""
        self._path = path
        self._index_path = index_path
        self._engine = engine
        self._reads = sessionmaker(bind=engine, expire_on_commit=False)
        self._writes = sessionmaker(
            bind=engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}), expire_on_commit=False
        )
        self._lock = threading.RLock()
        self._index: PrototypeIndex | None = None
        self._names: dict[int, str] = {}
        self._names_revision: int | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, index_path: Path | None = None) -> Gallery:
        """Open (creating if needed) the gallery at `path` and migrate it to the current schema.

        The index lives next to the database (`gallery.db.faiss`) unless
        `index_path` says otherwise; it is loaded lazily, on the first search or
        write, so listing people stays instant on a large gallery.
        """
        path = Path(path).expanduser().absolute()
        index_path = (
            Path(index_path).expanduser().absolute()
            if index_path is not None
            else path.with_suffix(path.suffix + ".faiss")
        )
        if path.is_dir():
            raise GalleryError(f"{path}: is a directory, not a gallery database")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"{path}: cannot create its folder: {exc}") from exc
        engine = create_sqlite_engine(f"sqlite:///{path}")
        try:
            _migrate(engine, path)
        except BaseException:
            engine.dispose()
            raise
        return cls(path, index_path, engine)

    def close(self) -> None:
        """Release the database connections and the in-memory index. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._index = None
            self._names = {}
            self._names_revision = None
            self._engine.dispose()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({str(self._path)!r})"

    # -- properties -----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    @property
    def index_path(self) -> Path:
        return self._index_path

    @property
    def model(self) -> ModelIdentity | None:
        """The pinned model, read from the database (another process may have re-pinned it)."""
        with self._read() as s:
            return _state(s).model

    @property
    def revision(self) -> int:
        """Number of committed writes; stamps the index."""
        with self._read() as s:
            return _state(s).revision

    # -- model pin ------------------------------------------------------------------------------
    def check_model(self, model: ModelIdentity) -> None:
        """Raise ModelMismatchError if the gallery is pinned to a model other than `model`.

        Called before any comparison so that a query embedded by one model is
        never scored against prototypes of another.
        """
        pinned = self.model
        if pinned is not None and pinned != model:
            raise ModelMismatchError(self._path, pinned, model)

    # -- writes ---------------------------------------------------------------------------------
    def enroll(self, name: str, samples: Sequence[NewSample], model: ModelIdentity) -> EnrollResult:
        """Add `samples` to `name` (created if new) in one transaction; all or nothing.

        A sample whose source file (`content_sha256`) is already enrolled for
        this person, or appears twice in `samples`, is skipped and counted:
        re-running an enrolment must not weight a photo twice. The first
        enrolment pins `model` and its embedding dimension.
        """
        name = validate_name(name)
        if not samples:
            raise ValueError(f"enrolling {name!r} needs at least one sample")
        total = len(samples)
        prepared = [_prepare(pos, total, smp) for pos, smp in enumerate(samples, 1)]

        def work(s: Session, state: _State) -> tuple[EnrollResult, _IndexChange]:
            if state.model is None:
                _set_meta(s, META_MODEL_NAME, model.name)
                _set_meta(s, META_MODEL_SHA256, model.weights_sha256)
            elif state.model != model:
                raise ModelMismatchError(self._path, state.model, model)
            dim = state.dim
            if dim is None:
                dim = int(prepared[0].embedding.shape[0])
                _set_meta(s, META_EMBEDDING_DIM, str(dim))
            now = _now()
            identity = s.scalar(select(Identity).where(Identity.name == name))
            if identity is None:
                identity = Identity(name=name, created_at=now, updated_at=now)
                s.add(identity)
                s.flush()
            seen = set(
                s.scalars(select(Sample.content_sha256).where(Sample.identity_id == identity.id))
            )
            added = skipped = 0
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
                        identity_id=identity.id,
                        embedding=_encode(p.embedding),
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
            change = _IndexChange()
            if added:
                identity.updated_at = now
                s.flush()
                vector = _store_prototype(s, identity.id, dim, now)
                change = _IndexChange(upserts=((identity.id, name, vector),))
            n_samples = s.scalar(
                select(func.count()).select_from(Sample).where(Sample.identity_id == identity.id)
            )
            person = Person(name, int(n_samples or 0), identity.created_at, identity.updated_at)
            return EnrollResult(person, added, skipped), change

        return self._commit(work)

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

        The FAISS index file holds their prototype: it is deleted before the
        transaction and rebuilt after it, so a process killed at any point
        leaves no copy of the prototype beside a committed deletion (and a
        failed one costs only a rebuild). Deleted rows are overwritten with
        zeros (`secure_delete`); `compact` also clears the write-ahead log.
        """
        key = _name_key(name)
        if not self.has(key):
            raise UnknownPersonError(key)
        with self._lock:
            self._index = None
            try:
                self._index_path.unlink(missing_ok=True)
            except OSError as exc:
                raise GalleryError(
                    f"{self._index_path}: cannot delete the prototype index: {exc}"
                ) from exc

        def work(s: Session, state: _State) -> tuple[tuple[int, T], _IndexChange]:
            row = s.execute(
                select(Identity.id, Prototype.vector)
                .outerjoin(Prototype, Prototype.identity_id == Identity.id)
                .where(Identity.name == key)
            ).first()
            if row is None:
                raise UnknownPersonError(key)
            identity_id, blob = row
            n = s.scalar(
                select(func.count()).select_from(Sample).where(Sample.identity_id == identity_id)
            )
            if blob is None or state.model is None:
                raise GalleryError(
                    f"{self._path}: {key!r} has no prototype; the gallery is damaged"
                )
            prototype = _decode(blob, state.dim, f"prototype of {key!r}")
            prototype = (prototype / np.linalg.norm(prototype)).astype(np.float32)
            target = ForgetTarget(identity_id, key, state.model, prototype, float(threshold))
            erased = erase(s, target)
            # Samples and the prototype go with it: ON DELETE CASCADE (foreign_keys=ON).
            s.execute(delete(Identity).where(Identity.id == identity_id))
            return (int(n or 0), erased), _IndexChange(removed=(identity_id,))

        return self._commit(work)

    def compact(self) -> bool:
        """Rewrite the database without free pages and empty its write-ahead log; True if both did.

        After a deletion, the old page versions may survive in the WAL file
        until the next checkpoint, and pages freed before `secure_delete` was
        on (older galleries) may still hold deleted rows. VACUUM rebuilds the
        file from live rows only, and a TRUNCATE checkpoint copies the log back
        and empties it. Another process reading an old snapshot can keep the
        log from being emptied; that is reported (False), never an error: SQLite
        checkpoints again when the last connection closes.
        """
        with self._lock:
            if self._closed:
                raise GalleryError(f"{self._path}: the gallery is closed")
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
                    "%s: could not compact the gallery after a deletion: %s", self._path, exc
                )
                return False
            finally:
                raw.close()
            return busy == 0

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

        def work(s: Session, state: _State) -> tuple[None, None]:
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
                return None, None
            _set_meta(s, META_EMBEDDING_DIM, str(dim))
            s.execute(
                update(Sample),
                [{"id": sid, "embedding": _encode(v)} for sid, v in vectors.items()],
            )
            members: dict[int, list[int]] = defaultdict(list)
            for sid, identity_id in owners.items():
                members[identity_id].append(sid)
            now = _now()
            s.execute(
                update(Prototype),
                [
                    {
                        "identity_id": identity_id,
                        "vector": _encode(_prototype(np.stack([vectors[i] for i in sids]))),
                        "n_samples": len(sids),
                        "updated_at": now,
                    }
                    for identity_id, sids in members.items()
                ],
            )
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

        def work(s: Session, state: _State) -> tuple[None, _IndexChange]:
            values = {
                "threshold": float(threshold),
                "target_far": None if target_far is None else float(target_far),
                "calibrated_at": _now(),
            }
            stmt = sqlite_insert(Threshold).values(model_name=model_name, **values)
            s.execute(
                stmt.on_conflict_do_update(index_elements=[Threshold.model_name], set_=values)
            )
            return None, _IndexChange()  # prototypes untouched: only the stamp moves

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
            state = _state(s)
            blob = s.scalar(
                select(Prototype.vector)
                .join(Identity, Identity.id == Prototype.identity_id)
                .where(Identity.name == key)
            )
            if blob is None:
                raise UnknownPersonError(key)
            return _decode(blob, state.dim, f"prototype of {key!r}")

    def prototypes(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """All names (sorted) and their prototypes as an (N, D) matrix, from one snapshot."""
        stmt = (
            select(Identity.name, Prototype.vector)
            .join(Prototype, Prototype.identity_id == Identity.id)
            .order_by(Identity.name)
        )
        with self._read() as s:
            state = _state(s)
            rows = s.execute(stmt).all()
            names = [n for n, _ in rows]
            if not rows:
                return names, np.zeros((0, state.dim or 0), np.float32)
            return names, np.stack([_decode(v, state.dim, f"prototype of {n!r}") for n, v in rows])

    def samples(self) -> Iterator[StoredSample]:
        """Every stored sample, in id order, from one consistent snapshot (streamed)."""
        stmt = (
            select(Sample, Identity.name)
            .join(Identity, Identity.id == Sample.identity_id)
            .order_by(Sample.id)
            .execution_options(yield_per=256)
        )
        with self._read() as s:
            dim = _state(s).dim
            for row, name in s.execute(stmt):
                embedding = _decode(row.embedding, dim, f"sample {row.id}")
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
        with self._lock:
            current = self._current_index()
            if current is None or q.shape[0] == 0:
                return [[] for _ in range(q.shape[0])]
            index, names = current
            if q.shape[1] != index.dim:
                raise ValueError(
                    f"queries have dimension {q.shape[1]}, the gallery's model "
                    f"{index.stamp.model_name} gives {index.dim}"
                )
            sims, ids = index.search(_normalise_rows(q), k)
            return [
                [
                    Hit(names[int(i)], float(sim))
                    for sim, i in zip(srow, irow, strict=True)
                    if i >= 0
                ]
                for srow, irow in zip(sims, ids, strict=True)
            ]

    def info(self) -> GalleryInfo:
        """Counts, pin, revisions and threshold from one snapshot."""
        with self._read() as s:
            state = _state(s)
            n_people = s.scalar(select(func.count()).select_from(Identity)) or 0
            n_samples = s.scalar(select(func.count()).select_from(Sample)) or 0
            threshold = None
            if state.model is not None:
                threshold = s.scalar(
                    select(Threshold.threshold).where(Threshold.model_name == state.model.name)
                )
            schema = _stored_revision(s.connection())
        return GalleryInfo(
            path=self._path,
            index_path=self._index_path,
            model=state.model,
            revision=state.revision,
            schema_revision=schema,
            n_people=int(n_people),
            n_samples=int(n_samples),
            threshold=threshold,
        )

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read transaction: every query inside sees the same snapshot (WAL)."""
        if self._closed:
            raise GalleryError(f"{self._path}: the gallery is closed")
        try:
            with self._reads() as s, s.begin():
                yield s
        except OperationalError as exc:
            raise GalleryError(f"{self._path}: {exc.orig}") from exc

    def _commit(self, work: Callable[[Session, _State], tuple[T, _IndexChange | None]]) -> T:
        """Run `work` in one write transaction with the revision bump, then update the index.

        `work` returns its result and what it did to the prototypes (None: too
        much to patch, rebuild). If `work` raises, the transaction rolls back
        and the index is not touched.
        """
        with self._lock:
            if self._closed:
                raise GalleryError(f"{self._path}: the gallery is closed")
            try:
                with self._writes.begin() as s:
                    before = _state(s)
                    _set_meta(s, META_REVISION, str(before.revision + 1))
                    result, change = work(s, before)
                    s.flush()
                    after = _state(s)
            except OperationalError as exc:
                raise GalleryError(f"{self._path}: {exc.orig}") from exc
            self._apply(before.revision, after, change)
            return result

    # -- index ----------------------------------------------------------------------------------
    def _apply(self, old_revision: int, after: _State, change: _IndexChange | None) -> None:
        """Bring the index from `old_revision` to the committed state `after`.

        Patches the index when it is exactly at `old_revision` (in memory or on
        disk); otherwise, or for a wholesale change, rebuilds it from SQLite. The
        database is already committed: a failure here is logged and the index
        dropped, to be rebuilt by the next search.
        """
        stamp = after.stamp()
        try:
            if stamp is None:
                self._index = None
                return
            expected = IndexStamp(old_revision, stamp.model_name, stamp.model_sha256, stamp.dim)
            index = (
                self._index if self._index is not None and self._index.stamp == expected else None
            )
            if index is None and change is not None:
                index = PrototypeIndex.load(self._index_path, expected)
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
            log.warning("could not update the prototype index; it will be rebuilt", exc_info=True)
            self._index = None

    def _current_index(
        self, *, try_file: bool = True
    ) -> tuple[PrototypeIndex, dict[int, str]] | None:
        """The index and id->name map at the database's current revision.

        The index in memory if its stamp matches, else the saved file if its
        stamp matches (`try_file`), else one rebuilt from SQLite and saved.
        """
        with self._read() as s:
            state = _state(s)
            stamp = state.stamp()
            if stamp is None:
                self._index = None
                return None
            refreshed = False
            if self._index is None or self._index.stamp != stamp:
                self._index = PrototypeIndex.load(self._index_path, stamp) if try_file else None
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
            np.stack([_decode(v, stamp.dim, f"prototype {i}") for i, v in rows])
            if rows
            else np.zeros((0, stamp.dim), np.float32)
        )
        index = PrototypeIndex.build(ids, vectors, stamp)
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


# -- migrations -----------------------------------------------------------------------------------
def migrations_dir() -> Path:
    """The Alembic scripts: shipped as `facerec.migrations`, or `migrations/` in a source tree."""
    try:
        folder = Path(str(importlib.resources.files("facerec.migrations")))
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[2] / "migrations"
    if not (folder / "env.py").is_file():
        raise GalleryError(f"Alembic migrations not found at {folder}; reinstall facerec")
    return folder


def alembic_config() -> Config:
    """An Alembic Config pointing at the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates %; a path may contain one.
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    return config


def _migrate(engine: Engine, path: Path) -> None:
    """Bring the database to the newest schema; no write lock taken when it is already there.

    The usual case, a database already at the head, is answered without
    importing Alembic (a third of a cheap command's start-up): the stored
    revision is read with one query and the head from the scripts' text.
    """
    head = _head_from_scripts(migrations_dir())
    try:
        with engine.connect() as conn:
            if head is not None and _stored_revision(conn) == head:
                return
    except SQLAlchemyError:
        pass  # Alembic below says what is wrong
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    config = alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    current: str | None = None
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except (CommandError, RevisionError) as exc:
        raise GalleryError(
            f"{path}: schema revision {current!r} is unknown to this facerec "
            f"(was the gallery made by a newer version?): {exc}"
        ) from exc
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise GalleryError(f"{path}: cannot open the gallery database: {reason}") from exc


_ASSIGNMENT = re.compile(r"^(down_)?revision\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _head_from_scripts(folder: Path) -> str | None:
    """The one head revision of the migration scripts, read from their text; None when unsure.

    Every Alembic script starts with `revision = ...` and `down_revision = ...`;
    a merge (tuple), a branch (two heads) or anything unexpected gives None,
    and the caller asks Alembic itself.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (folder / "versions").glob("*.py"):
        values = {bool(down): raw for down, raw in _ASSIGNMENT.findall(script.read_text())}
        if not values:
            continue  # __init__.py
        try:
            revision, parent = (ast.literal_eval(values[key]) for key in (False, True))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not isinstance(parent, str | None):
            return None
        revisions.add(revision)
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(conn: Connection) -> str | None:
    """The schema revision Alembic stamped into the database, or None (new or unstamped)."""
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except OperationalError:  # no such table: a new database
        return None
    return str(rows[0]) if len(rows) == 1 else None


# -- helpers ----------------------------------------------------------------------------------------
def _nothing_else(s: Session, target: ForgetTarget) -> None:
    """`Gallery.remove`: the enrolment only."""


def _now() -> datetime:
    return datetime.now(UTC)


def _state(s: Session) -> _State:
    meta = dict(s.execute(select(Meta.key, Meta.value)).all())
    name, sha = meta.get(META_MODEL_NAME), meta.get(META_MODEL_SHA256)
    dim = meta.get(META_EMBEDDING_DIM)
    return _State(
        revision=int(meta.get(META_REVISION, "0")),
        model=ModelIdentity(name, sha) if name is not None and sha is not None else None,
        dim=int(dim) if dim is not None else None,
    )


def _set_meta(s: Session, key: str, value: str) -> None:
    stmt = sqlite_insert(Meta).values(key=key, value=value)
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


def _encode(v: npt.NDArray[np.float32]) -> bytes:
    """float32 little-endian, whatever the machine: the file may move between machines."""
    return np.asarray(v, dtype="<f4").tobytes()


def _decode(blob: bytes, dim: int | None, what: str) -> npt.NDArray[np.float32]:
    v = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if dim is not None and v.shape[0] != dim:
        raise GalleryError(
            f"{what} has {v.shape[0]} values stored, the gallery's dimension is {dim}"
        )
    return v


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
    blobs = s.scalars(select(Sample.embedding).where(Sample.identity_id == identity_id)).all()
    vector = _prototype(
        np.stack([_decode(b, dim, f"a sample of identity {identity_id}") for b in blobs])
    )
    values = {"vector": _encode(vector), "n_samples": len(blobs), "updated_at": now}
    stmt = sqlite_insert(Prototype).values(identity_id=identity_id, **values)
    s.execute(stmt.on_conflict_do_update(index_elements=[Prototype.identity_id], set_=values))
    return vector
