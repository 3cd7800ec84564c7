"""Revision 0003 (audit events, API keys): matches the ORM, downgrades cleanly, cascades on delete."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from alembic import command

import facerec.gallery.ops_schema as ops
from facerec.camera.audit import AuditLog
from facerec.camera.events import DecisionEvent
from facerec.gallery import Gallery, NewSample
from facerec.gallery.schema import Base
from facerec.images import to_png
from facerec.models.base import ModelIdentity

from ..migrations_support import config, orm_diff, tables

OPS_TABLES = {"audit_events", "api_keys"}
#: Columns later revisions add to these tables (0005: tests/camera/test_audit_migration.py).
LATER_COLUMNS = {("audit_events", "reason"), ("audit_events", "liveness")}


def test_0003_matches_the_orm_and_downgrades(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "0003")
    assert tables(db) >= OPS_TABLES
    diff = orm_diff(db)
    # Only differences outside this revision's tables may remain (other apps' tables whose
    # models this test process did not import); none may concern ours.
    ours = [d for d in diff if OPS_TABLES & set(_tables_in(d)) and not _later_column(d)]
    assert ours == []
    con = sqlite3.connect(db)
    try:
        fks = con.execute("PRAGMA foreign_key_list(audit_events)").fetchall()
        assert [(fk[2], fk[3], fk[4], fk[6]) for fk in fks] == [
            ("identities", "identity_id", "id", "CASCADE")
        ]
        indexes = {r[1] for r in con.execute("PRAGMA index_list(audit_events)")}
        assert {"ix_audit_events_identity_id", "ix_audit_events_time"} <= indexes
    finally:
        con.close()

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
    assert ops.AuditEvent.__table__.c.identity_id.foreign_keys


def test_removing_a_person_removes_their_audit_events(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    model = ModelIdentity("test-model", "0" * 64)
    crop = to_png(np.zeros((32, 32, 3), np.uint8))

    def sample(seed: int) -> NewSample:
        v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
        return NewSample(v, crop, ((1.0, 2.0),) * 5, f"p{seed}.jpg", f"sha{seed}", (0, 0, 9, 9),
                         0.99, {})  # fmt: skip

    with Gallery.open(db) as g:
        g.enroll("Ada", [sample(1)], model)
        g.enroll("Bob", [sample(2)], model)
    with AuditLog(db) as audit:
        for name, image in (("Ada", b"\xff\xd8\xffada"), ("Bob", None)):
            audit.record(_event(name), image)
        audit.record(_event(None), b"\xff\xd8\xffstranger")  # an unknown face: no person
        assert len(audit.recent()) == 3
    with Gallery.open(db) as g:
        g.remove("Ada")
    with AuditLog(db) as audit:
        left = audit.recent()
    assert [(r.name, r.decision) for r in left] == [(None, "unknown"), ("Bob", "identified")]
    con = sqlite3.connect(db)
    try:
        dump = repr([list(con.execute(f"SELECT * FROM {t}")) for t in tables(db)])
    finally:
        con.close()
    assert "Ada" not in dump and b"ada" not in dump.encode()


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
