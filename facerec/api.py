"""The Python API: the same verbs as the CLI (enroll, verify, identify, people, remove, info, reembed).

`FaceRec` wires the pipeline to one gallery. It loads the detector and the
embedding model only when a verb needs pixels, so `people` and `info` answer
instantly, and it checks the gallery's model pin before any comparison so
embeddings of two different models are never compared.

`remove` forgets a person everywhere their face is stored in the gallery
database, not only their enrolment: the album's and the door camera's tables
live there too (`album/tables.py`, `camera/tables.py`), so it calls each
store's eraser inside the one transaction that deletes the person. The
erasers belong to those apps, above this module; the package root composes
them (`facerec.gallery.erasers`), so completeness does not depend on which
app happens to be imported and this module imports none.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session
from tqdm import tqdm

from facerec.config import Settings, database_url
from facerec.decisions.decision import (
    Claim,
    DecisionThreshold,
    Identification,
    Verification,
    identify,
)
from facerec.decisions.enrolment import EnrolmentCheck, check_enrolment, new_sample
from facerec.decisions.names import name_key, validate_name
from facerec.decisions.operating import (
    CurveProvenance,
    OperatingCurve,
    curve_for,
    resolve_threshold,
    shipped_sizes,
)
from facerec.detectors import DEFAULT_DETECTOR, Detector, DetectorKind
from facerec.errors import FacerecError, ImageError, PersonChangedError, UnknownPersonError
from facerec.faces.images import LoadedImage, decode_image, load_image
from facerec.faces.pipeline import Face, Pipeline, StoredCrop, select_subject
from facerec.faces.quality import Quality
from facerec.gallery import (
    EnrollResult,
    Gallery,
    GalleryInfo,
    Hit,
    NewSample,
    Person,
    PersonSnapshot,
    editing,
)
from facerec.gallery.erasers import AlbumForgotten, AuditForgotten, Erasers, erasers
from facerec.gallery.forget import ForgetTarget
from facerec.gallery.index_kind import index_kind_from_env
from facerec.models.base import ModelIdentity, ModelSpec, sha256_file
from facerec.models.registry import DEFAULT_MODEL, load_model, model_spec
from facerec.runtime import use_threads
from facerec.storage import Database, DatabaseUrl

log = logging.getLogger(__name__)

#: The false-accept rate the enrolment checks' threshold is set for (`FaceRec.enrolment_threshold`).
ENROLMENT_FAR = 1e-3

#: How often an enrolment re-checks after another writer changed the same person meanwhile.
ENROLMENT_ATTEMPTS = 5

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
class Forgotten:
    """What `FaceRec.remove` deleted of a person, per store.

    `compacted` says the database file was rewritten and its write-ahead log
    emptied afterwards, so no deleted byte is left in either file (False
    when another process kept the log busy; SQLite finishes that when the
    last connection closes). Always False on PostgreSQL, where deleted rows
    linger as dead tuples until vacuumed (`facerec.storage.Database.compact`).
    `album_kept`: the album was left alone on request.
    """

    name: str
    samples: int
    album: AlbumForgotten
    audit: AuditForgotten
    album_kept: bool
    compacted: bool


@dataclass(frozen=True, slots=True)
class Info:
    """`threshold` is the 1:1 threshold in force; `verification` and `identification` say
    where the 1:1 and 1:N (for this gallery's size) thresholds come from and their error
    rates; `operating_points` is the provenance of the shipped curve, if one applies."""

    gallery: GalleryInfo
    model: str
    threshold: float
    embedding_dim: int
    input_size: int
    licence: str
    origin: str
    verification: DecisionThreshold
    identification: DecisionThreshold
    operating_points: CurveProvenance | None
    non_commercial: bool  # the weights' licence allows research use only
    #: The 1:1 threshold for a person enrolled from k photos, per shipped prototype size
    #: (k photos or fewer, down to the previous size); empty without shipped curves.
    verification_by_photos: dict[int, DecisionThreshold] = dataclasses.field(default_factory=dict)


class FaceRec:
    """A gallery plus the pipeline that feeds it."""

    def __init__(
        self,
        db: str | os.PathLike[str] | DatabaseUrl | None = None,
        settings: Settings | None = None,
        *,
        pipeline: Pipeline | None = None,
    ) -> None:
        """`db`: a SQLite file path or a database URL (`facerec.storage.parse_url`; None:
        `$FACEREC_DB`, else the user data dir). `pipeline` shares an already-loaded detector
        and model (a server, a test session). A bad `db` fails here, before any work."""
        self.settings = settings or Settings()
        if self.settings.model is not None:
            model_spec(self.settings.model)  # an unknown name fails before any work
        self.db_url = database_url(db)
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
            index = self.settings.index or index_kind_from_env()
            self._gallery = Gallery.open(self.db_url, index=index)
        return self._gallery

    @property
    def database(self) -> Database:
        """The gallery's database (opened and migrated on first use), for the apps' stores:
        their tables live beside the gallery's and share its engine."""
        return self.gallery.database

    @property
    def display(self) -> str:
        """The database for messages: the SQLite path, or the URL without its password."""
        return self.db_url.display

    @property
    def pipeline(self) -> Pipeline:
        """Detector + model, loaded on first use with `Settings.threads` applied (process-wide)."""
        if self._pipeline is None:
            self._pipeline = load_pipeline(self.resolved_settings(), self.model_name())
        return self._pipeline

    def detector_kind(self) -> DetectorKind:
        """The detector this session runs: asked for, else the gallery's own, else the default.

        As with the model, a gallery keeps the detector that cut its enrolled
        faces: queries are cut the same way, and the shipped operating
        points, measured per detector, apply. A gallery enrolled before the
        detector was recorded is MTCNN's.
        """
        if self._pipeline is not None:
            return self._pipeline.detector.kind
        if self.settings.detector.kind is not None:
            return self.settings.detector.kind
        pinned = self.gallery.detector
        return DetectorKind(pinned) if pinned is not None else DEFAULT_DETECTOR

    def resolved_settings(self) -> Settings:
        """`settings` with the detector this session runs named: what another process
        (an album scan's Ray worker) needs to cut faces exactly as this one does."""
        detector = dataclasses.replace(self.settings.detector, kind=self.detector_kind())
        return dataclasses.replace(self.settings, detector=detector)

    def model_name(self) -> str:
        """The model this session runs: asked for, else `$FACEREC_MODEL`, else the gallery's own.

        A gallery is pinned to the model that filled it, so opening it without
        naming a model uses that model: a gallery enrolled before the default
        changed keeps working, and the thresholds always belong to the model
        that embeds. Only an empty gallery falls back to the registry default.
        A pipeline passed in (or already loaded) decides.
        """
        if self._pipeline is not None:
            return self._pipeline.embedder.spec.name
        if self.settings.model:
            return self.settings.model
        if env := os.environ.get("FACEREC_MODEL"):
            return env
        pinned = self.gallery.model
        return pinned.name if pinned is not None else DEFAULT_MODEL

    @property
    def spec(self) -> ModelSpec:
        """The active model's spec, without loading it if it is not loaded yet."""
        if self._pipeline is not None:
            return self._pipeline.embedder.spec
        return model_spec(self.model_name())

    def threshold(self) -> float:
        """The 1:1 threshold in force (see `decision_threshold`)."""
        return self.decision_threshold().value

    def decision_threshold(
        self, gallery_size: int | None = None, enrolled: int = 1
    ) -> DecisionThreshold:
        """The threshold in force, where it came from and its estimated FAR (1:N: FPIR).

        Explicit override, else calibrated in the gallery, else the operating
        point shipped for the active weights (`facerec.decisions.operating`), else the
        model default. `gallery_size` None: 1:1; a number: 1:N over that many people.
        `enrolled`: photos behind the prototype(s) compared; a prototype of
        several photos sits closer to strangers, so it needs a higher threshold
        for the same FAR (the shipped curve for that size).
        """
        spec = self.spec
        return resolve_threshold(
            explicit=self.settings.threshold,
            calibrated=self.gallery.threshold(spec.name),
            curve=self.operating_curve(enrolled),
            default=spec.threshold,
            gallery_size=gallery_size,
            door_far=self.settings.target_far,
            fpir=self.settings.target_fpir,
        )

    def operating_curve(self, enrolled: int = 1) -> OperatingCurve | None:
        """The shipped curve of the active model if it was measured for the active weights.

        `enrolled`: photos per prototype (`facerec.decisions.operating.size_for` picks the curve).
        Curves are per detector too: the landmarks change the scores.
        """
        return curve_for(
            self.spec.name,
            self._weights_sha256(),
            self.settings.flip,
            enrolled,
            self.detector_kind(),
        )

    def verification_threshold(self, name: str) -> DecisionThreshold:
        """1:1 against `name`: the operating point for a prototype of their number of photos."""
        return self.decision_threshold(enrolled=self.gallery.sample_count(name))

    def identification_threshold(self) -> DecisionThreshold:
        """1:N over this gallery: its size (FPIR scaling) and its largest prototype's photos."""
        people, most = self.gallery.size_and_most_samples()
        return self.decision_threshold(gallery_size=people, enrolled=max(1, most))

    def _weights_sha256(self) -> str | None:
        """The active weights' digest, without loading the model; None: the default weights."""
        if self._pipeline is not None:
            return self._pipeline.embedder.identity.weights_sha256
        custom = self.settings.weights or os.environ.get("FACEREC_WEIGHTS")
        if custom:
            try:
                return sha256_file(Path(custom))
            except OSError:
                return ""  # unreadable: loading will say why; no curve matches meanwhile
        pinned = self.gallery.model
        return pinned.weights_sha256 if pinned and pinned.name == self.spec.name else None

    # -- verbs ---------------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Sequence[str | Path],
        *,
        largest: bool = False,
        force: bool = False,
        strict: bool = False,
        progress: bool = False,
    ) -> EnrollResult:
        """Add one face from each photo file to `name`'s samples; all or nothing."""
        if not images:
            raise ValueError("enroll needs at least one image")
        validate_name(name)  # a bad name fails before a single photo is decoded
        loaded = [load_image(p) for p in images]  # bad files fail before any model loads
        return self.enroll_images(
            name, loaded, largest=largest, force=force, strict=strict, progress=progress
        )

    def enroll_images(
        self,
        name: str,
        images: Sequence[LoadedImage],
        *,
        largest: bool = False,
        force: bool = False,
        strict: bool = False,
        progress: bool = False,
    ) -> EnrollResult:
        """Add one face from each decoded image to `name`'s samples; all or nothing.

        Every image is detected and embedded before anything is written, so
        one bad photo in ten leaves the gallery as it was. The photos must
        then pass `facerec.decisions.enrolment`'s checks at `enrolment_threshold`
        (each matches the person and no one else better); a refusal raises an
        `EnrolmentError` with the numbers, unless `force`. A new name whose
        photos match someone enrolled comes back with `lookalike` set, or is
        refused with `strict`.
        """
        if not images:
            raise ValueError("enroll needs at least one image")
        key = validate_name(name)  # an invalid name fails before any model work
        for image in images:
            if image.damage is not None:  # a damaged face would poison the prototype
                raise ImageError(image.source, f"{image.damage}; a damaged photo is not enrolled")
        identity = self.check_model()
        samples, ignored = [], []
        for image in tqdm(images, desc=f"enrolling {key}", unit="photo", disable=not progress):
            subject = select_subject(self.faces(image), image, largest=largest)
            face = subject.face
            samples.append(
                new_sample(image, face.detection, face.embedding, face.quality.as_dict())
            )
            ignored.append(subject.ignored)
        detector = self.detector_kind()
        for _ in range(ENROLMENT_ATTEMPTS):
            snapshot = self.gallery.person_snapshot(key)
            check = self._check_against(snapshot, samples)
            refusal = None if force else check.refusal(strict=strict)
            if refusal is not None:
                raise refusal
            try:
                result = self.gallery.enroll(
                    key, samples, identity, detector, expect=None if force else snapshot
                )
            except PersonChangedError:
                # Another process enrolled or removed this name since the check read
                # it: check again against what it left, never write on a stale check.
                log.info("%r changed during its enrolment check; checking again", key)
                continue
            if check.lookalike is not None:
                log.info("%r resembles enrolled %r", key, check.lookalike.name)
            return dataclasses.replace(
                result, lookalike=check.lookalike, ignored_faces=tuple(ignored)
            )
        raise PersonChangedError(key)

    def check_enrolment(self, name: str, samples: Sequence[NewSample]) -> EnrolmentCheck:
        """How well new samples match `name` and everyone else, at `enrolment_threshold`."""
        return self._check_against(self.gallery.person_snapshot(name), samples)

    def _check_against(
        self, person: PersonSnapshot, samples: Sequence[NewSample]
    ) -> EnrolmentCheck:
        key = person.name

        def nearest_others(queries: npt.NDArray[np.float32]) -> list[Hit | None]:
            hits = self.nearest(queries, 2)  # the person themself takes at most one
            return [next((h for h in row if h.name != key), None) for row in hits]

        return check_enrolment(
            key,
            np.stack([s.embedding for s in samples]).astype(np.float32),
            [s.source for s in samples],
            prototype=person.prototype,
            threshold=self.enrolment_threshold(),
            nearest_others=nearest_others,
        )

    def enrolment_threshold(self) -> float:
        """The threshold the enrolment checks use: the door's FAR 1e-3 point, not its 1e-4.

        The checks catch mix-ups (another person's photo), which score far below
        any door threshold; at the door's FAR 1e-4 point (dlib 0.9407) they
        refused 309 of 1,380 genuine two-photo enrolments of LFW people, at the
        earlier 0.905 only 16. An explicit or calibrated threshold is used as is.
        """
        spec = self.spec
        curve = self.operating_curve()
        if (
            curve is None
            or self.settings.threshold is not None
            or self.gallery.threshold(spec.name) is not None
        ):
            return self.threshold()
        return resolve_threshold(
            explicit=None,
            calibrated=None,
            curve=curve,
            default=spec.threshold,
            door_far=ENROLMENT_FAR,
        ).value

    def verify(self, name: str, image: str | Path, *, largest: bool = False) -> Verification:
        """1:1: is the (single) face in the photo file the enrolled person `name`?"""
        if not self.gallery.has(name):
            raise UnknownPersonError(name)  # fails before the photo is even read
        return self.verify_image(name, load_image(image), largest=largest)

    def verify_image(self, name: str, image: LoadedImage, *, largest: bool = False) -> Verification:
        """1:1 on a decoded image."""
        if not self.gallery.has(name):
            raise UnknownPersonError(name)
        self.check_model()
        if image.damage is not None:
            log.warning("%s: %s; the decision may be unreliable", image.source, image.damage)
        subject = select_subject(self.faces(image), image, largest=largest)
        result = self.claim(name).verify(subject.face.embedding)
        return dataclasses.replace(result, ignored_faces=subject.ignored)

    def claim(self, name: str) -> Claim:
        """1:1 against `name`, fixed now: their prototype and the threshold for its number of photos.

        `verify` decides a photo with it; a door decides every frame with one
        `Claim`, so frame and photo are judged by the same rule.
        """
        if not self.gallery.has(name):
            raise UnknownPersonError(name)
        return Claim(name, self.gallery.prototype(name), self.verification_threshold(name))

    def faces(self, image: LoadedImage) -> list[Face]:
        """Every face of one image through the pipeline."""
        return self.pipeline.faces(image)

    def face_in(self, image: LoadedImage, box: Sequence[float]) -> Face | None:
        """The face inside a region a person drew (`facerec.faces.regions`), in photo pixels."""
        from facerec.faces.regions import face_in_region

        return face_in_region(image, box, self.pipeline.faces)

    # -- people edited (the album's corrections; `facerec.gallery.editing`) ----------------------
    def rename(self, old: str, new: str, also: editing.Also = editing.nothing) -> str:
        """Rename a person; `also` writes the caller's rows in the same transaction."""
        return editing.rename(self.gallery, old, new, also)

    def move_samples(
        self, sample_ids: Sequence[int], to: str, also: editing.Also = editing.nothing
    ) -> editing.SampleMove:
        """Give enrolment samples to `to` (created if new); emptied people go."""
        return editing.move_samples(self.gallery, sample_ids, to, also)

    def delete_samples(
        self, sample_ids: Sequence[int], also: editing.Also = editing.nothing
    ) -> int:
        """Delete enrolment samples (an emptied person goes)."""
        return editing.delete_samples(self.gallery, sample_ids, also)

    def copy_sample(self, sample_id: int) -> editing.SampleCopy | None:
        """A sample's stored fields (its crop, embedding, source), or None."""
        return editing.copy_sample(self.gallery, sample_id)

    def put_back_sample(
        self, copy: editing.SampleCopy, also: editing.Also = editing.nothing
    ) -> int:
        """Store a removed sample again under its person; returns its new id."""
        return editing.put_back(self.gallery, copy, also)

    def revision(self) -> int:
        """How many writes the gallery has committed: it moves when anyone enrols or removes."""
        return self.gallery.revision

    def sample_ids(self, name: str) -> list[int]:
        """`name`'s enrolment sample ids ([] when not enrolled)."""
        return editing.sample_ids(self.gallery, name)

    def identify(self, image: str | Path) -> ImageIdentification:
        """1:N for every face in one image."""
        return self.identify_many([image])[0]

    def identify_many(
        self, images: Iterable[str | Path], *, progress: bool = False
    ) -> list[ImageIdentification]:
        self.check_model()
        threshold = self.identification_threshold()
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
        self.check_model()
        return self._identify_loaded(image, self.identification_threshold())

    def _identify_loaded(
        self, image: LoadedImage, threshold: DecisionThreshold
    ) -> ImageIdentification:
        faces = self._identify_faces(self.faces(image), threshold)
        return ImageIdentification(image.source, faces, damage=image.damage)

    def _identify_faces(
        self, faces: Sequence[Face], threshold: DecisionThreshold
    ) -> tuple[IdentifiedFace, ...]:
        usable = [f for f in faces if f.quality.ok]
        found = self.identify_embeddings(_stack(usable), threshold) if usable else []
        decided = {id(f): ident for f, ident in zip(usable, found, strict=True)}
        return tuple(
            IdentifiedFace(f.detection.box, f.detection.score, f.quality, decided.get(id(f)))
            for f in faces
        )

    def identify_embeddings(
        self, embeddings: npt.ArrayLike, threshold: DecisionThreshold | None = None
    ) -> list[Identification]:
        """1:N for each row of `embeddings` (n, D): the one decision `identify` and the door share.

        The nearest `SOFTMAX_POOL` people from the index feed the open-set
        softmax (`decision.identify`). `threshold` defaults to this gallery's
        1:N threshold (`identification_threshold`); a caller deciding many
        times passes the one it resolved once. The embeddings must come from
        the model the gallery is pinned to (`check_model`).
        """
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim == 2 and queries.shape[0] == 0:
            return []
        t = threshold if threshold is not None else self.identification_threshold()
        return [
            identify(
                [h.name for h in hits],
                [h.similarity for h in hits],
                t,
                scale=self.settings.softmax_scale,
                top_k=self.settings.top_k,
            )
            for hits in self.nearest(queries, SOFTMAX_POOL)
        ]

    def nearest(self, embeddings: npt.ArrayLike, k: int) -> list[list[Hit]]:
        """The `k` people whose prototypes are most similar to each row, best first.

        The search behind every 1:N decision (`identify_embeddings`, the
        enrolment checks, the album's joint assignment). It loads no model:
        the album matches stored embeddings of the model it scanned with.
        """
        return self.gallery.search(embeddings, k)

    def check_model(self) -> ModelIdentity:
        """The loaded model's identity, once the gallery is known to be pinned to it (or to none).

        Loads the model if needed; `ModelMismatchError` otherwise. Every verb
        that compares a new embedding with the gallery calls it first, and an
        app calls it up front so a wrong model fails before the first frame
        or request.
        """
        identity = self.pipeline.embedder.identity
        self.gallery.check_model(identity)
        return identity

    def pinned_model(self) -> ModelIdentity | None:
        """The model the gallery is pinned to (None before the first enrolment); loads nothing."""
        return self.gallery.model

    def has(self, name: str) -> bool:
        """Is `name` enrolled (after `name_key` normalisation)?"""
        return self.gallery.has(name)

    def people(self) -> list[Person]:
        return self.gallery.people()

    def enroll_samples(
        self, name: str, samples: Sequence[NewSample], model: ModelIdentity
    ) -> EnrollResult:
        """Add samples embedded earlier by `model` (album faces a person named) to `name`.

        No photo is read and no model is loaded. The enrolment checks are not
        run: the person chose these faces themself, as `--force` would.
        """
        return self.gallery.enroll(name, samples, model, self.detector_kind())

    def sample_embeddings(self, names: Collection[str]) -> dict[str, npt.NDArray[np.float32]]:
        """Each named person's enrolled sample embeddings (n, D), for prototypes with extra faces.

        Names not enrolled are left out.
        """
        wanted = {name_key(n) for n in names}
        rows: dict[str, list[npt.NDArray[np.float32]]] = defaultdict(list)
        if wanted:
            for sample in self.gallery.samples():
                if sample.name in wanted:
                    rows[sample.name].append(sample.embedding)
        return {n: np.stack(r) for n, r in rows.items()}

    def set_threshold(self, threshold: float, *, target_far: float | None = None) -> None:
        """Store a calibrated 1:1 threshold for the active model (and the FAR it was set for)."""
        self.gallery.set_threshold(self.spec.name, threshold, target_far=target_far)

    def remove(self, name: str, *, keep_album: bool = False) -> Forgotten:
        """Forget `name`: their enrolment and every stored face that is theirs, in one transaction.

        A stored face is theirs when it was matched or assigned to them, or
        when it reaches the verification threshold (`threshold()`) against
        their prototype. Goes: their samples, prototype and FAISS index entry;
        their album faces (embeddings, thumbnails; the photos stay, and a
        rescan does not add the faces back), album prototype folds and "not
        NAME" records; door-camera events about them, and images of their face
        filed under someone else. `keep_album` leaves the album as it is (their
        faces become unknown faces there). Saved door-camera images are
        re-embedded first, which loads the model if there are any.
        """
        if not self.gallery.has(name):
            raise UnknownPersonError(name)
        threshold = self.threshold()
        stores = erasers()
        audit_faces = self._audit_faces(name, stores)

        def erase(s: Session, target: ForgetTarget) -> tuple[AlbumForgotten, AuditForgotten]:
            album = AlbumForgotten() if keep_album else stores.album(s, target)
            return album, stores.audit(s, target, audit_faces)

        samples, (album, audit) = self.gallery.forget(name, threshold, erase)
        compacted = self.gallery.compact()
        return Forgotten(
            name=name_key(name),
            samples=samples,
            album=album,
            audit=audit,
            album_kept=keep_album,
            compacted=compacted,
        )

    def _audit_faces(self, name: str, stores: Erasers) -> dict[int, npt.NDArray[np.float32]]:
        """Embeddings of the faces in every saved door-camera image not about `name`, by event id.

        An image whose faces cannot be computed (undecodable, or the
        gallery's model is not the one loaded) is left out, and `forget`
        reports it as unchecked rather than guessing.
        """
        out: dict[int, npt.NDArray[np.float32]] = {}
        images = stores.audit_images(self.database, name)
        first = next(images, None)
        if first is None:
            return out
        try:
            self.check_model()
        except FacerecError as exc:
            log.warning("door-camera images cannot be checked for %s: %s", name, exc)
            return out
        for event_id, jpeg in itertools.chain([first], images):
            try:
                image = decode_image(jpeg, source=f"audit event {event_id}")
            except ImageError as exc:
                log.warning("%s", exc)
                continue
            faces = self.faces(image)
            if faces:
                out[event_id] = _stack(faces)
        return out

    def info(self) -> Info:
        spec = self.spec
        gallery = self.gallery.info()
        one_to_one = self.decision_threshold()
        curve = self.operating_curve()
        return Info(
            gallery=gallery,
            model=spec.name,
            threshold=one_to_one.value,
            embedding_dim=spec.embedding_dim,
            input_size=spec.input_size,
            licence=spec.licence,
            origin=spec.origin,
            verification=one_to_one,
            identification=self.identification_threshold(),
            operating_points=curve.provenance if curve is not None else None,
            non_commercial=spec.non_commercial,
            verification_by_photos=(
                {
                    k: self.decision_threshold(enrolled=k)
                    for k in shipped_sizes(spec.name, self.detector_kind())
                }
                if curve is not None
                else {}
            ),
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


def load_pipeline(settings: Settings, model: str) -> Pipeline:
    """Detector + `model` as `settings` describe them, with `settings.threads` applied.

    `FaceRec.pipeline` loads its pipeline here, and so does a process that has
    no gallery of its own but must embed exactly as one does (an album scan's
    Ray workers, handed the driver's settings).
    """
    from facerec.faces.embedding import Embedder  # deferred: people/info load no model

    count = use_threads(settings.threads, str(settings.detector.resolved_kind))
    loaded = load_model(model, settings.weights, threads=count)
    embedder = Embedder(loaded, batch_size=settings.batch_size, flip=settings.flip)
    return Pipeline(Detector(settings.detector, threads=count), embedder, settings.quality)


def _stack(faces: Sequence[Face]) -> npt.NDArray[np.float32]:
    return np.stack([f.embedding for f in faces]).astype(np.float32)


__all__ = [
    "FaceRec",
    "FacerecError",
    "Forgotten",
    "IdentifiedFace",
    "ImageIdentification",
    "Info",
]
