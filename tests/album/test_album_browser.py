"""The HTML report in a real browser (headless Chromium): it renders, and shows the right people."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facerec.album import report
from facerec.album.api import Album
from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does this)")


def browse(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_report_renders_in_chromium_with_the_people(
    album_built: Any, pipeline: Pipeline, tmp_path: Path
) -> None:
    chromium()  # skip early, before any work, when there is no browser
    with FaceRec(album_built.db, pipeline=pipeline) as fr, Album(fr) as album:
        view = album.view()
        page = report.write_html(view, album.store, tmp_path / "report", title="Test album")

    shot = tmp_path / "shot.png"
    r = browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 10  # not blank
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours > 2000, f"only {colours} colours: the face thumbnails did not render"

    r = browse(page, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    shown = re.findall(r'<section class="group person" data-person="([^"]+)"', dom)
    assert shown == [p.name for p in view.people]
    assert set(shown) == {"Barack Obama", "Joe Biden"}
    for name in shown:  # every person's name is rendered as a heading with their thumbnails
        assert f'<h3 class="person-name">{name}</h3>' in dom
    obama = dom[dom.index('data-person="Barack Obama"') :]
    obama = obama[: obama.index("</section>")]
    thumbs = re.findall(r'<img src="(faces/\d+\.jpg)"', obama)
    assert len(thumbs) == len(next(p for p in view.people if p.name == "Barack Obama").face_ids)
    assert all((page.parent / t).is_file() for t in thumbs)
    assert 'class="group cluster"' in dom and 'class="err"' in dom
