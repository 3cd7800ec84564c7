"""Forgetting reaches the album and the audit log whatever a program imported.

`FaceRec.remove` gets the apps' erasers from the package root
(`facerec/__init__.py`), not by importing the apps (a core module must not).
These tests fail if the root stops composing them, if a program that imports
only the core gets a partial forget, or if a missing composition goes silent.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from facerec.album.store import AlbumStore
from facerec.camera.audit import AuditLog
from facerec.errors import GalleryError
from facerec.gallery import erasers as erasers_module


def test_the_root_composes_the_album_and_audit_erasers() -> None:
    stores = erasers_module.erasers()
    assert stores.album == AlbumStore.forget
    assert stores.audit == AuditLog.forget


def test_a_program_importing_only_the_core_still_forgets_everywhere() -> None:
    # A fresh interpreter that imports FaceRec from its own module and nothing of the apps.
    code = (
        "import sys\n"
        "from facerec.api import FaceRec\n"
        "assert 'facerec.album.store' not in sys.modules, 'the core imported the album'\n"
        "from facerec.gallery.erasers import erasers\n"
        "e = erasers()\n"
        "print(e.album.__qualname__, e.audit.__qualname__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["AlbumStore.forget", "AuditLog.forget"]


def test_without_a_composition_forgetting_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(erasers_module, "_build", None)
    monkeypatch.setattr(erasers_module, "_built", None)
    with pytest.raises(GalleryError, match="no erasers"):
        erasers_module.erasers()
