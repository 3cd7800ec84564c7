"""Image(s) → faces with aligned chips, quality and embeddings, batched.

This is the one road from pixels to vectors that every app takes (enrolment,
verification, albums, the camera, training data preparation), so a change of
detector, template or model shows up everywhere at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.alignment import (
    ARCFACE_TEMPLATE,
    Template,
    alignment_matrix,
    transform_points,
    warp_to_template,
)
from facerec.detection import DetectedFace, Detector
from facerec.embedding import Embedder
from facerec.errors import MultipleFacesError, NoFaceError
from facerec.images import LoadedImage, RGBImage, from_png, to_png
from facerec.quality import Quality, QualityLimits, assess


def _zoomed_out(base: Template, size: int, zoom: float) -> Template:
    c = base.size / 2
    f = size / base.size * zoom
    return Template(
        size, tuple((size / 2 + (x - c) * f, size / 2 + (y - c) * f) for x, y in base.points)
    )


#: What the gallery keeps of each enrolled face: a 224-px aligned crop with a
#: wide margin (eye distance a quarter of the width), wider than any model's
#: chip, so `reembed` can cut a new model's chip from it without the photo.
STORAGE_TEMPLATE = _zoomed_out(ARCFACE_TEMPLATE, 224, 0.794)


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """One detected face carried through the pipeline."""

    detection: DetectedFace
    quality: Quality
    chip: RGBImage  # aligned to the model's template
    embedding: npt.NDArray[np.float32]  # (D,), unit length


@dataclass(frozen=True, slots=True, eq=False)
class StoredCrop:
    """The gallery's copy of an aligned face: PNG bytes and the landmarks inside it."""

    png: bytes
    landmarks: tuple[tuple[float, float], ...]


class Pipeline:
    """Detector + alignment + quality + embedder, wired once."""

    def __init__(self, detector: Detector, embedder: Embedder, limits: QualityLimits | None = None):
        self.detector = detector
        self.embedder = embedder
        self.limits = (limits or QualityLimits()).for_detector(detector.sure_score)

    @property
    def template(self) -> Template:
        return self.embedder.spec.template

    def faces(self, image: LoadedImage) -> list[Face]:
        """Every face in one image, best detector score first."""
        return self.faces_batch([image])[0]

    def faces_batch(self, images: Sequence[LoadedImage]) -> list[list[Face]]:
        """Faces for several images: one detector batch per image size, one embedder pass."""
        detections = self.detector.detect_batch([im.pixels for im in images])
        chips: list[RGBImage] = []
        owners: list[tuple[int, DetectedFace, Quality]] = []
        for i, (im, dets) in enumerate(zip(images, detections, strict=True)):
            for det in dets:
                chip = warp_to_template(im.pixels, det.landmarks_array(), self.template)
                chips.append(chip)
                owners.append((i, det, assess(det, chip, self.limits)))
        embeddings = self.embedder.embed(chips)
        out: list[list[Face]] = [[] for _ in images]
        for (i, det, q), chip, emb in zip(owners, chips, embeddings, strict=True):
            out[i].append(Face(det, q, chip, emb))
        return out

    def embed_chips(self, chips: Sequence[RGBImage]) -> npt.NDArray[np.float32]:
        return self.embedder.embed(chips)

    def embed_stored(self, crops: Sequence[StoredCrop]) -> npt.NDArray[np.float32]:
        """Embed stored crops with the current model: re-warp each to its template."""
        chips = [
            warp_to_template(from_png(c.png), np.asarray(c.landmarks), self.template) for c in crops
        ]
        return self.embedder.embed(chips)


def storage_crop(image: LoadedImage, face: DetectedFace) -> StoredCrop:
    """The wide aligned crop the gallery stores, with the landmarks mapped into it."""
    lm = face.landmarks_array()
    crop = warp_to_template(image.pixels, lm, STORAGE_TEMPLATE)
    inside = transform_points(alignment_matrix(lm, STORAGE_TEMPLATE), lm)
    return StoredCrop(to_png(crop), tuple((float(x), float(y)) for x, y in inside))


def select_one(faces: Sequence[Face], source: str, *, largest: bool = False) -> Face:
    """The single face an enrolment or a 1:1 check is about.

    Only faces that pass the quality gate count, so a blurred stranger in the
    background does not make a portrait ambiguous; when none passes, the error
    says why each one was refused.
    """
    usable = [f for f in faces if f.quality.ok]
    if not usable:
        if faces:
            why = "; ".join(", ".join(f.quality.reasons) for f in faces)
            raise NoFaceError(source, f"{len(faces)} found but refused: {why}")
        raise NoFaceError(source)
    if len(usable) > 1 and not largest:
        raise MultipleFacesError(source, len(usable))
    return max(usable, key=lambda f: f.detection.area)
