"""The exception tree every layer raises.

One root (`FacerecError`) lets the CLI and the HTTP service map any failure we
anticipated to exit code 2 / HTTP 4xx with a one-line reason, while genuine
bugs still surface as tracebacks. Each message names the thing at fault (the
file, the person, the model) because the user has to act on it.
"""

from __future__ import annotations

from pathlib import Path

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
        msg = f"{self.source}: no face found"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class MultipleFacesError(FacerecError):
    """An image with several faces where exactly one was expected."""

    def __init__(self, source: str | Path, count: int) -> None:
        self.source = display_path(source)
        self.count = count
        super().__init__(
            f"{self.source}: {count} faces found where one was expected "
            "(use --largest to take the largest face)"
        )


class ModelError(FacerecError):
    """A model that cannot be loaded: unknown name, missing or unreadable weights."""


class WeightsNotFoundError(ModelError):
    """Pretrained weights are absent and could not be downloaded."""


class ModelMismatchError(FacerecError):
    """Embeddings from one model compared with a gallery pinned to another."""


class UnknownPersonError(FacerecError):
    """A name that is not enrolled in the gallery."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no person named {echo(name)} in the gallery")


class GalleryError(FacerecError):
    """The gallery database cannot be opened or is inconsistent."""


class InvalidNameError(FacerecError, ValueError):
    """A person's name that cannot be stored (empty, too long, control characters)."""
