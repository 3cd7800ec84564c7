"""The door service under load: face-in-view -> MQTT latency, and RSS over a soak.

Two HTTP MJPEG cameras at 640x480 and 10 fps (served by this script) each loop over
an appearance: Lin-Manuel Miranda moving (`short_hamilton_clip.mp4`, 2.8-7.0 s, a
live face) for 4.2 s, then an empty frame for 5 s (longer than the 3-s cooldown, so
each appearance is a new `known` event). `facerec door` runs on both with liveness on
(he is enrolled from his still photo) and publishes to a real Mosquitto; a paho client
times each `known` event against the moment its appearance's first frame was sent.

- appearance -> message: what a door user waits, including the vote (k=3 frames) and
  liveness (4 frames showing depth), at the configured analysis rate (`--fps`);
- decision -> message: the event's own timestamp to its arrival (publishing only);
- RSS of the service, sampled every 5 s: the first sample after warm-up against the
  median of the last quarter (growth in %).

Prints a table and writes JSON to `--json` (default bench-results/door_service.json).

    python scripts/bench_door_service.py [--seconds 60] [--fps 10] [--shared ../shared/data]

Needs Debian's `mosquitto` and the `door` extra (paho-mqtt).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

SIZE = (640, 480)
STREAM_FPS = 10
FACE_S, EMPTY_S = (2.8, 7.0), 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def appearance_frames(clip: Path) -> list[bytes]:
    """The clip's face stretch at 10 fps, letterboxed to 640x480, as JPEG."""
    cap = cv2.VideoCapture(str(clip))
    native = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out, i, next_t = [], 0, FACE_S[0]
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t = i / native
        i += 1
        if t + 1e-6 < next_t or t > FACE_S[1]:
            continue
        next_t += 1.0 / STREAM_FPS
        canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        h, w = frame.shape[:2]
        y = (SIZE[1] - h) // 2
        canvas[y : y + h, :w] = frame[:, : SIZE[0]]
        out.append(bytes(cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]))
    cap.release()
    return out


class Camera:
    """An MJPEG server looping face / empty; `starts` holds when each appearance began."""

    def __init__(self, face: list[bytes], empty: bytes) -> None:
        self.starts: list[float] = []
        cam = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
                self.end_headers()
                frames = face + [empty] * round(EMPTY_S * STREAM_FPS)
                tick = time.monotonic()
                try:
                    for i in range(10**9):
                        k = i % len(frames)
                        if k == 0:
                            cam.starts.append(time.time())
                        jpeg = frames[k]
                        self.wfile.write(b"--f\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
                        self.wfile.write(jpeg + b"\r\n")
                        tick += 1.0 / STREAM_FPS
                        time.sleep(max(0.0, tick - time.monotonic()))
                except OSError:
                    return

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="soak length (600: ten minutes)")
    ap.add_argument("--fps", type=float, default=10.0, help="frames analysed per second per camera")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--json", type=Path, default=Path("bench-results/door_service.json"))
    args = ap.parse_args()
    shared = args.shared
    work = Path(tempfile.mkdtemp(prefix="bench-door-"))
    env = {**os.environ, "FACEREC_OFFLINE": "1"}
    db = work / "g.db"
    photo = shared / "face_recognition/examples/lin-manuel-miranda.png"
    subprocess.run([sys.executable, "-m", "facerec", "enroll", "Lin-Manuel Miranda", str(photo),
                    "--db", str(db)], env=env, check=True, capture_output=True)  # fmt: skip

    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    face = appearance_frames(shared / "video/short_hamilton_clip.mp4")
    empty = bytes(cv2.imencode(".jpg", np.full((SIZE[1], SIZE[0], 3), 40, np.uint8))[1])
    cams = {"cam1": Camera(face, empty), "cam2": Camera(face, empty)}

    arrivals: list[tuple[str, float, dict[str, object]]] = []
    reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench")
    reader.on_connect = lambda c, *a: c.subscribe("facerec/events", qos=1)
    reader.on_message = lambda c, u, m: arrivals.append(
        (json.loads(m.payload)["camera"], time.time(), json.loads(m.payload))
    )
    time.sleep(0.5)
    reader.connect("127.0.0.1", port)
    reader.loop_start()

    lines = ["liveness_weights = " + json.dumps(str(shared / "models/antispoof")),
             "[mqtt]", f"port = {port}"]  # fmt: skip
    for name, cam in cams.items():
        lines += ["[[camera]]", f'name = "{name}"', f'source = "{cam.url}"', f"fps = {args.fps}"]
    config = work / "door.toml"
    config.write_text("\n".join(lines) + "\n")
    door = subprocess.Popen([sys.executable, "-m", "facerec", "door", "--config", str(config),
                             "--db", str(db)], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(work / "door.log", "w"))  # noqa: SIM115  # fmt: skip
    rss: list[tuple[float, float]] = []
    start = time.time()
    try:
        while time.time() - start < args.seconds:
            time.sleep(5.0)
            value = rss_mb(door.pid)
            if value is not None:
                rss.append((time.time() - start, value))
    finally:
        door.terminate()
        door.wait(timeout=60)
        reader.loop_stop()
        broker.terminate()

    appearance, publish = [], []
    for camera, t, event in arrivals:
        if event["type"] != "known":
            continue
        begun = [s for s in cams[camera].starts if s <= t]
        if begun:
            appearance.append((t - begun[-1]) * 1000.0)
        stamp = datetime.fromisoformat(str(event["timestamp"])).timestamp()
        publish.append((t - stamp) * 1000.0)
    warm = [v for s, v in rss if s >= min(30.0, args.seconds / 2)] or [v for _, v in rss]
    last = warm[-max(1, len(warm) // 4) :]
    growth = (statistics.median(last) / warm[0] - 1.0) * 100.0 if warm else None
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "cameras": len(cams), "resolution": list(SIZE), "stream_fps": STREAM_FPS,
        "analysis_fps": args.fps, "seconds": args.seconds,
        "appearances": sum(len(c.starts) for c in cams.values()),
        "events": [e["type"] for _, _, e in arrivals],
        "appearance_to_message_ms": {"n": len(appearance), "p50": pct(appearance, 50),
                                     "p95": pct(appearance, 95)},
        "decision_to_message_ms": {"n": len(publish), "p50": pct(publish, 50),
                                   "p95": pct(publish, 95)},
        "rss_mb": {"first": warm[0] if warm else None, "last_quarter_median":
                   statistics.median(last) if last else None, "growth_pct": growth,
                   "samples": rss},
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"

    a, p, r = result["appearance_to_message_ms"], result["decision_to_message_ms"], result["rss_mb"]
    print(f"{len(cams)} cameras, 640x480 at {STREAM_FPS} fps, analysed at {args.fps:g} fps, "
          f"{args.seconds:g} s; {result['appearances']} appearances, "
          f"{len(appearance)} known events")  # fmt: skip
    print("| measure | n | p50 ms | p95 ms |\n|---|---|---|---|")
    print(f"| appearance -> MQTT message | {a['n']} | {f(a['p50'])} | {f(a['p95'])} |")
    print(f"| decision -> MQTT message | {p['n']} | {f(p['p50'])} | {f(p['p95'])} |")
    print(f"RSS: {f(r['first'])} MB after warm-up, {f(r['last_quarter_median'])} MB at the end "
          f"({'-' if growth is None else f'{growth:+.1f}'} %); JSON: {args.json}")  # fmt: skip


if __name__ == "__main__":
    main()
