"""The README and docs/ stay true: short, linked, built strictly, and their examples run.

A shell block preceded by `<!-- run -->` is executed here, block after block
in page order, with `facerec` on PATH and a fresh gallery per page, from the
repository root (so `../shared/data/...` paths work as written). Any failing
command fails the test with its output, so an example that drifts from the
CLI turns the suite red instead of misleading a reader.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from textwrap import indent
from types import ModuleType

import pytest

from .conftest import SHARED, missing_shared

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_BLOCK = re.compile(r"<!-- run -->\n```(?:bash|sh)\n(.*?)\n```", re.S)
README_MAX_LINES = 300


def _nav_pages() -> list[str]:
    """Every page named in mkdocs.yml's nav, in order."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r":\s+([\w./-]+\.md)\s*$", nav, re.M)


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_docs_index_is_generated_from_the_readme() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from write_docs_index import index_from_readme
    finally:
        sys.path.pop(0)
    expected = index_from_readme((ROOT / "README.md").read_text(encoding="utf-8"))
    assert (DOCS / "index.md").read_text(encoding="utf-8") == expected, (
        "docs/index.md is stale: run python scripts/write_docs_index.py"
    )


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_the_tables_of_the_shipped_curves_are_the_curves() -> None:
    # Edit a figure by hand, or ship new curves without --write-docs, and this fails.
    bench_far, markers = _script("bench_far"), _script("docs_markers")
    tables = [
        (ROOT / "README.md", "bench_far:models", bench_far.models_table()),
        (DOCS / "models.md", "bench_far:models", bench_far.models_table()),
        (
            DOCS / "thresholds.md",
            "bench_far:prototypes",
            indent(bench_far.prototypes_table(), "  "),
        ),
        (DOCS / "accuracy.md", "bench_far:fusion", bench_far.fusion_table()),
    ]
    for page, name, rendered in tables:
        assert markers.between(page, name) == rendered, (
            f"{page.name}: the {name} table is stale: run python scripts/bench_far.py --write-docs"
        )


def test_a_script_writes_only_between_its_markers(tmp_path: Path) -> None:
    markers = _script("docs_markers")
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n- item:\n\n  <!-- t:begin -->\n  old\n  <!-- t:end -->\n\noutro\n", encoding="utf-8"
    )
    markers.replace_between(page, "t", "  | a |\n  | 1 |")
    assert page.read_text(encoding="utf-8") == (
        "intro\n- item:\n\n  <!-- t:begin -->\n  | a |\n  | 1 |\n  <!-- t:end -->\n\noutro\n"
    )
    assert markers.between(page, "t") == "  | a |\n  | 1 |"
    with pytest.raises(ValueError, match="expected one"):
        markers.replace_between(page, "other", "x")


def test_every_page_is_in_the_nav_and_every_link_resolves() -> None:
    pages = _nav_pages()
    on_disk = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(pages) == on_disk
    for source in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = source.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (source.parent / target).is_file(), f"{source.name}: broken link {target}"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        missing_shared("mkdocs is not installed (pip install -e '.[dev]')")
    r = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _pages_with_examples() -> list[Path]:
    pages = [ROOT / "README.md"] + [DOCS / p for p in _nav_pages() if p != "index.md"]
    return [p for p in pages if RUN_BLOCK.search(p.read_text(encoding="utf-8"))]


@pytest.mark.slow  # each command is a CLI process that loads the models
@pytest.mark.parametrize("page", _pages_with_examples(), ids=lambda p: p.name)
def test_runnable_examples(page: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    if not SHARED.is_dir():
        missing_shared(f"shared test data not found at {SHARED}")
    env = {
        **cli_env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "FACEREC_DB": str(tmp_path / "gallery.db"),
        "TMPDIR": str(tmp_path),
    }
    for n, block in enumerate(RUN_BLOCK.findall(page.read_text(encoding="utf-8")), 1):
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, f"{page.name}, example {n}:\n{block}\n---\n{r.stdout}{r.stderr}"
