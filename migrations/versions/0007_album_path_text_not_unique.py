"""Album photo paths: the printable name is no longer unique, the exact bytes are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Since 0006 `path_bytes` is the file's exact name and `path` only its printable
form, with undecodable bytes escaped as `\\xff`. Two different files can print
alike (one named with the byte 0xff, a neighbour literally named with the four
characters `\\xff`), and the unique constraint on `path` then refused the
second one's row. Uniqueness stays on `path_bytes`; `path` keeps a plain index
for lookups and sorting. SQLite cannot drop a constraint in place, so the table
is copied (batch mode); PostgreSQL alters it in place (a copy there would
leave the id sequence behind the copied ids). Downgrading restores the constraint and fails, as it
should, if two rows print alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate() -> Literal["always", "never"]:
    return "always" if op.get_bind().dialect.name == "sqlite" else "never"


def upgrade() -> None:
    with op.batch_alter_table("album_photo_paths", recreate=_recreate()) as batch:
        batch.drop_constraint("uq_album_photo_paths_path", type_="unique")
        batch.create_index("ix_album_photo_paths_path", ["path"])


def downgrade() -> None:
    with op.batch_alter_table("album_photo_paths", recreate=_recreate()) as batch:
        batch.drop_index("ix_album_photo_paths_path")
        batch.create_unique_constraint("uq_album_photo_paths_path", ["path"])
