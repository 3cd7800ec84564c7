"""Embed every photo of an evaluation set once, the same way for every protocol.

Evaluation photos (LFW, AT&T, Yale) show one subject, sometimes with
bystanders, and a detector sometimes misses. Two rules keep figures
comparable between runs and between pipelines:
- the subject is the detected face whose box centre is nearest the image
  centre (LFW is centred on its subject);
- a miss is not dropped (that would flatter the pipeline): the face is
  assumed where this set usually has it, at the mean relative landmark
  positions of the set's own detections, and counted as missed.

With an `EvaluationCache`, each photo is detected once per detector
setting and embedded once per network, whatever the protocol (see
`evaluation.cache`); the figures are the same with or without it. A fusion
is cached as its members: its vectors are fused from theirs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facerec.detectors import DetectedFace
from facerec.evaluation.cache import Detection, EvaluationCache, detector_key, embedding_key
from facerec.faces.alignment import warp_to_template
from facerec.faces.images import load_image, read_bytes
from facerec.faces.pipeline import Pipeline
from facerec.models.fusion import fuse

if TYPE_CHECKING:
    from facerec.faces.embedding import Embedder  # imports torch

#: Photos per detector batch (equal-sized photos run as one MTCNN batch).
DETECT_BATCH = 16
#: Photos decoded and warped at a time before the embedder: bounds memory on large sets.
EMBED_CHUNK = 256


@dataclass(frozen=True, slots=True, eq=False)
class EmbeddedSet:
    """Row i of `embeddings` is `paths[i]`. `detected` and `embedded` count the photos
    this call ran through the detector and the model (the rest came from the cache)."""

    paths: tuple[Path, ...]
    embeddings: npt.NDArray[np.float32]  # (N, D)
    missed: frozenset[Path]
    detected: int = 0
    embedded: int = 0

    def lookup(self) -> dict[Path, npt.NDArray[np.float32]]:
        return dict(zip(self.paths, self.embeddings, strict=True))


def central_face(faces: Sequence[DetectedFace], width: int, height: int) -> DetectedFace:
    """The face whose box centre is nearest the image centre."""

    def off(f: DetectedFace) -> float:
        x1, y1, x2, y2 = f.box
        return ((x1 + x2) / 2 - width / 2) ** 2 + ((y1 + y2) / 2 - height / 2) ** 2

    return min(faces, key=off)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def embed_set(
    pipeline: Pipeline,
    paths: Sequence[Path],
    *,
    progress: bool = False,
    cache: EvaluationCache | None = None,
) -> EmbeddedSet:
    """One embedding per photo (see the module docstring for faces and misses)."""
    paths = tuple(paths)
    # Content keys; a missing or empty file fails here, by name.
    shas = [hashlib.sha256(read_bytes(p)).hexdigest() for p in paths]
    detections, detected = _detections(pipeline, paths, shas, cache, progress)

    found = [
        np.asarray(d.landmarks) / [d.width, d.height] for d in detections if d.landmarks is not None
    ]
    if not found:
        raise ValueError("the detector found no face in any photo of this set")
    fallback = np.mean(found, axis=0)
    landmarks = [
        np.asarray(d.landmarks, dtype=np.float64)
        if d.landmarks is not None
        else fallback * [d.width, d.height]
        for d in detections
    ]
    missed = frozenset(p for p, d in zip(paths, detections, strict=True) if d.landmarks is None)

    embedder = pipeline.embedder
    networks = embedder.members or (embedder,)
    parts, todo = [], set()
    for network in networks:
        vecs, ran = _embed_network(network, paths, shas, landmarks, cache, progress)
        parts.append(vecs)
        todo.update(ran)
    out = fuse(parts, [m.weight for m in embedder.spec.members]) if embedder.members else parts[0]
    return EmbeddedSet(paths, out, missed, detected=detected, embedded=len(todo))


def _embed_network(
    embedder: Embedder,
    paths: Sequence[Path],
    shas: Sequence[str],
    landmarks: Sequence[npt.NDArray[np.float64]],
    cache: EvaluationCache | None,
    progress: bool,
) -> tuple[npt.NDArray[np.float32], list[int]]:
    """One network's unit vectors for every photo, and the rows it had to compute.

    Per network, not per model: a fusion's rows are fused from its members'
    cached vectors, so evaluating a fusion of two models already evaluated
    runs no network at all.
    """
    template = embedder.spec.template
    model_key = embedding_key(embedder.identity, template, embedder.flip)
    dim = embedder.spec.embedding_dim
    out = np.empty((len(paths), dim), dtype=np.float32)
    todo = []
    for i, (sha, lm) in enumerate(zip(shas, landmarks, strict=True)):
        vec = cache.embedding(model_key, sha, lm, dim) if cache is not None else None
        if vec is None:
            todo.append(i)
        else:
            out[i] = vec
    bar = tqdm(
        total=len(todo),
        desc=f"embedding ({embedder.spec.name})",
        unit="photo",
        disable=not progress,
    )
    for chunk in _chunks(todo, EMBED_CHUNK):
        chips = [
            warp_to_template(load_image(paths[i]).pixels, landmarks[i], template) for i in chunk
        ]
        vecs = embedder.embed(chips)
        for i, vec in zip(chunk, vecs, strict=True):
            out[i] = vec
            if cache is not None:
                cache.put_embedding(model_key, shas[i], landmarks[i], vec)
        bar.update(len(chunk))
    bar.close()
    return out, todo


def _detections(
    pipeline: Pipeline,
    paths: Sequence[Path],
    shas: Sequence[str],
    cache: EvaluationCache | None,
    progress: bool,
) -> tuple[list[Detection], int]:
    """Each photo's size and chosen landmarks, detecting only what the cache lacks."""
    det_key = detector_key(pipeline.detector.config)
    known: list[Detection | None] = [
        cache.detection(det_key, sha) if cache is not None else None for sha in shas
    ]
    todo = [i for i, d in enumerate(known) if d is None]
    bar = tqdm(total=len(todo), desc="detecting", unit="photo", disable=not progress)
    for chunk in _chunks(todo, DETECT_BATCH):
        images = [load_image(paths[i]).pixels for i in chunk]
        for i, img, faces in zip(
            chunk, images, pipeline.detector.detect_batch(images), strict=True
        ):
            h, w = img.shape[:2]
            det = Detection(w, h, central_face(faces, w, h).landmarks if faces else None)
            known[i] = det
            if cache is not None:
                cache.put_detection(det_key, shas[i], det)
        bar.update(len(chunk))
    bar.close()
    return [d for d in known if d is not None], len(todo)
