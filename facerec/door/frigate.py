"""The Frigate bridge: names for the people Frigate detects (what Double Take did).

Frigate publishes `frigate/events` (type `new`, `update`, `end`; the tracked
object under `after`). For a `person` (optionally only on some cameras or in
some zones) the bridge fetches the event's snapshot from Frigate's HTTP API
(`GET /api/events/<id>/snapshot.jpg`), recognises it through the door
service (the same 1:N decision at the same threshold), publishes the result
like any door event, and writes the name back to Frigate
(`POST /api/events/<id>/sub_label` with `subLabel` and `subLabelScore`).

Everything from Frigate is hostile until checked: malformed JSON, an id
that is not an id, a snapshot that is not an image or is too large are
logged and skipped. An event that got a name is done (deduplicated by id);
one without gets another try on its next update, a few times at most. HTTP
calls are retried with backoff. A snapshot is one still picture, so
liveness cannot be judged on it: these events carry `liveness: null` and
`"source": "frigate"`, and must not open a door.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from facerec.door.config import FrigateConfig, MqttConfig

log = logging.getLogger(__name__)

#: Frigate event ids and camera names as Frigate makes them (and nothing that could be a path).
_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
#: Messages waiting for the worker at most (Frigate publishes an update a second per object).
QUEUE = 200
#: Event ids remembered for deduplication.
REMEMBERED = 2000
#: Tries per event while it has no name (a later update may bring a better snapshot).
TRIES_PER_EVENT = 3


@dataclass(frozen=True, slots=True)
class Recognised:
    """The bridge's result for one snapshot: a name (None: unknown) and its similarity."""

    name: str | None
    similarity: float


#: (frigate camera, event id, snapshot bytes) -> the result, or None when it had no usable face.
Recognise = Callable[[str, str, bytes], Recognised | None]
T = TypeVar("T")


class FrigateBridge:
    """Subscribes to Frigate's events and answers each person with a name."""

    def __init__(self, config: FrigateConfig, broker: MqttConfig, recognise: Recognise) -> None:
        self.config = config
        self.recognise = recognise
        self.sub_labels = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE)
        self._tries: OrderedDict[str, int] = OrderedDict()
        self._named: OrderedDict[str, None] = OrderedDict()
        self._stop = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{broker.client_id}-frigate",
            protocol=mqtt.MQTTv311,
        )
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        self._client.reconnect_delay_set(1, 8)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._broker = broker
        self._worker = threading.Thread(target=self._work, name="frigate", daemon=True)

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, self._broker.keepalive_s)
        self._client.loop_start()
        self._worker.start()

    def close(self) -> None:
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        with contextlib.suppress(queue.Full):  # the worker sees the stop flag anyway
            self._queue.put_nowait(None)
        self._worker.join(timeout=10.0)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:  # fmt: skip
        if not reason.is_failure:
            client.subscribe(self.config.topic, qos=1)
            log.info("frigate: listening on %s", self.config.topic)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._queue.put_nowait(bytes(msg.payload))
        except queue.Full:
            log.warning("frigate: %d events waiting; one dropped", QUEUE)

    # -- the worker -------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            payload = self._queue.get()
            if payload is None:
                return
            try:
                self.handle(payload)
            except Exception:  # one bad event must not end the bridge
                log.exception("frigate: event failed")

    def handle(self, payload: bytes) -> Recognised | None:
        """One message of `frigate/events`: recognise it if it is a person worth a look."""
        event = parse_event(payload, self.config)
        if event is None:
            return None
        event_id, camera = event
        if event_id in self._named or self._tries.get(event_id, 0) >= TRIES_PER_EVENT:
            return None  # already named, or tried enough
        self._tries[event_id] = self._tries.get(event_id, 0) + 1
        self._tries.move_to_end(event_id)
        while len(self._tries) > REMEMBERED:
            self._tries.popitem(last=False)
        snapshot = self._fetch(f"/api/events/{event_id}/snapshot.jpg")
        if snapshot is None:
            return None
        result = self.recognise(camera, event_id, snapshot)
        if result is None or result.name is None:
            return result
        self._named[event_id] = None
        while len(self._named) > REMEMBERED:
            self._named.popitem(last=False)
        if self.config.sub_label:
            body = {"subLabel": result.name, "subLabelScore": round(result.similarity, 4)}
            if self._post(f"/api/events/{event_id}/sub_label", body):
                self.sub_labels += 1
        return result

    # -- Frigate's HTTP API -----------------------------------------------------------------------
    def _fetch(self, path: str) -> bytes | None:
        """GET with retries; None (logged) when it cannot be had or is too large."""
        limit = self.config.max_snapshot_bytes

        def get() -> bytes | None:
            with urllib.request.urlopen(self.config.url + path, timeout=self.config.timeout_s) as r:
                data = bytes(r.read(limit + 1))
            if len(data) > limit:
                log.warning("frigate: %s is larger than %d bytes; skipped", path, limit)
                return None
            return data

        return self._retrying(path, get)

    def _post(self, path: str, body: dict[str, Any]) -> bool:
        data = json.dumps(body).encode("utf-8")

        def post() -> bool:
            request = urllib.request.Request(self.config.url + path, data=data, method="POST",
                                             headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(request, timeout=self.config.timeout_s):
                return True

        return bool(self._retrying(path, post))

    def _retrying(self, path: str, call: Callable[[], T]) -> T | None:
        """`call()`, retried with backoff on a server error or a network failure.

        A client error (4xx) is not retried: asking again gets the same answer.
        None (logged) when it failed for good or the bridge is stopping.
        """
        for attempt in range(self.config.retries + 1):
            try:
                return call()
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    log.warning("frigate: %s answered HTTP %d; skipped", path, exc.code)
                    return None
                reason: object = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
            if attempt == self.config.retries or self._stop.wait(0.5 * 2**attempt):
                log.warning("frigate: %s failed (%s); skipped", path, reason)
                return None
        return None


def parse_event(payload: bytes, config: FrigateConfig) -> tuple[str, str] | None:
    """(event id, camera) of a `new`/`update` person event that passes the filters, else None."""
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        log.warning("frigate: an event that is not JSON was skipped")
        return None
    if not isinstance(event, dict) or event.get("type") not in ("new", "update"):
        return None
    after = event.get("after")
    if not isinstance(after, dict) or after.get("label") != "person":
        return None
    event_id, camera = after.get("id"), after.get("camera")
    if not isinstance(event_id, str) or not isinstance(camera, str):
        log.warning("frigate: a person event without id or camera was skipped")
        return None
    if not _ID.match(event_id) or not _ID.match(camera):
        log.warning("frigate: a person event with a malformed id or camera was skipped")
        return None
    if config.cameras and camera not in config.cameras:
        return None
    zones = after.get("current_zones")
    zones = [z for z in zones if isinstance(z, str)] if isinstance(zones, list) else []
    if config.zones and not set(zones) & set(config.zones):
        return None
    return event_id, camera
