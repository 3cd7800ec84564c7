"""The CLI as a user runs it: real subprocesses, a real SQLite file, a real FAISS index."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline
from facerec.models.registry import DEFAULT_MODEL
from facerec.schemas import (
    EnrollmentJSON,
    ErrorEnvelopeJSON,
    ImageJSON,
    PersonJSON,
    VerificationJSON,
)

from .bad_images import write_bad_inputs
from .conftest import shared_file
from .schema_shape import assert_shape

EX = "face_recognition/examples"
STRANGER = "facenet_pytorch/data/test_images/paul_rudd/1.jpg"


def facerec(args: list[str], env: dict[str, str], db: Path) -> subprocess.CompletedProcess[str]:
    return run_cli([*args, "--db", str(db)], env)


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facerec", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def json_error(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """A failed --json command: exit 2, the error as JSON on stdout and as one line on stderr."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert_shape(out, ErrorEnvelopeJSON)
    error: dict[str, Any] = out["error"]
    assert error["exit_code"] == 2
    assert error["message"] in r.stderr.strip().splitlines()[-1]  # and for a person on stderr
    return error


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


@pytest.mark.slow  # a dozen CLI processes, each loading the models
def test_round_trip(shared: Path, cli_env: dict[str, str], db: Path) -> None:
    obama = shared_file(shared, f"{EX}/obama.jpg")
    r = facerec(["enroll", "Barack Obama", str(obama), "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 1
    assert_shape(json.loads(r.stdout), EnrollmentJSON)
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
    assert_shape(out, VerificationJSON)

    r = facerec(
        ["verify", "Barack Obama", str(shared_file(shared, f"{EX}/biden.jpg"))], cli_env, db
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "REJECTED" in r.stdout

    r = facerec(
        ["identify", str(shared_file(shared, f"{EX}/two_people.jpg")), "--json"], cli_env, db
    )
    assert r.returncode == 0, r.stderr
    images = json.loads(r.stdout)
    assert_shape(images, list[ImageJSON])  # the HTTP API's /v1/identify body, one per photo
    by_x = sorted(images[0]["faces"], key=lambda f: f["box"][0])
    assert [f["name"] for f in by_x] == ["Barack Obama", "Joe Biden"]

    r = facerec(["people", "--json"], cli_env, db)
    assert [p["name"] for p in json.loads(r.stdout)] == ["Barack Obama", "Joe Biden"]
    assert_shape(json.loads(r.stdout), list[PersonJSON])
    r = facerec(["people"], cli_env, db)
    header, *rows = r.stdout.splitlines()
    assert header.split("\t") == ["name", "samples", "enrolled (UTC)", "changed (UTC)"]
    assert [row.split("\t")[:2] for row in rows] == [["Barack Obama", "1"], ["Joe Biden", "1"]]
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
    assert info["model"] == DEFAULT_MODEL and info["gallery"]["n_people"] == 1


@pytest.mark.slow  # about fifteen CLI processes, each loading the models
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
            (
                ["enroll", "two", str(shared_file(shared, f"{EX}/two_people.jpg"))],
                "px) (use --largest to take the largest face)",  # after the rivals' sizes
            ),
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


def test_one_enrolled_person_does_not_make_a_stranger_certain(
    shared: Path, pipeline: Pipeline, cli_env: dict[str, str], db: Path, tmp_path: Path
) -> None:
    """The open-set softmax: p(person) is the logistic of the margin over the threshold."""
    stranger = shared_file(shared, STRANGER)
    with FaceRec(db, pipeline=pipeline) as fr:  # the default model, loaded once per session
        fr.enroll("Barack Obama", [shared_file(shared, f"{EX}/obama.jpg")])
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")

    r = facerec(["identify", str(stranger), str(notes), "--json"], cli_env, db)
    assert r.returncode == 2, r.stderr  # the batch goes on past the unreadable file
    images = json.loads(r.stdout)
    assert_shape(images, list[ImageJSON])
    (face,) = images[0]["faces"]
    (nearest,) = face["candidates"]
    assert face["name"] is None and nearest["name"] == "Barack Obama"
    margin = face["similarity"] - face["threshold"]
    assert margin < 0
    assert nearest["probability"] == pytest.approx(1 / (1 + math.exp(-30.0 * margin)))
    assert nearest["probability"] < 0.5 < face["p_unknown"]
    assert nearest["probability"] + face["p_unknown"] == pytest.approx(1.0)
    assert images[1] == {
        "source": str(notes),
        "faces": [],
        "error": {
            "message": f"{notes}: not an image (unrecognised format)",
            "kind": "ImageError",
            "source": str(notes),
        },
        "damage": None,
    }
    assert r.stderr.splitlines() == [f"error: {images[1]['error']['message']}"]

    r = facerec(["identify", str(stranger)], cli_env, db)
    assert r.returncode == 0, r.stderr
    line = re.search(r"unknown \(p (\S+); nearest Barack Obama cos \S+, p (\S+);", r.stdout)
    assert line is not None, r.stdout
    assert float(line[1]) == pytest.approx(face["p_unknown"], abs=0.005)
    assert float(line[2]) == pytest.approx(nearest["probability"], abs=0.005)


def test_errors_under_json_are_json_on_stdout(
    cli_env: dict[str, str], db: Path, tmp_path: Path
) -> None:
    """Both roads to exit code 2, as subprocesses: an anticipated error and a usage error."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    err = json_error(facerec(["enroll", "x", str(notes), "--json"], cli_env, db))
    assert err["kind"] == "ImageError" and err["source"] == str(notes)
    assert err["message"] == f"{notes}: not an image (unrecognised format)"
    r = facerec(["album", "scan", str(tmp_path), "--workers", "-1", "--json"], cli_env, db)
    err = json_error(r)
    assert err["kind"] == "UsageError" and "'--workers'" in err["message"]
    assert "Usage: " in r.stderr  # a person still gets click's usage text


@pytest.mark.parametrize(
    ("args", "kind", "words"),
    [
        (["verify", "Nobody", "{tmp}/a.jpg"], "UnknownPersonError", "no person named 'Nobody'"),
        (["keys", "revoke", "no-such-key"], "ApiKeyError", "no-such-key"),
        (["camera", "--source", "0"], "UsageError", "exactly one of --claim NAME and --watch"),
        (["album", "not", "999", "Nobody"], "AlbumError", "999"),
    ],
)
def test_each_command_family_reports_json_errors(
    args: list[str], kind: str, words: str, tmp_path: Path
) -> None:
    """The other apps' error paths (their own session wrappers), in-process: no model loads."""
    from typer.testing import CliRunner

    from facerec.cli import app

    env = {"FACEREC_DB": str(tmp_path / "g.db"), "FACEREC_OFFLINE": "1"}
    r = CliRunner().invoke(app, [*(a.format(tmp=tmp_path) for a in args), "--json"], env=env)
    assert r.exit_code == 2, r.output
    out = json.loads(r.stdout)
    assert_shape(out, ErrorEnvelopeJSON)
    assert out["error"]["kind"] == kind and words in out["error"]["message"], out
    assert r.stderr.strip() == f"error: {out['error']['message']}"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["album", "scan", "{tmp}", "--workers", "-1"], "--workers"),
        (["album", "scan", "{tmp}", "--batch-size", "0"], "--batch-size"),
        (["album", "scan", "{tmp}", "--threads", "0"], "--threads"),
        (["album", "scan", "{tmp}", "--max-side", "-1"], "--max-side"),
        (["album", "scan", "{tmp}", "--fold-threshold", "-1.5"], "--fold-threshold"),
        (["album", "name", "1", "x", "--cluster-threshold", "1.2"], "--cluster-threshold"),
        (["identify", "x.jpg", "--threshold", "1.5"], "--threshold"),
        (["identify", "x.jpg", "--top-k", "0"], "--top-k"),
        (["enroll", "x", "x.jpg", "--min-face-size", "-5"], "--min-face-size"),
        (["camera", "--source", "0", "--watch", "--max-side", "-1"], "--max-side"),
        (["train", "{tmp}", "--out", "{tmp}", "--epochs", "0"], "--epochs"),
        (["train", "{tmp}", "--out", "{tmp}", "--k", "1"], "--k"),
        (["train", "{tmp}", "--out", "{tmp}", "--workers", "-2"], "--workers"),
        (["evaluate", "{tmp}", "--episodes", "-1"], "--episodes"),
        (["calibrate", "{tmp}", "--far", "2"], "--far"),
    ],
)
def test_numeric_options_out_of_range_are_usage_errors(
    args: list[str], option: str, tmp_path: Path
) -> None:
    """Refused while parsing, before any model loads: exit 2 and the option named.

    In-process through click's parser (a subprocess each would cost seconds of
    imports); `test_errors_under_json_are_json_on_stdout` runs one as a subprocess.
    """
    from typer.testing import CliRunner

    from facerec.cli import app

    env = {"FACEREC_DB": str(tmp_path / "never-used.db"), "FACEREC_OFFLINE": "1"}
    r = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args], env=env)
    assert r.exit_code == 2, r.output
    assert f"Invalid value for '{option}'" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield " ".join(path), command
        return
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


def test_help_says_which_commands_take_json(cli_env: dict[str, str]) -> None:
    from typer.main import get_command

    from facerec.cli import WITHOUT_JSON, _takes_json_flag, app

    commands = dict(_commands(get_command(app)))
    assert {"enroll", "album scan", "keys list", "camera", "train"} <= commands.keys()
    assert {name for name, c in commands.items() if not _takes_json_flag(c)} == set(WITHOUT_JSON)
    r = run_cli(["--help"], cli_env)
    assert r.returncode == 0, r.stderr
    assert "Every command but serve and album report takes --json" in " ".join(r.stdout.split())


def test_model_mismatch_names_weights_and_the_pinned_checkpoint(
    shared: Path, cli_env: dict[str, str], db: Path
) -> None:
    """A gallery filled from a fine-tuned checkpoint, used without --weights."""
    from facerec.gallery import Gallery
    from facerec.models.base import ModelIdentity

    checkpoint_sha = "5e" * 32
    with Gallery.open(db) as gallery:
        gallery.reembed(ModelIdentity("dlib-resnet-v1", checkpoint_sha), {})  # pins it
    r = facerec(["enroll", "x", str(shared_file(shared, f"{EX}/obama.jpg")), "--json"], cli_env, db)
    err = json_error(r)
    assert err["kind"] == "ModelMismatchError"
    assert "pass that file with --weights FILE" in err["message"]
    assert f"sha256 is {checkpoint_sha}" in err["message"]
    assert "facerec reembed" in err["message"]


def test_model_mismatch_remedy_names_what_was_passed(tmp_path: Path) -> None:
    from facerec.cli_common import describe
    from facerec.errors import ModelMismatchError
    from facerec.models.base import ModelIdentity

    pinned = ModelIdentity("dlib-resnet-v1", "a" * 64)
    tuned = tmp_path / "epoch3.pt"
    exc = ModelMismatchError(tmp_path / "g.db", pinned, ModelIdentity(pinned.name, "b" * 64))
    text = describe(exc, weights=tuned)
    assert f"not filled with --weights {tuned}" in text and "a" * 64 in text
    assert f"facerec reembed --weights {tuned}" in text
    other = ModelMismatchError(
        tmp_path / "g.db", pinned, ModelIdentity("facenet-vggface2", "c" * 64)
    )
    assert "Pass --model dlib-resnet-v1" in describe(other)
