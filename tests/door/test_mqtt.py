"""The door's MQTT side against a real Mosquitto, read back by a real paho client.

The events here are made by hand (no model runs): what is tested is the
publishing: topics, retained state, Home Assistant discovery, the last will,
and order without loss when the broker goes away and comes back.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from facerec.camera.events import ATTACK, IDENTIFIED, UNKNOWN, DecisionEvent
from facerec.door.config import MqttConfig
from facerec.door.events import DoorEvent, to_door_event
from facerec.door.mqtt import UNLOCK_TTL_S, Publisher
from facerec.liveness.verdict import LivenessVerdict, Verdict

from .conftest import Broker, Reader, retained

CAMERAS = ["front", "garden"]


def decision(kind: str, name: str | None, score: float = 0.7) -> DecisionEvent:
    return DecisionEvent(
        time=datetime.now(UTC), source="front", mode="watch", claim=None, decision=kind,
        name=name, best_score=score, threshold=0.5, scores=(score,), votes=3, frames=3,
        stream_time_s=1.0, latency_ms=20.0, frame_latencies=(), far=1e-4,
        box=(10.0, 20.0, 110.0, 140.0),
    )  # fmt: skip


def door_event(kind: str, name: str | None, camera: str = "front") -> DoorEvent:
    event = to_door_event(decision(kind, name), camera)
    assert event is not None
    return event


def publisher(broker: Broker, **kw: object) -> Publisher:
    return Publisher(MqttConfig(port=broker.port, client_id="door-test", **kw), CAMERAS)  # type: ignore[arg-type]


def test_events_state_discovery_and_availability(broker: Broker) -> None:
    reader = Reader(broker.port).start()
    pub = publisher(broker)
    pub.start()
    known = door_event(IDENTIFIED, "Lin-Manuel Miranda")
    pub.publish_event(known)
    pub.publish_event(door_event(UNKNOWN, None))
    pub.publish_event(door_event(ATTACK, "Lin-Manuel Miranda", camera="garden"))
    # Each event's messages go out in order; the HA event feed is its last one.
    assert reader.wait(lambda r: len(r.on("facerec/cameras/garden/event")) == 1, 10), (
        reader.messages
    )
    events = reader.on("facerec/events")
    assert [e["type"] for e in events] == ["known", "unknown", "attack"]
    first = events[0]
    assert first["id"] == known.id and first["camera"] == "front"
    assert first["name"] == "Lin-Manuel Miranda" and first["far"] == 1e-4
    assert first["similarity"] == 0.7 and first["threshold"] == 0.5
    assert first["box"] == [10.0, 20.0, 110.0, 140.0] and first["timestamp"]
    assert [e["id"] for e in reader.on("facerec/matches/lin-manuel_miranda")] == [known.id]
    assert [e["type"] for e in reader.on("facerec/unknown")] == ["unknown"]
    assert [e["event_type"] for e in reader.on("facerec/cameras/garden/event")] == ["attack"]
    # A known face without a liveness verdict (liveness off) never reaches the unlock topic.
    assert not [t for t, _, _ in reader.messages if t.startswith("facerec/unlock/")]
    pub.close(5.0)

    # What Home Assistant finds when it starts later: all retained.
    ha = {t: v for t, v, _ in retained(broker.port, "homeassistant/#")}
    for cam in CAMERAS:
        sensor = ha[f"homeassistant/sensor/facerec_{cam}/last_person/config"]
        assert sensor["state_topic"] == f"facerec/cameras/{cam}"
        assert sensor["availability_topic"] == "facerec/availability"
        binary = ha[f"homeassistant/binary_sensor/facerec_{cam}/known_person/config"]
        assert binary["state_topic"] == f"facerec/cameras/{cam}"
        event = ha[f"homeassistant/event/facerec_{cam}/door/config"]
        assert event["event_types"] == ["known", "unknown", "attack"]
    assert len(ha) == 3 * len(CAMERAS)
    state = {t: v for t, v, _ in retained(broker.port, "facerec/cameras/+")}
    assert state["facerec/cameras/front"]["last_person"] == "unknown"  # the last event there
    assert state["facerec/cameras/front"]["known_present"] is False
    assert state["facerec/cameras/garden"]["last_person"] == "attack"
    # The service said goodbye: availability is retained "offline" after a clean close.
    assert retained(broker.port, "facerec/availability")[0][1] == "offline"
    reader.stop()


def test_broker_down_at_start_and_mid_run_loses_nothing_and_keeps_order(broker: Broker) -> None:
    # A persistent reader session: the broker keeps its messages while the reader is away too.
    reader = Reader(broker.port, ("facerec/events",), persistent=True, client_id="keeper").start()
    broker.stop()
    pub = publisher(broker, backlog=100)
    pub.start()  # the broker is down: nothing fails, the events wait
    sent = [door_event(UNKNOWN, None) for _ in range(5)]
    for e in sent[:3]:
        pub.publish_event(e)
    broker.start()
    assert reader.wait(lambda r: len(r.on("facerec/events")) == 3, 30), reader.messages
    broker.stop()  # mid-run
    for e in sent[3:]:
        pub.publish_event(e)
    broker.start()
    assert pub.close(30.0)
    assert reader.wait(lambda r: len(r.on("facerec/events")) >= 5, 30), reader.messages
    got = [e["id"] for e in reader.on("facerec/events")]
    assert got[: len(sent)] == [e.id for e in sent]  # in order, none lost
    assert len(set(got)) == len(sent)  # QoS 1 may repeat, but nothing else came
    reader.stop()


def live_known(name: str) -> DoorEvent:
    live = LivenessVerdict(Verdict.LIVE, "every cue live", ())
    event = to_door_event(dataclasses.replace(decision(IDENTIFIED, name), liveness=live), "front")
    assert event is not None
    return event


def test_an_unlock_too_late_is_dropped_while_its_event_is_delivered(broker: Broker) -> None:
    """The broker back after UNLOCK_TTL_S: the event arrives, the stale unlock order never does."""
    reader = Reader(broker.port, ("facerec/#",), persistent=True, client_id="late").start()
    broker.stop()
    pub = publisher(broker, backlog=100)
    pub.start()
    stale = live_known("Ada")
    pub.publish_event(stale)
    time.sleep(UNLOCK_TTL_S + 0.5)
    broker.start()
    assert reader.wait(lambda r: [e["id"] for e in r.on("facerec/events")] == [stale.id], 30)
    fresh = live_known("Ada")  # decided while the broker is up: its unlock goes out
    pub.publish_event(fresh)
    assert reader.wait(lambda r: len(r.on("facerec/unlock/front")) == 1, 30), reader.messages
    assert [u["id"] for u in reader.on("facerec/unlock/front")] == [fresh.id]
    assert pub.expired == 1
    pub.close(5.0)
    reader.stop()


def test_the_backlog_is_bounded_and_drops_the_oldest(broker: Broker) -> None:
    broker.stop()
    pub = publisher(broker, backlog=2)
    pub.start()
    sent = [door_event(UNKNOWN, None) for _ in range(4)]
    for e in sent:
        pub.publish_event(e)
    assert pub.dropped == 2
    broker.start()
    reader = Reader(broker.port, ("facerec/events",)).start()
    # The reader subscribed after the broker came back; the publisher reconnects within seconds.
    assert reader.wait(lambda r: len(r.on("facerec/events")) == 2, 30), reader.messages
    assert [e["id"] for e in reader.on("facerec/events")] == [e.id for e in sent[2:]]
    pub.close(5.0)
    reader.stop()


def test_a_killed_service_is_offline_by_its_last_will(broker: Broker, tmp_path: Path) -> None:
    script = tmp_path / "pub.py"
    script.write_text(
        textwrap.dedent(f"""
        import time
        from facerec.door.config import MqttConfig
        from facerec.door.mqtt import Publisher
        pub = Publisher(MqttConfig(port={broker.port}, keepalive_s=5), ["front"])
        pub.start()
        print("started", flush=True)
        time.sleep(60)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        reader = Reader(broker.port, ("facerec/availability",)).start()
        assert reader.wait(lambda r: r.on("facerec/availability")[-1:] == ["online"], 10)
        os.kill(proc.pid, signal.SIGKILL)  # no goodbye: the broker publishes the will
        assert reader.wait(lambda r: r.on("facerec/availability")[-1:] == ["offline"], 30)
        reader.stop()
    finally:
        proc.kill()
        proc.wait()
