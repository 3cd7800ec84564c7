"""Each app owns its table module; all of them join one `Base`, and none costs the Alembic CLI torch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

TABLE_MODULES = ("facerec.album.tables", "facerec.camera.tables", "facerec.server.tables")


def test_the_table_modules_are_cheap_to_import_and_share_one_metadata() -> None:
    """What `migrations/env.py` imports: the tables, and no model, index or web framework."""
    code = (
        "import importlib, json, sys\n"
        "from facerec.storage import Base\n"
        f"for name in {TABLE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = [m for m in ('torch', 'faiss', 'cv2', 'fastapi', 'facerec.gallery.store') "
        "if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'tables': sorted(Base.metadata.tables)}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found["heavy"] == []
    assert {"album_faces", "album_photos", "audit_events", "api_keys", "identities"} <= set(
        found["tables"]
    )


def test_no_app_table_module_is_left_in_the_gallery() -> None:
    for gone in (
        "facerec.gallery.album_schema",
        "facerec.gallery.ops_schema",
        "facerec.gallery.tables",
    ):
        assert importlib.util.find_spec(gone) is None, gone
