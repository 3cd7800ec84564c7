"""Album photos: exact file-name bytes, and a damage note.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Mirrors `AlbumPhoto` and `AlbumPhotoPath` in `facerec.album.tables`.
A file name that is not UTF-8 could not be stored in the text column `path` at all (the scan stopped
with "surrogates not allowed"), so `path_bytes` keeps every name exactly and
`path` becomes its printable form; the same pair goes into every path row
of `album_photo_paths` (revision 0004). Existing rows were all valid UTF-8, so
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
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (no table copy): NOT NULL needs the constant default,
    # an empty blob in each dialect's own spelling (`x''` is a bit string to PostgreSQL).
    sqlite = op.get_bind().dialect.name == "sqlite"
    empty = sa.text("x''") if sqlite else sa.text("''::bytea")
    # Text to its UTF-8 bytes: every stored path was valid UTF-8 text.
    as_bytes = "CAST(path AS BLOB)" if sqlite else "convert_to(path, 'UTF8')"
    op.add_column(
        "album_photos",
        sa.Column("path_bytes", sa.LargeBinary(), server_default=empty, nullable=False),
    )
    op.add_column("album_photos", sa.Column("damage", sa.Text(), nullable=True))
    op.execute(f"UPDATE album_photos SET path_bytes = {as_bytes}")
    op.create_index("ix_album_photos_path_bytes", "album_photos", ["path_bytes"])
    op.add_column(
        "album_photo_paths",
        sa.Column("path_bytes", sa.LargeBinary(), server_default=empty, nullable=False),
    )
    op.execute(f"UPDATE album_photo_paths SET path_bytes = {as_bytes}")
    op.create_index(
        "ix_album_photo_paths_path_bytes", "album_photo_paths", ["path_bytes"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_album_photo_paths_path_bytes", table_name="album_photo_paths")
    with op.batch_alter_table("album_photo_paths", recreate="never") as batch:
        batch.drop_column("path_bytes")
    op.drop_index("ix_album_photos_path_bytes", table_name="album_photos")
    with op.batch_alter_table("album_photos", recreate="never") as batch:
        batch.drop_column("damage")
        batch.drop_column("path_bytes")
