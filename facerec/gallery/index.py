"""The FAISS prototype index: a derived, disposable cache of the `prototypes` table.

SQLite is the source of truth; this index only makes 1:N search fast. It is
therefore built so that it can always be thrown away: the file carries a stamp
(gallery revision, model, dimension, count, layout, payload hashes) and `load`
refuses anything that does not match what the database says now or what the
`IndexPolicy` asks for, whereupon the `Gallery` rebuilds it from SQLite.
Losing, truncating or overwriting the file costs a rebuild, never a wrong
answer.

Two layouts (`IndexKind`):

- **exact**: `IndexIDMap2(IndexFlatIP(dim))`, inner products over
  L2-normalised prototypes (so scores are cosine similarities) with the
  database's identity ids as FAISS ids. `IDMap2` rather than `IDMap` because
  it can hand back any person's vector by id. A query reads every prototype,
  so its cost grows linearly with the gallery.
- **ivf**: the exact index above plus an inverted file over it: k-means cells
  (Jégou, Douze & Schmid, "Product quantization for nearest neighbor search",
  TPAMI 2011) whose members are stored as 4-bit product-quantisation codes and
  scanned with FAISS's SIMD "fast scan" (André, Kermarrec & Le Scouarnec,
  "Accelerated nearest neighbor search with quick ADC", ICMR 2017). A query
  probes the `nprobe` nearest cells, takes the `rerank` best candidates by
  their codes, and re-scores those exactly against the stored vectors, so
  every returned similarity is the true cosine and the only approximation
  is which people reach the candidate list.

Why IVF and not HNSW (`scripts/bench_search.py` measures both): face
embeddings are hard for any ANN, because a query sits far from its own
prototype (cosine ~0.7) compared with how far strangers sit (~0.1), so a
large share of the gallery has to be looked at for recall@1 0.99. IVF's
fast-scan codes make looking cheap; HNSW needed several times the CPU per
query for the same recall, minutes rather than seconds to build, and cannot
remove a vector, while the gallery replaces and deletes people all the time.
IVF removes and adds by id.

`IndexKind.AUTO` (the default) is exact below `EXACT_BELOW` prototypes and IVF
above. The index follows the gallery as it grows or shrinks: `upsert` and
`remove` re-lay it out from its own vectors when the policy wants another
layout, with hysteresis so a gallery at the boundary does not flip at every
enrolment.

File layout (one file, replaced atomically so a reader never sees half of it)::

    FACEREC-INDEX 2\\n
    {"revision": ..., "model_name": ..., "model_sha256": ..., "dim": ..., "count": ...,
     "layout": {"kind": "exact" | "ivf", "nlist": ..., "pq_m": ..., "nprobe": ..., "rerank": ...},
     "sections": [["exact", <bytes>, <sha256>], ["ivf", <bytes>, <sha256>]]}\\n
    <faiss.serialize_index bytes of each section, in order>

A version-1 file (exact only, before layouts existed) is not read: it is
rebuilt, which at the sizes where version 1 was used costs seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from facerec.gallery.index_kind import IndexKind
from facerec.runtime import threads
from facerec.util.jsonfields import json_int, json_str
from facerec.util.lazy import LazyModule

if TYPE_CHECKING:
    import faiss
else:
    # Imported on first use: `verify` and `people` never search the index (14 MiB, 70 ms).
    faiss = LazyModule("faiss")

log = logging.getLogger(__name__)

MAGIC = b"FACEREC-INDEX 2\n"
#: Files of earlier formats: recognised, so they are rebuilt quietly rather than reported damaged.
_OLD_MAGICS = (b"FACEREC-INDEX 1\n",)
#: The stamp line is small; a longer "line" means the file is not ours.
_MAX_STAMP_LINE = 4096

#: `IndexKind.AUTO` searches exactly below this many prototypes: about where an
#: exact query's median on one core passes 2 ms (`scripts/bench_search.py
#: --methods exact --sizes 20000,30000,40000`), while an IVF query at this size
#: costs a fraction of that at recall@1 above 0.99.
EXACT_BELOW = 32_000
#: Fewer prototypes than this give k-means nothing to learn: kind=ivf stays exact below it.
IVF_MIN = 1_000
#: FAISS's own floor of training points per k-means centroid (it warns below it).
_POINTS_PER_CELL = 39
#: Cells per sqrt(prototypes). At 1M, 2,048 cells gave higher recall than
#: 4,096 for the same CPU per query (bigger lists suit the block-wise fast scan).
NLIST_PER_SQRT = 2.0
#: Cells a query probes: PROBE_FRACTION of them plus PROBE_EXTRA. Small IVFs
#: need a larger share: on the face-like sets of `scripts/bench_search.py`
#: (nlist = 2 sqrt(n)) 3/16 alone fell just short of recall@1 0.99 at 10k-100k
#: prototypes yet sufficed at 1M; with 64 more cells every size from 10k to 1M
#: cleared 0.99.
PROBE_FRACTION = 3 / 16
PROBE_EXTRA = 64
#: Candidates re-scored exactly. 64 already kept recall@1; 128 raises recall@10
#: (4-bit codes rank coarsely) at little cost.
RERANK = 128
#: k-means iterations: the cells only need to be compact, not optimal.
_KMEANS_ITERATIONS = 10
_SEED = 1234
#: Upserts of at most this many ids look each one up before dropping the held ones.
_HELD_CHECK_MAX = 64
#: Queries re-ranked at a time (bounds the candidate-vector buffer of a large batch).
_RERANK_CHUNK = 256


@dataclass(frozen=True, slots=True)
class IndexStamp:
    """What the index was built from. Equal stamps mean the index matches the database."""

    revision: int
    model_name: str
    model_sha256: str
    dim: int


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """How an index is built and searched; recorded in its file so it is only read as what it is.

    `kind`, `nlist` and `pq_m` fix the structure: a file whose structure is
    not what the policy wants is rebuilt. `nprobe` and `rerank` only steer the
    search, so they are taken from the policy in force whenever a file is
    loaded (a changed default then needs no rebuild).
    """

    kind: IndexKind  # EXACT or IVF, never AUTO
    nlist: int = 0  # IVF: k-means cells
    pq_m: int = 0  # IVF: sub-quantisers of the 4-bit candidate codes
    nprobe: int = 0  # IVF: cells probed per query
    rerank: int = 0  # IVF: candidates re-scored exactly

    def __post_init__(self) -> None:
        if self.kind is IndexKind.AUTO:
            raise ValueError("a built index has a concrete kind, not auto")
        if self.kind is IndexKind.EXACT and (self.nlist, self.pq_m, self.nprobe, self.rerank) != (
            0,
            0,
            0,
            0,
        ):
            raise ValueError("an exact index has no IVF parameters")
        if self.kind is IndexKind.IVF and not (
            self.nlist >= 1
            and self.pq_m >= 1
            and 1 <= self.nprobe <= self.nlist
            and self.rerank >= 1
        ):
            raise ValueError(f"bad IVF parameters: {self}")

    def __str__(self) -> str:
        if self.kind is IndexKind.EXACT:
            return "exact"
        return (
            f"ivf(nlist={self.nlist}, pq_m={self.pq_m}, nprobe={self.nprobe}, rerank={self.rerank})"
        )

    def same_structure(self, other: IndexLayout) -> bool:
        return (self.kind, self.nlist, self.pq_m) == (other.kind, other.nlist, other.pq_m)


EXACT = IndexLayout(IndexKind.EXACT)


@dataclass(frozen=True, slots=True)
class IndexPolicy:
    """Which layout a gallery of a given size should have. The defaults are the measured ones.

    `kind` is the override (`exact` always exact, `ivf` IVF from `IVF_MIN`
    prototypes up); `nlist`/`nprobe`/`rerank` pin a parameter that is
    otherwise derived from the size.
    """

    kind: IndexKind = IndexKind.AUTO
    exact_below: int = EXACT_BELOW
    nlist: int | None = None
    nprobe: int | None = None
    rerank: int = RERANK

    def __post_init__(self) -> None:
        if not isinstance(self.kind, IndexKind):
            raise TypeError(f"kind must be an IndexKind, got {self.kind!r}")
        for name in ("exact_below", "nlist", "nprobe", "rerank"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"index policy: {name} must be a positive integer, got {v!r}")

    def layout(self, count: int, dim: int, current: IndexLayout | None = None) -> IndexLayout:
        """The layout for `count` prototypes of `dim`, given the one in use (None: a fresh build).

        With AUTO an exact index turns IVF at `exact_below` and an IVF index
        turns exact only below half of it; an IVF index keeps its cells until
        the ideal number is more than twice or less than half of theirs (the
        gallery quadrupled or shrank to a quarter), so re-training is rare and
        its cost amortised over the enrolments in between.
        """
        if self.kind is IndexKind.EXACT or count < IVF_MIN:
            return EXACT
        if self.kind is IndexKind.AUTO:
            was_ivf = current is not None and current.kind is IndexKind.IVF
            if count < (self.exact_below // 2 if was_ivf else self.exact_below):
                return EXACT
        most = count // _POINTS_PER_CELL
        if self.nlist is not None:
            nlist = min(self.nlist, most)
        else:
            ideal = min(most, max(1, round(NLIST_PER_SQRT * math.sqrt(count))))
            nlist = ideal
            if (
                current is not None
                and current.kind is IndexKind.IVF
                and ideal / 2 <= current.nlist <= min(ideal * 2, most)
            ):
                nlist = current.nlist
        nprobe = self.nprobe or math.ceil(nlist * PROBE_FRACTION) + PROBE_EXTRA
        return IndexLayout(IndexKind.IVF, nlist, _pq_m(dim), min(nprobe, nlist), self.rerank)


def _pq_m(dim: int) -> int:
    """Sub-quantisers for the candidate codes: two dimensions each (16 centroids per pair).

    Odd dimensions take the largest divisor of `dim` not above dim/2.
    """
    for m in range(max(1, dim // 2), 0, -1):
        if dim % m == 0:
            return m
    return 1


class VectorSearch(Protocol):
    """k nearest prototypes by id, whatever holds them (FAISS here; pgvector can do the same).

    The vector-level contract beneath the gallery's person-level search (which
    turns ids into names and hits). `search` takes (n, dim) float32 rows of unit length and returns, for each
    row, the `k` most similar prototypes best first: cosine similarities
    (n, k) float32 and ids (n, k) int64. Slots with no prototype (fewer than
    `k` held, or an approximate search that found fewer) have id -1 and
    similarity -inf; callers skip them.
    """

    @property
    def count(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def search(
        self, queries: npt.ArrayLike, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...


def _gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _use_threads() -> None:
    """Give FAISS (OpenMP, and its OpenMP BLAS) the process's thread count, in the calling thread.

    OpenMP's thread count is per calling thread, so it is set on every entry
    rather than once: a server thread searching and a CLI thread building
    both stay within `facerec.runtime.threads()`.
    """
    faiss.omp_set_num_threads(threads())


class PrototypeIndex:
    """The FAISS structures over prototypes plus the stamp saying which gallery state they reflect."""

    def __init__(
        self,
        exact: Any,
        ivf: Any,
        stamp: IndexStamp,
        layout: IndexLayout,
        policy: IndexPolicy,
    ) -> None:
        """Wrap built FAISS indexes; use `build` or `load` rather than calling this."""
        self._exact = exact  # IndexIDMap2(IndexFlatIP): every vector, by id; the exact search
        self._ivf = ivf  # IndexIVFPQFastScan over the same ids, or None (exact layout)
        self._stamp = stamp
        self._layout = layout
        self._policy = policy
        self._gpu: Any = (
            None  # a GPU copy of the exact index, made on first search when a GPU exists
        )
        self._gpu_resources: Any = None
        self._gpu_failed = False

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: npt.ArrayLike,
        vectors: npt.ArrayLike,
        stamp: IndexStamp,
        policy: IndexPolicy | None = None,
    ) -> PrototypeIndex:
        """A fresh index over `vectors` (N, dim) keyed by `ids` (N,), laid out as `policy` says."""
        policy = policy or IndexPolicy()
        id_arr, vec = _checked(ids, vectors, stamp.dim)
        _use_threads()
        exact = faiss.IndexIDMap2(faiss.IndexFlatIP(stamp.dim))
        if id_arr.size:
            exact.add_with_ids(vec, id_arr)
        layout = policy.layout(len(id_arr), stamp.dim)
        ivf = _train_ivf(vec, id_arr, stamp.dim, layout) if layout.kind is IndexKind.IVF else None
        return cls(exact, ivf, stamp, layout, policy)

    @classmethod
    def load(
        cls,
        path: Path,
        expected: IndexStamp,
        policy: IndexPolicy | None = None,
        *,
        since: int | None = None,
    ) -> PrototypeIndex | None:
        """The index saved at `path` if it is intact, stamped `expected` and laid out as `policy` wants.

        `since`: also accept a file of the same model and dimension stamped at
        any revision from `since` up to `expected.revision`, which the caller
        then brings up to date (its stamp says how far behind it is).
        None means "rebuild from the database"; the reason is logged (INFO for
        an absent, outdated or differently laid-out file, the normal course of
        events; WARNING for a damaged one).
        """
        return cls._open(path, expected, policy or IndexPolicy(), since)

    @classmethod
    def read(cls, path: Path) -> PrototypeIndex | None:
        """The index saved at `path` whatever its stamp and layout, None if missing or damaged.

        For inspection (diagnostics, tests); search paths use `load`, which
        also refuses a stale or differently laid-out file.
        """
        return cls._open(path, None, None, None)

    @classmethod
    def _open(
        cls,
        path: Path,
        expected: IndexStamp | None,
        policy: IndexPolicy | None,
        since: int | None,
    ) -> PrototypeIndex | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.info("no prototype index at %s; it will be built from the gallery", path)
            return None
        except OSError as exc:
            log.warning("cannot read prototype index %s (%s); rebuilding it", path, exc)
            return None
        if data.startswith(_OLD_MAGICS):
            log.info("prototype index %s is in an older format; rebuilding it", path)
            return None
        try:
            header = _split(data)
            if expected is not None and not _acceptable(header.stamp, expected, since):
                log.info(
                    "prototype index %s is stale (built for %s, gallery is at %s); rebuilding it",
                    path,
                    header.stamp,
                    expected,
                )
                return None
            layout = header.layout
            if policy is not None:
                wanted = policy.layout(header.count, header.stamp.dim, layout)
                if not wanted.same_structure(layout):
                    log.info(
                        "prototype index %s is laid out as %s, the policy wants %s; rebuilding it",
                        path,
                        layout,
                        wanted,
                    )
                    return None
                layout = wanted  # same structure; the policy's search parameters
            exact, ivf = _deserialize(data, header)
        except (ValueError, RuntimeError, TypeError) as exc:  # FAISS raises RuntimeError
            log.warning("prototype index %s is damaged (%s); rebuilding it", path, exc)
            return None
        if ivf is not None:
            ivf.nprobe = layout.nprobe
        return cls(exact, ivf, header.stamp, layout, policy or IndexPolicy())

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the index to `path` atomically: temp file in the same folder, fsync, rename."""
        sections = [("exact", faiss.serialize_index(self._exact))]
        if self._ivf is not None:
            sections.append(("ivf", faiss.serialize_index(self._ivf)))
        layout = self._layout
        header = {
            "revision": self._stamp.revision,
            "model_name": self._stamp.model_name,
            "model_sha256": self._stamp.model_sha256,
            "dim": self._stamp.dim,
            "count": self.count,
            "layout": {
                "kind": layout.kind.value,
                "nlist": layout.nlist,
                "pq_m": layout.pq_m,
                "nprobe": layout.nprobe,
                "rerank": layout.rerank,
            },
            "sections": [
                [name, int(b.size), hashlib.sha256(b.data).hexdigest()] for name, b in sections
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder, so os.replace is an atomic rename; O_EXCL and a random
        # name so two processes saving at once never write into one temp file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC)
                f.write(json.dumps(header, sort_keys=True).encode() + b"\n")
                for _, payload in sections:
                    f.write(payload.data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)

    # -- contents -------------------------------------------------------------------------------
    @property
    def stamp(self) -> IndexStamp:
        return self._stamp

    @property
    def layout(self) -> IndexLayout:
        """How this index is built and searched now."""
        return self._layout

    @property
    def policy(self) -> IndexPolicy:
        return self._policy

    @property
    def count(self) -> int:
        return int(self._exact.ntotal)

    @property
    def dim(self) -> int:
        return int(self._exact.d)

    def ids(self) -> npt.NDArray[np.int64]:
        """The FAISS ids held, in storage order."""
        return faiss.vector_to_array(self._exact.id_map).astype(np.int64)

    def restamp(self, revision: int) -> None:
        """Declare the contents current for `revision` (after applying that write's changes)."""
        self._stamp = IndexStamp(
            revision, self._stamp.model_name, self._stamp.model_sha256, self._stamp.dim
        )

    def upsert(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add `vectors` under `ids`, replacing any vectors already held under those ids."""
        id_arr, vec = _checked(ids, vectors, self._stamp.dim)
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("duplicate ids in one upsert")
        if id_arr.size == 0:
            return
        held = id_arr if id_arr.size > _HELD_CHECK_MAX else id_arr[[self._holds(i) for i in id_arr]]
        if held.size:  # a removal rebuilds the id map, O(count): skipped for new people
            self._drop(held)  # not remove(): a re-layout in between would be wasted
        self._exact.add_with_ids(vec, id_arr)
        if self._ivf is not None:
            self._ivf.add_with_ids(vec, id_arr)
        self._gpu = None
        self.apply_policy(self._policy)

    def _holds(self, identity_id: int) -> bool:
        """Whether a vector is held under `identity_id` (the id map's lookup, O(1))."""
        try:
            self._exact.reconstruct(int(identity_id))
        except RuntimeError:
            return False
        return True

    def remove(self, ids: npt.ArrayLike) -> None:
        """Drop the vectors held under `ids`; ids not present are ignored."""
        id_arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if id_arr.size:
            self._drop(id_arr)
            self.apply_policy(self._policy)

    def _drop(self, ids: npt.NDArray[np.int64]) -> None:
        _use_threads()
        self._exact.remove_ids(ids)
        if self._ivf is not None:
            self._ivf.remove_ids(ids)
        self._gpu = None

    def apply_policy(self, policy: IndexPolicy) -> None:
        """Adopt `policy`: new search parameters at once, a new structure re-trained from the vectors held.

        `upsert` and `remove` call this with the current policy, which is how an
        AUTO index turns IVF as the gallery grows past `EXACT_BELOW`.
        """
        self._policy = policy
        wanted = policy.layout(self.count, self.dim, self._layout)
        if wanted.same_structure(self._layout):
            self._layout = wanted
            if self._ivf is not None:
                self._ivf.nprobe = wanted.nprobe
            return
        log.info("re-laying out the prototype index: %s -> %s", self._layout, wanted)
        _use_threads()
        if wanted.kind is IndexKind.IVF:
            ids = self.ids()
            vectors = self._exact.index.reconstruct_n(0, self.count)
            self._ivf = _train_ivf(vectors, ids, self.dim, wanted)
        else:
            self._ivf = None
        self._layout = wanted

    # -- search ---------------------------------------------------------------------------------
    def search(
        self, queries: npt.ArrayLike, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Cosine similarities and ids of the `k` nearest prototypes of each query row, best first.

        Always (n, k): slots past the prototypes found hold id -1 and
        similarity -inf (`VectorSearch`). With a GPU the exact index is
        searched there whatever the layout (it is fast at any size); on CPU
        an IVF layout searches its cells and re-scores the candidates exactly.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (n, {self.dim}), got {q.shape}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        sims = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        found = min(k, self.count)
        if found == 0 or q.shape[0] == 0:
            return sims, ids
        _use_threads()
        gpu = self._gpu_searcher()
        if gpu is not None or self._ivf is None:
            s, i = (gpu if gpu is not None else self._exact).search(q, found)
        else:
            s, i = self._search_ivf(q, found)
        valid = i >= 0
        sims[:, :found] = np.where(valid, s, -np.inf)
        ids[:, :found] = np.where(valid, i, -1)
        return sims, ids

    def _search_ivf(
        self, q: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Candidates from the cells' codes, re-scored against the exact vectors."""
        n_cand = min(max(k, self._layout.rerank), self.count)
        sims = np.empty((q.shape[0], k), dtype=np.float32)
        ids = np.empty((q.shape[0], k), dtype=np.int64)
        for lo in range(0, q.shape[0], _RERANK_CHUNK):
            chunk = q[lo : lo + _RERANK_CHUNK]
            _, cand = self._ivf.search(chunk, n_cand)
            cand = np.asarray(cand, dtype=np.int64)
            missing = cand < 0
            # A held id stands in for an empty slot; its score is masked below.
            filler = np.where(missing, self._exact.id_map.at(0), cand)
            vecs = self._exact.reconstruct_batch(filler.reshape(-1)).reshape(*cand.shape, -1)
            score = np.einsum("nd,ncd->nc", chunk, vecs)
            score[missing] = -np.inf
            order = np.argsort(-score, axis=1, kind="stable")[:, :k]
            sims[lo : lo + len(chunk)] = np.take_along_axis(score, order, axis=1)
            ids[lo : lo + len(chunk)] = np.where(
                np.take_along_axis(missing, order, axis=1),
                -1,
                np.take_along_axis(cand, order, axis=1),
            )
        return sims, ids

    def _gpu_searcher(self) -> Any:
        """A GPU copy of the exact index when faiss-gpu sees a GPU, else None."""
        if self._gpu is not None:
            return self._gpu
        if self._gpu_failed or _gpu_count() == 0 or not hasattr(faiss, "StandardGpuResources"):
            return None
        try:
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._exact)
        except (RuntimeError, AttributeError) as exc:
            log.warning("cannot move the prototype index to the GPU (%s); searching on CPU", exc)
            self._gpu_failed = True
            return None
        return self._gpu


if TYPE_CHECKING:

    def _satisfies_protocol(index: PrototypeIndex) -> VectorSearch:
        return index


def _acceptable(found: IndexStamp, expected: IndexStamp, since: int | None) -> bool:
    """`found` is `expected`, or (with `since`) the same model and dimension at a revision in between."""
    if found == expected:
        return True
    return (
        since is not None
        and since <= found.revision <= expected.revision
        and (found.model_name, found.model_sha256, found.dim)
        == (expected.model_name, expected.model_sha256, expected.dim)
    )


def _checked(
    ids: npt.ArrayLike, vectors: npt.ArrayLike, dim: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    id_arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    vec = np.ascontiguousarray(vectors, dtype=np.float32)
    if vec.ndim != 2 or vec.shape[0] != id_arr.shape[0] or vec.shape[1] != dim:
        raise ValueError(
            f"expected {id_arr.shape[0]} vectors of dimension {dim}, got shape {vec.shape}"
        )
    return id_arr, vec


def _train_ivf(
    vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], dim: int, layout: IndexLayout
) -> Any:
    """An IVF fast-scan index over `vectors`, its cells from spherical k-means on a sample.

    Spherical because the prototypes are unit vectors searched by inner
    product: unnormalised centroids would favour the cells with the largest
    norm. The sample is FAISS's minimum per centroid, drawn with a fixed seed
    so the same gallery always gives the same index.
    """
    rng = np.random.default_rng(_SEED)
    n_train = min(len(vectors), layout.nlist * _POINTS_PER_CELL)
    sample = vectors[np.sort(rng.choice(len(vectors), n_train, replace=False))]
    kmeans = faiss.Clustering(dim, layout.nlist)
    kmeans.spherical = True
    kmeans.niter = _KMEANS_ITERATIONS
    kmeans.seed = _SEED
    kmeans.max_points_per_centroid = _POINTS_PER_CELL
    kmeans.min_points_per_centroid = 1
    quantizer = faiss.IndexFlatIP(dim)
    kmeans.train(sample, quantizer)
    ivf = faiss.IndexIVFPQFastScan(
        quantizer, dim, layout.nlist, layout.pq_m, 4, faiss.METRIC_INNER_PRODUCT
    )
    ivf.by_residual = False
    # Each sub-quantiser places 16 centroids in a 2-D plane: 64 points per
    # centroid and 10 rounds do that as well as FAISS's 256 and 25, 6x faster.
    ivf.pq.cp.niter = _KMEANS_ITERATIONS
    ivf.pq.cp.max_points_per_centroid = 64
    ivf.train(sample)
    ivf.add_with_ids(vectors, ids)
    ivf.nprobe = layout.nprobe
    return ivf


@dataclass(frozen=True, slots=True)
class _Header:
    stamp: IndexStamp
    count: int
    layout: IndexLayout
    sections: tuple[tuple[str, int, str], ...]
    payload_at: int


def _split(data: bytes) -> _Header:
    """The header of a version-2 file; ValueError if not ours."""
    if not data.startswith(MAGIC):
        raise ValueError("not a facerec index file (bad header)")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_STAMP_LINE)
    if end < 0:
        raise ValueError("stamp line missing")
    try:
        header = json.loads(data[len(MAGIC) : end])
        stamp = IndexStamp(
            revision=json_int(header["revision"]),
            model_name=json_str(header["model_name"]),
            model_sha256=json_str(header["model_sha256"]),
            dim=json_int(header["dim"]),
        )
        raw = header["layout"]
        layout = IndexLayout(
            kind=IndexKind(json_str(raw["kind"])),
            nlist=json_int(raw["nlist"]),
            pq_m=json_int(raw["pq_m"]),
            nprobe=json_int(raw["nprobe"]),
            rerank=json_int(raw["rerank"]),
        )
        if not isinstance(header["sections"], list):
            raise TypeError("sections must be a list")
        sections = tuple(
            (json_str(s[0]), json_int(s[1]), json_str(s[2])) for s in header["sections"]
        )
        count = json_int(header["count"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"bad stamp line: {exc}") from exc
    want = ("exact", "ivf") if layout.kind is IndexKind.IVF else ("exact",)
    if tuple(s[0] for s in sections) != want:
        raise ValueError(
            f"a {layout.kind.value} index has sections {want}, the file lists {sections}"
        )
    if end + 1 + sum(s[1] for s in sections) != len(data):
        raise ValueError("file size does not match its sections (truncated or overwritten)")
    return _Header(stamp, count, layout, sections, end + 1)


def _payloads(data: bytes, header: _Header) -> Iterator[npt.NDArray[np.uint8]]:
    """Each section's bytes, checked against its hash before FAISS sees them (it trusts sizes in them)."""
    view = memoryview(data)
    at = header.payload_at
    for name, size, digest in header.sections:
        chunk = view[at : at + size]
        at += size
        if hashlib.sha256(chunk).hexdigest() != digest:
            raise ValueError(f"{name} section checksum mismatch (truncated or overwritten)")
        yield np.frombuffer(chunk, dtype=np.uint8)


def _deserialize(data: bytes, header: _Header) -> tuple[Any, Any]:
    """The exact and IVF indexes of a file, checked against its header and each other."""
    stamp, count, layout = header.stamp, header.count, header.layout
    payloads = list(_payloads(data, header))
    # deserialize_index already returns the concrete type; downcast_index here would
    # make a second, non-owning wrapper and let the owning one free the index.
    exact = faiss.deserialize_index(payloads[0])
    if not isinstance(exact, faiss.IndexIDMap2):
        raise ValueError(f"unexpected index type {type(exact).__name__}")
    if exact.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError("index does not use inner product")
    if exact.d != stamp.dim or exact.ntotal != count:
        raise ValueError(
            f"index holds {exact.ntotal} x {exact.d}, stamp says {count} x {stamp.dim}"
        )
    if layout.kind is IndexKind.EXACT:
        return exact, None
    ivf = faiss.deserialize_index(payloads[1])
    if not isinstance(ivf, faiss.IndexIVFPQFastScan):
        raise ValueError(f"unexpected IVF index type {type(ivf).__name__}")
    if (
        ivf.metric_type != faiss.METRIC_INNER_PRODUCT
        or ivf.d != stamp.dim
        or ivf.nlist != layout.nlist
        or layout.pq_m != ivf.pq.M
    ):
        raise ValueError(f"IVF index is {ivf.nlist} cells x {ivf.pq.M} codes, stamp says {layout}")
    held = np.sort(faiss.vector_to_array(exact.id_map).astype(np.int64))
    if not np.array_equal(held, np.sort(_ivf_ids(ivf))):
        raise ValueError("the IVF cells and the exact vectors hold different ids")
    return exact, ivf


def _ivf_ids(ivf: Any) -> npt.NDArray[np.int64]:
    """Every id filed in the cells of `ivf`."""
    lists = ivf.invlists
    parts = []
    for cell in range(ivf.nlist):
        size = lists.list_size(cell)
        if size:
            parts.append(faiss.rev_swig_ptr(lists.get_ids(cell), size).copy())
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
