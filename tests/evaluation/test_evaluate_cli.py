"""`facerec evaluate` and `facerec calibrate` as a user runs them, on a small real folder set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import shared_file


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facerec", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture()
def small_att(shared: Path, tmp_path: Path) -> Path:
    """Eight AT&T people, seven photos each: enough for every metric (5-shot needs 6), quick to embed."""
    src = shared_file(shared, "att_faces")
    dst = tmp_path / "att"
    for person in sorted(src.iterdir())[:8]:
        (dst / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:7]:
            (dst / person.name / photo.name).write_bytes(photo.read_bytes())
    return dst


def test_evaluate_folder_set(small_att: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "eval"
    r = run(
        [
            "evaluate",
            str(small_att),
            "--out",
            str(out),
            "--episodes",
            "20",
            "--db",
            str(tmp_path / "g.db"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cli_env,
    )
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout
    # Half of 8 people are too few to compare the few-shot heads; the rest still stands.
    assert "few-shot heads: skipped (5-way episodes need 5 evaluated people" in r.stdout
    report = json.loads((out / "report.json").read_text())
    assert "found 4" in report["episode_heads"]["skipped"]
    ver = report["verification"]
    assert ver["positives"] == 8 * 21 and ver["negatives"] == 8 * 21
    assert ver["accuracy"] > 0.9 and 0.9 < ver["auc"] <= 1.0
    assert report["identification"]["rank1"] > 0.8
    assert len(report["episodes"]) == 4
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def copy_people(src: Path, dst: Path, people: slice, photos: int) -> Path:
    for person in sorted(src.iterdir())[people]:
        (dst / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:photos]:
            (dst / person.name / photo.name).write_bytes(photo.read_bytes())
    return dst


@pytest.mark.slow  # embeds 120 photos and trains three small heads twice
def test_episodes_compare_every_head(shared: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    """12 AT&T people (enough for 5 known + 5 unknown), heads trained on 6 Yale people."""
    from facerec.evaluation.fewshot_heads import HeadKind

    att = copy_people(shared_file(shared, "att_faces"), tmp_path / "att", slice(0, 12), 7)
    yale = copy_people(shared_file(shared, "yalefaces"), tmp_path / "yale", slice(0, 6), 6)
    out = tmp_path / "eval"
    common = ["--db", str(tmp_path / "g.db"), "--cache-dir", str(tmp_path / "cache")]
    args = ["evaluate", str(att), "--episodes", "20", "--train-steps", "2", "--out", str(out)]
    r = run([*args, "--train-on", str(yale), *common], cli_env)
    assert r.returncode == 0, r.stderr
    assert f"evaluated on all 12 att people; heads trained on 6 people of {yale}" in r.stdout
    table = r.stdout[r.stdout.index("head ") :]
    for head in HeadKind:
        assert f"\n{head.value}  " in table
    assert "open 1-shot DIR@FPIR=1e-02" in table
    report = json.loads((out / "report.json").read_text())
    heads = report["episode_heads"]
    assert {(h["head"], h["k_shot"]) for h in heads["results"]} == {
        (h.value, k) for h in HeadKind for k in (1, 5)
    }
    assert all(h["open_set"]["unknown_queries"] >= 100 for h in heads["results"])
    # every AT&T person is evaluated, so the fixed heads repeat the "episodes" rows
    for old in report["episodes"]:
        name = "fine-tuned cosine" if old["finetune"] else "prototypes"
        new = next(
            h for h in heads["results"] if h["head"] == name and h["k_shot"] == old["k_shot"]
        )
        assert new["closed"]["accuracy"] == pytest.approx(old["mean_accuracy"], abs=1e-6)
    # training on the people being evaluated is refused, by name
    r = run([*args, "--train-on", str(att), *common], cli_env)
    assert r.returncode == 2
    assert "12 of its people are evaluated too" in r.stderr


def test_calibrate_stores_threshold(
    small_att: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "g.db"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    r = run(
        ["calibrate", str(small_att), "--far", "0.05", "--db", str(db), "--json", *cache], cli_env
    )
    assert r.returncode == 0, r.stderr
    th = json.loads(r.stdout)["threshold"]
    info = json.loads(run(["info", "--db", str(db), "--json"], cli_env).stdout)
    assert info["threshold"] == pytest.approx(th)
    r = run(["calibrate", str(small_att), "--far", "1e-6", "--db", str(db), *cache], cli_env)
    assert r.returncode == 2  # too few negatives to measure that FAR


@pytest.mark.slow  # evaluates a set twice through the CLI
def test_calibrate_reuses_what_evaluate_detected(
    shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The user complaint: calibrating right after evaluating the same set detected it all again."""
    src = shared_file(shared, "att_faces")
    data = tmp_path / "att"
    for person in sorted(src.iterdir())[:4]:
        (data / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:3]:
            (data / person.name / photo.name).write_bytes(photo.read_bytes())
    cache, db = tmp_path / "cache", str(tmp_path / "g.db")
    common = ["--db", db, "--cache-dir", str(cache)]
    r = run(["evaluate", str(data), "--out", str(tmp_path / "eval"), *common], cli_env)
    assert r.returncode == 0, r.stderr
    assert "12 photos: 12 detected, 12 embedded" in r.stdout
    r = run(["calibrate", str(data), "--far", "0.1", "--json", *common], cli_env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["detected"], out["embedded"]) == (0, 0)
    info = json.loads(run(["info", "--db", db, "--json"], cli_env).stdout)
    assert info["verification"]["source"] == "calibrated"
    assert info["threshold"] == pytest.approx(out["threshold"])


def test_evaluate_missing_target(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = run(["evaluate", str(tmp_path / "nope"), "--db", str(tmp_path / "g.db")], cli_env)
    assert r.returncode == 2 and "no such pairs file or folder" in r.stderr
