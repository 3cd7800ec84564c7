"""Door-camera audit events record why a claim was refused and the liveness verdict.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Mirrors `facerec.camera.tables.AuditEvent.reason` / `.liveness`. Both
columns are nullable, so existing rows (made before liveness existed) stay
valid as they are: NULL reads as "liveness was not checked".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("liveness", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("liveness")
        batch.drop_column("reason")
