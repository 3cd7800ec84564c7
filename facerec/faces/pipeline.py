"""Image(s) → faces with aligned chips, quality and embeddings, batched.

This is the one road from pixels to vectors that every app takes (enrolment,
verification, albums, the camera, training data preparation), so a change of
detector, template or model shows up everywhere at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from facerec.detectors import DetectedFace, Detector
from facerec.errors import MultipleFacesError, NoFaceError
from facerec.faces.alignment import (
    ARCFACE_TEMPLATE,
    Template,
    alignment_matrix,
    transform_points,
    warp_to_template,
)
from facerec.faces.images import LoadedImage, RGBImage, from_png, to_png
from facerec.faces.quality import Quality, QualityLimits, assess

if TYPE_CHECKING:
    from facerec.faces.embedding import Embedder  # imports torch


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
    chip: RGBImage  # aligned to the model's template (a fusion's: its first member's)
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
        """The chip `Face.chip` holds and the quality gate measures (a fusion's first member's)."""
        return self.embedder.spec.template

    @property
    def templates(self) -> tuple[Template, ...]:
        """Every chip the model embeds a face from: one per network (`ModelSpec.templates`)."""
        return self.embedder.templates

    def faces(self, image: LoadedImage) -> list[Face]:
        """Every face in one image, best detector score first."""
        return self.faces_batch([image])[0]

    def faces_batch(self, images: Sequence[LoadedImage], *, workers: int = 1) -> list[list[Face]]:
        """Faces for several images: one detector batch per image size, one embedder pass.

        `workers` > 1 splits the images into that many groups, balanced by
        pixel count, and runs each group on a thread of its own: the
        networks release the GIL, and each thread uses its own copy of any
        network that keeps state (`facerec.faces.replicas`), so with one model
        thread each, `workers` photos use `workers` cores. That is how a
        batch job should use cores: independent single-threaded workers never
        wait at a barrier for a thread the scheduler put to sleep, so on a
        busy machine they slow down gracefully (`facerec.runtime`).
        """
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers == 1 or len(images) < 2:
            return self._faces_serial(images)
        groups = _balanced(images, min(workers, len(images)))
        out: list[list[Face]] = [[] for _ in images]
        with ThreadPoolExecutor(len(groups), thread_name_prefix="faces") as pool:
            done = pool.map(lambda g: self._faces_serial([images[i] for i in g]), groups)
            for group, faces in zip(groups, done, strict=True):
                for i, f in zip(group, faces, strict=True):
                    out[i] = f
        return out

    def _faces_serial(self, images: Sequence[LoadedImage]) -> list[list[Face]]:
        detections = self.detector.detect_batch([im.pixels for im in images])
        templates = self.templates
        views: list[list[RGBImage]] = [[] for _ in templates]
        owners: list[tuple[int, DetectedFace, Quality]] = []
        for i, (im, dets) in enumerate(zip(images, detections, strict=True)):
            for det in dets:
                landmarks = det.landmarks_array()
                for view, template in zip(views, templates, strict=True):
                    view.append(warp_to_template(im.pixels, landmarks, template))
                owners.append((i, det, assess(det, views[0][-1], self.limits)))
        embeddings = self.embedder.embed_views(views)
        out: list[list[Face]] = [[] for _ in images]
        for (i, det, q), chip, emb in zip(owners, views[0], embeddings, strict=True):
            out[i].append(Face(det, q, chip, emb))
        return out

    def embed_chips(self, chips: Sequence[RGBImage]) -> npt.NDArray[np.float32]:
        """Embed chips already cut to `template` (a single network only; see `embed_at`)."""
        return self.embedder.embed(chips)

    def embed_at(
        self, images: Sequence[RGBImage], landmarks: Sequence[npt.ArrayLike]
    ) -> npt.NDArray[np.float32]:
        """Embed face i of `images[i]` at `landmarks[i]`, cut to each of the model's templates."""
        marks = [np.asarray(lm, dtype=np.float64) for lm in landmarks]
        views = [
            [warp_to_template(im, lm, t) for im, lm in zip(images, marks, strict=True)]
            for t in self.templates
        ]
        return self.embedder.embed_views(views)

    def embed_stored(self, crops: Sequence[StoredCrop]) -> npt.NDArray[np.float32]:
        """Embed stored crops with the current model: re-warp each to its template(s)."""
        return self.embed_at([from_png(c.png) for c in crops], [c.landmarks for c in crops])


def _balanced(images: Sequence[LoadedImage], n: int) -> list[list[int]]:
    """Indices of `images` in `n` groups of about equal pixel count (largest first, greedy)."""
    order = sorted(range(len(images)), key=lambda i: -images[i].pixels.size)
    groups: list[list[int]] = [[] for _ in range(n)]
    load = [0] * n
    for i in order:
        k = load.index(min(load))
        groups[k].append(i)
        load[k] += images[i].pixels.size
    return [sorted(g) for g in groups if g]


def storage_crop(image: LoadedImage, face: DetectedFace) -> StoredCrop:
    """The wide aligned crop the gallery stores, with the landmarks mapped into it."""
    lm = face.landmarks_array()
    crop = warp_to_template(image.pixels, lm, STORAGE_TEMPLATE)
    inside = transform_points(alignment_matrix(lm, STORAGE_TEMPLATE), lm)
    return StoredCrop(to_png(crop), tuple((float(x), float(y)) for x, y in inside))


#: A face with less than this fraction of its detector box inside the image is cut off by the
#: border: in a photo framed on someone, that is a bystander at the edge, however large.
MIN_IN_FRAME = 0.9

#: The subject's face must be this many times as wide (the box's shorter side) as every other
#: face in frame, i.e. more than twice the area; closer in size, the photo is ambiguous.
DOMINANCE = 1.5


@dataclass(frozen=True, slots=True, eq=False)
class Subject:
    """The face a photo is about, and how many other faces it showed (ignored)."""

    face: Face
    ignored: int


def in_frame(face: DetectedFace, image_size: tuple[int, int]) -> float:
    """The fraction of the detector box inside an image of (height, width)."""
    h, w = image_size
    x1, y1, x2, y2 = face.box
    inside = max(0.0, min(x2, w) - max(x1, 0.0)) * max(0.0, min(y2, h) - max(y1, 0.0))
    return inside / face.area if face.area > 0 else 0.0


def select_subject(faces: Sequence[Face], image: LoadedImage, *, largest: bool = False) -> Subject:
    """The one face an enrolment or a 1:1 check is about, when the photo says clearly which.

    The subject is the largest face among those in frame, provided it is
    `DOMINANCE` times as wide as every other face in frame; the others are
    ignored and counted. Faces cut off by the border (`MIN_IN_FRAME`) do not
    compete unless no face is in frame (a tight crop): in LFW-style photos,
    framed on one person, the largest face is often half a bystander at the
    edge. Faces refused by the quality gate compete too: a turned-away subject
    beside a frontal bystander must not make the bystander the subject, so a
    dominant face that fails the gate is refused with its reasons, and two
    faces of similar size are ambiguous whatever their quality.
    `scripts/bench_face_selection.py` measures this rule against the old one
    (refuse any second usable face) on the LFW pairs.

    `largest=True` keeps its old meaning: the largest face that passes the
    gate, wherever it is and whatever else is there.
    """
    if not faces:
        raise NoFaceError(image.source)
    usable = [f for f in faces if f.quality.ok]
    if largest:
        if not usable:
            raise NoFaceError(image.source, _refused(faces))
        return Subject(max(usable, key=lambda f: f.detection.area), len(faces) - 1)
    size = image.pixels.shape[:2]
    framed = [f for f in faces if in_frame(f.detection, (size[0], size[1])) >= MIN_IN_FRAME]
    pool = sorted(framed or faces, key=lambda f: _width(f), reverse=True)
    main = pool[0]
    rivals = [f for f in pool[1:] if _width(main) < DOMINANCE * _width(f)]
    if rivals:
        if not any(f.quality.ok for f in [main, *rivals]):
            raise NoFaceError(image.source, _refused([main, *rivals]))
        widths = ", ".join(f"{_width(f):.0f}" for f in [main, *rivals])
        raise MultipleFacesError(image.source, 1 + len(rivals), f"similar sizes: {widths} px")
    if not main.quality.ok:
        others = len(faces) - 1
        raise NoFaceError(
            image.source,
            f"the main face ({_width(main):.0f} px) was refused: "
            f"{', '.join(main.quality.reasons)}"
            + (f"; {others} smaller or cut-off face(s) not used instead" if others else ""),
        )
    return Subject(main, len(faces) - 1)


def select_one(faces: Sequence[Face], image: LoadedImage, *, largest: bool = False) -> Face:
    """`select_subject`'s face, for callers that need not say how many others were ignored."""
    return select_subject(faces, image, largest=largest).face


def _width(face: Face) -> float:
    return min(face.detection.width, face.detection.height)


def _refused(faces: Sequence[Face]) -> str:
    why = "; ".join(", ".join(f.quality.reasons) for f in faces)
    return f"{len(faces)} found but refused: {why}"
