"""Door events read back over HTTP, their snapshots, how long snapshots are kept, and what
removing a person leaves: `facerec door` on real clips (a real Mosquitto), then `facerec serve`
in a subprocess asked with httpx, as a dashboard would."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facerec.liveness import replay
from facerec.server.auth import KeyStore
from facerec.storage import Database

from ..conftest import shared_file
from ..served import serving
from .conftest import Broker, Door, door_toml
from .test_service import EX, OBAMA, clip_of, gallery


def _rows(db: Path, sql: str) -> list[Any]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


BIDEN = "Joe Biden"


@pytest.mark.slow  # two door runs and a server, each loading the models (~90 s on 2 cores)
def test_events_over_http_snapshots_kept_for_their_time_and_purged_with_the_person(
    shared: Path, tmp_path: Path, cli_env: dict[str, str], broker: Broker
) -> None:
    """Biden enrolled (from an LFW photo). His photo at the back camera and Obama's at the front
    one (liveness off) are a `known` and an `unknown` event, each with a snapshot of the face.
    Over HTTP (with a key, as every read route) they are listed and filtered like `facerec door
    events`, and each snapshot is served. A door run of the back camera only, keeping snapshots
    a moment, purges its old snapshot at start, not the front camera's (not its camera). Obama
    enrolled and removed again: his face goes from the `unknown` event's snapshot."""
    lfw = shared_file(shared, "lfw/images/Joseph_Biden/Joseph_Biden_0001.jpg")
    db = gallery(cli_env, tmp_path / "g.db", BIDEN, lfw)
    front = clip_of([(shared_file(shared, f"{EX}/obama2.jpg"), 2.0)], tmp_path / "front.mp4")
    back = clip_of([(shared_file(shared, f"{EX}/biden.jpg"), 2.0)], tmp_path / "back.mp4")
    config = tmp_path / "door.toml"
    config.write_text("snapshot_days = 7\n" + door_toml(broker.port, [
        {"name": "front", "source": str(front), "liveness": False},
        {"name": "back", "source": str(back), "liveness": False},
    ]))  # fmt: skip
    door = Door(config, db, cli_env)
    assert door.wait(240) == 0, door.stderr()
    printed = {e["camera"]: e for e in door.events()}
    assert {c: (e["type"], e["name"]) for c, e in printed.items()} == {
        "front": ("unknown", None), "back": ("known", BIDEN)
    }, door.events()  # fmt: skip
    assert all(e["snapshot"] == f"audit:{e['audit_id']}" for e in printed.values())

    database = Database.open(db)
    try:
        token = KeyStore(database).create("dashboard").token
    finally:
        database.close()
    import httpx

    auth = {"Authorization": f"Bearer {token}"}
    with (
        serving(["--db", str(db)], cli_env, tmp_path / "server.log") as url,
        httpx.Client(base_url=url, headers=auth, timeout=60) as c,
    ):

        def listed(**params: str) -> list[dict[str, Any]]:
            r = c.get("/v1/door/events", params=params)
            assert r.status_code == 200, r.text
            return list(r.json()["events"])

        def snapshot(event: dict[str, Any]) -> np.ndarray:
            r = c.get(event["snapshot_url"])
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
            image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and min(image.shape[:2]) >= 40  # a face, with a margin
            return image

        assert httpx.get(f"{url}/v1/door/events").status_code == 401
        assert httpx.get(f"{url}/v1/door/events/1/snapshot").status_code == 401
        events = listed()
        assert [e["id"] for e in events] == sorted(
            (e["audit_id"] for e in printed.values()), reverse=True
        )
        (known,) = listed(camera="back")
        assert (known["type"], known["name"], known["id"]) == ("known", BIDEN,
                                                               printed["back"]["audit_id"])  # fmt: skip
        assert known["snapshot"] is True and known["liveness"] is None
        assert listed(person=BIDEN) == [known]
        (stranger,) = listed(type="unknown")
        assert stranger["camera"] == "front" and stranger["name"] is None
        assert listed(since="2999-01-01T00:00:00") == [] and listed(type="attack") == []
        assert len(listed(since="2000-01-01")) == 2 and len(listed(limit="1")) == 1
        assert c.get("/v1/door/events", params={"type": "friend"}).status_code == 422
        assert c.get("/v1/door/events", params={"limit": "0"}).status_code == 422
        snapshot(known)
        snapshot(stranger)
        assert c.get("/v1/door/events/999999/snapshot").status_code == 404

        # The back camera again, keeping snapshots for a moment only: its old one is purged
        # when the service starts; the front camera's is not this door's to purge.
        nobody = replay.write_mp4(
            tmp_path / "nobody.mp4",
            [np.full((replay.SIZE[1], replay.SIZE[0], 3), 40, np.uint8)] * 5,
            10,
        )
        config.write_text("snapshot_days = 0.00001\n" + door_toml(broker.port, [
            {"name": "back", "source": str(nobody)}]))  # fmt: skip
        assert Door(config, db, cli_env).wait(240) == 0
        (known,) = listed(camera="back")
        assert known["snapshot"] is False and known["snapshot_url"] is None
        assert c.get(f"/v1/door/events/{known['id']}/snapshot").status_code == 404
        snapshot(listed(camera="front")[0])

        # Obama enrolled, then removed: his face goes from the stranger's snapshot too.
        photo = shared_file(shared, f"{EX}/obama.jpg")
        r = c.post("/v1/enroll", data={"name": OBAMA},
                   files={"image": ("obama.jpg", photo.read_bytes(), "image/jpeg")})  # fmt: skip
        assert r.status_code == 200, r.text
        r = c.delete(f"/v1/people/{OBAMA}")
        assert r.status_code == 200, r.text
        assert (r.json()["audit_images_removed"], r.json()["audit_images_unchecked"]) == (1, 0)
        (stranger,) = listed(camera="front")
        assert stranger["snapshot"] is False and stranger["type"] == "unknown"
        assert listed(person=BIDEN) == listed(camera="back")
    assert _rows(db, "SELECT source, image IS NULL FROM audit_events ORDER BY source") == [
        ("back", 1), ("front", 1)
    ]  # fmt: skip
