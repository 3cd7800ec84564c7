"""Every path of an album photo; where forgotten faces were, so rescans do not re-add them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Mirrors `AlbumPhotoPath` and `AlbumForgottenFace` in
`facerec.album.tables`. Each existing photo's one path is copied into
`album_photo_paths`, so an upgraded album lists and skips exactly what it did
before; copies found from now on are added beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from facerec.storage.types import BigInt

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "album_photo_paths",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size_bytes", BigInt, nullable=False),
        sa.Column("mtime_ns", BigInt, nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["album_photos.id"],
            name="fk_album_photo_paths_photo_id_album_photos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_album_photo_paths"),
        sa.UniqueConstraint("path", name="uq_album_photo_paths_path"),
    )
    op.create_index("ix_album_photo_paths_photo_id", "album_photo_paths", ["photo_id"])
    op.execute(
        "INSERT INTO album_photo_paths (photo_id, path, size_bytes, mtime_ns) "
        "SELECT id, path, size_bytes, mtime_ns FROM album_photos ORDER BY id"
    )
    op.create_table(
        "album_forgotten_faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("box", sa.Text(), nullable=False),
        sa.Column("forgotten_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_album_forgotten_faces"),
    )
    op.create_index(
        "ix_album_forgotten_faces_content_sha256", "album_forgotten_faces", ["content_sha256"]
    )


def downgrade() -> None:
    op.drop_index("ix_album_forgotten_faces_content_sha256", table_name="album_forgotten_faces")
    op.drop_table("album_forgotten_faces")
    op.drop_index("ix_album_photo_paths_photo_id", table_name="album_photo_paths")
    op.drop_table("album_photo_paths")
