"""Album scans on Ray: the same rows, matches and clusters as a local scan, resumable, opt-in.

One local Ray instance (two CPUs) serves the module. Each distributed scan
goes into a fresh gallery with the same two people enrolled as the shared
album (`conftest.album_built`, scanned locally), and is compared with it row
by row: photos exactly, faces within float tolerance (two processes may batch
the detector differently), matches and clusters exactly.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facerec.album.api import Album
from facerec.album.store import AlbumStore
from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline

from ..db_rows import rows
from .conftest import BIDEN, EX, OBAMA, Built

PHOTOS = (
    "SELECT path, content_sha256, size_bytes, mtime_ns, width, height, status, error, damage, "
    "model_name, model_sha256 FROM album_photos ORDER BY path"
)
FACES = (
    "SELECT p.path, f.face_index, f.box, f.landmarks, f.det_score, f.quality, f.quality_reasons, "
    "f.embedding, f.thumbnail IS NOT NULL, i.name, f.match_kind, f.cluster_id "
    "FROM album_faces f JOIN album_photos p ON p.id = f.photo_id "
    "LEFT JOIN identities i ON i.id = f.identity_id ORDER BY p.path, f.face_index"
)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray instance on this machine for the module: its address, for drivers in subprocesses."""
    ray = pytest.importorskip("ray", reason="the 'distributed' extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def enrolled(shared: Path, pipeline: Pipeline, db: Path) -> Path:
    """A gallery with the shared album's two people, enrolled as `album_built` enrolled them."""
    with FaceRec(db, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [shared / EX / "obama.jpg"])
        fr.enroll(BIDEN, [shared / EX / "biden.jpg"])
    return db


def assert_same_album(got: Path, want: Path) -> None:
    """Photos identical; faces alike within float tolerance; matches and clusters identical."""
    assert rows(got, PHOTOS) == rows(want, PHOTOS)
    a, b = rows(got, FACES), rows(want, FACES)
    assert len(a) > 15 and [r[:2] for r in a] == [r[:2] for r in b]
    for x, y in zip(a, b, strict=True):
        where = f"{x[0]} face {x[1]}"
        np.testing.assert_allclose(json.loads(x[2]), json.loads(y[2]), atol=0.05, err_msg=where)
        np.testing.assert_allclose(json.loads(x[3]), json.loads(y[3]), atol=0.05, err_msg=where)
        assert x[4] == pytest.approx(y[4], abs=1e-4), where
        assert x[6] == y[6], where  # the quality gate's verdict
        e, f = (np.frombuffer(v, np.float32) for v in (x[7], y[7]))
        assert float(e @ f) > 0.9999, where
        assert x[8] and y[8], where  # thumbnails stored
        assert x[9:11] == y[9:11], where  # the person and the kind of match
    assert clusters(got) == clusters(want)


def clusters(db: Path) -> set[frozenset[tuple[str, int]]]:
    """The unknown faces' grouping, by (photo, face index): ids are the album's own business."""
    groups: dict[int, set[tuple[str, int]]] = {}
    for path, index, cluster in rows(
        db,
        "SELECT p.path, f.face_index, f.cluster_id FROM album_faces f "
        "JOIN album_photos p ON p.id = f.photo_id WHERE f.cluster_id IS NOT NULL",
    ):
        groups.setdefault(cluster, set()).add((path, index))
    return {frozenset(g) for g in groups.values()}


def test_a_scan_on_ray_equals_a_local_scan(
    ray_address: str, album_built: Built, shared: Path, pipeline: Pipeline, tmp_path: Path
) -> None:
    from facerec.album.distributed import RayCluster

    db = enrolled(shared, pipeline, tmp_path / "gallery.db")
    with FaceRec(db, pipeline=pipeline) as fr, Album(fr) as album:
        got = album.scan(album_built.photos, ray=RayCluster())
    want: Any = album_built.summary
    for key in ("found", "unchanged", "duplicates", "processed", "errors", "faces", "skipped"):
        assert getattr(got, key) == getattr(want, key), key
    assert got.refresh == want.refresh
    assert_same_album(db, album_built.db)


@pytest.mark.slow
def test_a_scan_killed_on_ray_and_rerun_equals_a_local_scan(
    ray_address: str,
    album_built: Built,
    shared: Path,
    pipeline: Pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from facerec.album.distributed import RayCluster

    db = enrolled(shared, pipeline, tmp_path / "gallery.db")
    write = AlbumStore.write
    calls = []

    def dies_on_the_second_batch(self: AlbumStore, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the driver killed between two batches
        write(self, *args, **kwargs)

    monkeypatch.setattr(AlbumStore, "write", dies_on_the_second_batch)
    with FaceRec(db, pipeline=pipeline) as fr, Album(fr) as album:
        with pytest.raises(KeyboardInterrupt):
            album.scan(album_built.photos, batch_size=4, ray=RayCluster())
        first = rows(db, "SELECT count(*) FROM album_photos")[0][0]
        assert 0 < first < 17
        monkeypatch.setattr(AlbumStore, "write", write)
        again = album.scan(album_built.photos, batch_size=4, ray=RayCluster())
    assert again.unchanged == first and again.found == 17
    assert again.processed + again.errors + again.unchanged == 17
    assert_same_album(db, album_built.db)


@pytest.mark.slow
def test_cli_scan_on_a_ray_cluster_equals_a_local_scan(
    ray_address: str,
    album_built: Built,
    shared: Path,
    pipeline: Pipeline,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    db = enrolled(shared, pipeline, tmp_path / "gallery.db")
    cli_env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "facerec", "album", "scan", str(album_built.photos)]
    # The local scan ran through the API, whose smallest face is 20 px (the CLI's album
    # default is 24, the quality gate's floor): ask for the same faces.
    cmd += ["--db", str(db), "--ray-address", ray_address, "--json", "--min-face-size", "20"]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    want: Any = album_built.summary
    for key in ("found", "unchanged", "duplicates", "processed", "errors", "faces", "skipped"):
        assert got[key] == getattr(want, key), key
    assert got["refresh"]["matched"] == want.refresh.matched
    assert_same_album(db, album_built.db)
    again = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["processed"] == 0  # nothing to read: Ray is not even asked


NO_RAY = """
import sys
from facerec.cli import main
sys.argv = ["facerec", "album", "scan", sys.argv[1], "--db", sys.argv[2], "--json"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "pyarrow"))
assert not leaked, leaked
print("clean")
"""


def test_a_plain_scan_never_imports_ray(
    shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "face.jpg").write_bytes((shared / EX / "biden.jpg").read_bytes())
    (photos / "broken.jpg").write_text("not an image")
    cmd = [sys.executable, "-c", NO_RAY, str(photos), str(tmp_path / "gallery.db")]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("clean"), done.stderr[-3000:]


def test_ray_without_the_extra_exits_2_naming_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    fake = tmp_path / "no-ray"
    fake.mkdir()
    (fake / "ray.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n"
    )
    cli_env["PYTHONPATH"] = str(fake)
    base = [sys.executable, "-m", "facerec", "album", "scan", str(tmp_path), "--db"]
    base.append(str(tmp_path / "gallery.db"))
    done = subprocess.run([*base, "--ray"], env=cli_env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "pip install 'facerec[distributed]'" in done.stderr
    assert not (tmp_path / "gallery.db").exists()  # refused before any work

    for extra, says in (
        (["--ray-cpus", "2"], "--ray-cpus applies to a scan with --ray"),
        (["--ray", "--workers", "2"], "--workers and --threads do not apply with --ray"),
    ):
        done = subprocess.run([*base, *extra], env=cli_env, capture_output=True, text=True)
        assert done.returncode == 2 and says in done.stderr, (extra, done.stderr)


def test_a_worker_returns_the_local_road_s_rows(
    shared: Path, pipeline: Pipeline, tmp_path: Path
) -> None:
    """In this process, no actor: the rows a worker sends are what the local scan would write."""
    pa = pytest.importorskip("pyarrow", reason="the 'distributed' extra is not installed")
    pytest.importorskip("ray", reason="the 'distributed' extra is not installed")
    from facerec.album.distributed import ScanWorker, WorkerRecipe, from_row
    from facerec.album.errors import AlbumError
    from facerec.album.scan import Fetcher, PhotoFile, photos_of
    from facerec.config import Settings
    from facerec.models.base import ModelIdentity

    src = shared / EX
    (tmp_path / "two.jpg").write_bytes((src / "two_people.jpg").read_bytes())
    (tmp_path / "known.jpg").write_bytes((src / "biden.jpg").read_bytes())
    (tmp_path / "notes.jpg").write_text("this is not an image\n")
    files = [
        PhotoFile(p, p.stat().st_size, p.stat().st_mtime_ns)
        for p in (tmp_path / "two.jpg", tmp_path / "known.jpg", tmp_path / "notes.jpg")
    ]
    known_sha = Fetcher(frozenset())(files[1]).sha256
    assert known_sha is not None
    settings = Settings(
        model=pipeline.embedder.spec.name,
        threads=1,
        detector=pipeline.detector.config,
        quality=pipeline.limits,
    )
    recipe = WorkerRecipe(
        settings, pipeline.embedder.identity, tmp_path, frozenset({known_sha}), 1600, True
    )
    batch = pa.table(
        {
            "index": [0, 1, 2],
            "path": [bytes(f.path) for f in files],
            "size": [f.size for f in files],
            "mtime_ns": [f.mtime_ns for f in files],
        }
    )
    two, known, bad = (
        from_row(r, files[r["index"]]) for r in ScanWorker(recipe)(batch).to_pylist()
    )

    (want,) = photos_of(pipeline, [Fetcher(frozenset(), max_side=1600)(files[0])], thumbnails=True)
    assert two.photo is not None and len(two.photo.faces) == len(want.faces) == 2
    for field in ("path", "content_sha256", "size_bytes", "mtime_ns", "width", "height", "model"):
        assert getattr(two.photo, field) == getattr(want, field), field
    for f, g in zip(two.photo.faces, want.faces, strict=True):
        assert (f.face_index, f.quality_reasons, f.thumbnail is not None) == (
            g.face_index,
            g.quality_reasons,
            True,
        )
        np.testing.assert_allclose(f.box, g.box, atol=1e-3)
        np.testing.assert_allclose(f.landmarks, g.landmarks, atol=1e-3)
        assert f.embedding.dtype == np.float32 and float(f.embedding @ g.embedding) > 0.9999
        assert f.quality == pytest.approx(g.quality)
    assert known.known and known.sha256 == known_sha and known.photo is None  # hashed, not decoded
    assert bad.photo is None and bad.sha256 and "not an image" in (bad.error or "")

    with pytest.raises(AlbumError, match="same path on every node"):
        ScanWorker(
            WorkerRecipe(settings, recipe.identity, tmp_path / "gone", frozenset(), 1600, True)
        )
    other = ModelIdentity(recipe.identity.name, "0" * 64)
    with pytest.raises(AlbumError, match="pinned to"):
        ScanWorker(WorkerRecipe(settings, other, tmp_path, frozenset(), 1600, True))
