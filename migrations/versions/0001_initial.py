"""Initial gallery schema: meta, thresholds, identities, samples, prototypes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Mirrors `facerec.gallery.schema`; `tests/gallery/test_migrations.py` checks
that the two agree. Embeddings are `facerec.storage.types.Embedding`: the BLOB
SQLite always had, a pgvector `vector` on PostgreSQL. Constraint names follow the schema's naming convention so
later batch-mode migrations can address them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from facerec.storage.types import Embedding

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "thresholds",
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("target_far", sa.Float(), nullable=True),
        sa.Column("calibrated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", name="pk_thresholds"),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
        sa.UniqueConstraint("name", name="uq_identities_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("embedding", Embedding(), nullable=False),
        sa.Column("crop", sa.LargeBinary(), nullable=False),
        sa.Column("crop_landmarks", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("box", sa.Text(), nullable=False),
        sa.Column("det_score", sa.Float(), nullable=False),
        sa.Column("quality", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name="fk_samples_identity_id_identities",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_samples"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_samples_identity_id", "samples", ["identity_id"])
    op.create_table(
        "prototypes",
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("vector", Embedding(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name="fk_prototypes_identity_id_identities",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_id", name="pk_prototypes"),
    )
    # The write counter starts at 0; every write transaction bumps it.
    op.bulk_insert(meta, [{"key": "revision", "value": "0"}])


def downgrade() -> None:
    op.drop_table("prototypes")
    op.drop_index("ix_samples_identity_id", table_name="samples")
    op.drop_table("samples")
    op.drop_table("identities")
    op.drop_table("thresholds")
    op.drop_table("meta")
