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
then `FaceRec`'s image verbs (`enroll_images`, `verify_image`,
`identify_image`) run under it. The lock also covers the verb's gallery work,
milliseconds next to the model's hundreds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from facerec.api import FaceRec, Forgotten, ImageIdentification
from facerec.decision import Verification
from facerec.errors import UnknownPersonError
from facerec.gallery import EnrollResult, Person
from facerec.images import LoadedImage, decode_image

log = logging.getLogger(__name__)

#: Largest decoded upload, in pixels: a 24-MP phone photo fits; a pixel bomb does not.
DEFAULT_MAX_PIXELS = 24_000_000


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file: the name the client gave it and its bytes."""

    filename: str
    data: bytes


class FaceService:
    """Enroll, verify, identify, list and remove over one `FaceRec`, from many threads."""

    def __init__(self, fr: FaceRec, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        """Opens the gallery and loads the model now, so the first request is not the slow one."""
        self._fr = fr
        self._max_pixels = max_pixels
        self._model_lock = threading.Lock()
        self.gallery = fr.gallery
        self.pipeline = fr.pipeline
        self.identity = self.pipeline.embedder.identity
        self.gallery.check_model(self.identity)

    @property
    def model_name(self) -> str:
        return self.identity.name

    def _decode(self, upload: Upload) -> LoadedImage:
        return decode_image(
            upload.data, source=f"upload:{upload.filename or 'image'}", max_pixels=self._max_pixels
        )

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
        if not uploads:
            raise ValueError("enroll needs at least one image")
        images = [self._decode(u) for u in uploads]
        with self._timed("enroll"):
            return self._fr.enroll_images(name, images, largest=largest, force=force, strict=strict)

    def verify(self, name: str, upload: Upload, *, largest: bool = False) -> Verification:
        """1:1 against `name`'s prototype; an unknown name fails before any model work."""
        if not self.gallery.has(name):
            raise UnknownPersonError(name)
        image = self._decode(upload)
        with self._timed("verify"):
            return self._fr.verify_image(name, image, largest=largest)

    def identify(self, upload: Upload) -> ImageIdentification:
        """1:N for every face of one photo; faces refused by the quality gate are listed, unnamed."""
        image = self._decode(upload)
        with self._timed("identify"):
            return self._fr.identify_image(image)

    @contextmanager
    def _timed(self, verb: str) -> Iterator[None]:
        """Hold the model lock for one verb and log how long it took."""
        with self._model_lock:
            start = time.perf_counter()
            yield
            log.debug("%s took %.0f ms", verb, _ms(start))

    def people(self) -> list[Person]:
        return self.gallery.people()

    def remove(self, name: str) -> Forgotten:
        """Forget `name` everywhere (`FaceRec.remove`), under the model lock: saved door-camera
        images are re-embedded to find their face."""
        with self._timed("remove"):
            return self._fr.remove(name)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
