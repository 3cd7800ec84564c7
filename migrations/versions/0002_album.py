"""Album tables: scanned photos, their faces, unknown-face clusters, "not this person" records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Mirrors `facerec.album.tables`; `tests/album/test_album_migration.py`
checks that the two agree and that downgrade leaves the 0001 schema intact.
Face embeddings are `facerec.storage.types.Embedding`, as the gallery's samples
(0001): the BLOB SQLite always had, a pgvector `vector` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from facerec.storage.types import BigInt, Embedding

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "album_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("size_bytes", BigInt, nullable=False),
        sa.Column("mtime_ns", BigInt, nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("model_sha256", sa.Text(), nullable=True),
        sa.Column("scanned_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_album_photos"),
        sa.UniqueConstraint("content_sha256", name="uq_album_photos_content_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_album_photos_path", "album_photos", ["path"])
    op.create_table(
        "album_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_album_clusters"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "album_faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("face_index", sa.Integer(), nullable=False),
        sa.Column("box", sa.Text(), nullable=False),
        sa.Column("landmarks", sa.Text(), nullable=False),
        sa.Column("det_score", sa.Float(), nullable=False),
        sa.Column("quality", sa.Text(), nullable=False),
        sa.Column("quality_reasons", sa.Text(), nullable=True),
        sa.Column("embedding", Embedding(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("match_kind", sa.Text(), nullable=True),
        sa.Column("folded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["album_photos.id"],
            name="fk_album_faces_photo_id_album_photos",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name="fk_album_faces_identity_id_identities",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["album_clusters.id"],
            name="fk_album_faces_cluster_id_album_clusters",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_album_faces"),
        sa.UniqueConstraint("photo_id", "face_index", name="uq_album_faces_photo_id_face_index"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_album_faces_photo_id", "album_faces", ["photo_id"])
    op.create_index("ix_album_faces_identity_id", "album_faces", ["identity_id"])
    op.create_index("ix_album_faces_cluster_id", "album_faces", ["cluster_id"])
    op.create_table(
        "album_negatives",
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["face_id"],
            ["album_faces.id"],
            name="fk_album_negatives_face_id_album_faces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name="fk_album_negatives_identity_id_identities",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("face_id", "identity_id", name="pk_album_negatives"),
    )
    op.create_index("ix_album_negatives_identity_id", "album_negatives", ["identity_id"])


def downgrade() -> None:
    op.drop_index("ix_album_negatives_identity_id", table_name="album_negatives")
    op.drop_table("album_negatives")
    op.drop_index("ix_album_faces_cluster_id", table_name="album_faces")
    op.drop_index("ix_album_faces_identity_id", table_name="album_faces")
    op.drop_index("ix_album_faces_photo_id", table_name="album_faces")
    op.drop_table("album_faces")
    op.drop_table("album_clusters")
    op.drop_index("ix_album_photos_path", table_name="album_photos")
    op.drop_table("album_photos")
