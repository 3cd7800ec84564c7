"""The CLI on files that once crashed or hung it: a name that is not UTF-8, a FIFO, a damaged JPEG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import shared_file
from .test_cli import dump
from .test_jpeg_damage import zeroed

EX = "face_recognition/examples"


def facerec(args: list[str], env: dict[str, str], db: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "facerec", *args, "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,  # a FIFO used to block forever
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.mark.slow  # a CLI process per hostile file
def test_hostile_files_through_the_cli(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    obama = shared_file(shared, f"{EX}/obama.jpg")
    latin1 = tmp_path / os.fsdecode(b"caf\xe9.jpg")  # crashed enroll: surrogates not allowed
    latin1.write_bytes(obama.read_bytes())
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    wounded = tmp_path / "wounded.jpg"
    wounded.write_bytes(zeroed(shared_file(shared, f"{EX}/biden.jpg").read_bytes(), at=0.8))

    r = facerec(["enroll", "Barack Obama", str(latin1)], cli_env, db)
    assert r.returncode == 0, r.stderr
    shown = str(tmp_path / "caf\\xe9.jpg")

    r = facerec(["identify", str(latin1), str(fifo), str(zero), str(wounded)], cli_env, db)
    assert r.returncode == 2, r.stdout + r.stderr  # two of the four are not photos
    assert f"{shown}: 1 face(s)" in r.stdout and "Barack Obama" in r.stdout
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {fifo}: is a named pipe (FIFO), not a regular file",
        f"error: {zero}: is a character device, not a regular file",
    ]
    assert f"warning: {wounded}: damaged JPEG data" in r.stderr  # identified, and said so
    assert f"{wounded}: 1 face(s)" in r.stdout

    before = dump(db)
    for bad, reason in ((wounded, "a damaged photo is not enrolled"), (fifo, "named pipe")):
        r = facerec(["enroll", "Joe Biden", str(bad)], cli_env, db)
        assert r.returncode == 2 and reason in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert dump(db) == before
