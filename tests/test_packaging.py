"""The wheel must carry every subpackage: pyproject lists them by hand (migrations/ is mapped in)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "facerec").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {"facerec.migrations", "facerec.migrations.versions"} <= listed


def test_migrations_ship_inside_the_package() -> None:
    import importlib.resources

    versions = importlib.resources.files("facerec.migrations") / "versions"
    assert any(p.name.startswith("0001") for p in versions.iterdir())
