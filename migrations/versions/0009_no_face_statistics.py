"""PostgreSQL keeps no planner statistics of faces: no copy survives a removal there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

ANALYZE (run by autovacuum on its own) copies sampled column values into
`pg_statistic` as histogram bounds and most-common values, readable through
the `pg_stats` view by anyone who may read the table. For a face vector, a
face crop, a thumbnail or a door image such a copy outlives `facerec
remove`, VACUUM FULL and checkpoints, until some later ANALYZE happens to
replace it. These columns are only ever fetched by key or searched through
their own index, so the planner loses nothing without their statistics:
their statistics target is set to 0 (never sampled again), and the
statistics already gathered are dropped by re-declaring each column's own
type, which PostgreSQL answers by deleting the column's `pg_statistic`
rows; no row is rewritten. SQLite keeps no such copies (its `sqlite_stat1`
holds counts only); nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Every column holding a face, or a vector computed from one.
BIOMETRIC = (
    ("samples", "embedding"),
    ("samples", "crop"),
    ("prototypes", "vector"),
    ("album_faces", "embedding"),
    ("album_faces", "thumbnail"),
    ("audit_events", "image"),
)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, column in BIOMETRIC:
        declared = conn.execute(
            sa.text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = to_regclass(:table) AND attname = :column"
                " AND NOT attisdropped"
            ),
            {"table": table, "column": column},
        ).scalar()
        if declared is None:
            continue
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STATISTICS 0')
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE {declared}')


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, column in BIOMETRIC:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STATISTICS -1')
