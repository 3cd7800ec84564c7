"""Album photos: exact file-name bytes, and a damage note.

Revision ID: 0006
Revises: 0003 (0005 once merged: main has 0004 album paths/forgotten faces and 0005 audit
liveness; this branch was cut before them)
Create Date: 2026-11-30

Mirrors `facerec.gallery.album_schema.AlbumPhoto`. A file name that is not
UTF-8 could not be stored in the text column `path` at all (the scan stopped
with "surrogates not allowed"), so `path_bytes` keeps every name exactly and
`path` becomes its printable form. Existing rows were all valid UTF-8, so
their bytes are their text's bytes. `damage` notes a photo that decoded with
errors (its faces were used). Downgrading drops both columns; rows scanned
with undecodable names keep only their escaped `path`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (no table copy): NOT NULL needs the constant default.
    op.add_column(
        "album_photos",
        sa.Column("path_bytes", sa.LargeBinary(), server_default=sa.text("x''"), nullable=False),
    )
    op.add_column("album_photos", sa.Column("damage", sa.Text(), nullable=True))
    op.execute("UPDATE album_photos SET path_bytes = CAST(path AS BLOB)")
    op.create_index("ix_album_photos_path_bytes", "album_photos", ["path_bytes"])


def downgrade() -> None:
    op.drop_index("ix_album_photos_path_bytes", table_name="album_photos")
    with op.batch_alter_table("album_photos", recreate="never") as batch:
        batch.drop_column("damage")
        batch.drop_column("path_bytes")
