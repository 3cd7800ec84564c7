"""Pipeline.faces_batch over several workers: the very faces of one worker, in input order,
and a YuNet + SFace pipeline that never loads torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facerec.faces.images import LoadedImage, load_image

from .conftest import shared_file

PHOTOS = [
    "face_recognition/examples/two_people.jpg",
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/obama-240p.jpg",
    "openface/longoria-cooper.jpg",
    "nonface/pilatus800.jpg",
    "face_recognition/examples/alex-lacamoire.png",
]


@pytest.fixture(scope="module")
def yunet_sface(sface):  # type: ignore[no-untyped-def]
    from facerec.detectors import Detector, DetectorConfig, DetectorKind
    from facerec.faces.embedding import Embedder
    from facerec.faces.pipeline import Pipeline

    return Pipeline(Detector(DetectorConfig(kind=DetectorKind.YUNET)), Embedder(sface))


@pytest.fixture(scope="module")
def photos(shared: Path) -> list[LoadedImage]:
    out = []
    for rel in PHOTOS:
        out.append(load_image(shared_file(shared, rel)))
    return out


@pytest.mark.parametrize("workers", [2, 3, 16])
def test_workers_find_and_embed_exactly_what_one_worker_does(yunet_sface, photos, workers):  # type: ignore[no-untyped-def]
    one = yunet_sface.faces_batch(photos)
    many = yunet_sface.faces_batch(photos, workers=workers)
    assert [len(f) for f in many] == [len(f) for f in one]
    assert sum(map(len, one)) >= 7  # two_people 2, longoria-cooper 2, the portraits 1 each
    for a_faces, b_faces in zip(one, many, strict=True):
        for a, b in zip(a_faces, b_faces, strict=True):
            assert a.detection == b.detection
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)


def test_workers_must_be_positive(yunet_sface, photos) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="workers"):
        yunet_sface.faces_batch(photos, workers=0)


def test_a_yunet_and_sface_scan_never_imports_torch(
    shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """torch alone costs about 450 MiB of RSS; the album's default road must not load it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for rel in PHOTOS[:3]:
        (folder / Path(rel).name).write_bytes((shared / rel).read_bytes())
    probe = (
        "import sys\n"
        "from facerec.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('torch loaded:', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    cmd = [sys.executable, "-c", probe, "album", "scan", str(folder), "--detector", "yunet"]
    cmd += ["--db", str(tmp_path / "g.db"), "--json"]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["faces"] == 4  # two_people 2, obama 1, biden 1
    assert "torch loaded: False" in done.stderr
