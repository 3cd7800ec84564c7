"""Without the torch extra: each torch-only feature exits 2 naming the extra; the rest runs.

PyTorch is hidden from the `facerec` subprocesses by tests/notorch/sitecustomize.py
(on PYTHONPATH), so these run in the dev venv; tests/light runs the real thing
in a venv without the extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facerec.extras import TORCH_HINT

from .conftest import shared_file

NOTORCH = Path(__file__).resolve().parent / "notorch"
EX = "face_recognition/examples"


def facerec(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(NOTORCH), FACEREC_DB=str(tmp_path / "g.db"))
    return subprocess.run(
        [sys.executable, "-m", "facerec", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_sitecustomize_hides_torch(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(NOTORCH))
    probe = "import importlib.util as u; print(u.find_spec('torch'))"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "None", out.stderr


@pytest.mark.parametrize(
    ("args", "feature"),
    [
        (["enroll", "x", "--detector", "mtcnn", "{photo}"], "the MTCNN detector"),
        (["enroll", "x", "--model", "facenet-vggface2", "{photo}"], "the model facenet-vggface2"),
        (["enroll", "x", "--model", "dlib-resnet-v1", "--weights", "{tmp}/ft.pt", "{photo}"],
         "dlib-resnet-v1 with a weights file"),
        (["train", "{tmp}", "--out", "{tmp}/run"], "facerec train"),
        (["evaluate", "{examples}", "--episodes", "2", "--out", "{tmp}/ev"], "--episodes"),
        (["camera", "--source", "{photo}", "--claim", "x", "--liveness-weights", "{tmp}"],
         "--liveness-weights"),
    ],
)  # fmt: skip
def test_torch_only_features_exit_2_with_the_install_hint(
    tmp_path: Path, shared: Path, args: list[str], feature: str
) -> None:
    photo = shared_file(shared, f"{EX}/obama.jpg")
    (tmp_path / "ft.pt").write_bytes(b"PK\x03\x04 not really")
    filled = [a.format(photo=photo, tmp=tmp_path, examples=photo.parent) for a in args]
    run = facerec(tmp_path, *filled)
    assert run.returncode == 2, run.stdout + run.stderr
    assert feature in run.stderr and TORCH_HINT in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_the_default_road_needs_no_torch(tmp_path: Path, shared: Path) -> None:
    ex = shared_file(shared, EX)
    enrolled = facerec(tmp_path, "enroll", "obama", str(ex / "obama.jpg"))
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"enrolled obama in {tmp_path / 'g.db'}:" in enrolled.stdout
    verified = facerec(tmp_path, "verify", "obama", str(ex / "obama2.jpg"))
    assert verified.returncode == 0, verified.stderr


def modules_after(tmp_path: Path, *args: str) -> tuple[int, str, list[str]]:
    """Exit code, stderr, and the modules a `facerec ARGS` run imported (torch not hidden)."""
    probe = (
        "import json, sys\n"
        "from facerec.cli import main\n"
        f"sys.argv = ['facerec', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    env = dict(os.environ, FACEREC_DB=str(tmp_path / "g.db"))
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    code, modules = json.loads(run.stdout.splitlines()[-1])
    return int(code or 0), run.stderr, modules


def test_arguments_are_checked_before_a_model_loads(tmp_path: Path, shared: Path) -> None:
    clip = shared_file(shared, "video/short_hamilton_clip.mp4")
    code, err, modules = modules_after(
        tmp_path, "camera", "--source", str(clip), "--claim", "Nobody"
    )
    assert code == 2 and "no person named 'Nobody'" in err, err
    assert "torch" not in modules and "facerec.models.runners" not in modules
    code, err, modules = modules_after(tmp_path, "album", "scan", str(tmp_path / "nope"))
    assert code == 2 and "nope: is not a folder" in err, err
    assert "torch" not in modules and "facerec.models.runners" not in modules
    code, err, modules = modules_after(tmp_path, "people")
    assert code == 0 and "torch" not in modules and "facerec.models.runners" not in modules
