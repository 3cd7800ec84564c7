"""Album scans on real photos: people found, nobody twice in a photo, reruns, clusters, name, not."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from facerec.album.api import Album
from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline

from ..db_rows import rows

OBAMA, BIDEN, LIN = "Barack Obama", "Joe Biden", "Lin-Manuel Miranda"
OBAMA_PHOTOS = [
    "obama.jpg",
    "obama2.jpg",
    "obama-240p.jpg",
    "obama-480p.jpg",
    "obama-720p.jpg",
    "obama-1080p.jpg",
    "obama_small.jpg",
]


def by_file(album: Album) -> dict[str, list[Any]]:
    """Photo file name -> its faces (FaceView), left to right."""
    return {Path(p.path).name: sorted(p.faces, key=lambda f: f.box[0]) for p in album.view().photos}


def names(faces: list[Any]) -> list[str | None]:
    return [f.person for f in faces]


def test_scan_finds_the_enrolled_people(album_built: Any, pipeline: Pipeline) -> None:
    s = album_built.summary
    assert s.found == 17 and s.processed == 15 and s.errors == 2
    with FaceRec(album_built.db, pipeline=pipeline) as fr, Album(fr) as album:
        faces = by_file(album)
    for photo in OBAMA_PHOTOS:
        assert names(faces[photo]) == [OBAMA], photo
    assert names(faces["biden.jpg"]) == [BIDEN]
    for stranger in ("alex-lacamoire.png", "lin-manuel-miranda.png", "lin_copy.jpg"):
        assert names(faces[stranger]) == [None], stranger


def test_a_photo_with_both_gets_both_names_and_nobody_twice(
    album_built: Any, pipeline: Pipeline
) -> None:
    with FaceRec(album_built.db, pipeline=pipeline) as fr, Album(fr) as album:
        faces = by_file(album)
    assert sorted(names(faces["two_people.jpg"])) == sorted([BIDEN, OBAMA])
    usable = [f.person for f in faces["obama_and_biden.jpg"] if f.usable]  # found in a subfolder
    assert sorted(usable) == sorted([BIDEN, OBAMA])
    # The same Obama face twice in one photo: one of them is Obama, the other cannot be.
    assert sorted(names(faces["obama_twice.jpg"]), key=str) == [OBAMA, None]
    for photo, fs in faces.items():
        counts = Counter(f.person for f in fs if f.person is not None)
        assert all(n == 1 for n in counts.values()), (photo, counts)


def test_bad_photos_are_recorded_and_the_scan_goes_on(album_built: Any) -> None:
    errors = dict(
        rows(album_built.db, "SELECT path, error FROM album_photos WHERE status = 'error'")
    )
    by_name = {Path(p).name: e for p, e in errors.items()}
    assert set(by_name) == {"notes.jpg", "truncated.jpg"}
    assert "not an image" in by_name["notes.jpg"]
    assert "truncated" in by_name["truncated.jpg"]


def test_rerun_processes_nothing(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    before = rows(built.db, "SELECT * FROM album_faces ORDER BY id")
    again = album.scan(built.photos, workers=1)
    assert again.processed == 0 and again.unchanged == again.found == 17
    assert again.refresh.changed == 0
    assert rows(built.db, "SELECT * FROM album_faces ORDER BY id") == before


def test_copied_changed_and_moved_files(album_copy: tuple[Album, Any], tmp_path: Path) -> None:
    album, built = album_copy
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama_small.jpg", "lin_copy.jpg"):
        (photos / name).write_bytes((built.photos / name).read_bytes())
    # Copies of photos already in the album: read and hashed, never decoded again.
    copies = album.scan(photos, workers=0)
    assert (copies.processed, copies.duplicates) == (0, 2)
    # A file whose content changed is processed again; the copy's path is known now: skipped unread.
    Image.open(built.photos / "obama-240p.jpg").save(photos / "obama_small.jpg", quality=70)
    changed = album.scan(photos, workers=0)
    assert (changed.processed, changed.duplicates, changed.unchanged) == (1, 0, 1)
    # A moved file is not processed again; its record follows it, so the next run skips it.
    (photos / "obama_small.jpg").rename(photos / "moved.jpg")
    moved = album.scan(photos, workers=0)
    assert (moved.processed, moved.duplicates, moved.unchanged) == (0, 1, 1)
    again = album.scan(photos, workers=0)
    assert (again.processed, again.unchanged, again.duplicates) == (0, 2, 0)
    assert rows(built.db, "SELECT COUNT(*) FROM album_photos") == [(18,)]
    assert (
        rows(built.db, "SELECT COUNT(*) FROM album_photos GROUP BY path HAVING COUNT(*) > 1") == []
    )
    assert names(by_file(album)["moved.jpg"]) == [OBAMA]


def test_every_copy_of_a_photo_is_kept_and_reported(
    album_copy: tuple[Album, Any], tmp_path: Path
) -> None:
    from facerec.album import report

    album, built = album_copy
    misc = tmp_path / "misc"
    misc.mkdir()
    copy = misc / "obama2_copy.jpg"
    copy.write_bytes((built.photos / "obama2.jpg").read_bytes())
    first = album.scan(misc, workers=0)
    assert (first.processed, first.duplicates) == (0, 1)  # "already known"...
    (photo,) = [p for p in album.view().photos if str(copy) in p.paths]
    assert photo.path == str(built.photos / "obama2.jpg") and photo.paths == (photo.path, str(copy))
    # ...and found in every report.
    out = tmp_path / "faces.csv"
    report.write_csv(album.view(), out)
    assert str(copy) in out.read_text()
    page = report.write_html(album.view(), album.store, tmp_path / "report")
    assert "obama2_copy.jpg" in page.read_text()
    report.write_json(album.view(), tmp_path / "album.json")
    assert str(copy) in (tmp_path / "album.json").read_text()
    # The copy is known by its path now: the next scan skips it unread.
    again = album.scan(misc, workers=0)
    assert (again.unchanged, again.duplicates, again.processed) == (1, 0, 0)
    # Moved: the album follows it, and drops the path it left.
    copy.rename(misc / "moved.jpg")
    album.scan(misc, workers=0)
    (photo,) = [p for p in album.view().photos if p.id == photo.id]
    assert photo.paths == (photo.path, str(misc / "moved.jpg"))
    # A new photo and its copy in one scan: processed once, both paths kept. Then the file the
    # album reads it from is overwritten: the photo stays, read from its copy.
    new = tmp_path / "new"
    new.mkdir()
    Image.open(built.photos / "obama-240p.jpg").save(new / "a.jpg", quality=60)
    (new / "b.jpg").write_bytes((new / "a.jpg").read_bytes())
    both = album.scan(new, workers=0)
    assert (both.processed, both.duplicates) == (1, 1)
    (photo,) = [p for p in album.view().photos if str(new / "b.jpg") in p.paths]
    assert photo.paths == (str(new / "a.jpg"), str(new / "b.jpg"))
    (new / "a.jpg").write_bytes((built.photos / "obama2.jpg").read_bytes())
    album.scan(new, workers=0)
    (photo,) = [p for p in album.view().photos if p.id == photo.id]
    assert photo.paths == (str(new / "b.jpg"),) and len(photo.faces) == 1
    assert (
        rows(built.db, "SELECT COUNT(*) FROM album_photo_paths GROUP BY path HAVING COUNT(*) > 1")
        == []
    )


def test_unknown_faces_cluster_and_one_photo_never_shares_a_cluster(album_built: Any) -> None:
    clusters = rows(
        album_built.db,
        "SELECT f.cluster_id, p.path FROM album_faces f JOIN album_photos p ON p.id = f.photo_id "
        "WHERE f.cluster_id IS NOT NULL",
    )
    cluster_of: dict[str, list[int]] = {}
    for cid, path in clusters:
        cluster_of.setdefault(Path(path).name, []).append(cid)
    # Two photos of the same stranger land in one cluster...
    assert cluster_of["lin-manuel-miranda.png"] == cluster_of["lin_copy.jpg"]
    # ...and the same stranger twice in one photo is two clusters, never one.
    twice = cluster_of["alex_twice.jpg"]
    assert len(twice) == 2 and twice[0] != twice[1]
    assert cluster_of["alex-lacamoire.png"][0] in twice
    # In general: no cluster holds two faces of one photo; strangers are not merged.
    per_cluster = Counter(
        rows(
            album_built.db,
            "SELECT cluster_id, photo_id FROM album_faces WHERE cluster_id IS NOT NULL",
        )
    )
    assert all(n == 1 for n in per_cluster.values())
    assert cluster_of["alex-lacamoire.png"] != cluster_of["lin-manuel-miranda.png"]
    # Matched and refused faces are in no cluster.
    assert rows(
        album_built.db,
        "SELECT COUNT(*) FROM album_faces WHERE cluster_id IS NOT NULL "
        "AND (identity_id IS NOT NULL OR quality_reasons IS NOT NULL)",
    ) == [(0,)]


def test_name_enrols_a_cluster(album_copy: tuple[Album, Any], pipeline: Pipeline) -> None:
    album, built = album_copy
    lin_cluster = by_file(album)["lin-manuel-miranda.png"][0].cluster
    assert lin_cluster is not None
    result = album.name(lin_cluster, LIN)
    assert result.added == 2 and result.missing == () and result.confirmed == 2
    faces = by_file(album)
    assert names(faces["lin-manuel-miranda.png"]) == [LIN]
    assert names(faces["lin_copy.jpg"]) == [LIN]
    with FaceRec(built.db, pipeline=pipeline) as fr:
        assert {p.name: p.n_samples for p in fr.people()}[LIN] == 2
        # He is an enrolled person now, for every verb, not only in the album.
        ident = fr.identify(built.photos / "lin-manuel-miranda.png").faces[0].identification
        assert ident is not None and ident.name == LIN
    # The cluster is gone; naming it again says so.
    import pytest

    from facerec.album.errors import AlbumError

    with pytest.raises(AlbumError, match=f"no album cluster {lin_cluster}"):
        album.name(lin_cluster, LIN)


def test_not_is_respected_by_later_matching(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    twice = by_file(album)["obama_twice.jpg"]
    matched = next(f for f in twice if f.person == OBAMA)
    other = next(f for f in twice if f.person is None)
    result = album.not_(matched.id, OBAMA)
    assert result.was_matched
    after = {f.id: f for f in by_file(album)["obama_twice.jpg"]}
    # The face that is "not Obama" is unknown, and the other face of the photo may now be him.
    assert after[matched.id].person is None
    assert after[other.id].person == OBAMA
    # A rescan re-matches everything and still respects it.
    album.scan(built.photos, workers=1)
    again = {f.id: f for f in by_file(album)["obama_twice.jpg"]}
    assert again[matched.id].person is None and again[other.id].person == OBAMA


def test_fold_confident_and_unfold(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    folded = album.refresh(fold=True)
    assert folded.folded >= 5  # the Obama variants are far above threshold + 0.05
    n_folded = rows(built.db, "SELECT COUNT(*) FROM album_faces WHERE folded")[0][0]
    assert n_folded == folded.folded
    assert all(
        name in (OBAMA, BIDEN)
        for (name,) in rows(
            built.db,
            "SELECT i.name FROM album_faces f JOIN identities i ON i.id = f.identity_id "
            "WHERE f.folded",
        )
    )
    # The gallery's enrolled samples are untouched: folding is album-only and reversible.
    assert rows(built.db, "SELECT COUNT(*) FROM samples") == [(2,)]
    album.refresh()  # without --fold-confident existing folds stay
    assert rows(built.db, "SELECT COUNT(*) FROM album_faces WHERE folded")[0][0] == n_folded
    undone = album.unfold(OBAMA)
    assert undone.unfolded >= 1
    left = rows(
        built.db,
        "SELECT COUNT(*) FROM album_faces f JOIN identities i ON i.id = f.identity_id "
        f"WHERE f.folded AND i.name = '{OBAMA}'",
    )
    assert left == [(0,)]


def test_removing_a_person_turns_their_faces_unknown(album_copy: tuple[Album, Any]) -> None:
    album, _ = album_copy
    album._fr.gallery.remove(BIDEN)  # ON DELETE SET NULL, then a refresh re-decides
    album.refresh()
    faces = by_file(album)
    assert names(faces["biden.jpg"]) == [None]
    assert faces["biden.jpg"][0].cluster is not None
    assert sorted(names(faces["two_people.jpg"]), key=str) == [OBAMA, None]
