"""The album's own failures, under the project's root error so the CLI maps them to exit code 2."""

from __future__ import annotations

from facerec.errors import FacerecError


class AlbumError(FacerecError):
    """An album request that cannot be carried out: no such cluster or face, photos gone."""
