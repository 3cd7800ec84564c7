"""Revision 0003 (audit events, API keys): matches the ORM, downgrades cleanly, cascades on delete.

On a SQLite file and on PostgreSQL (the `empty_db_url` / `db_url` fixtures).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from alembic import command

import facerec.camera.tables as camera_tables
import facerec.server.tables  # noqa: F401  (api_keys joins Base.metadata)
from facerec.camera.audit import AuditLog
from facerec.camera.events import DecisionEvent
from facerec.faces.images import to_png
from facerec.gallery import Gallery, NewSample
from facerec.models.base import ModelIdentity
from facerec.storage import Base, Database

from ..db_rows import dump, schema
from ..migrations_support import config, orm_diff, tables

OPS_TABLES = {"audit_events", "api_keys"}
#: Columns later revisions add to these tables (0005: tests/camera/test_audit_migration.py).
LATER_COLUMNS = {("audit_events", "reason"), ("audit_events", "liveness")}


def test_0003_matches_the_orm_and_downgrades(empty_db_url: str) -> None:
    db = empty_db_url
    command.upgrade(config(db), "0003")
    assert tables(db) >= OPS_TABLES
    diff = orm_diff(db)
    # Only differences outside this revision's tables may remain (other apps' tables whose
    # models this test process did not import); none may concern ours.
    ours = [d for d in diff if OPS_TABLES & set(_tables_in(d)) and not _later_column(d)]
    assert ours == []
    found = schema(db)
    fks = found.get_foreign_keys("audit_events")
    assert [
        (fk["referred_table"], fk["constrained_columns"], fk["referred_columns"],
         fk["options"].get("ondelete"))
        for fk in fks
    ] == [("identities", ["identity_id"], ["id"], "CASCADE")]  # fmt: skip
    indexes = {ix["name"] for ix in found.get_indexes("audit_events")}
    assert {"ix_audit_events_identity_id", "ix_audit_events_time"} <= indexes

    command.downgrade(config(db), "0002")
    assert tables(db) & OPS_TABLES == set()
    assert "identities" in tables(db)  # the gallery below is untouched
    command.upgrade(config(db), "0003")
    assert tables(db) >= OPS_TABLES


def _later_column(diff: object) -> bool:
    """An ("add_column", schema, table, Column) entry for a column a later revision adds."""
    if not (isinstance(diff, tuple) and diff and diff[0] == "add_column"):
        return False
    return (diff[2], diff[3].name) in LATER_COLUMNS


def _tables_in(diff: object) -> list[str]:
    """Table names mentioned anywhere in one compare_metadata entry."""
    found: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, tuple | list):
            for y in x:
                walk(y)
        name = getattr(x, "name", None)
        table = getattr(x, "table", None)
        if isinstance(name, str):
            found.append(name)
        if table is not None and isinstance(getattr(table, "name", None), str):
            found.append(table.name)

    walk(diff)
    return found


def test_ops_models_are_in_the_metadata() -> None:
    assert set(Base.metadata.tables) >= OPS_TABLES
    assert camera_tables.AuditEvent.__table__.c.identity_id.foreign_keys


def test_removing_a_person_removes_their_audit_events(db_url: str) -> None:
    """The cascade alone (`Gallery.remove`, not `FaceRec.remove`): the database does the work."""
    db = db_url
    model = ModelIdentity("test-model", "0" * 64)
    crop = to_png(np.zeros((32, 32, 3), np.uint8))

    def sample(seed: int) -> NewSample:
        v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
        return NewSample(v, crop, ((1.0, 2.0),) * 5, f"p{seed}.jpg", f"sha{seed}", (0, 0, 9, 9),
                         0.99, {})  # fmt: skip

    with Database.open(db) as database, Gallery.open(database) as g:
        g.enroll("Ada", [sample(1)], model)
        g.enroll("Bob", [sample(2)], model)
        audit = AuditLog(database)
        for name, image in (("Ada", b"\xff\xd8\xffada"), ("Bob", None)):
            audit.record(_event(name), image)
        audit.record(_event(None), b"\xff\xd8\xffstranger")  # an unknown face: no person
        assert len(audit.recent()) == 3
        g.remove("Ada")
        left = audit.recent()
    assert [(r.name, r.decision) for r in left] == [(None, "unknown"), ("Bob", "identified")]
    everything = repr(dump(db))
    assert "Ada" not in everything and "ada" not in everything and "stranger" in everything


def _event(name: str | None) -> DecisionEvent:
    return DecisionEvent(
        time=datetime.now(UTC),
        source="camera:0",
        mode="watch",
        claim=None,
        decision="identified" if name else "unknown",
        name=name,
        best_score=0.95,
        threshold=0.9,
        scores=(0.95, 0.96, 0.97),
        votes=3,
        frames=3,
        stream_time_s=1.0,
        latency_ms=100.0,
        frame_latencies=(),
    )
