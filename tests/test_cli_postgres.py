"""Every facerec process on one PostgreSQL server, as users run them: real subprocesses against the
session's embedded PostgreSQL + pgvector, the database named by a `postgresql+psycopg://` URL given
as `--db` or as `$FACEREC_DB`.

What is checked in the database is read with psycopg itself (`db_rows`), not through facerec.
The runs that load a model are `slow`; the default run keeps the ones that do not.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from facerec.api import FaceRec
from facerec.cli import app
from facerec.faces.pipeline import Pipeline
from facerec.server.auth import KeyStore
from facerec.storage import Database, parse_url

from .camera.conftest import camera, events
from .camera.test_camera_cli import write_video
from .conftest import shared_file
from .db_rows import rows
from .served import serving
from .test_cli import run_cli

EX = "face_recognition/examples"
OBAMA, BIDEN = "Barack Obama", "Joe Biden"


def with_env(env: dict[str, str], url: str) -> dict[str, str]:
    """`env` with the database named by `$FACEREC_DB` instead of `--db`."""
    return {**env, "FACEREC_DB": url}


@pytest.mark.slow
def test_a_url_names_the_database_as_db_or_in_the_environment(
    postgres_url: str, cli_env: dict[str, str]
) -> None:
    """No model loads: `people` and `info` open the PostgreSQL database either way; `info`
    shows it without its password (the test server's is empty, masked all the same)."""
    shown = parse_url(postgres_url).display
    r = run_cli(["people", "--json", "--db", postgres_url], cli_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    r = run_cli(["info", "--json"], with_env(cli_env, postgres_url))
    assert r.returncode == 0, r.stderr
    gallery = json.loads(r.stdout)["gallery"]
    assert gallery["database"] == shown and "***" in shown  # the password never shown
    assert gallery["path"] is None and gallery["index_path"] is None
    human = CliRunner().invoke(app, ["info", "--db", postgres_url])  # in-process: faster
    assert human.exit_code == 0, human.output
    assert f"gallery:   {shown}" in human.stdout and "index:     in memory" in human.stdout


@pytest.mark.parametrize(
    ("db", "words"),
    [
        ("postgresql://ada:s3cret@127.0.0.1:1/facerec", "postgresql+psycopg://ada:***@127.0.0.1:1"),
        ("mysql://ada:s3cret@db/facerec", "unsupported database 'mysql'"),
        ("postgresql://ada:s3cret@db", "name the database"),
        ("sqlite://", "in-memory SQLite"),
    ],
)
def test_a_database_that_cannot_be_used_is_one_line_without_the_password(
    db: str, words: str, tmp_path: Path
) -> None:
    """In-process (no model loads): exit 2, one line naming the database, never its password."""
    for args, env in (
        (["people", "--db", db], {}),
        (["people"], {"FACEREC_DB": db}),
        (["keys", "list", "--db", db], {}),
    ):
        r = CliRunner().invoke(app, args, env={"FACEREC_OFFLINE": "1", **env})
        assert r.exit_code == 2, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
        assert "s3cret" not in r.output


def test_a_plain_path_still_names_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~` is expanded, also where no shell did it (`--db=~/...`, `$FACEREC_DB`)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    r = CliRunner().invoke(app, ["keys", "create", "door-1", "--db=~/g/gallery.db"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["keys", "list"], env={"FACEREC_DB": "~/g/gallery.db"})
    assert r.exit_code == 0 and "door-1" in r.stdout, r.output
    assert (tmp_path / "g" / "gallery.db").is_file()


@pytest.mark.slow  # seven CLI processes, four of them loading the models
def test_the_core_verbs_on_postgresql(
    shared: Path, postgres_url: str, cli_env: dict[str, str]
) -> None:
    url, env = postgres_url, with_env(cli_env, postgres_url)
    r = run_cli(
        ["enroll", OBAMA, str(shared_file(shared, f"{EX}/obama.jpg")), "--db", url], cli_env
    )
    assert r.returncode == 0, r.stderr
    r = run_cli(["enroll", BIDEN, str(shared_file(shared, f"{EX}/biden.jpg"))], env)
    assert r.returncode == 0, r.stderr

    r = run_cli(["verify", OBAMA, str(shared_file(shared, f"{EX}/obama2.jpg")), "--json"], env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["accepted"] is True and out["similarity"] >= out["threshold"]

    two = str(shared_file(shared, f"{EX}/two_people.jpg"))
    r = run_cli(["identify", two, "--json", "--db", url], cli_env)
    assert r.returncode == 0, r.stderr
    faces = sorted(json.loads(r.stdout)[0]["faces"], key=lambda f: f["box"][0])
    assert [f["name"] for f in faces] == [OBAMA, BIDEN]

    r = run_cli(["people", "--json"], env)
    assert [p["name"] for p in json.loads(r.stdout)] == [OBAMA, BIDEN]
    assert rows(url, "SELECT count(*) FROM samples") == [(2,)]

    r = run_cli(["remove", OBAMA, "--json", "--db", url], cli_env)
    assert r.returncode == 0, r.stderr
    removed = json.loads(r.stdout)
    assert removed["samples_removed"] == 1 and removed["compacted"] is False  # see Database.compact
    assert rows(url, "SELECT name FROM identities") == [(BIDEN,)]
    assert rows(url, "SELECT count(*) FROM prototypes") == [(1,)]
    r = run_cli(["verify", OBAMA, str(shared_file(shared, f"{EX}/obama2.jpg"))], env)
    assert r.returncode == 2 and f"no person named '{OBAMA}'" in r.stderr
    # The plain output, not only --json, tells the operator the bytes are still on disk.
    r = run_cli(["remove", BIDEN, "--db", url], cli_env)
    assert r.returncode == 0, r.stderr
    assert "VACUUM FULL identities, samples, prototypes" in r.stderr, r.stderr


@pytest.fixture()
def enrolled_url(postgres_url: str, pipeline: Pipeline, shared: Path) -> str:
    """Obama enrolled (dlib's model, the session pipeline's) in a fresh PostgreSQL database."""
    with FaceRec(postgres_url, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [shared_file(shared, f"{EX}/obama.jpg")])
    return postgres_url


@pytest.mark.slow  # two CLI processes, one scanning with the models
def test_album_scan_on_postgresql(
    enrolled_url: str, shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama2.jpg", "two_people.jpg", "lin-manuel-miranda.png"):
        (folder / name).write_bytes(shared_file(shared, f"{EX}/{name}").read_bytes())
    r = run_cli(
        ["album", "scan", str(folder), "--workers", "0", "--json"], with_env(cli_env, enrolled_url)
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["processed"] == 3 and summary["errors"] == 0 and summary["faces"] >= 4
    r = run_cli(["album", "report", "--json", "-", "--db", enrolled_url], cli_env)
    assert r.returncode == 0, r.stderr
    view = json.loads(r.stdout)
    (obama,) = [p for p in view["people"] if p["name"] == OBAMA]
    assert obama["n_photos"] == 2  # obama2.jpg and two_people.jpg
    stored = rows(enrolled_url, "SELECT count(*) FROM album_faces WHERE identity_id IS NOT NULL")
    assert stored == [(2,)]


@pytest.mark.slow  # the door camera in a subprocess, with the models
def test_camera_on_postgresql(
    enrolled_url: str, shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    video = write_video(tmp_path / "door.mp4", [(shared_file(shared, f"{EX}/obama2.jpg"), 0.8)])
    run = camera(
        ["--source", str(video), "--claim", OBAMA, "--no-liveness", "--save-images"],
        cli_env,
        enrolled_url,  # type: ignore[arg-type]  # a URL where the helper takes a path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "accepted"
    (row,) = rows(enrolled_url, "SELECT id, mode, claimed_name, decision, image FROM audit_events")
    assert row[:4] == (event["audit_id"], "claim", OBAMA, "accepted")
    assert row[4][:3] == b"\xff\xd8\xff"  # the saved JPEG, as bytea


@pytest.mark.slow  # the service loads the model before it listens
def test_serve_on_postgresql(enrolled_url: str, tmp_path: Path, cli_env: dict[str, str]) -> None:
    with Database.open(enrolled_url) as database:
        token = KeyStore(database).create("tests").token
    log = tmp_path / "server.log"
    with serving(["--log-level", "info"], with_env(cli_env, enrolled_url), log) as url:
        r = httpx.get(f"{url}/v1/people", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert r.status_code == 200, r.text
        assert [p["name"] for p in r.json()["people"]] == [OBAMA]
        assert httpx.get(f"{url}/v1/people", timeout=60).status_code == 401
    assert "Application shutdown complete" in log.read_text()  # stopped cleanly
