"""The Python API: the same verbs as the CLI (enroll, verify, identify, people, remove, info, reembed).

`FaceRec` wires the pipeline to one gallery. It loads the detector and the
embedding model only when a verb needs pixels, so `people`, `remove` and
`info` answer instantly, and it checks the gallery's model pin before any
comparison so embeddings of two different models are never compared.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facerec.config import Settings, default_db_path
from facerec.decision import Identification, Verification, identify, verify
from facerec.detection import Detector
from facerec.embedding import Embedder
from facerec.errors import FacerecError, ImageError, UnknownPersonError
from facerec.gallery import EnrollResult, Gallery, GalleryInfo, NewSample, Person
from facerec.images import LoadedImage, load_image
from facerec.models.base import ModelSpec
from facerec.models.registry import DEFAULT_MODEL, load_model, model_spec
from facerec.pipeline import Face, Pipeline, StoredCrop, select_one, storage_crop
from facerec.quality import Quality

log = logging.getLogger(__name__)

#: How many nearest people the identification softmax is taken over.
SOFTMAX_POOL = 512


@dataclass(frozen=True, slots=True)
class IdentifiedFace:
    """One face of an identify() call; `identification` is None when the quality gate refused it."""

    box: tuple[float, float, float, float]
    score: float
    quality: Quality
    identification: Identification | None


@dataclass(frozen=True, slots=True)
class ImageIdentification:
    """Faces found in one photo, or why the photo could not be read (the batch goes on).

    `damage` is set when the photo decoded with errors (`LoadedImage.damage`):
    its faces were still identified, but some pixels may be wrong.
    """

    source: str
    faces: tuple[IdentifiedFace, ...]
    error: str | None = None
    damage: str | None = None


@dataclass(frozen=True, slots=True)
class Info:
    gallery: GalleryInfo
    model: str
    threshold: float
    embedding_dim: int
    input_size: int
    licence: str
    origin: str


class FaceRec:
    """A gallery plus the pipeline that feeds it."""

    def __init__(
        self,
        db: str | Path | None = None,
        settings: Settings | None = None,
        *,
        pipeline: Pipeline | None = None,
    ) -> None:
        """`pipeline` shares an already-loaded detector and model (a server, a test session)."""
        self.settings = settings or Settings()
        if self.settings.model is not None:
            model_spec(self.settings.model)  # an unknown name fails before any work
        self.db_path = Path(db).expanduser() if db is not None else default_db_path()
        self._gallery: Gallery | None = None
        self._pipeline = pipeline

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FaceRec:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._gallery is not None:
            self._gallery.close()
            self._gallery = None

    @property
    def gallery(self) -> Gallery:
        if self._gallery is None:
            self._gallery = Gallery.open(self.db_path)
        return self._gallery

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            model = load_model(self.settings.model, self.settings.weights)
            embedder = Embedder(model, batch_size=self.settings.batch_size, flip=self.settings.flip)
            self._pipeline = Pipeline(
                Detector(self.settings.detector), embedder, self.settings.quality
            )
        return self._pipeline

    @property
    def spec(self) -> ModelSpec:
        """The active model's spec, without loading it if it is not loaded yet."""
        if self._pipeline is not None:
            return self._pipeline.embedder.spec
        pinned = self.gallery.model
        return model_spec(self.settings.model or (pinned.name if pinned else None) or DEFAULT_MODEL)

    def threshold(self) -> float:
        """Explicit override, else calibrated in the gallery, else the model default."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        spec = self.spec
        stored = self.gallery.threshold(spec.name)
        return stored if stored is not None else spec.threshold

    # -- verbs ---------------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Sequence[str | Path],
        *,
        largest: bool = False,
        progress: bool = False,
    ) -> EnrollResult:
        """Add one face from each photo file to `name`'s samples; all or nothing."""
        if not images:
            raise ValueError("enroll needs at least one image")
        loaded = [load_image(p) for p in images]  # bad files fail before any model loads
        return self.enroll_images(name, loaded, largest=largest, progress=progress)

    def enroll_images(
        self,
        name: str,
        images: Sequence[LoadedImage],
        *,
        largest: bool = False,
        progress: bool = False,
    ) -> EnrollResult:
        """Add one face from each decoded image to `name`'s samples; all or nothing.

        Every image is detected and embedded before anything is written, so
        one bad photo in ten leaves the gallery as it was.
        """
        if not images:
            raise ValueError("enroll needs at least one image")
        for image in images:
            if image.damage is not None:  # a damaged face would poison the prototype
                raise ImageError(image.source, f"{image.damage}; a damaged photo is not enrolled")
        identity = self.pipeline.embedder.identity
        self.gallery.check_model(identity)
        samples = []
        for image in tqdm(images, desc=f"enrolling {name}", unit="photo", disable=not progress):
            face = select_one(self.faces(image), image.source, largest=largest)
            samples.append(_new_sample(image, face))
        return self.gallery.enroll(name, samples, identity)

    def verify(self, name: str, image: str | Path, *, largest: bool = False) -> Verification:
        """1:1: is the (single) face in the photo file the enrolled person `name`?"""
        if not self.gallery.has(name):
            raise UnknownPersonError(name)  # fails before the photo is even read
        return self.verify_image(name, load_image(image), largest=largest)

    def verify_image(self, name: str, image: LoadedImage, *, largest: bool = False) -> Verification:
        """1:1 on a decoded image."""
        if not self.gallery.has(name):
            raise UnknownPersonError(name)
        self.gallery.check_model(self.pipeline.embedder.identity)
        if image.damage is not None:
            log.warning("%s: %s; the decision may be unreliable", image.source, image.damage)
        face = select_one(self.faces(image), image.source, largest=largest)
        return verify(name, face.embedding, self.gallery.prototype(name), self.threshold())

    def faces(self, image: LoadedImage) -> list[Face]:
        """Every face of one image through the pipeline."""
        return self.pipeline.faces(image)

    def identify(self, image: str | Path) -> ImageIdentification:
        """1:N for every face in one image."""
        return self.identify_many([image])[0]

    def identify_many(
        self, images: Iterable[str | Path], *, progress: bool = False
    ) -> list[ImageIdentification]:
        self.gallery.check_model(self.pipeline.embedder.identity)
        threshold = self.threshold()
        paths = list(images)
        results = []
        for path in tqdm(paths, desc="identifying", unit="photo", disable=not progress):
            try:
                loaded = load_image(path)
            except ImageError as exc:
                results.append(ImageIdentification(exc.source, (), error=exc.reason))
                continue
            results.append(self._identify_loaded(loaded, threshold))
        return results

    def identify_image(self, image: LoadedImage) -> ImageIdentification:
        """1:N for every face of a decoded image."""
        self.gallery.check_model(self.pipeline.embedder.identity)
        return self._identify_loaded(image, self.threshold())

    def _identify_loaded(self, image: LoadedImage, threshold: float) -> ImageIdentification:
        faces = self._identify_faces(self.faces(image), threshold)
        return ImageIdentification(image.source, faces, damage=image.damage)

    def _identify_faces(
        self, faces: Sequence[Face], threshold: float
    ) -> tuple[IdentifiedFace, ...]:
        usable = [f for f in faces if f.quality.ok]
        hits = self.gallery.search(_stack(usable), SOFTMAX_POOL) if usable else []
        decided = {
            id(f): identify(
                [h.name for h in hs],
                [h.similarity for h in hs],
                threshold,
                scale=self.settings.softmax_scale,
                top_k=self.settings.top_k,
            )
            for f, hs in zip(usable, hits, strict=True)
        }
        return tuple(
            IdentifiedFace(f.detection.box, f.detection.score, f.quality, decided.get(id(f)))
            for f in faces
        )

    def people(self) -> list[Person]:
        return self.gallery.people()

    def remove(self, name: str) -> int:
        return self.gallery.remove(name)

    def info(self) -> Info:
        spec = self.spec
        return Info(
            gallery=self.gallery.info(),
            model=spec.name,
            threshold=self.threshold(),
            embedding_dim=spec.embedding_dim,
            input_size=spec.input_size,
            licence=spec.licence,
            origin=spec.origin,
        )

    def reembed(self, *, progress: bool = False) -> int:
        """Recompute every sample's embedding with the active model from its stored crop."""
        pipeline = self.pipeline
        samples = list(self.gallery.samples())
        new = {}
        batch = self.settings.batch_size
        for start in tqdm(range(0, len(samples), batch), desc="re-embedding", disable=not progress):
            chunk = samples[start : start + batch]
            embs = pipeline.embed_stored([StoredCrop(s.crop_png, s.crop_landmarks) for s in chunk])
            new.update({s.id: e for s, e in zip(chunk, embs, strict=True)})
        self.gallery.reembed(pipeline.embedder.identity, new)
        return len(new)


def _stack(faces: Sequence[Face]) -> npt.NDArray[np.float32]:
    return np.stack([f.embedding for f in faces]).astype(np.float32)


def _new_sample(image: LoadedImage, face: Face) -> NewSample:
    crop = storage_crop(image, face.detection)
    return NewSample(
        embedding=face.embedding,
        crop_png=crop.png,
        crop_landmarks=crop.landmarks,
        source=image.source,
        content_sha256=image.sha256,
        box=face.detection.box,
        det_score=face.detection.score,
        quality=face.quality.as_dict(),
    )


__all__ = ["FaceRec", "FacerecError", "IdentifiedFace", "ImageIdentification", "Info"]
