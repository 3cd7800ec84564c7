"""The exception tree every layer raises.

One root (`FacerecError`) lets the CLI and the HTTP service map any failure we
anticipated to exit code 2 / HTTP 4xx with a one-line reason, while genuine
bugs still surface as tracebacks. Each message names the thing at fault (the
file, the person, the model) because the user has to act on it.
"""

from __future__ import annotations

from pathlib import Path


class FacerecError(Exception):
    """Root of every error facerec anticipates."""


class ImageError(FacerecError):
    """An input that cannot be used as an image: empty, truncated, not an image, too large."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class NoFaceError(FacerecError):
    """An image where a face was required and none was found (or none passed the quality gate)."""

    def __init__(self, source: str | Path, detail: str = "") -> None:
        self.source = str(source)
        msg = f"{self.source}: no face found"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class MultipleFacesError(FacerecError):
    """An image with several faces where exactly one was expected."""

    def __init__(self, source: str | Path, count: int, detail: str = "") -> None:
        self.source = str(source)
        self.count = count
        why = f"{detail}; " if detail else ""
        super().__init__(
            f"{self.source}: {count} faces found where one was expected "
            f"({why}use --largest to take the largest face)"
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
        super().__init__(f"no person named {name!r} in the gallery")


class GalleryError(FacerecError):
    """The gallery database cannot be opened or is inconsistent."""


class InvalidNameError(FacerecError, ValueError):
    """A person's name that cannot be stored (empty, too long, control characters)."""
