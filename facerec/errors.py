"""The exception tree every layer raises.

One root (`FacerecError`) lets the CLI and the HTTP service map any failure we
anticipated to exit code 2 / HTTP 4xx with a one-line reason, while genuine
bugs still surface as tracebacks. Each message names the thing at fault (the
file, the person, the model) because the user has to act on it.

A message says what is wrong, never which option fixes it: the CLI's remedy
is a flag (`--largest`), the HTTP API's a form field (`largest=true`). Errors
with a remedy carry the facts it needs as attributes, and each front end words
it (`facerec.cli_common.describe`, `facerec.server.app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from facerec.paths import display_path

#: Longest user-supplied value an error message repeats (a name, a claim): a
#: 10,000-character name must not come back in full in every 404.
MAX_ECHO = 80


def echo(value: str, limit: int = MAX_ECHO) -> str:
    """`value` quoted for a message, cut to `limit` characters with the full length stated."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


class FacerecError(Exception):
    """Root of every error facerec anticipates."""


class ImageError(FacerecError):
    """An input that cannot be used as an image: empty, truncated, not an image, too large."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = display_path(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class NoFaceError(FacerecError):
    """An image where a face was required and none was found (or none passed the quality gate)."""

    def __init__(self, source: str | Path, detail: str = "") -> None:
        self.source = display_path(source)
        self.reason = f"no face found ({detail})" if detail else "no face found"
        super().__init__(f"{self.source}: {self.reason}")


class MultipleFacesError(FacerecError):
    """An image with several faces where exactly one was expected (remedy: take the largest)."""

    def __init__(self, source: str | Path, count: int, detail: str = "") -> None:
        self.source = display_path(source)
        self.count = count
        why = f" ({detail})" if detail else ""
        self.reason = f"{count} faces found where one was expected{why}"
        super().__init__(f"{self.source}: {self.reason}")


class ModelError(FacerecError):
    """A model that cannot be loaded: unknown name, missing or unreadable weights."""


class WeightsNotFoundError(ModelError):
    """Pretrained weights are absent and could not be downloaded."""


class ModelRef(Protocol):
    """What an error needs of a model's identity (`facerec.models.base.ModelIdentity` fits).

    A Protocol, so that this module, which every layer imports, imports none of them.
    """

    @property
    def name(self) -> str: ...

    @property
    def weights_sha256(self) -> str: ...


class ModelMismatchError(FacerecError):
    """Embeddings from one model compared with a gallery pinned to another.

    The pin is a name and the SHA-256 of the weights file, not its path, so the
    remedy has to name the hash: `pinned.weights_sha256` is the file to pass back.
    """

    def __init__(self, gallery: str | Path, pinned: ModelRef, given: ModelRef) -> None:
        self.gallery = str(gallery)
        self.pinned = pinned
        self.given = given
        super().__init__(
            f"gallery {self.gallery} is pinned to model {pinned}, but these embeddings come "
            f"from {given}; embeddings of different models cannot be compared"
        )


class UnknownPersonError(FacerecError):
    """A name that is not enrolled in the gallery."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no person named {echo(name)} in the gallery")


class GalleryError(FacerecError):
    """The gallery database cannot be opened or is inconsistent."""


class InvalidNameError(FacerecError, ValueError):
    """A person's name that cannot be stored (empty, too long, control characters)."""


class PersonChangedError(GalleryError):
    """A person's samples changed between an enrolment's check and its write.

    Another process enrolled or removed the same name at the same moment; the
    check this write relied on no longer describes the person, so nothing was
    written. `FaceRec.enroll` checks again against what the other writer left.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{echo(name)} was changed by another enrolment while these photos were being "
            "checked; nothing was written"
        )
