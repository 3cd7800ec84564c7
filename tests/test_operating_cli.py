"""The CLI states the operating point in force: `info` shows it with its provenance, `verify`
says the FAR and where the threshold came from, in its line and in its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline

from .conftest import shared_file


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facerec", *args], env=env, capture_output=True, text=True
    )


def test_info_shows_the_operating_points(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = str(tmp_path / "g.db")
    r = run(["info", "--db", db, "--json"], cli_env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    one = info["verification"]
    assert one["source"] == "operating point" and one["target_far"] == 1e-4
    assert 0 < one["far"] <= 1e-4 and one["value"] == info["threshold"]
    assert one["evidence"].startswith("LFW (") and "impostor pairs" in one["evidence"]
    assert info["identification"]["fpir"] <= 1e-3
    op = info["operating_points"]
    assert op["dataset"] == "LFW" and op["impostor_pairs"] > 20_000_000
    assert "bench_far.py" in op["command"] and op["date"]
    human = run(["info", "--db", db], cli_env)
    assert (
        "1:1:     threshold" in human.stdout and "operating point FAR<=1e-4 on LFW" in human.stdout
    )
    assert "operating points: LFW, every pair of all" in human.stdout


def test_verify_states_far_and_source(
    shared: Path, pipeline: Pipeline, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    ex = "face_recognition/examples"
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:  # enrolment is not under test
        fr.enroll("obama", [shared_file(shared, f"{ex}/obama.jpg")])
    db = ["--db", str(tmp_path / "g.db")]
    probe = str(shared_file(shared, f"{ex}/obama2.jpg"))
    r = run(["verify", "obama", probe, *db, "--json"], cli_env)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["accepted"] and 0 < v["far"] <= 1e-4
    assert v["threshold_source"].startswith("operating point FAR<=1e-4 on LFW (")
    # An explicit threshold is reported as such, with the FAR the shipped curve gives it.
    r = run(["verify", "obama", probe, *db, "--threshold", "0.99"], cli_env)
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("REJECTED obama: similarity ")
    assert re.search(
        r"\(threshold 0\.9900, FAR [0-9.e-]+: explicit, FAR estimated on LFW \(", r.stdout
    )
