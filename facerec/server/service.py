"""The verbs the HTTP service offers, over one loaded pipeline and one gallery, thread-safe.

Why one pipeline behind a lock rather than a pool: inference is CPU-bound and
PyTorch already spreads one forward pass over every core, so two passes at once
only fight over the same cores (and double the memory), while MTCNN and the
embedding network are not documented as safe to call from two threads. The
lock serialises the model; decoding an upload happens before it.

Why one shared `Gallery` rather than one per request: the `Gallery` is
thread-safe (its writes and index updates are serialised by its own lock;
reads are WAL snapshots), keeps the FAISS index in memory between requests,
and `Gallery.open` checks the Alembic revision, which costs milliseconds per
request for nothing. A write from another process (the CLI) is still seen: the
index is stamped with the database revision and reloaded when it moves.

The requests carry bytes, not files: uploads are decoded outside the lock,
each request having first reserved, from the headers of its uploads, the
bytes their decoding and its decoded photos will hold from the service's
`DecodeBudget` (docs/limits.md): requests beyond it wait for room within
their time budget (503 after), and one that could never fit is refused
before anything is decoded. Then `FaceRec`'s image verbs (`enroll_images`, `verify_image`,
`identify_image`) run under it. The lock also covers the verb's gallery work,
milliseconds next to the model's hundreds.

Every field is checked before any model work: a bad name costs microseconds,
not a detection pass (it used to be validated by the gallery, after 5 s of
CPU). The model's share of a request is bounded by the detector's size rule
(`DetectorConfig.max_side`), and each request has a time budget: one that
cannot get the model within `budget_s` of arriving is answered 503 with the
reason instead of queueing without end behind a burst of large uploads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from sqlalchemy import text

from facerec.api import FaceRec, Forgotten, ImageIdentification
from facerec.decisions.decision import Verification
from facerec.decisions.names import validate_name
from facerec.errors import FacerecError, UnknownPersonError
from facerec.faces.images import (
    DEFAULT_DECODE_BUDGET,
    DecodeBudget,
    LoadedImage,
    decode_image,
    read_header,
)
from facerec.gallery import EnrollResult, Person
from facerec.storage import Database

log = logging.getLogger(__name__)

#: Largest decoded upload, in pixels: a 24-MP phone photo fits; a pixel bomb does not.
DEFAULT_MAX_PIXELS = 24_000_000
#: Seconds a request may take from arrival until it holds the model.
DEFAULT_BUDGET_S = 30.0
#: Photos one enrolment request may carry: each is decoded (up to `max_pixels`) before any is used.
MAX_ENROLL_IMAGES = 10
#: Full-size RGB copies of a photo the model's work makes at its peak (colour conversion,
#: the detector's input, crops), as `_decoded` reserves them: measured ~2.7 for a
#: 23.5-megapixel upload (tests/server/test_decode_budget_http.py).
MODEL_COPIES = 3
#: Characters of a client's file name kept in messages and logs.
MAX_FILENAME_CHARS = 100


@dataclass(frozen=True, slots=True)
class Verified:
    """A 1:1 decision, and the upload's damage (`LoadedImage.damage`) the client should know of."""

    verification: Verification
    damage: str | None


class ServiceBusyError(FacerecError):
    """The request's time budget ran out before the model was free (HTTP 503, retry later)."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file: the name the client gave it and its bytes."""

    filename: str
    data: bytes


class FaceService:
    """Enroll, verify, identify, list and remove over one `FaceRec`, from many threads."""

    def __init__(
        self,
        fr: FaceRec,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        budget_s: float = DEFAULT_BUDGET_S,
        decode_budget: int = DEFAULT_DECODE_BUDGET,
    ) -> None:
        """Opens the gallery and loads the model now, so the first request is not the slow one."""
        if budget_s <= 0:
            raise ValueError(f"the request time budget must be positive, got {budget_s}")
        self._fr = fr
        self._max_pixels = max_pixels
        self.budget_s = budget_s
        self.pixels = DecodeBudget(decode_budget)
        self._model_lock = threading.Lock()
        self.gallery = fr.gallery  # its path names the database to the app (keys, logs)
        self.identity = fr.check_model()

    @property
    def model_name(self) -> str:
        return self.identity.name

    @property
    def database(self) -> Database:
        """The gallery's database, shared with the stores beside it (the API keys)."""
        return self._fr.database

    def check_database(self) -> None:
        """One trivial query, or the `GalleryError` (HTTP 503) of a database that cannot answer.

        What `/v1/health` asks: a service whose database is down is not up,
        however loaded its model is (every other route would answer 503).
        """
        with self.database.read() as s:
            s.execute(text("SELECT 1"))

    @property
    def facerec(self) -> FaceRec:
        """The service's `FaceRec`, for the review pages (`facerec.server.web`) beside the API."""
        return self._fr

    @contextmanager
    def model(self, verb: str) -> Iterator[None]:
        """Hold the model lock for `verb`, within the request budget (503 when it runs out)."""
        with self._model(verb, time.perf_counter()):
            yield

    def _decode(self, upload: Upload) -> LoadedImage:
        return decode_image(upload.data, source=_source(upload), max_pixels=self._max_pixels)

    @contextmanager
    def _decoded(self, verb: str, uploads: Sequence[Upload], start: float) -> Iterator[None]:
        """Hold room in the decode budget for `uploads`, decoded and held, for the block.

        The headers say the cost before any pixel is decoded: every photo held
        as 8-bit RGB, plus the larger of the largest decode's own buffers (one
        decodes at a time) and the model's working copies of the largest photo
        (`MODEL_COPIES`). Waits for room within the request's time budget (503 after).
        """
        heads = [
            read_header(u.data, source=_source(u), max_pixels=self._max_pixels) for u in uploads
        ]
        held = sum(h.pixels * 3 for h in heads)
        decoding = max(h.decode_bytes() - h.pixels * 3 for h in heads)
        detecting = MODEL_COPIES * max(h.pixels * 3 for h in heads)
        need = held + max(decoding, detecting)
        left = max(self.budget_s - (time.perf_counter() - start), 0.0)
        what = _source(uploads[0]) if len(uploads) == 1 else f"the {len(uploads)} uploads"
        stack = ExitStack()
        try:
            stack.enter_context(self.pixels.reserve(need, source=what, timeout=left))
        except TimeoutError:
            waited = time.perf_counter() - start
            raise ServiceBusyError(
                f"server busy: no room to decode this {verb} request's photos within "
                f"{waited:.1f} s (budget {self.budget_s:g} s); retry later"
            ) from None
        with stack:
            yield

    def enroll(
        self,
        name: str,
        uploads: Sequence[Upload],
        *,
        largest: bool = False,
        force: bool = False,
        strict: bool = False,
    ) -> EnrollResult:
        """All photos or none, as `FaceRec.enroll`: every photo is checked before anything is written."""
        start = time.perf_counter()
        name = validate_name(name)
        if not uploads:
            raise ValueError("enroll needs at least one image")
        if len(uploads) > MAX_ENROLL_IMAGES:
            raise ValueError(
                f"at most {MAX_ENROLL_IMAGES} photos per enrolment request, got {len(uploads)}"
            )
        with self._decoded("enroll", uploads, start):
            images = [self._decode(u) for u in uploads]
            with self._model("enroll", start):
                return self._fr.enroll_images(
                    name, images, largest=largest, force=force, strict=strict
                )

    def verify(self, name: str, upload: Upload, *, largest: bool = False) -> Verified:
        """1:1 against `name`'s prototype; a bad or unknown name fails before any model work."""
        start = time.perf_counter()
        name = validate_name(name)
        if not self._fr.has(name):
            raise UnknownPersonError(name)
        with self._decoded("verify", [upload], start):
            image = self._decode(upload)
            with self._model("verify", start):
                return Verified(self._fr.verify_image(name, image, largest=largest), image.damage)

    def identify(self, upload: Upload) -> ImageIdentification:
        """1:N for every face of one photo; faces refused by the quality gate are listed, unnamed."""
        start = time.perf_counter()
        with self._decoded("identify", [upload], start):
            image = self._decode(upload)
            with self._model("identify", start):
                return self._fr.identify_image(image)

    @contextmanager
    def _model(self, verb: str, start: float) -> Iterator[None]:
        """Hold the model lock for one verb, if it frees up within the request's budget."""
        left = self.budget_s - (time.perf_counter() - start)
        if left <= 0 or not self._model_lock.acquire(timeout=left):
            waited = time.perf_counter() - start
            raise ServiceBusyError(
                f"server busy: the model was not free within {waited:.1f} s of this {verb} "
                f"request (budget {self.budget_s:g} s); retry later"
            )
        try:
            held = time.perf_counter()
            yield
            log.debug("%s took %.0f ms with the model", verb, _ms(held))
        finally:
            self._model_lock.release()

    def people(self) -> list[Person]:
        return self._fr.people()

    def remove(self, name: str) -> Forgotten:
        """Forget `name` everywhere (`FaceRec.remove`), under the model lock: saved door-camera
        images are re-embedded to find their face. A bad name fails before the lock."""
        start = time.perf_counter()
        name = validate_name(name)
        with self._model("remove", start):
            return self._fr.remove(name)


def _source(upload: Upload) -> str:
    return f"upload:{(upload.filename or 'image')[:MAX_FILENAME_CHARS]}"


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
