"""Key scopes: what an API key may do beyond the HTTP API (`api_key_scopes`, revision 0010).

The only scope is 'review': signing in to the review pages at `/` when the
server is reachable from other machines. A key gets it on purpose
(`facerec keys grant NAME review`), so a door camera's key cannot be used to
rename or delete people through the pages.
"""

from __future__ import annotations

from sqlalchemy import select

from facerec.server.auth import ApiKeyError
from facerec.server.tables import ApiKey, ApiKeyScope
from facerec.storage import Database
from facerec.storage import insert as upsert

REVIEW = "review"
SCOPES = (REVIEW,)


def grant(database: Database, name: str, scope: str) -> None:
    """Give the active key `name` the `scope` (idempotent)."""
    if scope not in SCOPES:
        raise ApiKeyError(f"no scope {scope!r}; scopes: {', '.join(SCOPES)}")
    with database.write() as s:
        key = s.scalar(select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
        if key is None:
            raise ApiKeyError(f"no active API key named {name!r}")
        stmt = upsert(s, ApiKeyScope).values(key_id=key, scope=scope)
        s.execute(stmt.on_conflict_do_nothing())


def has_scope(database: Database, name: str, scope: str) -> bool:
    with database.read() as s:
        return (
            s.scalar(
                select(ApiKeyScope.key_id)
                .join(ApiKey, ApiKey.id == ApiKeyScope.key_id)
                .where(ApiKey.name == name, ApiKeyScope.scope == scope)
            )
            is not None
        )
