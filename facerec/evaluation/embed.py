"""Embed every photo of an evaluation set once, the same way for every protocol.

Evaluation photos (LFW, AT&T, Yale) show one subject, sometimes with
bystanders, and a detector sometimes misses. Two rules keep figures
comparable between runs and between pipelines:
- the subject is the detected face whose box centre is nearest the image
  centre (LFW is centred on its subject);
- a miss is not dropped (that would flatter the pipeline): the face is
  assumed where this set usually has it, at the mean relative landmark
  positions of the set's own detections, and counted as missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facerec.alignment import warp_to_template
from facerec.detection import DetectedFace
from facerec.images import load_image
from facerec.pipeline import Pipeline


@dataclass(frozen=True, slots=True, eq=False)
class EmbeddedSet:
    paths: tuple[Path, ...]
    embeddings: npt.NDArray[np.float32]  # (N, D), row i for paths[i]
    missed: frozenset[Path]

    def lookup(self) -> dict[Path, npt.NDArray[np.float32]]:
        return dict(zip(self.paths, self.embeddings, strict=True))


def central_face(faces: Sequence[DetectedFace], width: int, height: int) -> DetectedFace:
    """The face whose box centre is nearest the image centre."""

    def off(f: DetectedFace) -> float:
        x1, y1, x2, y2 = f.box
        return ((x1 + x2) / 2 - width / 2) ** 2 + ((y1 + y2) / 2 - height / 2) ** 2

    return min(faces, key=off)


def embed_set(pipeline: Pipeline, paths: Sequence[Path], *, progress: bool = False) -> EmbeddedSet:
    """One embedding per photo (see the module docstring for faces and misses)."""
    images = []
    relative: list[npt.NDArray[np.float64] | None] = []
    for p in tqdm(paths, desc="detecting", unit="photo", disable=not progress):
        img = load_image(p).pixels
        faces = pipeline.detector.detect(img)
        h, w = img.shape[:2]
        images.append(img)
        if faces:
            lm = central_face(faces, w, h).landmarks_array()
            relative.append(lm / [w, h])
        else:
            relative.append(None)
    found = [r for r in relative if r is not None]
    fallback = np.mean(found, axis=0) if found else None
    chips = []
    missed = set()
    for p, img, rel in zip(paths, images, relative, strict=True):
        if rel is None:
            if fallback is None:
                raise ValueError("the detector found no face in any photo of this set")
            missed.add(p)
            rel = fallback
        h, w = img.shape[:2]
        chips.append(warp_to_template(img, rel * [w, h], pipeline.template))
    embeddings = pipeline.embed_chips(chips)
    return EmbeddedSet(tuple(paths), embeddings, frozenset(missed))
