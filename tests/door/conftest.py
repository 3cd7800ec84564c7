"""Real components for the door tests, on loopback ports: Mosquitto, a GStreamer RTSP server,
an MQTT reader (paho), and `facerec door` itself as a subprocess.

Mosquitto and the RTSP server are Debian packages (`.ci/run` installs them). Without them a
test skips, and under CI=true fails (as a missing shared file does).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (.ci/run installs it)")
    pytest.skip(f"{what} is missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Broker:
    """A real Mosquitto on 127.0.0.1:`port`, stoppable and restartable (sessions persist)."""

    def __init__(self, folder: Path) -> None:
        if not Path(MOSQUITTO).is_file():
            missing("mosquitto (Debian package mosquitto)")
        self.port = free_port()
        self.folder = folder
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nlog_dest stderr\nlog_type all\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "mosquitto.log", "ab"),  # noqa: SIM115
        )
        wait_port(self.port)

    def published(self, topic: str) -> int:
        """How many PUBLISH packets the broker has received on `topic` (from its own log)."""
        log = (self.folder / "mosquitto.log").read_text(errors="replace")
        return sum(
            1 for line in log.splitlines() if "Received PUBLISH" in line and f"'{topic}'" in line
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # mosquitto saves its persistent sessions on SIGTERM
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@dataclass
class Reader:
    """A real paho client subscribed to `topics`; collects (topic, JSON or text, retained)."""

    port: int
    topics: tuple[str, ...] = ("#",)
    client_id: str = "test-reader"
    persistent: bool = False
    messages: list[tuple[str, Any, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not self.persistent,
            protocol=mqtt.MQTTv311,
        )
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._pending: set[int] = set()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        with self._cond:
            for t in self.topics:
                _, mid = client.subscribe(t, qos=1)
                self._pending.add(mid)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, *args: Any) -> None:
        # Only once the broker has acknowledged every subscription does a persistent session
        # hold them: a broker stopped before that would forget them.
        with self._cond:
            self._pending.discard(mid)
            if not self._pending:
                self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        text = msg.payload.decode("utf-8")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        with self._cond:
            self.messages.append((msg.topic, value, bool(msg.retain)))
            self._cond.notify_all()

    def start(self) -> Reader:
        self.client.connect_async("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the reader did not subscribe"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic: str) -> list[Any]:
        with self._cond:
            return [v for t, v, _ in self.messages if t == topic]

    def wait(self, pred: Callable[[Reader], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.5))
        return True


def retained(port: int, topic: str, timeout_s: float = 3.0) -> list[tuple[str, Any, bool]]:
    """What a new subscriber to `topic` gets at once: the retained messages."""
    reader = Reader(port, (topic,), client_id=f"retained-{time.monotonic_ns()}").start()
    time.sleep(min(timeout_s, 1.0))
    reader.stop()
    return [m for m in reader.messages if m[2]]


class RtspServer:
    """GStreamer's RTSP server (system Python with gi) streaming `clip` at rtsp://.../door."""

    def __init__(self, clip: Path, user: str | None = None, password: str | None = None) -> None:
        probe = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer"],
            capture_output=True,
        )  # fmt: skip
        if probe.returncode != 0:
            missing("GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0, python3-gi)")
        self.clip, self.user, self.password = clip, user, password
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/door"

    def start(self) -> None:
        args = [SYSTEM_PYTHON, str(RTSP_SERVER), str(self.clip), str(self.port)]
        if self.user:
            args += ["--user", self.user, "--password", str(self.password)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def published(self, topic: str) -> int:
        """How many PUBLISH packets the broker has received on `topic` (from its own log)."""
        log = (self.folder / "mosquitto.log").read_text(errors="replace")
        return sum(
            1 for line in log.splitlines() if "Received PUBLISH" in line and f"'{topic}'" in line
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Door:
    """`facerec door --config CONFIG --db DB` running in the background."""

    def __init__(self, config: Path, db: Path, env: dict[str, str]) -> None:
        self.log = config.with_suffix(".log")
        self.out = config.with_suffix(".out")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "facerec", "-v", "door", "--config", str(config),
             "--db", str(db)],
            env=env,
            stdout=open(self.out, "w"),  # noqa: SIM115
            stderr=open(self.log, "w"),  # noqa: SIM115
            text=True,
        )  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def stderr(self) -> str:
        return self.log.read_text()

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=60)


def door_toml(mqtt_port: int, cameras: list[dict[str, Any]], *, weights: Path | None = None,
              drain_timeout_s: float = 60) -> str:  # fmt: skip
    """A door configuration: the [mqtt] table on the test broker and one table per camera."""
    lines = []
    if weights is not None:
        lines.append(f"liveness_weights = {json.dumps(str(weights))}")
    lines += ["max_backoff_s = 2", "[mqtt]", 'host = "127.0.0.1"', f"port = {mqtt_port}",
              'prefix = "facerec"', f"drain_timeout_s = {drain_timeout_s}"]  # fmt: skip
    for cam in cameras:
        lines.append("[[camera]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cam.items()]
    return "\n".join(lines) + "\n"


class MjpegServer:
    """An HTTP MJPEG camera (multipart/x-mixed-replace, as cheap IP cameras serve), looping
    over `frames` (JPEG bytes) at `fps`, at http://127.0.0.1:PORT/stream.mjpg."""

    def __init__(self, frames: list[bytes], fps: float, *, clocked: bool = False) -> None:
        """`clocked`: frames go out on a fixed clock, as a camera's sensor gives them (each one
        a little early or late), rather than `1 / fps` after the previous one was written."""
        import http.server

        period = 1.0 / fps
        stop = self._stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                tick = time.monotonic()
                try:
                    while not stop.is_set():
                        jpeg = frames[i % len(frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
                        self.wfile.write(jpeg + b"\r\n")
                        i += 1
                        tick += period
                        time.sleep(max(0.0, tick - time.monotonic()) if clocked else period)
                except OSError:
                    return  # the client went away

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


def clip_jpegs(clip: Path, every: int = 1) -> list[bytes]:
    """Every `every`-th frame of a video, as JPEG bytes."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    out: list[bytes] = []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % every == 0:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            out.append(bytes(buf))
        i += 1
    cap.release()
    return out


class FrigateStandIn:
    """Frigate's HTTP API as the bridge uses it: `GET /api/events/<id>/snapshot.jpg` from
    `snapshots`, `POST /api/events/<id>/sub_label` recorded in `sub_labels`. An id in
    `fail_first` answers HTTP 500 that many times before its snapshot (retries)."""

    def __init__(self) -> None:
        import http.server

        self.snapshots: dict[str, bytes] = {}
        self.fail_first: dict[str, int] = {}
        self.gets: dict[str, int] = {}
        self.sub_labels: list[tuple[str, dict[str, Any]]] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.split("/")  # '', api, events, <id>, snapshot.jpg
                if (
                    len(parts) != 5
                    or parts[:3] != ["", "api", "events"]
                    or parts[4] != "snapshot.jpg"
                ):
                    self.send_error(404)
                    return
                event_id = parts[3]
                stand_in.gets[event_id] = stand_in.gets.get(event_id, 0) + 1
                if stand_in.fail_first.get(event_id, 0) > 0:
                    stand_in.fail_first[event_id] -= 1
                    self.send_error(500)
                    return
                body = stand_in.snapshots.get(event_id)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                parts = self.path.split("/")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if len(parts) != 5 or parts[4] != "sub_label":
                    self.send_error(404)
                    return
                stand_in.sub_labels.append((parts[3], body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"success": true}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
