"""API keys: stored hashed, shown once, checked in constant time, revocable; `facerec keys`.

Every test runs on a SQLite file and on PostgreSQL (the `db_url` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from facerec.cli import app
from facerec.server.auth import ApiKeyError, KeyStore, digest
from facerec.storage import Database

from ..db_rows import rows


@pytest.fixture()
def store(db_url: str) -> Iterator[KeyStore]:
    with Database.open(db_url) as database:
        yield KeyStore(database)


def test_tokens_are_stored_only_as_digests(store: KeyStore, db_url: str) -> None:
    new = store.create("door-1")
    assert new.token.startswith(f"frk_{new.info.prefix}_") and len(new.token) > 50
    stored = rows(db_url, "SELECT name, prefix, hash FROM api_keys")
    assert stored == [("door-1", new.info.prefix, digest(new.token))]
    assert new.token not in repr(stored)
    assert store.check(new.token) == new.info


@pytest.mark.parametrize(
    "bad",
    [None, "", "frk_", "Bearer x", "frk_aaaaaaaa_" + "b" * 43],
)
def test_unknown_or_malformed_tokens_fail(store: KeyStore, bad: str | None) -> None:
    store.create("door-1")
    assert store.check(bad) is None


def test_a_wrong_secret_with_a_right_prefix_fails(store: KeyStore) -> None:
    new = store.create("door-1")
    forged = new.token[:-4] + ("AAAA" if not new.token.endswith("AAAA") else "BBBB")
    assert store.check(forged) is None


def test_revoke_then_recreate(store: KeyStore) -> None:
    first = store.create("door-1")
    with pytest.raises(ApiKeyError, match="active key"):
        store.create("door-1")
    assert store.revoke("door-1").revoked_at is not None
    assert store.check(first.token) is None
    assert not store.has_active()
    second = store.create("door-1")
    assert store.check(second.token) is not None and store.check(first.token) is None
    with pytest.raises(ApiKeyError, match="no API key"):
        store.revoke("nobody")


def test_keys_are_listed_by_name(store: KeyStore) -> None:
    """In code-point order, whatever the database's collation."""
    for name in ("b", "B", "a", "é", "Z"):
        store.create(name)
    assert [k.name for k in store.all_keys()] == ["B", "Z", "a", "b", "é"]


def test_keys_cli(db_url: str) -> None:
    db = db_url
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "door-1", "--db", db, "--json"])
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)["token"]
    listed = runner.invoke(app, ["keys", "list", "--db", db])
    assert "door-1" in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    again = runner.invoke(app, ["keys", "create", "door-1", "--db", db])
    assert again.exit_code == 2 and "active key" in again.stderr
    revoked = runner.invoke(app, ["keys", "revoke", "door-1", "--db", db])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert "revoked" in runner.invoke(app, ["keys", "list", "--db", db]).stdout
