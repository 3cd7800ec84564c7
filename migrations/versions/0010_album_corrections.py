"""Album corrections: an append-only log of every human correction, split cannot-links, key scopes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

`album_corrections` records each correction (rename, merge, move, not, name,
split, ignore, confirm) with what it changed and what was there before, so
`facerec album undo` and the web app's Undo can take the last one back; an
undo is itself a row (`undoes`), never an update. `album_cannot_links` keeps
the pairs of unknown faces a person split apart, which clustering never joins.
`api_key_scopes` says what a key may do beyond the HTTP API: 'review' signs in
to the review pages (`facerec keys grant NAME review`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "album_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("people", sa.Text(), nullable=False),
        sa.Column("undoes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_album_corrections"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_album_corrections_undoes", "album_corrections", ["undoes"])
    op.create_table(
        "album_cannot_links",
        sa.Column("face_a", sa.Integer(), nullable=False),
        sa.Column("face_b", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["face_a"],
            ["album_faces.id"],
            name="fk_album_cannot_links_face_a_album_faces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["face_b"],
            ["album_faces.id"],
            name="fk_album_cannot_links_face_b_album_faces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("face_a", "face_b", name="pk_album_cannot_links"),
    )
    op.create_index("ix_album_cannot_links_face_b", "album_cannot_links", ["face_b"])
    op.create_table(
        "api_key_scopes",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name="fk_api_key_scopes_key_id_api_keys",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "scope", name="pk_api_key_scopes"),
    )


def downgrade() -> None:
    op.drop_table("api_key_scopes")
    op.drop_index("ix_album_cannot_links_face_b", table_name="album_cannot_links")
    op.drop_table("album_cannot_links")
    op.drop_index("ix_album_corrections_undoes", table_name="album_corrections")
    op.drop_table("album_corrections")
