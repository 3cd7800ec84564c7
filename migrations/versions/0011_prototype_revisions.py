"""Prototype revisions and tombstones: a search cache catches up on a write without a rebuild.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

A FAISS cache of the prototypes (in a file beside a SQLite gallery, in each
process's memory on PostgreSQL) is stamped with the gallery revision it
reflects. When another process or machine has written since, the cache at
revision r patches itself with two small reads of the same snapshot:
`prototypes WHERE revision > r` (who was added or changed) and
`prototype_tombstones WHERE revision > r` (who is gone). A tombstone is an
identity id and a revision, never a vector: a deleted person leaves no face
in it.

Both are kept by triggers, not by the writers, so every path that changes a
prototype (an enrolment, a merge, a cascade from deleting a person, raw SQL)
is covered: a prototype row written or re-written takes the gallery's
current `meta.revision` (which `Gallery._commit` bumps first, in the same
transaction), and a deleted one leaves a tombstone at that revision.

`meta.tombstones_from` says from which revision on every deletion has its
tombstone: pruning old tombstones raises it, and this migration sets it to
the revision at upgrade (deletions before it left none), so an older cache
rebuilds instead of patching.

On PostgreSQL the pgvector HNSW index, no longer what 1:N search uses by
default, is dropped: it cost every enrolment its upkeep. `--index hnsw`
builds it again when a gallery is opened with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HNSW_INDEX = "ix_prototypes_vector_hnsw"
_PG_REVISION = "COALESCE((SELECT value::bigint FROM meta WHERE key = 'revision'), 0)"
_SQLITE_REVISION = "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'revision'), 0)"
_TOMBSTONE = (
    "INSERT INTO prototype_tombstones (identity_id, revision) VALUES (OLD.identity_id, {rev})"
    " ON CONFLICT (identity_id) DO UPDATE SET revision = excluded.revision"
)

_PG_UP = (
    f"""
    CREATE FUNCTION facerec_prototype_revision() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.revision := {_PG_REVISION};
        RETURN NEW;
    END $$
    """,
    f"""
    CREATE FUNCTION facerec_prototype_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_TOMBSTONE.format(rev=_PG_REVISION)};
        RETURN OLD;
    END $$
    """,
    "CREATE TRIGGER tr_prototypes_revision BEFORE INSERT OR UPDATE ON prototypes"
    " FOR EACH ROW EXECUTE FUNCTION facerec_prototype_revision()",
    "CREATE TRIGGER tr_prototypes_tombstone AFTER DELETE ON prototypes"
    " FOR EACH ROW EXECUTE FUNCTION facerec_prototype_tombstone()",
)
_PG_DOWN = (
    "DROP TRIGGER IF EXISTS tr_prototypes_tombstone ON prototypes",
    "DROP TRIGGER IF EXISTS tr_prototypes_revision ON prototypes",
    "DROP FUNCTION IF EXISTS facerec_prototype_tombstone()",
    "DROP FUNCTION IF EXISTS facerec_prototype_revision()",
)

_SQLITE_STAMP = (
    f"UPDATE prototypes SET revision = {_SQLITE_REVISION} WHERE identity_id = NEW.identity_id;"
)
_SQLITE_UP = (
    f"CREATE TRIGGER tr_prototypes_revision_insert AFTER INSERT ON prototypes BEGIN {_SQLITE_STAMP} END",
    # Not OF revision: the trigger's own UPDATE must not fire it again.
    "CREATE TRIGGER tr_prototypes_revision_update"
    " AFTER UPDATE OF identity_id, vector, n_samples, updated_at ON prototypes"
    f" BEGIN {_SQLITE_STAMP} END",
    "CREATE TRIGGER tr_prototypes_tombstone AFTER DELETE ON prototypes"
    f" BEGIN {_TOMBSTONE.format(rev=_SQLITE_REVISION)}; END",
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS tr_prototypes_tombstone",
    "DROP TRIGGER IF EXISTS tr_prototypes_revision_update",
    "DROP TRIGGER IF EXISTS tr_prototypes_revision_insert",
)


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    with op.batch_alter_table("prototypes") as batch:
        batch.add_column(
            sa.Column("revision", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.create_index("ix_prototypes_revision", ["revision"])
    op.create_table(
        "prototype_tombstones",
        sa.Column("identity_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("identity_id", name="pk_prototype_tombstones"),
    )
    op.create_index("ix_prototype_tombstones_revision", "prototype_tombstones", ["revision"])
    # Rows already there were written at or before today's revision; deletions before
    # it left no tombstone, so a cache stamped earlier must rebuild.
    op.execute(
        "INSERT INTO meta (key, value) SELECT 'tombstones_from', value FROM meta"
        " WHERE key = 'revision' AND value <> '0'"
    )
    op.execute(
        "UPDATE prototypes SET revision = COALESCE((SELECT CAST(value AS INTEGER) FROM meta"
        " WHERE key = 'revision'), 0)"
    )
    for statement in _PG_UP if postgres else _SQLITE_UP:
        op.execute(statement)
    if postgres:
        op.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")


def downgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    for statement in _PG_DOWN if postgres else _SQLITE_DOWN:
        op.execute(statement)
    op.execute("DELETE FROM meta WHERE key = 'tombstones_from'")
    op.drop_index("ix_prototype_tombstones_revision", table_name="prototype_tombstones")
    op.drop_table("prototype_tombstones")
    with op.batch_alter_table("prototypes") as batch:
        batch.drop_index("ix_prototypes_revision")
        batch.drop_column("revision")
    if postgres:
        dim = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'embedding_dim'")).scalar()
        if dim is not None:
            op.execute(
                f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON prototypes USING hnsw "
                f"((CAST(vector AS vector({int(dim)}))) vector_cosine_ops)"
                f" WHERE vector_dims(vector) = {int(dim)}"
            )
