"""Door events as the home speaks them: `known`, `unknown` or `attack`, one JSON object each.

The camera's decisions (`facerec.camera.events.DecisionEvent`) are mapped to
three types a home automation can act on. Only `known` may open anything,
and it exists only for a live face (when liveness is on): a face that
resembles someone enrolled but is not live is an `attack`. A claim refused
because it was someone else is `unknown`; a claim that timed out is no event.
Each carries the FAR its threshold was set for, so a rule can say what it
trusts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from facerec.camera.events import (
    ACCEPTED,
    ATTACK,
    IDENTIFIED,
    PRESENTATION_ATTACK,
    REJECTED,
    UNKNOWN,
    DecisionEvent,
)

KNOWN = "known"
TYPES = (KNOWN, UNKNOWN, ATTACK)


class EventType(StrEnum):
    """The three types, for filters that take one (`facerec door events --type`, the HTTP API)."""

    KNOWN = KNOWN
    UNKNOWN = UNKNOWN
    ATTACK = ATTACK


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """One decision of one camera, ready to publish (`payload`) and stored (`audit_id`)."""

    id: str
    type: str
    camera: str
    decision: DecisionEvent
    source: str = "camera"  # or "frigate": a snapshot, liveness not judged
    frigate_id: str | None = None
    #: When the last frame the decision rested on was captured (live cameras only).
    frame_time: datetime | None = None
    snapshot: bool = False  # a JPEG of the face was stored with the audit row

    @property
    def name(self) -> str | None:
        return self.decision.name

    def payload(self) -> dict[str, Any]:
        """The JSON object published on `<prefix>/events`."""
        d = self.decision.as_json()
        liveness = d["liveness"]
        return {
            "id": self.id,
            "type": self.type,
            "camera": self.camera,
            "name": self.decision.name,
            "similarity": d["best_score"],
            "threshold": d["threshold"],
            "far": self.decision.far,
            "liveness": (
                {"verdict": liveness["verdict"], "reason": liveness["reason"]}
                if liveness is not None
                else None
            ),
            "box": d["box"],
            "timestamp": d["time"],
            "mode": self.decision.mode,
            "reason": self.decision.reason,
            "votes": self.decision.votes,
            "snapshot": f"audit:{self.decision.audit_id}" if self.snapshot else None,
            "audit_id": self.decision.audit_id,
            "source": self.source,
            "frigate_event": self.frigate_id,
            "frame_time": self.frame_time.isoformat() if self.frame_time else None,
        }


def door_type(event: DecisionEvent) -> str | None:
    """The home's type of a camera decision; None for one that is not announced (a timeout)."""
    if event.decision == IDENTIFIED:
        return KNOWN
    if event.decision in (UNKNOWN, ATTACK):
        return event.decision
    if event.decision == ACCEPTED:
        return KNOWN
    if event.decision == REJECTED:
        return ATTACK if event.reason == PRESENTATION_ATTACK else UNKNOWN
    return None


def to_door_event(
    event: DecisionEvent,
    camera: str,
    *,
    frigate_id: str | None = None,
    frame_time: datetime | None = None,
    snapshot: bool = False,
) -> DoorEvent | None:
    kind = door_type(event)
    if kind is None:
        return None
    source = "camera" if frigate_id is None else "frigate"
    return DoorEvent(uuid.uuid4().hex, kind, camera, event, source, frigate_id, frame_time,
                     snapshot and event.audit_id is not None)  # fmt: skip


def topic_level(name: str) -> str:
    """A person's name as one MQTT topic level (no `/`, `+`, `#`; spaces as `_`)."""
    level = re.sub(r"[^\w-]+", "_", name.strip().casefold()).strip("_")
    return level or "_"
