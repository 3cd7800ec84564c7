"""The CLI as a user runs it: real subprocesses, a real SQLite file, a real FAISS index."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .bad_images import write_bad_inputs
from .conftest import shared_file

EX = "face_recognition/examples"


def facerec(args: list[str], env: dict[str, str], db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facerec", *args, "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table: 'unchanged' means this is equal."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: sorted(map(tuple, con.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables
        }
    finally:
        con.close()


def index_count(db: Path) -> int:

    from facerec.gallery import PrototypeIndex

    idx = PrototypeIndex.read(Path(str(db) + ".faiss"))
    assert idx is not None
    return int(idx.count)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


def test_round_trip(shared: Path, cli_env: dict[str, str], db: Path) -> None:
    obama = shared_file(shared, f"{EX}/obama.jpg")
    r = facerec(["enroll", "Barack Obama", str(obama), "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 1
    r = facerec(["enroll", "Joe Biden", str(shared_file(shared, f"{EX}/biden.jpg"))], cli_env, db)
    assert r.returncode == 0, r.stderr

    r = facerec(
        ["verify", "Barack Obama", str(shared_file(shared, f"{EX}/obama2.jpg")), "--json"],
        cli_env,
        db,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["accepted"] is True and out["similarity"] >= out["threshold"]

    r = facerec(
        ["verify", "Barack Obama", str(shared_file(shared, f"{EX}/biden.jpg"))], cli_env, db
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "REJECTED" in r.stdout

    r = facerec(
        ["identify", str(shared_file(shared, f"{EX}/two_people.jpg")), "--json"], cli_env, db
    )
    assert r.returncode == 0, r.stderr
    faces = json.loads(r.stdout)[0]["faces"]
    by_x = sorted(faces, key=lambda f: f["box"][0])
    assert [f["identification"]["name"] for f in by_x] == ["Barack Obama", "Joe Biden"]

    r = facerec(["people", "--json"], cli_env, db)
    assert [p["name"] for p in json.loads(r.stdout)] == ["Barack Obama", "Joe Biden"]
    assert index_count(db) == 2

    r = facerec(["remove", "Barack Obama"], cli_env, db)
    assert r.returncode == 0, r.stderr
    rows = dump(db)
    assert [row for row in rows["identities"] if "Barack Obama" in row] == []
    assert len(rows["samples"]) == 1 and len(rows["prototypes"]) == 1
    assert index_count(db) == 1
    r = facerec(["verify", "Barack Obama", str(obama)], cli_env, db)
    assert r.returncode == 2 and "no person named 'Barack Obama'" in r.stderr

    r = facerec(["info", "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["model"] == "dlib-resnet-v1" and info["gallery"]["n_people"] == 1


def test_bad_inputs_exit_2_and_change_nothing(
    shared: Path, cli_env: dict[str, str], db: Path, tmp_path: Path
) -> None:
    obama = shared_file(shared, f"{EX}/obama.jpg")
    assert facerec(["enroll", "obama", str(obama)], cli_env, db).returncode == 0
    before = dump(db)
    index_before = Path(str(db) + ".faiss").read_bytes()
    bad = write_bad_inputs(tmp_path / "bad", obama)
    cases = (
        [(["enroll", "carol", str(p)], kind) for kind, p in bad.items()]
        + [(["identify", str(p)], kind) for kind, p in bad.items()]
        + [
            (["verify", "obama", str(bad["truncated"])], "truncated"),
            (["enroll", "mountain", str(shared_file(shared, "nonface/pilatus800.jpg"))], "no face"),
            (["enroll", "two", str(shared_file(shared, f"{EX}/two_people.jpg"))], "2 faces"),
            (["enroll", "carol", str(obama), str(bad["text"])], "not an image"),  # all or nothing
            (["enroll", " ", str(obama)], "must not be empty"),
        ]
    )
    for args, words in cases:
        r = facerec(args, cli_env, db)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
        reason = {
            "empty": "empty file",
            "text": "not an image",
            "tiny": "too small",
            "bomb": "bomb",
        }
        assert reason.get(words, words) in lines[0], (args, lines[0])
    assert dump(db) == before
    assert Path(str(db) + ".faiss").read_bytes() == index_before


def test_largest_picks_one_face(shared: Path, cli_env: dict[str, str], db: Path) -> None:
    r = facerec(
        [
            "enroll",
            "someone",
            str(shared_file(shared, f"{EX}/two_people.jpg")),
            "--largest",
            "--json",
        ],
        cli_env,
        db,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["person"]["n_samples"] == 1


def test_usage_errors_exit_2(cli_env: dict[str, str], db: Path) -> None:
    r = facerec(["verify"], cli_env, db)
    assert r.returncode == 2
    r = facerec(["enroll", "x", "a.jpg", "--model", "no-such-model"], cli_env, db)
    assert r.returncode == 2 and "unknown model" in r.stderr


@pytest.mark.parametrize(
    ("command", "default"),
    [
        (["album", "scan"], "[default: cores - 1]"),
        (["train"], "[default: 3, or the resumed run's]"),
        (["verify"], "[default: $FACEREC_DB or the user data dir]"),
    ],
)
def test_help_shows_computed_defaults(
    command: list[str], default: str, cli_env: dict[str, str]
) -> None:
    """Defaults computed at run time are written into the help text; rich markup must not eat them."""
    out = subprocess.run(
        [sys.executable, "-m", "facerec", *command, "--help"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert default in " ".join(out.stdout.split())  # help is wrapped at 80 columns
