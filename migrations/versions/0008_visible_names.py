"""People's names must print as what they are: invisible format characters are renamed visibly.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

From this release `facerec.decisions.names.validate_name` refuses Unicode format
characters (category Cf: zero-width spaces, bidirectional overrides, a byte
order mark), because "Laura\\u200b Bush" printed as "Laura Bush" while being
another person. A name stored before then keeps its person, samples and
album faces, but each refused character is written out as `<U+200B>`: the
name can then be seen, typed and removed. Names not in Unicode NFC are
normalised. Every change is logged as a warning naming the old and new
form; a change that would collide with another enrolled name is not made
and is logged as an error, for the operator to resolve. Door-camera audit
rows that claimed the old name follow it. Downgrading leaves names as they
are (the old form is in the log).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from facerec.decisions.names import visible

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("facerec.migrations")


def renamed(name: str) -> str:
    """What a stored name becomes: trimmed, NFC, refused characters written out."""
    return visible(unicodedata.normalize("NFC", name.strip()))


def upgrade() -> None:
    conn = op.get_bind()
    names = {row.id: row.name for row in conn.execute(sa.text("SELECT id, name FROM identities"))}
    taken = set(names.values())
    for identity_id, old in sorted(names.items()):
        new = renamed(old)
        if new == old:
            continue
        if new in taken:
            log.error(
                "person %r (id %d) was not renamed to %r: that name is taken; "
                "rename or remove one of them", old, identity_id, new,
            )
            continue
        conn.execute(
            sa.text("UPDATE identities SET name = :new WHERE id = :id"),
            {"new": new, "id": identity_id},
        )
        conn.execute(
            sa.text("UPDATE audit_events SET claimed_name = :new WHERE claimed_name = :old"),
            {"new": new, "old": old},
        )
        taken.discard(old)
        taken.add(new)
        log.warning("person %r renamed to %r: names must print as what they are", old, new)


def downgrade() -> None:
    pass
