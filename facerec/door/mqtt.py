"""Door events to an MQTT broker (paho-mqtt), in order, none lost while the broker is away.

Topics under the configured prefix (default `facerec`):

- `<prefix>/events`: every event's JSON (`facerec.door.events.DoorEvent.payload`);
- `<prefix>/matches/<name>` for `known`, `<prefix>/unknown` for `unknown`;
- `<prefix>/cameras/<camera>`: the camera's current state, retained (live or not,
  the last person, whether a known person is at the door);
- `<prefix>/cameras/<camera>/event`: the Home Assistant event entity's feed;
- `<prefix>/cameras/<camera>/gone`: a known person left the view (unseen for the cooldown);
- `<prefix>/unlock/<camera>`: only for a `known` face judged live by a camera (never
  a Frigate snapshot, never a camera with liveness off): what a lock may act on, with
  the FAR of the decision;
- `<prefix>/availability`: `online`, retained, with `offline` as the last will.

Home Assistant discovery configs are retained under `<discovery_prefix>/`
(`facerec.door.discovery`) and published again on every connection.

Events go out at QoS 1, one at a time, each after the broker acknowledged the
one before: a broker that goes away mid-run costs nothing but delay. The
events it missed wait in a bounded backlog (`MqttConfig.backlog` events; the
oldest is dropped, with a warning, beyond that; every event is in the audit
table either way) and are published in their order once it is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from facerec.door.config import MqttConfig
from facerec.door.discovery import discovery_configs
from facerec.door.events import KNOWN, DoorEvent, topic_level

log = logging.getLogger(__name__)

#: Reconnection to the broker waits 1, 2, 4 ... seconds, at most this long.
MAX_RECONNECT_S = 8

#: An unlock order not handed to the broker within this many seconds of its decision is
#: dropped: events are kept and sent late, but a late unlock would open the door to whoever
#: stands there when the broker comes back.
UNLOCK_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: str
    retain: bool = False
    expires: float | None = None  # time.monotonic() after which it is not sent at all


def unlocks(event: DoorEvent) -> bool:
    """May this event open a door? A known face, seen by a camera, judged live."""
    live = event.decision.liveness
    return (
        event.type == KNOWN
        and event.source == "camera"
        and live is not None
        and live.verdict.value == "live"
    )


def unlock_order(event: DoorEvent) -> dict[str, object]:
    """What a lock is told (the unlock topic, a camera's `command`): who, how sure, at which FAR."""
    payload = event.payload()
    return {k: payload[k] for k in ("id", "camera", "name", "similarity", "threshold", "far",
                                    "timestamp")}  # fmt: skip


class Publisher:
    """One MQTT connection for the whole door service; thread-safe `publish_event`."""

    def __init__(self, config: MqttConfig, cameras: list[str]) -> None:
        self.config = config
        self.prefix = config.prefix
        self.availability = f"{self.prefix}/availability"
        self.published = 0
        self.dropped = 0
        self._cameras = list(cameras)
        self._states: dict[str, dict[str, Any]] = {
            c: {"camera": c, "status": "starting", "error": None, "last_person": None,
                "last_type": None, "known_present": False, "last_event": None}
            for c in cameras
        }  # fmt: skip
        self._pending: deque[list[Message]] = deque()
        self.expired = 0  # unlock orders dropped as too late (UNLOCK_TTL_S)
        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        self._acked: dict[int, float] = {}  # message id -> when the broker acknowledged it
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=True,
        )
        if config.username is not None:
            self._client.username_pw_set(config.username, config.password)
        self._client.will_set(self.availability, "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(1, MAX_RECONNECT_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._sender = threading.Thread(target=self._send_loop, name="mqtt sender", daemon=True)

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background: a broker that is down now is retried, never fatal."""
        log.info("MQTT: connecting to %s:%d (prefix %r)", self.config.host, self.config.port,
                 self.prefix)  # fmt: skip
        self._client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        self._client.loop_start()
        self._sender.start()

    def close(self, drain_timeout_s: float) -> bool:
        """Publish what is pending (waiting up to `drain_timeout_s`), say offline, disconnect.

        True if nothing was left unsent.
        """
        deadline = time.monotonic() + drain_timeout_s
        with self._cond:
            while self._pending and time.monotonic() < deadline:
                self._cond.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            left = sum(len(group) for group in self._pending)
            self._closing = True
            connected = self._connected
            self._cond.notify_all()
        if left:
            log.warning("MQTT: %d message(s) of %d event(s) not delivered at exit (they are in "
                        "the audit table)", left, len(self._pending))  # fmt: skip
        self._sender.join(timeout=5.0)
        if connected:
            info = self._client.publish(self.availability, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # gone meanwhile: the will says it
                info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()
        return left == 0

    # -- what the service publishes ---------------------------------------------------------------
    def publish_event(self, event: DoorEvent) -> None:
        """Queue an event's messages (all or none, in order) and update the camera's state."""
        payload = event.payload()
        body = json.dumps(payload, ensure_ascii=False)
        group = [Message(f"{self.prefix}/events", body)]
        if event.type == KNOWN and event.name is not None:
            group.append(Message(f"{self.prefix}/matches/{topic_level(event.name)}", body))
        elif event.type == "unknown":
            group.append(Message(f"{self.prefix}/unknown", body))
        if unlocks(event):
            group.append(
                Message(
                    f"{self.prefix}/unlock/{event.camera}",
                    json.dumps(unlock_order(event)),
                    expires=time.monotonic() + UNLOCK_TTL_S,
                )
            )
        ha = {"event_type": event.type, **payload}
        group.append(Message(f"{self.prefix}/cameras/{event.camera}/event", json.dumps(ha)))
        self._enqueue(group)
        state = self._states.get(event.camera)
        if state is None:  # a Frigate camera: no state of ours
            return
        state.update(
            last_person=event.name if event.type == KNOWN else event.type,
            last_type=event.type,
            known_present=event.type == KNOWN,
            last_event=payload,
        )
        self._publish_state(event.camera)

    def person_gone(self, camera: str, name: str) -> None:
        """A known person left `camera`'s view: queued after their events, state updated."""
        body = {"camera": camera, "name": name, "timestamp": datetime.now(UTC).isoformat()}
        self._enqueue([Message(f"{self.prefix}/cameras/{camera}/gone", json.dumps(body))])
        state = self._states.get(camera)
        if state is not None and state["known_present"] and state["last_person"] == name:
            state["known_present"] = False
            self._publish_state(camera)

    def _enqueue(self, group: list[Message]) -> None:
        """Queue one event's messages behind the others; beyond the backlog the oldest goes."""
        with self._cond:
            self._pending.append(group)
            if len(self._pending) > self.config.backlog:
                self._pending.popleft()
                self.dropped += 1
                log.warning("MQTT: more than %d events waiting for the broker; the oldest was "
                            "dropped (it is in the audit table)", self.config.backlog)  # fmt: skip
            self._cond.notify_all()

    def camera_status(self, camera: str, status: str, error: str | None = None) -> None:
        """The camera's health (`connecting`, `live`, `error`, `ended`), retained."""
        state = self._states[camera]
        if state["status"] == status and state["error"] == error:
            return
        state.update(status=status, error=error)
        self._publish_state(camera)

    def _publish_state(self, camera: str) -> None:
        state = {**self._states[camera], "updated": datetime.now(UTC).isoformat()}
        with self._cond:
            connected = self._connected
        if connected:  # otherwise on_connect publishes the latest state
            self._client.publish(
                f"{self.prefix}/cameras/{camera}", json.dumps(state), qos=1, retain=True
            )

    # -- paho callbacks (its network thread) ------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:  # fmt: skip
        if reason.is_failure:
            log.warning("MQTT: %s:%d refused the connection: %s", self.config.host,
                        self.config.port, reason)  # fmt: skip
            return
        log.info("MQTT: connected to %s:%d", self.config.host, self.config.port)
        for topic, config in discovery_configs(self.config, self._cameras):
            client.publish(topic, json.dumps(config), qos=1, retain=True)
        client.publish(self.availability, "online", qos=1, retain=True)
        with self._cond:
            self._connected = True
            self._cond.notify_all()
        for camera in self._cameras:
            self._publish_state(camera)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:  # fmt: skip
        with self._cond:
            was, self._connected = self._connected, False
            self._cond.notify_all()
        if was and not self._closing:
            log.warning("MQTT: lost the broker (%s); events wait for it", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:  # fmt: skip
        now = time.monotonic()
        with self._cond:
            self._acked[mid] = now
            if len(self._acked) > 1000:  # discovery and state acks nobody waits for
                self._acked = {m: t for m, t in self._acked.items() if now - t < 60.0}
            self._cond.notify_all()

    # -- the sender thread ------------------------------------------------------------------------
    def _send_loop(self) -> None:
        """One event at a time, each message acknowledged before the next: order survives outages."""
        while True:
            with self._cond:
                while not (self._pending and self._connected) and not self._closing:
                    self._cond.wait(timeout=1.0)
                if self._closing:
                    return
                group = self._pending[0]
            for message in group:
                if message.expires is not None and time.monotonic() > message.expires:
                    self.expired += 1
                    log.warning(
                        "%s not sent: the broker was away for more than %g s since the decision, "
                        "and a late unlock would open the door to whoever stands there now",
                        message.topic,
                        UNLOCK_TTL_S,
                    )
                    continue
                if not self._send(message):
                    return
            with self._cond:
                if self._pending and self._pending[0] is group:
                    self._pending.popleft()
                self.published += 1
                self._cond.notify_all()

    def _send(self, message: Message) -> bool:
        """Hand one message to paho and wait for its PUBACK (paho resends it after a reconnect)."""
        info = self._client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        with self._cond:
            while info.mid not in self._acked:
                if self._closing:
                    return False
                self._cond.wait(timeout=1.0)
            del self._acked[info.mid]
        return True
