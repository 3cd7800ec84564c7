"""The light install: `pip install .` without extras does the whole default road, offline.

These tests are marked `light` and left out of the default run: CI runs them
(`.ci/run`) with the Python of a separate venv holding only the project's base
dependencies plus pytest and httpx, so every `facerec` below runs without
PyTorch, SciPy or matplotlib installed, and with no network to download from.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import shared_file
from ..served import serving

pytestmark = pytest.mark.light

EX = "face_recognition/examples"
LIN = "Lin-Manuel Miranda"
#: The done-when bar of the light install (issue 20), in bytes.
MAX_SITE_PACKAGES = 500 * 1024 * 1024
HEAVY = ("torch", "torchvision", "facenet-pytorch", "triton", "scipy", "matplotlib")


def run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`facerec ARGS` of this Python, from a folder that holds no source tree: the installed one."""
    return subprocess.run(
        [sys.executable, "-m", "facerec", *args],
        env=env,
        cwd=env["HOME"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """A gallery of its own, and no proxy: nothing may be fetched."""
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FACEREC_") and "proxy" not in k.lower()
    }
    home = tmp_path / "home"
    home.mkdir()
    out.update(
        HOME=str(home),  # and so an empty user data folder
        FACEREC_DB=str(tmp_path / "gallery.db"),
        http_proxy="http://127.0.0.1:9",  # a closed port: any download fails at once
        https_proxy="http://127.0.0.1:9",
    )
    return out


def _site_packages_bytes() -> int:
    roots = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    return sum(
        p.stat().st_size for r in roots for p in r.rglob("*") if p.is_file() and not p.is_symlink()
    )


def test_no_torch_and_small() -> None:
    installed = {(d.metadata["Name"] or "").lower() for d in importlib.metadata.distributions()}
    assert not installed & set(HEAVY), sorted(installed & set(HEAVY))
    assert not [n for n in installed if n.startswith("nvidia")]
    assert importlib.util.find_spec("torch") is None
    package = importlib.util.find_spec("facerec")
    assert package is not None and package.origin is not None
    where = Path(package.origin).parent
    assert where.parent in {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}, where
    for shipped in ("models/weights", "liveness/weights"):
        assert list((where / shipped).glob("*.onnx")), f"{shipped} is not in the installed package"
    size = _site_packages_bytes()
    assert size <= MAX_SITE_PACKAGES, f"site-packages holds {size / 2**20:.0f} MiB"


def test_enroll_verify_identify(env: dict[str, str], shared: Path) -> None:
    ex = shared_file(shared, EX)
    enrolled = run(env, "enroll", "obama", str(ex / "obama.jpg"))
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"enrolled obama in {env['FACEREC_DB']}" in enrolled.stdout
    accepted = run(env, "verify", "obama", str(ex / "obama2.jpg"))
    assert accepted.returncode == 0 and accepted.stdout.startswith("ACCEPTED"), accepted.stderr
    rejected = run(env, "verify", "obama", str(ex / "biden.jpg"))
    assert rejected.returncode == 1 and rejected.stdout.startswith("REJECTED"), rejected.stderr
    found = run(env, "identify", "--json", str(ex / "two_people.jpg"))
    assert found.returncode == 0, found.stderr
    names = [f["name"] for f in json.loads(found.stdout)[0]["faces"]]
    assert sorted(names, key=str) == sorted(["obama", None], key=str)


def test_album_scan_and_report(env: dict[str, str], shared: Path, tmp_path: Path) -> None:
    ex = shared_file(shared, EX)
    album = tmp_path / "album"
    album.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(ex / name, album / name)
    assert run(env, "enroll", "obama", str(ex / "obama-480p.jpg")).returncode == 0
    scanned = run(env, "album", "scan", str(album))
    assert scanned.returncode == 0, scanned.stderr
    assert (
        "4 photo(s) found" in scanned.stdout and f"gallery: {env['FACEREC_DB']}" in scanned.stdout
    )
    report = run(env, "album", "report", "--json", "-", "--html", str(tmp_path / "html"))
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert (tmp_path / "html" / "index.html").is_file()
    assert "obama" in json.dumps(data["people"])


@pytest.fixture()
def lin(env: dict[str, str], shared: Path) -> dict[str, str]:
    enrolled = run(env, "enroll", LIN, str(shared_file(shared, f"{EX}/lin-manuel-miranda.png")))
    assert enrolled.returncode == 0, enrolled.stderr
    return env


def test_the_door_with_liveness_accepts_the_real_recording(
    lin: dict[str, str], shared: Path
) -> None:
    clip = shared_file(shared, "video/short_hamilton_clip.mp4")
    door = run(lin, "camera", "--source", str(clip), "--claim", LIN, "--json")
    assert door.returncode == 0, door.stdout + door.stderr
    last = json.loads(door.stdout.splitlines()[-1])
    assert last["decision"] == "accepted" and last["liveness"]["verdict"] == "live", last


def test_the_door_with_liveness_refuses_a_still_photo(
    lin: dict[str, str], shared: Path, tmp_path: Path
) -> None:
    """Obama's photo held still is an attack at once (the shipped CNN sees the print); Lin's
    portrait, filling the frame, fools the CNN but cannot move: the door stays shut."""
    from facerec.liveness import replay

    ex = shared_file(shared, EX)
    assert run(lin, "enroll", "obama", str(ex / "obama.jpg")).returncode == 0
    for claim, photo in (("obama", "obama2.jpg"), (LIN, "lin-manuel-miranda.png")):
        frames = replay.still(replay.read_bgr(ex / photo), 30)
        clip = replay.write_mp4(tmp_path / f"{photo}.mp4", frames, 10)
        door = run(lin, "camera", "--source", str(clip), "--claim", claim, "--json")
        assert door.returncode == 1, door.stdout + door.stderr
        last = json.loads(door.stdout.splitlines()[-1])
        assert last["decision"] != "accepted" and last["liveness"]["verdict"] != "live", last
        if claim == "obama":
            assert (last["decision"], last["reason"]) == ("rejected", "presentation attack")
            assert last["liveness"]["verdict"] == "attack"


@pytest.fixture()
def served(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    key = run(env, "keys", "create", "light", "--json")
    assert key.returncode == 0, key.stderr
    with serving(["--db", env["FACEREC_DB"]], env, tmp_path / "server.log", cwd=env["HOME"]) as url:
        yield url, json.loads(key.stdout)["token"]


def test_serve(served: tuple[str, str], shared: Path) -> None:
    ex = shared_file(shared, EX)
    url, token = served

    def image(name: str) -> dict[str, tuple[str, bytes, str]]:
        return {"image": (name, (ex / name).read_bytes(), "image/jpeg")}

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
        assert c.get("/v1/health").status_code == 200
        r = c.post("/v1/enroll", data={"name": "obama"}, files=image("obama.jpg"))
        assert r.status_code == 200, r.text
        r = c.post("/v1/verify", data={"name": "obama"}, files=image("obama2.jpg"))
        assert r.status_code == 200 and r.json()["accepted"] is True, r.text
