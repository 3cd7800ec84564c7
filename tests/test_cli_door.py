"""The door's CLI behaviour: refused enrolments change nothing, --threads everywhere, cheap commands stay cheap."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import shared_file
from .test_cli import EX, dump, facerec

#: Modules a command that never looks at pixels must not load (seconds of start-up).
HEAVY = ("torch", "facenet_pytorch", "cv2", "onnxruntime", "fastapi", "uvicorn")

MODEL_COMMANDS = (
    ["enroll"],
    ["verify"],
    ["identify"],
    ["reembed"],
    ["evaluate"],
    ["calibrate"],
    ["train"],
    ["album", "scan"],
    ["camera"],
    ["serve"],
)


def index_bytes(db: Path) -> bytes:
    return Path(str(db) + ".faiss").read_bytes()


@pytest.mark.slow  # several CLI processes, each loading the models
def test_enrolling_two_people_under_one_name_changes_nothing(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    kit = shared_file(shared, f"{EX}/knn_examples/train/kit_harington/john1.jpeg")
    assert facerec(["enroll", "Kit Harington", str(kit)], cli_env, db).returncode == 0
    before, index_before = dump(db), index_bytes(db)
    obama, biden = shared_file(shared, f"{EX}/obama.jpg"), shared_file(shared, f"{EX}/biden.jpg")

    r = facerec(["enroll", "Barack Obama", str(obama), str(biden)], cli_env, db)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert f"{biden}: does not look like 'Barack Obama': similarity 0." in lines[0]
    assert dump(db) == before and index_bytes(db) == index_before

    r = facerec(
        ["enroll", "Barack Obama", str(obama), str(biden), "--force", "--json"], cli_env, db
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 2


@pytest.mark.slow  # several CLI processes, each loading the models
def test_a_second_name_for_an_enrolled_face_warns_or_fails_strict(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    assert facerec(["enroll", "Barack Obama", str(shared_file(shared, f"{EX}/obama.jpg"))],
                   cli_env, db).returncode == 0  # fmt: skip
    before = dump(db)
    again = str(shared_file(shared, f"{EX}/obama2.jpg"))
    r = facerec(["enroll", "Barry", again, "--strict"], cli_env, db)
    found = re.search(r"match enrolled 'Barack Obama' \(similarity ([0-9.]+) >= threshold ([0-9.]+)\)",
                      r.stderr)  # fmt: skip
    assert r.returncode == 2 and found, r.stderr
    similarity, threshold = float(found[1]), float(found[2])
    assert similarity >= threshold
    assert dump(db) == before
    r = facerec(["enroll", "Barry", again, "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    assert "warning: 'Barry' was not enrolled before" in r.stderr
    look = json.loads(r.stdout)["lookalike"]
    assert look["name"] == "Barack Obama" and abs(look["similarity"] - similarity) < 1e-4


def test_verify_says_how_many_faces_it_ignored(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    lfw = "lfw/images/Al_Pacino/Al_Pacino_000"
    assert facerec(["enroll", "Al Pacino", str(shared_file(shared, f"{lfw}1.jpg"))],
                   cli_env, db).returncode == 0  # fmt: skip
    photo = shared_file(shared, f"{lfw}2.jpg")
    r = facerec(["verify", "Al Pacino", str(photo), "--json", "--threads", "1"], cli_env, db)
    # The default model (SFace) accepts his own face (dlib scored it 0.938, just under its
    # FAR 1e-4 door threshold); the bystander is ignored and said to be.
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["ignored_faces"] == 1 and out["accepted"] is True
    assert out["similarity"] >= out["threshold"]
    assert f"note: {photo}: used the main face, 1 other face(s) ignored" in r.stderr


def test_a_bad_thread_count_is_one_line_and_exit_2(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    obama = str(shared_file(shared, f"{EX}/obama.jpg"))
    db = tmp_path / "gallery.db"
    r = facerec(["enroll", "x", obama, "--threads", "0"], cli_env, db)
    assert r.returncode == 2 and "--threads" in r.stderr
    r = facerec(["enroll", "x", obama], {**cli_env, "FACEREC_THREADS": "many"}, db)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "error: $FACEREC_THREADS must be a positive integer, got 'many'"


def test_every_model_command_takes_threads(cli_env: dict[str, str]) -> None:
    runs = _run_in_process([[*command, "--help"] for command in MODEL_COMMANDS], cli_env)
    for command, run in zip(MODEL_COMMANDS, runs, strict=True):
        assert "--threads" in run["stdout"], command
        if command == ["album", "scan"]:  # photos at once, one model thread each: no pool size
            assert "Photos detected and embedded at once" in str(run["stdout"])
        else:
            assert "FACEREC_THREADS" in run["stdout"], command
        assert run["heavy"] == [], command  # building the CLI loads no model runtime


def test_cheap_commands_do_not_load_models(cli_env: dict[str, str], tmp_path: Path) -> None:
    from facerec.gallery import Gallery

    Gallery.open(tmp_path / "g.db").close()  # at the newest schema: Alembic is not needed either
    db = ["--db", str(tmp_path / "g.db")]
    commands = [["--help"], ["people", *db], ["info", *db], ["remove", "nobody", *db],
                ["keys", "list", *db]]  # fmt: skip
    runs = _run_in_process(commands, cli_env, watch=(*HEAVY, "alembic"))
    assert [r["code"] for r in runs] == [0, 0, 0, 2, 0]
    for command, run in zip(commands, runs, strict=True):
        assert run["heavy"] == [], command


def _run_in_process(
    commands: list[list[str]], env: dict[str, str], watch: tuple[str, ...] = HEAVY
) -> list[dict[str, object]]:
    """Run CLI commands one after another in one fresh interpreter (seconds each on a busy
    machine), reporting after each which heavy modules are loaded so far."""
    code = (
        "import contextlib, io, json, sys\n"
        "from facerec.cli import app\n"
        "runs = []\n"
        f"for args in {commands!r}:\n"
        "    out = io.StringIO()\n"
        "    code = None\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            app(args)\n"
        "        except SystemExit as exc:\n"
        "            code = exc.code\n"
        f"    heavy = [m for m in {watch!r} if m in sys.modules]\n"
        "    runs.append({'stdout': out.getvalue(), 'code': code, 'heavy': heavy})\n"
        "print(json.dumps(runs))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    result: list[dict[str, object]] = json.loads(r.stdout.strip().splitlines()[-1])
    return result
