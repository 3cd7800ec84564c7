"""`--index` / $FACEREC_INDEX / `Gallery.open(index=...)`: the 1:N structure a gallery searches with.

On SQLite the choice is the FAISS file's layout (read back from its header,
not from the code that wrote it); on PostgreSQL every kind (the in-memory
cache's exact and IVF layouts, pgvector's HNSW) must give the same answers,
and `hnsw` is refused by name on SQLite.
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


def test_postgres_layouts_all_agree_and_hnsw_is_postgres_only(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "IVF_MIN", 50)
    db_url = postgres_url
    rng = np.random.default_rng(4)
    with Gallery.open(db_url) as g:
        embs = fill(g, rng, 60)
    answers, sims = {}, {}
    for kind in IndexKind:
        with Gallery.open(db_url, index=kind) as g:
            hits = g.search(embs, 3)
            answers[kind] = [[h.name for h in row] for row in hits]
            sims[kind] = np.array([h[0].similarity for h in hits])
    exact = answers[IndexKind.EXACT]
    assert [row[0] for row in exact] == [f"p{i:05d}" for i in range(60)]
    assert answers[IndexKind.AUTO] == exact and answers[IndexKind.HNSW] == exact
    # IVF is approximate below the top answer, which it re-scores exactly.
    assert [row[0] for row in answers[IndexKind.IVF]] == [row[0] for row in exact]
    for kind in IndexKind:
        np.testing.assert_allclose(sims[kind], sims[IndexKind.EXACT], atol=1e-5)
    with pytest.raises(GalleryError, match="hnsw"):
        Gallery.open(tmp_path / "g.db", index=IndexKind.HNSW)


def test_cli_takes_index_from_option_and_environment_and_names_a_bad_value(
    tmp_path: Path,
) -> None:
    db = tmp_path / "g.db"
    env = {**os.environ, "FACEREC_INDEX": "annoy"}
    run = subprocess.run(
        [sys.executable, "-m", "facerec", "identify", "--db", str(db), str(tmp_path / "x.jpg")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2
    assert "annoy" in run.stderr and "exact" in run.stderr
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
