"""Detections and embeddings of evaluation photos, cached on disk by content.

Detection (MTCNN) is the slow half of embedding a set on CPU, and it does not
depend on the embedding model; the embedding does not depend on the protocol.
So one MTCNN pass per photo serves every model and every protocol
(`facerec evaluate`, `facerec calibrate`, `scripts/bench_far.py`), and one
network pass per photo and model serves every protocol.

Two stores, each entry one small file named by what determines its content:

* ``detections/<detector key>/<ab>/<photo sha256>.json``: the photo's size
  and the five landmarks of the face `evaluation.embed` chooses (or none
  found). The detector key digests the MTCNN settings, the facenet-pytorch
  release that holds its weights and the face-choice rule.
* ``embeddings/<model key>/<ab>/<entry>.npy``: one unit vector. The model key
  digests the model's name and weights SHA-256, its alignment template and
  flip averaging; the entry digests the photo's SHA-256 and the exact
  landmarks the chip was cut at (a miss's fallback landmarks depend on the
  set, so they are part of the key, not assumed).

Content addressing means a renamed or copied photo still hits and an edited
one misses; there is nothing to invalidate. Writes go to a temporary file
renamed into place, so a crash or a concurrent run never leaves half an
entry, and an entry that does not parse or fails its checks (a junk file) is
logged, ignored and rewritten. Default location: ``evaluation/`` in the user
cache directory (e.g. ``~/.cache/facerec/evaluation``), beside the training
chip cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import platformdirs

from facerec.detectors import DetectorConfig, DetectorKind
from facerec.faces.alignment import Template
from facerec.models.base import ModelIdentity

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever an entry's meaning or layout changes; old entries are then never read."""

#: How `evaluation.embed` picks the subject among several detections (part of the key).
FACE_RULE = "central-box"

Landmarks = tuple[tuple[float, float], ...]


def default_cache_dir() -> Path:
    """`evaluation/` in the user cache directory (e.g. ~/.cache/facerec/evaluation)."""
    return platformdirs.user_cache_path("facerec", appauthor=False) / "evaluation"


def _digest(desc: object) -> str:
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def detector_key(config: DetectorConfig) -> str:
    """Short digest of everything that changes which landmarks a photo gets."""
    if config.resolved_kind is not DetectorKind.MTCNN:
        import cv2

        from facerec.detectors.yunet import REFINE_METHOD, SMALLEST_FACE

        desc: dict[str, object] = {
            "version": CACHE_VERSION,
            "detector": str(config.resolved_kind),
            "opencv": cv2.__version__,
            "settings": dataclasses.asdict(config.yunet),
            "refinement": REFINE_METHOD if config.yunet.refine_face else None,
            "min_face_size": config.min_face_size,
            "rule": FACE_RULE,
        }
        if config.min_face_size > SMALLEST_FACE:  # detected on a shrunk image since then
            desc["smallest_face"] = SMALLEST_FACE
        return _digest(desc)[:16]
    try:
        release = importlib.metadata.version("facenet-pytorch")
    except importlib.metadata.PackageNotFoundError:
        release = "unknown"
    return _digest(
        {
            "version": CACHE_VERSION,
            "detector": "mtcnn",
            "facenet_pytorch": release,
            "min_face_size": config.min_face_size,
            "thresholds": list(config.thresholds),
            "factor": config.factor,
            "min_score": config.min_score,
            "rule": FACE_RULE,
        }
    )[:16]


def embedding_key(identity: ModelIdentity, template: Template, flip: bool) -> str:
    """Short digest of everything besides the photo and landmarks that changes an embedding."""
    return _digest(
        {
            "version": CACHE_VERSION,
            "model": identity.name,
            "weights_sha256": identity.weights_sha256,
            "size": template.size,
            "points": [list(p) for p in template.points],
            "flip": flip,
        }
    )[:16]


@dataclass(frozen=True, slots=True)
class Detection:
    """What the cache keeps of one photo: its size and the chosen face's landmarks (None: no face)."""

    width: int
    height: int
    landmarks: Landmarks | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "width": self.width,
                "height": self.height,
                "landmarks": None if self.landmarks is None else [list(p) for p in self.landmarks],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Detection:
        """Parse and check an entry; anything unexpected raises ValueError."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        w, h, lm = data.get("width"), data.get("height"), data.get("landmarks")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise ValueError("bad image size")
        if lm is None:
            return cls(w, h, None)
        arr = np.asarray(lm, dtype=np.float64)
        if arr.shape != (5, 2) or not np.isfinite(arr).all():
            raise ValueError("landmarks must be five finite (x, y) points")
        return cls(w, h, tuple((float(x), float(y)) for x, y in arr))


class EvaluationCache:
    """The two stores under one root directory (see the module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"EvaluationCache({str(self.root)!r})"

    # -- detections ----------------------------------------------------------------------------
    def _detection_path(self, det_key: str, sha: str) -> Path:
        return self.root / "detections" / det_key / sha[:2] / f"{sha}.json"

    def detection(self, det_key: str, sha: str) -> Detection | None:
        path = self._detection_path(det_key, sha)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("%s: unreadable cache entry (%s); detecting again", path, exc)
            return None
        try:
            return Detection.from_json(data.decode())
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            log.warning("%s: unusable cache entry (%s); detecting again", path, exc)
            return None

    def put_detection(self, det_key: str, sha: str, detection: Detection) -> None:
        _write_atomic(self._detection_path(det_key, sha), detection.to_json().encode())

    # -- embeddings ----------------------------------------------------------------------------
    def _embedding_path(self, model_key: str, sha: str, landmarks: npt.NDArray[np.float64]) -> Path:
        h = hashlib.sha256(sha.encode())
        h.update(np.ascontiguousarray(landmarks, dtype="<f8").tobytes())
        entry = h.hexdigest()
        return self.root / "embeddings" / model_key / entry[:2] / f"{entry}.npy"

    def embedding(
        self, model_key: str, sha: str, landmarks: npt.NDArray[np.float64], dim: int
    ) -> npt.NDArray[np.float32] | None:
        path = self._embedding_path(model_key, sha, landmarks)
        try:
            with path.open("rb") as f:
                vec = np.load(f, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as exc:
            log.warning("%s: unusable cache entry (%s); embedding again", path, exc)
            return None
        if (
            vec.dtype != np.float32
            or vec.shape != (dim,)
            or not np.isfinite(vec).all()
            or abs(float(np.linalg.norm(vec)) - 1.0) > 1e-3
        ):
            log.warning("%s: not a unit %d-d float32 vector; embedding again", path, dim)
            return None
        return vec

    def put_embedding(
        self,
        model_key: str,
        sha: str,
        landmarks: npt.NDArray[np.float64],
        vector: npt.NDArray[np.float32],
    ) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(vector, dtype=np.float32), allow_pickle=False)
        _write_atomic(self._embedding_path(model_key, sha, landmarks), buf.getvalue())


def _write_atomic(path: Path, data: bytes) -> None:
    """Temporary file in the same directory, then rename: readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
