"""Gallery: rows, prototypes and the search kept consistent through every write, on both databases.

Most tests run twice (`db_url`): on a real SQLite file with its FAISS index in
tmp_path, and on a real PostgreSQL database (pgvector) of the session's
embedded server. Random unit vectors stand in for embeddings. Rows are
checked with the plain driver (`db_rows`: sqlite3 or psycopg), not through the
Gallery, so a bug in the Gallery's own reads cannot hide a bug in its writes.
Index-file behaviour (stamps, damage, pragmas, bytes left in files) is
SQLite's alone and tested on SQLite only.
"""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from facerec.errors import (
    GalleryError,
    ModelMismatchError,
    PersonChangedError,
    UnknownPersonError,
)
from facerec.gallery import Gallery, NewSample, PrototypeIndex
from facerec.gallery.index import MAGIC, IndexStamp
from facerec.models.base import ModelIdentity

from ..db_rows import count, dump, is_postgres, rows, vectors

DIM = 16
MODEL = ModelIdentity("test-model", "a" * 64)
OTHER = ModelIdentity("other-model", "b" * 64)
TABLES = ("meta", "thresholds", "identities", "samples", "prototypes", "alembic_version")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (120, 80, 60)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


_counter = iter(range(10**9))


def sample(
    rng: np.random.Generator,
    *,
    emb: np.ndarray | None = None,
    sha: str | None = None,
    dim: int = DIM,
) -> NewSample:
    n = next(_counter)
    return NewSample(
        embedding=unit(rng, dim) if emb is None else emb,
        crop_png=PNG,
        crop_landmarks=((30.0, 40.0), (70.0, 40.0), (50.0, 60.0), (35.0, 80.0), (65.0, 80.0)),
        source=f"photo{n}.jpg",
        content_sha256=sha if sha is not None else f"{n:064x}",
        box=(1.0, 2.0, 101.0, 122.0),
        det_score=0.998,
        quality={"blur": 123.5, "face_px": 100.0},
    )


def normalised_mean(vectors: list[np.ndarray]) -> np.ndarray:
    x = np.stack(vectors).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    m = x.mean(axis=0)
    return m / np.linalg.norm(m)


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "sub" / "gallery.db"


@pytest.fixture()
def gallery(db_url: str) -> Iterator[Gallery]:
    """A new gallery: a SQLite file, then a PostgreSQL database."""
    with Gallery.open(db_url) as g:
        yield g


def hnsw_index(db: str) -> list[str]:
    """The definition of the pgvector index on the prototypes, if there is one."""
    return [
        d
        for (d,) in rows(
            db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_prototypes_vector_hnsw'"
        )
    ]


def stamp_of(g: Gallery) -> IndexStamp:
    info = g.info()
    assert info.model is not None
    return IndexStamp(info.revision, info.model.name, info.model.weights_sha256, DIM)


def enroll_people(
    g: Gallery, rng: np.random.Generator, n_people: int = 4, per: int = 2
) -> dict[str, list[np.ndarray]]:
    people = {}
    for p in range(n_people):
        embs = [unit(rng) for _ in range(per)]
        g.enroll(f"person{p}", [sample(rng, emb=e) for e in embs], MODEL)
        people[f"person{p}"] = embs
    return people


def answers(g: Gallery, queries: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
    return [[(h.name, round(h.similarity, 5)) for h in hits] for hits in g.search(queries, k)]


# -- enrol / remove ------------------------------------------------------------------------------
def test_enroll_remove_round_trip(gallery: Gallery, db_url: str, rng: np.random.Generator) -> None:
    assert gallery.revision == 0
    assert gallery.model is None
    r = gallery.enroll("alice", [sample(rng) for _ in range(3)], MODEL)
    assert (r.person.name, r.person.n_samples, r.added, r.skipped) == ("alice", 3, 3, 0)
    gallery.enroll("bob", [sample(rng) for _ in range(2)], MODEL)

    assert gallery.model == MODEL
    assert gallery.revision == 2
    assert [(p.name, p.n_samples) for p in gallery.people()] == [("alice", 3), ("bob", 2)]
    assert (count(db_url, "identities"), count(db_url, "samples"), count(db_url, "prototypes")) == (
        2,
        5,
        2,
    )
    ids = dict(rows(db_url, "SELECT name, id FROM identities"))
    meta = dict(rows(db_url, "SELECT key, value FROM meta"))
    assert meta == {
        "revision": "2",
        "model_name": MODEL.name,
        "model_sha256": MODEL.weights_sha256,
        "embedding_dim": str(DIM),
    }

    if gallery.index_path is not None:
        # The index file on disk holds exactly the two identity ids, stamped with revision 2.
        on_disk = PrototypeIndex.load(gallery.index_path, stamp_of(gallery))
        assert on_disk is not None
        assert sorted(on_disk.ids().tolist()) == sorted(ids.values())

    assert gallery.remove("alice") == 3
    assert not gallery.has("alice") and gallery.has("bob")
    # ON DELETE CASCADE took alice's samples and prototype with her.
    assert (count(db_url, "identities"), count(db_url, "samples"), count(db_url, "prototypes")) == (
        1,
        2,
        1,
    )
    orphans = rows(db_url, "SELECT COUNT(*) FROM samples WHERE identity_id = ?", ids["alice"])
    assert orphans == [(0,)]
    if gallery.index_path is not None:
        on_disk = PrototypeIndex.load(gallery.index_path, stamp_of(gallery))
        assert on_disk is not None
        assert on_disk.ids().tolist() == [ids["bob"]]
    assert [h.name for h in gallery.search(np.stack([unit(rng)]), 5)[0]] == ["bob"]

    with pytest.raises(UnknownPersonError):
        gallery.remove("alice")
    with pytest.raises(UnknownPersonError):
        gallery.prototype("alice")


def test_enroll_against_a_stale_snapshot_is_refused(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    """A write that expects what its check saw is refused once the person changed since."""
    nobody = gallery.person_snapshot("alice")
    assert (nobody.version, nobody.prototype) == (None, None)
    gallery.enroll("alice", [sample(rng)], MODEL, expect=nobody)  # unchanged: goes in
    with pytest.raises(PersonChangedError, match="alice"):
        gallery.enroll("alice", [sample(rng)], MODEL, expect=nobody)  # alice exists now
    seen = gallery.person_snapshot("alice")
    assert seen.prototype is not None
    gallery.enroll("alice", [sample(rng)], MODEL)  # another writer adds a photo
    with pytest.raises(PersonChangedError):
        gallery.enroll("alice", [sample(rng)], MODEL, expect=seen)
    # Removed and enrolled again from another photo: never the version the check saw.
    seen = gallery.person_snapshot("alice")
    gallery.remove("alice")
    gallery.enroll("alice", [sample(rng)], MODEL)
    with pytest.raises(PersonChangedError):
        gallery.enroll("alice", [sample(rng)], MODEL, expect=seen)
    assert count(db_url, "samples") == 1


def test_enroll_adds_to_existing_person_and_skips_known_photos(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    first = sample(rng, sha="1" * 64)
    gallery.enroll("alice", [first, sample(rng, sha="2" * 64)], MODEL)
    # "1"*64 is already enrolled for alice; "3"*64 appears twice in one call.
    r = gallery.enroll(
        "alice",
        [sample(rng, sha="1" * 64), sample(rng, sha="3" * 64), sample(rng, sha="3" * 64)],
        MODEL,
    )
    assert (r.added, r.skipped, r.person.n_samples) == (1, 2, 3)
    assert count(db_url, "samples") == 3
    # The same photo may be enrolled for someone else (a group photo).
    r = gallery.enroll("bob", [sample(rng, sha="1" * 64)], MODEL)
    assert (r.added, r.skipped) == (1, 0)
    # Nothing new: nothing added, the person is unchanged.
    before = gallery.people()[0]
    r = gallery.enroll("alice", [sample(rng, sha="2" * 64)], MODEL)
    assert (r.added, r.skipped, r.person) == (0, 1, before)


def test_prototype_is_the_normalised_mean_of_normalised_samples(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    # Deliberately not unit length: the gallery must normalise each sample first.
    a, b = unit(rng) * 3.0, unit(rng) * 0.25
    gallery.enroll("alice", [sample(rng, emb=a), sample(rng, emb=b)], MODEL)
    expected = normalised_mean([a, b])
    # Sanity of the hand computation: not the plain mean direction.
    assert not np.allclose(expected, (a + b) / np.linalg.norm(a + b), atol=1e-3)

    np.testing.assert_allclose(gallery.prototype("alice"), expected, atol=1e-6)
    (stored,) = vectors(db_url, "SELECT vector FROM prototypes")
    np.testing.assert_allclose(stored, expected, atol=1e-6)
    assert rows(db_url, "SELECT n_samples FROM prototypes") == [(2,)]

    c = unit(rng)
    gallery.enroll("alice", [sample(rng, emb=c)], MODEL)
    expected = normalised_mean([a, b, c])
    names, matrix = gallery.prototypes()
    assert names == ["alice"]
    assert matrix.shape == (1, DIM) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[0], expected, atol=1e-6)
    hits = gallery.search(expected[None, :].astype(np.float32), 1)
    assert hits[0][0].name == "alice" and hits[0][0].similarity == pytest.approx(1.0, abs=1e-5)


def test_samples_round_trip(gallery: Gallery, rng: np.random.Generator) -> None:
    new = [sample(rng), sample(rng)]
    gallery.enroll("alice", new, MODEL)
    stored = list(gallery.samples())
    assert len(stored) == 2
    for s, n in zip(stored, new, strict=True):
        assert s.name == "alice"
        np.testing.assert_array_equal(s.embedding, n.embedding)
        assert not s.embedding.flags.writeable
        assert s.crop_png == n.crop_png
        assert s.crop_landmarks == n.crop_landmarks
        assert (s.source, s.content_sha256, s.box, s.det_score) == (
            n.source,
            n.content_sha256,
            n.box,
            n.det_score,
        )
        assert dict(s.quality) == dict(n.quality)
        assert s.created_at.tzinfo is not None


# -- the index follows the database --------------------------------------------------------------
def test_deleted_index_file_is_rebuilt(db: Path, rng: np.random.Generator) -> None:
    queries = np.stack([unit(rng) for _ in range(5)])
    with Gallery.open(db) as g:
        enroll_people(g, rng)
        before = answers(g, queries)
        index_path = g.index_path
    assert index_path == db.with_name("gallery.db.faiss")
    index_path.unlink()
    with Gallery.open(db) as g:
        assert answers(g, queries) == before
    assert index_path.read_bytes().startswith(MAGIC)


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "flipped-byte", "bad-stamp"])
def test_damaged_index_file_is_rebuilt(db: Path, rng: np.random.Generator, damage: str) -> None:
    queries = np.stack([unit(rng) for _ in range(5)])
    with Gallery.open(db) as g:
        enroll_people(g, rng)
        before = answers(g, queries)
        index_path = g.index_path
    data = index_path.read_bytes()
    if damage == "random":
        junk = os.urandom(len(data))
    elif damage == "truncated":
        junk = data[: len(data) - 40]
    elif damage == "empty":
        junk = b""
    elif damage == "flipped-byte":
        junk = data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:]
    else:
        junk = data.replace(b'"revision": ', b'"revision": "x', 1)
    index_path.write_bytes(junk)
    with Gallery.open(db) as g:
        assert answers(g, queries) == before
    assert index_path.read_bytes().startswith(MAGIC)
    assert index_path.read_bytes() != junk


@pytest.mark.parametrize(
    ("db_url", "shared_index"),
    [("sqlite", True), ("sqlite", False), ("postgresql", True)],
    indirect=["db_url"],
)
def test_write_by_another_instance_is_seen_by_next_search(
    db_url: str, tmp_path: Path, rng: np.random.Generator, shared_index: bool
) -> None:
    carol = unit(rng)
    with Gallery.open(db_url) as g1:
        people = enroll_people(g1, rng, n_people=2)
        probe = people["person1"][0]
        first = g1.search(np.stack([carol, probe]), 10)
        assert "carol" not in [h.name for h in first[0]]
        # A second instance (as another process would) changes the same database. With its own
        # index file, g1's file is left stale and must be rebuilt from SQLite, not just reloaded.
        other_index = None if shared_index else tmp_path / "other.faiss"
        with Gallery.open(db_url, index_path=other_index) as g2:
            # Same people, one prototype moved: only the revision tells g1 its index is old.
            g2.enroll("person1", [sample(rng, emb=carol)], MODEL)
            moved = normalised_mean([*people["person1"], carol])
            hit = {h.name: h.similarity for h in g1.search(probe[None, :], 10)[0]}
            assert hit["person1"] == pytest.approx(float(probe @ moved), abs=1e-5)

            g2.enroll("carol", [sample(rng, emb=carol)], MODEL)
            g2.remove("person0")
        hits = g1.search(np.stack([carol, probe]), 10)
        assert hits[0][0].name == "carol"
        assert hits[0][0].similarity == pytest.approx(1.0, abs=1e-5)
        assert sorted(h.name for h in hits[1]) == ["carol", "person1"]
        stamp = stamp_of(g1)
        index_path = g1.index_path
    if index_path is not None:
        loaded = PrototypeIndex.load(index_path, stamp)
        assert loaded is not None and loaded.count == 2


def test_index_stamped_current_but_holding_other_people_is_rebuilt(
    db: Path, rng: np.random.Generator
) -> None:
    queries = np.stack([unit(rng) for _ in range(5)])
    with Gallery.open(db) as g:
        enroll_people(g, rng, n_people=3)
        before = answers(g, queries)
        stamp = stamp_of(g)
        index_path = g.index_path
    # A well-formed file with the right stamp but ids the database does not have.
    PrototypeIndex.build([990, 991], np.stack([unit(rng), unit(rng)]), stamp).save(index_path)
    with Gallery.open(db) as g:
        assert answers(g, queries) == before


def test_failed_write_leaves_database_and_index_untouched(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    gallery.enroll("alice", [sample(rng), sample(rng)], MODEL)
    before_rows = dump(db_url, TABLES)
    index_path = gallery.index_path
    before_index = index_path.read_bytes() if index_path is not None else hnsw_index(db_url)
    before_revision = gallery.revision

    # Sample 2 of 3 has the wrong dimension: the new person and sample 1 were already
    # written inside the transaction when it fails.
    bad = [sample(rng), sample(rng, dim=DIM + 1), sample(rng)]
    with pytest.raises(ValueError, match=r"sample 2 of 3 .* dimension 17"):
        gallery.enroll("bob", bad, MODEL)
    with pytest.raises(ValueError, match="sample 2 of 3"):
        gallery.enroll("alice", bad, MODEL)
    with pytest.raises(ModelMismatchError):
        gallery.enroll("bob", [sample(rng)], OTHER)
    with pytest.raises(UnknownPersonError):
        gallery.remove("nobody")
    with pytest.raises(ValueError, match="missing"):
        gallery.reembed(OTHER, {})

    assert dump(db_url, TABLES) == before_rows
    assert (
        index_path.read_bytes() if index_path is not None else hnsw_index(db_url)
    ) == before_index
    assert gallery.revision == before_revision
    assert [p.name for p in gallery.people()] == ["alice"]


def test_failed_first_enrolment_pins_nothing(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    before = dump(db_url, TABLES)
    with pytest.raises(ValueError, match="sample 2 of 3"):
        gallery.enroll("alice", [sample(rng), sample(rng, dim=8), sample(rng)], MODEL)
    assert dump(db_url, TABLES) == before
    assert gallery.model is None
    if gallery.index_path is not None:
        assert not gallery.index_path.exists()
    else:  # the HNSW index made for the pinned dimension went with the rollback
        assert hnsw_index(db_url) == []
    # The gallery is still free to take any model and dimension.
    gallery.enroll("alice", [sample(rng, dim=8)], OTHER)
    assert gallery.info().model == OTHER


# -- model pin, reembed ------------------------------------------------------------------------
def test_model_mismatch(gallery: Gallery, rng: np.random.Generator) -> None:
    gallery.check_model(OTHER)  # nothing pinned yet: any model is fine
    gallery.enroll("alice", [sample(rng)], MODEL)
    gallery.check_model(MODEL)
    with pytest.raises(ModelMismatchError) as err:
        gallery.check_model(OTHER)
    message = str(err.value)
    assert MODEL.name in message and OTHER.name in message
    assert "--" not in message and "facerec " not in message  # each front end words the remedy
    assert (err.value.pinned, err.value.given) == (MODEL, OTHER)
    with pytest.raises(ModelMismatchError) as err:
        gallery.enroll("bob", [sample(rng)], OTHER)
    assert (err.value.pinned, err.value.given) == (MODEL, OTHER)
    # Same name, other weights: a different model too.
    with pytest.raises(ModelMismatchError):
        gallery.check_model(ModelIdentity(MODEL.name, "c" * 64))
    with pytest.raises(ValueError, match="dimension"):
        gallery.enroll("bob", [sample(rng, dim=DIM * 2)], MODEL)


def test_reembed(gallery: Gallery, db_url: str, rng: np.random.Generator) -> None:
    enroll_people(gallery, rng, n_people=3, per=2)
    stored = list(gallery.samples())
    new_dim = 8
    new = {s.id: unit(rng, new_dim) * 2.0 for s in stored}

    before = dump(db_url, TABLES)
    with pytest.raises(ValueError, match="1 missing"):
        gallery.reembed(OTHER, {k: v for k, v in list(new.items())[1:]})
    with pytest.raises(ValueError, match="1 unknown"):
        gallery.reembed(OTHER, {**new, 10_000: unit(rng, new_dim)})
    with pytest.raises(ValueError, match="mixed dimensions"):
        gallery.reembed(OTHER, {**new, stored[0].id: unit(rng, new_dim + 1)})
    assert dump(db_url, TABLES) == before

    gallery.reembed(OTHER, new)
    assert gallery.model == OTHER
    gallery.check_model(OTHER)
    with pytest.raises(ModelMismatchError):
        gallery.check_model(MODEL)
    assert dict(rows(db_url, "SELECT key, value FROM meta"))["embedding_dim"] == str(new_dim)
    for s in gallery.samples():
        np.testing.assert_allclose(s.embedding, new[s.id].astype(np.float32))
    for name in ("person0", "person1", "person2"):
        mine = [new[s.id] for s in stored if s.name == name]
        np.testing.assert_allclose(gallery.prototype(name), normalised_mean(mine), atol=1e-6)
    # The index now speaks the new model: new-dimension queries find the right person.
    query = new[stored[-1].id]
    assert gallery.search(query[None, :], 1)[0][0].name == stored[-1].name
    with pytest.raises(ValueError, match="dimension"):
        gallery.search(np.stack([unit(rng)]), 1)
    info = gallery.info()
    if gallery.index_path is not None:
        loaded = PrototypeIndex.load(
            gallery.index_path, IndexStamp(info.revision, OTHER.name, OTHER.weights_sha256, new_dim)
        )
        assert loaded is not None and loaded.count == 3
    else:  # the cache is in memory, rebuilt for the new model; no HNSW index of the old one
        assert hnsw_index(db_url) == []
    # Enrolment now takes the new model only.
    gallery.enroll("dave", [sample(rng, dim=new_dim)], OTHER)


# -- thresholds, pragmas, names, search edges, errors ----------------------------------------------
def test_thresholds(gallery: Gallery, db_url: str, rng: np.random.Generator) -> None:
    assert gallery.threshold(MODEL.name) is None
    gallery.set_threshold(MODEL.name, 0.55)
    assert gallery.threshold(MODEL.name) == pytest.approx(0.55)
    gallery.set_threshold(MODEL.name, 0.61, target_far=1e-3)
    assert gallery.threshold(MODEL.name) == pytest.approx(0.61)
    assert gallery.threshold(OTHER.name) is None
    assert rows(db_url, "SELECT model_name, threshold, target_far FROM thresholds") == [
        (MODEL.name, pytest.approx(0.61), pytest.approx(1e-3))
    ]
    assert gallery.info().threshold is None  # no model pinned yet
    gallery.enroll("alice", [sample(rng)], MODEL)
    assert gallery.info().threshold == pytest.approx(0.61)
    for bad in (1.5, float("nan")):
        with pytest.raises(ValueError):
            gallery.set_threshold(MODEL.name, bad)
    with pytest.raises(ValueError):
        gallery.set_threshold(MODEL.name, 0.5, target_far=0.0)
    # A threshold write moves the revision; the index follows without losing anyone.
    assert [h.name for h in gallery.search(np.stack([unit(rng)]), 5)[0]] == ["alice"]


def test_pragmas_in_force(db: Path) -> None:
    with Gallery.open(db) as gallery, gallery.database.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 10000,
        "synchronous": 1,
    }
    # WAL is a property of the file: a plain connection sees it too.
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_names_are_validated_and_normalised(gallery: Gallery, rng: np.random.Generator) -> None:
    for bad, why in [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 201, "at most 200"),
        ("bad\nname", "control"),
        ("tab\tname", "control"),
        ("nul\x00", "control"),
        # Invisible: would print as "Laura Bush" while being someone else.
        ("Laura\u200b Bush", "U\\+200B ZERO WIDTH SPACE"),
        ("\u202eevil", "U\\+202E RIGHT-TO-LEFT OVERRIDE"),
        ("Ada\u2066 L\u2069", "U\\+2066"),
        ("\ufeffAda", "U\\+FEFF"),
        ("Ada\u00ad", "U\\+00AD SOFT HYPHEN"),
        ("a\u200cb", "U\\+200C"),  # a joiner between ASCII letters spells nothing
    ]:
        with pytest.raises(ValueError, match=why):
            gallery.enroll(bad, [sample(rng)], MODEL)
    r = gallery.enroll("  Jose\u0301 ", [sample(rng)], MODEL)
    assert r.person.name == "Jos\u00e9"
    assert gallery.has("Jos\u00e9") and gallery.has("Jose\u0301")
    gallery.enroll("x" * 200, [sample(rng)], MODEL)
    # Persian spells with the zero-width non-joiner between letters: still a name.
    gallery.enroll("\u0639\u0644\u06cc\u200c\u0631\u0636\u0627", [sample(rng)], MODEL)
    assert len(gallery.people()) == 3
    with pytest.raises(ValueError, match="at least one sample"):
        gallery.enroll("alice", [], MODEL)


def test_search_edges(gallery: Gallery, rng: np.random.Generator) -> None:
    queries = np.stack([unit(rng), unit(rng)])
    assert gallery.search(queries, 5) == [[], []]  # empty gallery
    enroll_people(gallery, rng, n_people=2, per=1)
    hits = gallery.search(queries * 7.0, 100)  # k clipped; raw (unnormalised) queries are fine
    assert [len(h) for h in hits] == [2, 2]
    assert all(h[0].similarity >= h[1].similarity for h in hits)
    assert all(-1.0 - 1e-5 <= x.similarity <= 1.0 + 1e-5 for h in hits for x in h)
    assert gallery.search(queries, 0) == [[], []]
    assert gallery.search(np.zeros((0, DIM), np.float32), 3) == []
    with pytest.raises(ValueError, match="2-D"):
        gallery.search(queries[0], 1)
    with pytest.raises(ValueError, match="dimension"):
        gallery.search(np.ones((1, DIM + 1), np.float32), 1)
    with pytest.raises(ValueError, match="zeros"):
        gallery.search(np.zeros((1, DIM), np.float32), 1)
    # Everyone removed: the index is empty but stamped; searches answer nothing.
    gallery.remove("person0")
    gallery.remove("person1")
    assert gallery.search(queries, 5) == [[], []]


def test_info(gallery: Gallery, db_url: str, rng: np.random.Generator) -> None:
    info = gallery.info()
    if is_postgres(db_url):
        assert (info.path, info.index_path) == (None, None)
        assert info.database.startswith("postgresql+psycopg://")
    else:
        db = Path(db_url)
        assert (info.path, info.index_path, info.database) == (
            db,
            db.with_name("gallery.db.faiss"),
            str(db),
        )
    assert (info.model, info.revision, info.n_people, info.n_samples) == (None, 0, 0, 0)
    from alembic.script import ScriptDirectory

    from facerec.storage.migrate import alembic_config

    assert info.schema_revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
    enroll_people(gallery, rng, n_people=2, per=3)
    info = gallery.info()
    assert (info.model, info.revision, info.n_people, info.n_samples) == (MODEL, 2, 2, 6)


def test_open_refuses_what_is_not_a_gallery(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(GalleryError, match=r"junk\.db"):
        Gallery.open(junk)
    newer = tmp_path / "newer.db"
    con = sqlite3.connect(newer)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    con.execute("INSERT INTO alembic_version VALUES ('9999')")
    con.commit()
    con.close()
    with pytest.raises(GalleryError, match="newer version"):
        Gallery.open(newer)
    with pytest.raises(GalleryError, match="directory"):
        Gallery.open(tmp_path)


def test_closed_gallery_refuses_work(db_url: str) -> None:
    g = Gallery.open(db_url)
    g.close()
    g.close()  # idempotent
    with pytest.raises(GalleryError, match="closed"):
        g.people()


def test_concurrent_writers_queue_instead_of_failing(db_url: str) -> None:
    """Two instances writing at once queue (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock)."""
    with Gallery.open(db_url) as g1, Gallery.open(db_url) as g2:
        errors: list[BaseException] = []

        def writer(g: Gallery, prefix: str, seed: int) -> None:
            r = np.random.default_rng(seed)
            try:
                for i in range(8):
                    g.enroll(f"{prefix}{i}", [sample(r)], MODEL)
                    g.search(np.stack([unit(r)]), 3)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=writer, args=(g1, "a", 1)),
            threading.Thread(target=writer, args=(g2, "b", 2)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert g1.revision == g2.revision == 16
        names = {p.name for p in g1.people()}
        assert len(names) == 16
        hits = g2.search(np.stack([unit(np.random.default_rng(3))]), 100)[0]
        assert {h.name for h in hits} == names
    assert count(db_url, "prototypes") == 16


# -- forget -----------------------------------------------------------------------------------------
def test_forget_runs_the_erasure_in_the_same_transaction(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    people = enroll_people(gallery, rng, n_people=2, per=2)
    gallery.search(np.stack(people["person1"]), 1)  # the index file now holds both prototypes
    seen: list[Any] = []

    def erase(s: Any, target: Any) -> str:
        # Inside the transaction, before the person's rows go: they are still there.
        n = s.execute(
            text("SELECT COUNT(*) FROM samples WHERE identity_id = :i"), {"i": target.identity_id}
        ).scalar_one()
        seen.append((target.name, target.threshold, n, target.prototype.copy()))
        return "erased"

    n, extra = gallery.forget(" person0 ", 0.5, erase)
    assert (n, extra) == (2, "erased")
    ((name, threshold, n_then, proto),) = seen
    assert (name, threshold, n_then) == ("person0", 0.5, 2)
    np.testing.assert_allclose(proto, normalised_mean(people["person0"]), atol=1e-6)
    assert [p.name for p in gallery.people()] == ["person1"]
    assert rows(db_url, "SELECT COUNT(*) FROM samples") == [(2,)]
    assert count(db_url, "prototypes") == 1
    if is_postgres(db_url):
        # Dead tuples stay until autovacuum: facerec does not claim the bytes are gone.
        assert gallery.compact() is False
    else:
        assert gallery.compact() is True
        # Not a byte of their embeddings or prototype in any file: database, WAL, index.
        theirs = [e.astype("<f4").tobytes() for e in people["person0"]]
        theirs.append(proto.astype("<f4").tobytes())
        files = [p for p in gallery.path.parent.iterdir() if p.is_file()]
        assert {p.name for p in files} >= {"gallery.db", "gallery.db.faiss"}
        for path in files:
            data = path.read_bytes()
            assert not any(blob in data for blob in theirs), path
    hits = gallery.search(np.stack(people["person1"]), 2)
    assert [h.name for h in hits[0]] == ["person1"]


def test_forget_with_a_failing_erasure_deletes_nothing(
    gallery: Gallery, db_url: str, rng: np.random.Generator
) -> None:
    enroll_people(gallery, rng, n_people=2)
    before = dump(db_url, TABLES)

    def erase(s: Any, target: Any) -> None:
        raise RuntimeError("album store failed")

    with pytest.raises(RuntimeError, match="album store failed"):
        gallery.forget("person0", 0.5, erase)
    assert dump(db_url, TABLES) == before
    with pytest.raises(UnknownPersonError):
        gallery.forget("nobody", 0.5, erase)
    assert len(gallery.search(np.stack([unit(rng)]), 5)[0]) == 2  # the index is rebuilt
