"""Opening a gallery that is already at the newest schema does not import Alembic; the shortcut agrees with it."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from facerec.gallery import Gallery
from facerec.storage.migrate import alembic_config, head_from_scripts, migrations_dir


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head_from_scripts(migrations_dir()) == head


def test_anything_unusual_defers_to_alembic(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "__init__.py").write_text("")
    (versions / "a.py").write_text('revision: str = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision = "b"\ndown_revision: str | None = "a"\n')
    assert head_from_scripts(tmp_path) == "b"
    (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')  # two heads
    assert head_from_scripts(tmp_path) is None
    (versions / "c.py").write_text('revision = "c"\ndown_revision = ("a", "b")\n')  # a merge
    assert head_from_scripts(tmp_path) is None


def test_a_gallery_at_the_head_is_stamped_and_reopens(empty_db_url: str) -> None:
    db = empty_db_url
    Gallery.open(db).close()
    with Gallery.open(db) as g:
        assert g.info().schema_revision == head_from_scripts(migrations_dir())
