"""`facerec serve` as a user runs it: the people page at / beside the API, sign-in beyond loopback."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from facerec.server.auth import KeyStore
from facerec.storage import Database

from ..conftest import shared_file
from ..served import serving

pytestmark = pytest.mark.slow
EX = "face_recognition/examples"


def test_serve_renders_the_people_page_and_asks_for_sign_in_beyond_loopback(
    shared: Path, tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    with Database.open(db) as database:
        token = KeyStore(database).create("tests").token
    env = dict(os.environ, FACEREC_OFFLINE="1", FACEREC_DB=str(tmp_path / "unused.db"))
    env.pop("FACEREC_MODEL", None)
    env.pop("FACEREC_WEIGHTS", None)
    with serving(["--db", str(db)], env, tmp_path / "local.log") as url:
        auth = {"Authorization": f"Bearer {token}"}
        for name, file in (("Barack Obama", "obama.jpg"), ("Joe Biden", "biden.jpg")):
            data = shared_file(shared, f"{EX}/{file}").read_bytes()
            r = httpx.post(
                f"{url}/v1/enroll", data={"name": name}, files={"image": (file, data)},
                headers=auth, timeout=120,
            )  # fmt: skip
            assert r.status_code == 200, r.text
        page = httpx.get(f"{url}/", timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<span class="person-name">Barack Obama</span>' in page.text
        assert '<span class="person-name">Joe Biden</span>' in page.text
        assert httpx.get(f"{url}/static/app.css", timeout=30).status_code == 200  # shipped
        assert "http://" not in page.text and "https://" not in page.text  # no CDN, no outside

    # Bound to every address, the same pages need a sign-in (the address comes last: it wins).
    with serving(["--db", str(db), "--host", "0.0.0.0"], env, tmp_path / "open.log") as url:
        r = httpx.get(f"{url}/", timeout=30)
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert "Barack Obama" not in r.text
