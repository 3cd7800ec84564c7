"""The FAISS prototype index: a derived, disposable cache of the `prototypes` table.

SQLite is the source of truth; this index only makes 1:N search fast. It is
therefore built so that it can always be thrown away: the file carries a stamp
(gallery revision, model, dimension, count, payload hash) and `load` refuses
anything that does not match what the database says now, whereupon the
`Gallery` rebuilds it from SQLite. Losing, truncating or overwriting the file
costs a rebuild, never a wrong answer.

File layout (one file, replaced atomically so a reader never sees half of it)::

    FACEREC-INDEX 1\\n
    {"revision": ..., "model_name": ..., "model_sha256": ..., "dim": ...,
     "count": ..., "payload_sha256": ...}\\n
    <faiss.serialize_index bytes>

The index is `IndexIDMap2(IndexFlatIP(dim))`: exact inner-product search over
L2-normalised prototypes (so scores are cosine similarities), with the
database's identity ids as FAISS ids. `IDMap2` rather than `IDMap` because it
supports replacing one person's vector in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from facerec.jsonfields import json_int, json_str

log = logging.getLogger(__name__)

MAGIC = b"FACEREC-INDEX 1\n"
#: The stamp line is small; a longer "line" means the file is not ours.
_MAX_STAMP_LINE = 4096


@dataclass(frozen=True, slots=True)
class IndexStamp:
    """What the index was built from. Equal stamps mean the index matches the database."""

    revision: int
    model_name: str
    model_sha256: str
    dim: int


def _gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class PrototypeIndex:
    """One FAISS index over prototypes plus the stamp saying which gallery state it reflects."""

    def __init__(self, index: Any, stamp: IndexStamp) -> None:
        """Wrap an `IndexIDMap2(IndexFlatIP)`; use `build` or `load` rather than calling this."""
        self._index = index
        self._stamp = stamp
        self._gpu: Any = None  # a GPU copy for search, made on first search when a GPU exists
        self._gpu_resources: Any = None
        self._gpu_failed = False

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def build(cls, ids: npt.ArrayLike, vectors: npt.ArrayLike, stamp: IndexStamp) -> PrototypeIndex:
        """A fresh index over `vectors` (N, dim) keyed by `ids` (N,)."""
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(stamp.dim))
        out = cls(index, stamp)
        out.upsert(ids, vectors)
        return out

    @classmethod
    def load(cls, path: Path, expected: IndexStamp) -> PrototypeIndex | None:
        """The index saved at `path` if it is intact and stamped `expected`, else None.

        None means "rebuild from the database"; the reason is logged (INFO for
        an absent or outdated file, the normal course of events; WARNING for a
        damaged one).
        """
        return cls._open(path, expected)

    @classmethod
    def read(cls, path: Path) -> PrototypeIndex | None:
        """The index saved at `path` whatever its stamp, None if missing or damaged.

        For inspection (diagnostics, tests); search paths use `load`, which
        also refuses a stale file.
        """
        return cls._open(path, None)

    @classmethod
    def _open(cls, path: Path, expected: IndexStamp | None) -> PrototypeIndex | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.info("no prototype index at %s; it will be built from the gallery", path)
            return None
        except OSError as exc:
            log.warning("cannot read prototype index %s (%s); rebuilding it", path, exc)
            return None
        try:
            stamp, count, digest, payload = _split(data)
            if expected is not None and stamp != expected:
                log.info(
                    "prototype index %s is stale (built for %s, gallery is at %s); rebuilding it",
                    path,
                    stamp,
                    expected,
                )
                return None
            index = _deserialize(payload, stamp, count, digest)
        except (ValueError, RuntimeError) as exc:  # FAISS raises RuntimeError on bad bytes
            log.warning("prototype index %s is damaged (%s); rebuilding it", path, exc)
            return None
        return cls(index, stamp)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the index to `path` atomically: temp file in the same folder, fsync, rename."""
        payload = faiss.serialize_index(self._index).tobytes()
        header = {
            "revision": self._stamp.revision,
            "model_name": self._stamp.model_name,
            "model_sha256": self._stamp.model_sha256,
            "dim": self._stamp.dim,
            "count": self.count,
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
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
                f.write(payload)
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
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def ids(self) -> npt.NDArray[np.int64]:
        """The FAISS ids held, in storage order."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def restamp(self, revision: int) -> None:
        """Declare the contents current for `revision` (after applying that write's changes)."""
        self._stamp = IndexStamp(
            revision, self._stamp.model_name, self._stamp.model_sha256, self._stamp.dim
        )

    def upsert(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add `vectors` under `ids`, replacing any vectors already held under those ids."""
        id_arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        vec = np.ascontiguousarray(vectors, dtype=np.float32)
        if vec.ndim != 2 or vec.shape[0] != id_arr.shape[0] or vec.shape[1] != self._stamp.dim:
            raise ValueError(
                f"expected {id_arr.shape[0]} vectors of dimension {self._stamp.dim}, "
                f"got shape {vec.shape}"
            )
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("duplicate ids in one upsert")
        if id_arr.size == 0:
            return
        self.remove(id_arr)
        self._index.add_with_ids(vec, id_arr)
        self._gpu = None

    def remove(self, ids: npt.ArrayLike) -> None:
        """Drop the vectors held under `ids`; ids not present are ignored."""
        id_arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if id_arr.size:
            self._index.remove_ids(id_arr)
            self._gpu = None

    # -- search ---------------------------------------------------------------------------------
    def search(
        self, queries: npt.ArrayLike, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Inner products and ids of the `k` nearest prototypes of each query row, best first.

        `k` is clipped to the number of prototypes, so every returned id is real.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (n, {self.dim}), got {q.shape}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        k = min(k, self.count)
        if k == 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64)
        sims, ids = self._searcher().search(q, k)
        return np.asarray(sims, dtype=np.float32), np.asarray(ids, dtype=np.int64)

    def _searcher(self) -> Any:
        """The GPU copy when faiss-gpu sees a GPU, else the CPU index itself."""
        if self._gpu is not None:
            return self._gpu
        if self._gpu_failed or _gpu_count() == 0 or not hasattr(faiss, "StandardGpuResources"):
            return self._index
        try:
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._index)
        except (RuntimeError, AttributeError) as exc:
            log.warning("cannot move the prototype index to the GPU (%s); searching on CPU", exc)
            self._gpu_failed = True
            return self._index
        return self._gpu


def _split(data: bytes) -> tuple[IndexStamp, int, str, bytes]:
    """Stamp, count, payload hash and payload from file bytes; ValueError if not ours."""
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
        count = json_int(header["count"])
        digest = json_str(header["payload_sha256"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"bad stamp line: {exc}") from exc
    return stamp, count, digest, data[end + 1 :]


def _deserialize(payload: bytes, stamp: IndexStamp, count: int, digest: str) -> Any:
    """The FAISS index in `payload`, checked against its stamp; ValueError/RuntimeError if not."""
    # Checked before FAISS sees the bytes: it trusts sizes stored in them.
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError("payload checksum mismatch (truncated or overwritten)")
    # deserialize_index already returns the concrete type; downcast_index here would
    # make a second, non-owning wrapper and let the owning one free the index.
    index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
    if not isinstance(index, faiss.IndexIDMap2):
        raise ValueError(f"unexpected index type {type(index).__name__}")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError("index does not use inner product")
    if index.d != stamp.dim or index.ntotal != count:
        raise ValueError(
            f"index holds {index.ntotal} x {index.d}, stamp says {count} x {stamp.dim}"
        )
    return index


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
