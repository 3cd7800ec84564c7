"""`AlbumStore` on its own, with made-up faces: every verb on a SQLite file and on PostgreSQL.

The album's other tests run the face pipeline over real photos on SQLite;
these check the store itself on both databases (the `db_url` fixture): what
it writes is read back with the database's own driver, embeddings keep every
bit (and on SQLite the bytes galleries always had), 64-bit sizes and times
fit, exact non-UTF-8 names survive, orderings do not depend on a
collation, and forgetting a person runs inside the gallery's transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from facerec.album.store import AlbumStore, FaceUpdate, NewFace, NewPhoto, Relocation
from facerec.album.tables import MATCH_AUTO, MATCH_CONFIRMED
from facerec.faces.images import to_png
from facerec.gallery import Gallery, NewSample
from facerec.models.base import ModelIdentity
from facerec.storage import Database

from ..db_rows import count, is_postgres, rows

MODEL = ModelIdentity("test-model", "0" * 64)
DIM = 16
#: Past 2**31 (PostgreSQL's `integer`): a 3 GB file and a nanosecond time in 2026.
BIG_SIZE, BIG_MTIME = 3 * 2**30, 1_780_000_000_123_456_789


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def face(i: int, embedding: np.ndarray, box: tuple[float, ...] = (10, 10, 50, 50)) -> NewFace:
    x1, y1, x2, y2 = (float(b) for b in box)
    return NewFace(
        face_index=i,
        box=(x1 + 100 * i, y1, x2 + 100 * i, y2),
        landmarks=((1.0, 2.0),) * 5,
        det_score=0.99,
        quality={"blur": 0.5},
        quality_reasons=(),
        embedding=embedding,
        thumbnail=b"\xff\xd8\xff" + bytes([i]) * 8,
    )


def photo(path: str, sha: str, *faces: NewFace, size: int = 1000) -> NewPhoto:
    return NewPhoto(path, sha, size, BIG_MTIME, 640, 480, None, MODEL, tuple(faces))


@pytest.fixture()
def opened(db_url: str) -> Iterator[tuple[Database, Gallery, AlbumStore]]:
    """Ada and Bob enrolled (one made-up sample each), and the album store beside them."""
    crop = to_png(np.zeros((8, 8, 3), np.uint8))
    with Database.open(db_url) as database, Gallery.open(database) as gallery:
        for name, seed in (("Ada", 1), ("Bob", 2)):
            sample = NewSample(unit(seed), crop, ((1.0, 2.0),) * 5, f"{name}.jpg", f"sha-{name}",
                               (0, 0, 9, 9), 0.99, {})  # fmt: skip
            gallery.enroll(name, [sample], MODEL)
        yield database, gallery, AlbumStore(database)


def test_a_scan_batch_round_trips(
    opened: tuple[Database, Gallery, AlbumStore], db_url: str
) -> None:
    _, _, store = opened
    ada_like = unit(1)
    store.write(
        [
            photo("/album/b.jpg", "sha-b", face(0, ada_like), face(1, unit(7)), size=BIG_SIZE),
            photo("/album/a.jpg", "sha-a"),
            NewPhoto("/album/broken.jpg", "sha-x", 10, 1, None, None, "not an image", None),
        ]
    )
    known = {k.path: k for k in store.known()}
    assert set(known) == {"/album/a.jpg", "/album/b.jpg", "/album/broken.jpg"}
    assert known["/album/b.jpg"].size_bytes == BIG_SIZE
    assert known["/album/b.jpg"].mtime_ns == BIG_MTIME and known["/album/b.jpg"].model == MODEL
    assert not known["/album/broken.jpg"].ok and known["/album/broken.jpg"].model is None
    assert store.latest_model() == MODEL
    table = store.usable_faces(MODEL)
    assert len(table) == 2 and table.embeddings.dtype == np.float32
    assert np.array_equal(table.embeddings[0], ada_like)  # every bit kept, on both databases
    if not is_postgres(db_url):  # the bytes every SQLite gallery has always held
        stored = rows(db_url, "SELECT embedding FROM album_faces ORDER BY id")
        assert stored[0][0] == ada_like.astype("<f4").tobytes()
    counts = store.counts()
    assert (counts["photos"], counts["faces"], counts["paths"]) == (3, 2, 3)
    images = list(store.face_images([int(i) for i in table.face_ids]))
    assert [i.thumbnail for i in images] == [b"\xff\xd8\xff" + bytes([i]) * 8 for i in (0, 1)]
    assert images[0].photo_path == "/album/b.jpg" and images[0].box == (10.0, 10.0, 50.0, 50.0)


def test_photos_are_listed_in_code_point_order(
    opened: tuple[Database, Gallery, AlbumStore],
) -> None:
    """SQLite orders text by its UTF-8 bytes, PostgreSQL by the column's collation (a locale's on
    most servers; the test server's is C.UTF-8, so only SQLite can catch an order left to SQL).
    The album lists in code-point order, SQLite's, on both."""
    _, _, store = opened
    names = ["b.jpg", "B.jpg", "é.jpg", "a.jpg", "Z.jpg", "_x.jpg"]
    store.write([photo(f"/album/{n}", f"sha-{n}") for n in names])
    listed = [os.path.basename(p.path) for p in store.view().photos]
    assert listed == sorted(names) == ["B.jpg", "Z.jpg", "_x.jpg", "a.jpg", "b.jpg", "é.jpg"]


def test_exact_names_copies_and_moves(
    opened: tuple[Database, Gallery, AlbumStore], db_url: str
) -> None:
    _, _, store = opened
    odd = os.fsdecode(b"/album/caf\xe9.jpg")  # not UTF-8: kept as bytes, printed escaped
    store.write([photo(odd, "sha-1", face(0, unit(3)))])
    store.write([], [Relocation("sha-1", "/album/copy.jpg", 1000, BIG_MTIME)])
    (shown,) = store.view().photos
    assert shown.path == "/album/caf\\xe9.jpg" and shown.paths == (shown.path, "/album/copy.jpg")
    assert {k.path for k in store.known()} == {odd, "/album/copy.jpg"}
    stored = {r[0] for r in rows(db_url, "SELECT path_bytes FROM album_photo_paths")}
    assert stored == {b"/album/caf\xe9.jpg", b"/album/copy.jpg"}
    # The original moved away: the album reads the photo from its copy from now on.
    store.write([], [Relocation("sha-1", "/album/copy.jpg", 1000, BIG_MTIME, gone=(odd,))])
    (moved,) = store.view().photos
    assert moved.path == "/album/copy.jpg" and moved.paths == ("/album/copy.jpg",)
    # Other content at the copy's path: the old content has no path left and leaves the album.
    store.write([photo("/album/copy.jpg", "sha-2")])
    assert [p.content_sha256 for p in store.view().photos] == ["sha-2"]
    assert count(db_url, "album_faces") == 0


def test_refresh_decisions_and_user_corrections(
    opened: tuple[Database, Gallery, AlbumStore],
) -> None:
    _, _, store = opened
    store.write(
        [photo("/album/p.jpg", "sha-p", face(0, unit(1)), face(1, unit(5)), face(2, unit(6)))]
    )
    table = store.usable_faces(MODEL)
    ids = store.identities()
    assert set(ids) == {"Ada", "Bob"}
    f0, f1, f2 = (int(i) for i in table.face_ids)
    updates = [
        FaceUpdate(f0, ids["Ada"], 0.99, MATCH_AUTO, True, None),
        FaceUpdate(f1, None, 0.2, None, False, 0),
        FaceUpdate(f2, None, 0.1, None, False, 0),
    ]
    assert store.apply(updates, [None]) == 3
    assert store.apply(updates, [store.view().clusters[0].id]) == 0  # nothing differs
    view = store.view()
    (cluster,) = view.clusters
    assert cluster.face_ids == (f1, f2) and [p.name for p in view.people] == ["Ada"]
    assert np.array_equal(store.folded_embeddings()[ids["Ada"]], unit(1)[None, :])
    members = store.cluster_faces(cluster.id)
    assert [c.face_id for c in members] == [f1, f2] and members[0].photo_path == "/album/p.jpg"
    assert np.array_equal(members[1].embedding, unit(6)) and members[0].model == MODEL

    assert store.confirm([f1], ids["Bob"]) == 1  # a named cluster: confirmed, out of the cluster
    assert store.add_negative(f0, ids["Ada"]) is True  # undoes the match...
    assert store.add_negative(f0, ids["Ada"]) is False  # ...once; the record is not doubled
    assert store.negatives() == {(f0, ids["Ada"])}
    assert store.unfold(ids["Ada"]) == 0  # the match, folded or not, is gone
    faces = {f.id: f for f in store.view().photos[0].faces}
    assert faces[f1].person == "Bob" and faces[f1].match_kind == MATCH_CONFIRMED
    assert faces[f0].person is None and not faces[f0].folded
    assert store.has_face(f2) and not store.has_face(f2 + 1000)


def test_forgetting_runs_in_the_gallerys_transaction(
    opened: tuple[Database, Gallery, AlbumStore], db_url: str
) -> None:
    """Ada's faces go (matched to her, or like her), their boxes stay; Bob's stay; a rescan does
    not bring hers back; a failing erasure leaves everything as it was."""
    _, gallery, store = opened
    ada, bob = unit(1), unit(2)
    near_ada = (ada + 0.05 * unit(9)) / np.linalg.norm(ada + 0.05 * unit(9))
    store.write([photo("/album/p.jpg", "sha-p", face(0, ada), face(1, near_ada), face(2, bob))])
    ids = store.identities()
    f0, _, f2 = (int(i) for i in store.usable_faces(MODEL).face_ids)
    store.apply([FaceUpdate(f0, ids["Ada"], 1.0, MATCH_AUTO, False, None),
                 FaceUpdate(f2, ids["Bob"], 1.0, MATCH_AUTO, False, None)], [])  # fmt: skip
    store.add_negative(f2, ids["Ada"])

    def failing(s: object, target: object) -> None:
        AlbumStore.forget(s, target)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        gallery.forget("Ada", 0.9, failing)
    assert count(db_url, "album_faces") == 3 and gallery.has("Ada")

    samples, forgotten = gallery.forget("Ada", 0.9, AlbumStore.forget)
    assert samples == 1 and (forgotten.faces, forgotten.photos, forgotten.negatives) == (2, 1, 1)
    assert rows(db_url, "SELECT id FROM album_faces") == [(f2,)]
    assert count(db_url, "album_forgotten_faces") == 2 and count(db_url, "album_negatives") == 0
    boxes = store.forgotten_boxes()
    assert sorted(boxes["sha-p"]) == [(10.0, 10.0, 50.0, 50.0), (110.0, 10.0, 150.0, 50.0)]
    # Detected again (after a model change): her face is not stored again, Bob's is.
    store.write([photo("/album/p.jpg", "sha-p", face(0, ada), face(2, bob))])
    (again,) = store.view().photos
    assert [f.face_index for f in again.faces] == [2] and again.forgotten == 2
