"""Door events over HTTP: `GET /v1/door/events` and each event's snapshot.

The same listing as `facerec door events --json` (`facerec.door.history`):
newest first, filtered by camera, person, type and time, each with a link to
its snapshot when one was kept. A snapshot is a face, personal data like the
gallery itself, so both routes need an API key as every read route does; the
snapshot goes out as stored (a JPEG the door service encoded), never decoded
or re-encoded here.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import Response
from pydantic import BaseModel

from facerec.camera.audit import AuditLog
from facerec.door.events import EventType
from facerec.door.history import MAX_LIMIT, DoorRecord, door_events
from facerec.server.schemas import ErrorOut
from facerec.server.service import FaceService

SNAPSHOT_PATH = "/v1/door/events/{event_id}/snapshot"


class DoorEventOut(BaseModel):
    """One door event, as `facerec door events --json` prints it, with its snapshot's URL."""

    id: int
    time: datetime
    camera: str
    type: str
    name: str | None
    similarity: float | None
    liveness: str | None
    reason: str | None
    snapshot: bool
    snapshot_url: str | None


class DoorEventsOut(BaseModel):
    events: list[DoorEventOut]


def _out(record: DoorRecord) -> DoorEventOut:
    url = SNAPSHOT_PATH.format(event_id=record.id) if record.snapshot else None
    return DoorEventOut(**record.as_json(), snapshot_url=url)


def mount(app: FastAPI, service: Callable[..., FaceService], authorised: Sequence[Depends]) -> None:
    """Add the door routes; `service` and `authorised` are the app's own dependencies."""
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorOut, "description": "missing, unknown or revoked API key"}
    }
    # Evaluated here, not postponed (this module has no `from __future__ import annotations`):
    # FastAPI must see the dependency itself, which is local to this call.
    Service = Annotated[FaceService, Depends(service)]

    @app.get("/v1/door/events", response_model=DoorEventsOut, dependencies=list(authorised),
             responses={**errors, 422: {"model": ErrorOut}}, tags=["door"])  # fmt: skip
    async def events(
        svc: Service,
        camera: Annotated[str | None, Query(description="Only this camera.")] = None,
        person: Annotated[str | None, Query(description="Only about this person.")] = None,
        kind: Annotated[
            EventType | None, Query(alias="type", description="Only this type.")
        ] = None,
        since: Annotated[
            datetime | None,
            Query(description="Only from this time on (ISO 8601; UTC unless it says)."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The latest N events.")] = 100,
    ) -> DoorEventsOut:
        """Door events, newest first (what `facerec door events` lists)."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        rows = await run_in_threadpool(
            door_events, svc.database, camera=camera, person=person,
            kind=kind.value if kind else None, since=since, limit=limit,
        )  # fmt: skip
        return DoorEventsOut(events=[_out(r) for r in rows])

    @app.get(SNAPSHOT_PATH, dependencies=list(authorised), tags=["door"],
             responses={**errors, 200: {"content": {"image/jpeg": {}}},
                        404: {"model": ErrorOut, "description": "no such event, or no snapshot"}})  # fmt: skip
    async def snapshot(svc: Service, event_id: int) -> Response:
        """The JPEG kept with a door event (kept for the door's `snapshot_days`)."""
        image = await run_in_threadpool(AuditLog(svc.database).image, event_id)
        if image is None:
            raise HTTPException(404, f"door event {event_id} has no snapshot")
        return Response(content=bytes(image), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})  # fmt: skip
