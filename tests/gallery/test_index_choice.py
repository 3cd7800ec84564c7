"""`--index` / $FACEREC_INDEX / `Gallery.open(index=...)`: the 1:N structure a gallery searches with.

On SQLite the choice is the FAISS file's layout (read back from its header,
not from the code that wrote it); on PostgreSQL `exact` must give the same
answers as pgvector's HNSW index and `ivf` is refused by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facerec.errors import GalleryError
from facerec.gallery import Gallery
from facerec.gallery import index as index_module
from facerec.gallery.index import MAGIC
from facerec.gallery.index_kind import IndexKind
from facerec.models.base import ModelIdentity

from .test_store import sample, unit

MODEL = ModelIdentity("synthetic", "0" * 64)


def layout_of(index_file: Path) -> str:
    """The layout kind recorded in a saved index file's header line."""
    data = index_file.read_bytes()
    assert data.startswith(MAGIC)
    header = json.loads(data[len(MAGIC) : data.index(b"\n", len(MAGIC))])
    return str(header["layout"]["kind"])


def fill(g: Gallery, rng: np.random.Generator, people: int) -> np.ndarray:
    """Enrol `people` synthetic people (one sample each); their embeddings, in name order."""
    embs = np.stack([unit(rng) for _ in range(people)])
    for i, e in enumerate(embs):
        g.enroll(f"p{i:05d}", [sample(rng, emb=e)], MODEL)
    return embs


@pytest.mark.parametrize("kind", [IndexKind.EXACT, IndexKind.IVF])
def test_sqlite_index_file_has_the_layout_asked_for(
    tmp_path: Path, kind: IndexKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    # IVF starts at IVF_MIN people; a smaller floor keeps the test to a few seconds.
    monkeypatch.setattr(index_module, "IVF_MIN", 100)
    rng = np.random.default_rng(3)
    with Gallery.open(tmp_path / "g.db", index=kind) as g:
        embs = fill(g, rng, 120)
        hits = g.search(embs[:5], 1)
        assert [h[0].name for h in hits] == [f"p{i:05d}" for i in range(5)]
        assert layout_of(g.index_path) == kind.value  # type: ignore[arg-type]
    # Reopened with the other kind, the file is rebuilt in that layout, answers unchanged.
    other = IndexKind.IVF if kind is IndexKind.EXACT else IndexKind.EXACT
    with Gallery.open(tmp_path / "g.db", index=other) as g:
        assert [h[0].name for h in g.search(embs[:5], 1)] == [f"p{i:05d}" for i in range(5)]
        assert layout_of(g.index_path) == other.value  # type: ignore[arg-type]


def test_postgres_exact_scan_agrees_with_hnsw_and_ivf_is_refused(postgres_url: str) -> None:
    db_url = postgres_url
    rng = np.random.default_rng(4)
    with Gallery.open(db_url) as g:
        embs = fill(g, rng, 60)
        hnsw = [[(h.name, round(h.similarity, 5)) for h in row] for row in g.search(embs, 3)]
    with Gallery.open(db_url, index=IndexKind.EXACT) as g:
        exact = [[(h.name, round(h.similarity, 5)) for h in row] for row in g.search(embs, 3)]
    assert exact == hnsw
    with pytest.raises(GalleryError, match="ivf"):
        Gallery.open(db_url, index=IndexKind.IVF)


def test_cli_takes_index_from_option_and_environment_and_names_a_bad_value(
    tmp_path: Path,
) -> None:
    db = tmp_path / "g.db"
    env = {**os.environ, "FACEREC_INDEX": "hnsw"}
    run = subprocess.run(
        [sys.executable, "-m", "facerec", "identify", "--db", str(db), str(tmp_path / "x.jpg")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2
    assert "hnsw" in run.stderr and "exact" in run.stderr
    from facerec.api import FaceRec
    from facerec.config import Settings

    os.environ["FACEREC_INDEX"] = "nonsense"
    try:
        with FaceRec(db) as fr, pytest.raises(GalleryError, match="FACEREC_INDEX"):
            fr.people()
    finally:
        del os.environ["FACEREC_INDEX"]
    with FaceRec(db, Settings(index=IndexKind.EXACT)) as fr:
        assert fr.people() == []
