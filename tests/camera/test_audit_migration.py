"""Revision 0005 (why a claim was refused, the liveness verdict): matches the ORM, keeps old rows."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command

import facerec.camera.tables  # noqa: F401  (audit_events joins Base.metadata)
from facerec.camera.audit import AuditLog
from facerec.camera.events import PRESENTATION_ATTACK, DecisionEvent
from facerec.liveness.verdict import Cue, CueResult, LivenessVerdict, Verdict
from facerec.storage import Database

from ..db_rows import execute, rows, schema
from ..migrations_support import config, orm_diff


def columns(db: str) -> list[str]:
    return [c["name"] for c in schema(db).get_columns("audit_events")]


def test_0005_adds_the_columns_keeps_old_rows_and_downgrades(empty_db_url: str) -> None:
    db = empty_db_url
    command.upgrade(config(db), "0003")
    execute(
        db,
        "INSERT INTO audit_events (time, source, mode, decision, scores, frames) "
        "VALUES ('2026-01-01 00:00:00', 'door.mp4', 'claim', 'accepted', '[0.95]', 3)",
    )
    command.upgrade(config(db), "0005")
    assert {"reason", "liveness"} <= set(columns(db))
    diff = orm_diff(db)
    assert [d for d in diff if "audit_events" in repr(d)] == []
    with Database.open(db, migrate=False) as database:
        (old,) = AuditLog(database).recent()
    assert old.decision == "accepted" and old.reason is None and old.liveness is None

    command.downgrade(config(db), "0003")
    assert not {"reason", "liveness"} & set(columns(db))
    assert rows(db, "SELECT decision FROM audit_events") == [("accepted",)]


def test_the_audit_row_keeps_the_reason_and_every_cue(db_url: str) -> None:
    verdict = LivenessVerdict(
        Verdict.ATTACK,
        "parallax: moves as a flat picture",
        (
            CueResult(Cue.PASSIVE, Verdict.LIVE, 0.91, "p(live) 0.910 >= 0.50"),
            CueResult(Cue.PARALLAX, Verdict.ATTACK, 0.012, "moves as a flat picture"),
        ),
    )
    event = DecisionEvent(
        time=datetime.now(UTC), source="door.mp4", mode="claim", claim="Ada", decision="rejected",
        name="Ada", best_score=0.97, threshold=0.9, scores=(0.95, 0.97, 0.96), votes=3, frames=5,
        stream_time_s=2.0, latency_ms=80.0, frame_latencies=(), reason=PRESENTATION_ATTACK,
        liveness=verdict, liveness_scores=(0.9, float("nan"), 0.92),
    )  # fmt: skip
    with Database.open(db_url) as database:
        audit = AuditLog(database)
        audit.record(event)
        (row,) = audit.recent()
    assert row.reason == PRESENTATION_ATTACK and row.liveness is not None
    assert row.liveness == event.as_json()["liveness"]
    assert row.liveness["verdict"] == "attack" and row.liveness["p_real"] == [0.9, None, 0.92]
    assert [c["cue"] for c in row.liveness["cues"]] == ["passive", "parallax"]
