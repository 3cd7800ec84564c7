"""API keys: stored hashed, shown once, checked in constant time, revocable; `facerec keys`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facerec.cli import app
from facerec.gallery import Gallery
from facerec.server.auth import ApiKeyError, KeyStore, digest


@pytest.fixture()
def store(tmp_path: Path) -> KeyStore:
    db = tmp_path / "g.db"
    Gallery.open(db).close()
    return KeyStore(db)


def test_tokens_are_stored_only_as_digests(store: KeyStore) -> None:
    new = store.create("door-1")
    assert new.token.startswith(f"frk_{new.info.prefix}_") and len(new.token) > 50
    con = sqlite3.connect(store.path)
    try:
        rows = con.execute("SELECT name, prefix, hash FROM api_keys").fetchall()
    finally:
        con.close()
    assert rows == [("door-1", new.info.prefix, digest(new.token))]
    assert new.token not in repr(rows)
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


def test_keys_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")
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
