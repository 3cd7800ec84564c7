"""One connection setup for every set of tables that lives beside the gallery's in its file.

The album, the door camera's audit log and the HTTP service's API keys keep
their own tables in the gallery database, migrated by `Gallery.open`. They
share its engine settings (`create_sqlite_engine`: WAL, foreign keys, busy
timeout) and its write discipline (BEGIN IMMEDIATE, so two writers queue
instead of failing on a lock upgrade), and a locked or broken file surfaces
as a `GalleryError` naming it, never as a raw SQLAlchemy error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from facerec.errors import GalleryError
from facerec.gallery.schema import BEGIN_OPTION, create_sqlite_engine


class SqliteTables:
    """Read and write sessions on a gallery file that `Gallery.open` has already migrated."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self._engine: Engine = create_sqlite_engine(f"sqlite:///{self.path}")
        self._reads = sessionmaker(bind=self._engine, expire_on_commit=False)
        self._writes = sessionmaker(
            bind=self._engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}),
            expire_on_commit=False,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self._reads() as s, s.begin():
                yield s
        except OperationalError as exc:
            raise GalleryError(f"{self.path}: {exc.orig}") from exc

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self._writes.begin() as s:
                yield s
        except OperationalError as exc:
            raise GalleryError(f"{self.path}: {exc.orig}") from exc
