"""What `--db` may name: a file path, a SQLite URL, a PostgreSQL URL; anything else is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from facerec.errors import GalleryError
from facerec.storage import parse_url


def test_a_path_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for given in ("gallery.db", Path("gallery.db"), str(tmp_path / "gallery.db")):
        where = parse_url(given)
        assert (where.dialect, where.path, where.display) == (
            "sqlite",
            tmp_path / "gallery.db",
            str(tmp_path / "gallery.db"),
        )
    # Odd file names stay file names: only `scheme://` makes a URL.
    for odd in ("postgresql:gallery.db", "with space?.db", "100%.db", "C:gallery.db"):
        assert parse_url(odd).path == tmp_path / odd


def test_sqlite_urls(tmp_path: Path) -> None:
    where = parse_url(f"sqlite:///{tmp_path}/g.db")
    assert (where.dialect, where.path) == ("sqlite", tmp_path / "g.db")
    for memory in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(GalleryError, match="in-memory"):
            parse_url(memory)


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://face:s3cret@db.example:5433/facerec",
        "postgres://face:s3cret@db.example:5433/facerec",
        "postgresql+psycopg://face:s3cret@db.example:5433/facerec",
    ],
)
def test_postgres_urls_use_psycopg_and_never_show_the_password(given: str) -> None:
    where = parse_url(given)
    assert where.dialect == "postgresql" and where.path is None
    assert where.url.drivername == "postgresql+psycopg"
    assert where.url.password == "s3cret"  # kept for connecting...
    assert "s3cret" not in where.display and "s3cret" not in str(where)  # ...never shown
    assert where.display == "postgresql+psycopg://face:***@db.example:5433/facerec"


def test_unix_socket_urls() -> None:
    where = parse_url("postgresql://face@/facerec?host=/run/postgresql")
    assert where.url.query == {"host": "/run/postgresql"} and where.url.database == "facerec"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("mysql://u:pw@h/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://u:pw@h/db", "unsupported database 'postgresql\\+psycopg2'"),
        ("postgresql://u:pw@h", "name the database"),
        ("postgresql://u:pw@h:notaport/db", "not a database URL"),
    ],
)
def test_other_databases_and_drivers_are_refused(given: str, why: str) -> None:
    with pytest.raises(GalleryError, match=why) as err:
        parse_url(given)
    assert ":pw@" not in str(err.value)  # the password is masked even in a refusal
