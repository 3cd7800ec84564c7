"""The door service under load: face-in-view -> MQTT latency, and RSS over a soak.

Two HTTP MJPEG cameras at 640x480 and 10 fps (served by this script) each loop over
an appearance: Lin-Manuel Miranda moving (`short_hamilton_clip.mp4`, 2.8-7.0 s, a
live face) for 4.2 s, then an empty frame for 5 s (longer than the 3-s cooldown, so
each appearance is a new `known` event). `facerec door` runs on both with liveness on
(he is enrolled from his still photo) and publishes to a real Mosquitto; a paho client
times each `known` event against the moment its appearance's first frame was sent.

- appearance -> message: what a door user waits. It includes the evidence a decision
  needs: k=3 agreeing frames, and liveness over at least 8 frames of the face (the
  continuity cue's `min_frames`; the parallax cue needs the head to have moved in
  depth). At 10 fps the eighth frame is captured 0.7 s after the first: that is the
  floor any decision on 8 frames sets, before a single frame is analysed;
- evidence complete -> message: from the capture of the last frame the decision rested
  on (the event's `frame_time`, stamped by the service's reader) to the message: what
  the service adds (waiting for the models, analysis, the audit write, publishing);
- appearance -> evidence complete: the evidence window as this run saw it (frames
  without a usable face, and frames the analysis could not keep up with, lengthen it);
- decision -> message: the event's own timestamp to its arrival (publishing only);
- per camera, the frames analysed per second and the analysis time of one frame
  (detection and embedding; from the service's log);
- RSS of the service, sampled every 5 s: the first sample after warm-up against the
  median of the last quarter (growth in %);
- after the run, in this process: one face frame's CPU time per stage on one thread
  (what a camera with a core of its own spends, whatever else the machine runs), and
  the frame at which the appearance is decided when every frame is analysed.

Liveness runs on the door's default networks (the shipped ONNX MiniFASNets on OpenCV);
`--liveness-weights DIR` runs the released .pth files on PyTorch instead.

Prints a table and writes JSON to `--json` (default bench-results/door_service.json).

    python scripts/bench_door_service.py [--seconds 60] [--fps 10] [--shared ../shared/data]
        [--liveness-weights ../shared/data/models/antispoof]

Needs Debian's `mosquitto` and the `door` extra (paho-mqtt).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from facerec.liveness.continuity import ContinuityLimits

SIZE = (640, 480)
STREAM_FPS = 10
FACE_S, EMPTY_S = (2.8, 7.0), 5.0
#: The frames of the face liveness needs at least (the continuity cue).
MIN_LIVENESS_FRAMES = ContinuityLimits().min_frames


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


def summary(xs: list[float]) -> dict[str, float | int | None]:
    return {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95)}


#: One analysed frame in the service's log (`facerec.camera.door._log_frame`).
_FRAME = re.compile(r"facerec\.camera\.door: (\S+) frame \d+ at [\d.]+ s: .*; (\d+) ms$")


def analysed(log: Path, seconds: float) -> dict[str, dict[str, float | None]]:
    """Per camera: frames analysed per second, and the analysis time of one frame."""
    ms: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        m = _FRAME.search(line)
        if m:
            ms.setdefault(m.group(1), []).append(float(m.group(2)))
    return {name: {"analysed_per_s": len(v) / seconds, "ms_p50": pct(v, 50), "ms_p95": pct(v, 95)}
            for name, v in sorted(ms.items())}  # fmt: skip


def frame_costs(face: list[bytes], db: Path, fps: float) -> dict[str, Any]:
    """One face frame's CPU time per stage (one thread: what a camera with a core to itself
    spends, whatever else the machine runs), and the frame at which the appearance is decided
    when every frame is analysed on its own clock (the evidence the clip needs)."""
    from facerec.api import FaceRec
    from facerec.camera.door import DoorCamera
    from facerec.camera.liveness import LivenessTracker
    from facerec.camera.stream import Frame
    from facerec.errors import MultipleFacesError, NoFaceError
    from facerec.faces.images import LoadedImage
    from facerec.faces.pipeline import select_subject
    from facerec.liveness.continuity import appearance
    from facerec.liveness.passive import AntiSpoof
    from facerec.liveness.policy import FrameEvidence, LivenessPolicy, assess
    from facerec.runtime import use_threads

    pixels = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for j in face
    ]
    stages: dict[str, list[float]] = {"detect + embed": [], "gallery search": [],
                                      "anti-spoofing": [], "liveness cues": []}  # fmt: skip
    with FaceRec(db) as fr:
        use_threads(1)  # after FaceRec: its settings apply their own count when it loads
        antispoof = AntiSpoof()
        threshold = fr.identification_threshold()
        evidence: list[FrameEvidence] = []
        for rep in range(2):  # the first round warms up
            for i, px in enumerate(pixels):
                clock = [time.thread_time()]
                image = LoadedImage(source="bench", pixels=px, sha256="")
                try:
                    best = select_subject(fr.faces(image), image).face
                except (NoFaceError, MultipleFacesError):
                    continue
                clock.append(time.thread_time())
                fr.identify_embeddings(best.embedding[None, :], threshold)
                clock.append(time.thread_time())
                p_real = antispoof.score(px, best.detection.box).p_real
                clock.append(time.thread_time())
                evidence.append(FrameEvidence(i / fps, p_real, best.detection.landmarks,
                                              best.quality.yaw, appearance(best.chip)))  # fmt: skip
                assess(evidence[-MIN_LIVENESS_FRAMES:], LivenessPolicy())
                clock.append(time.thread_time())
                if rep:
                    for stage, a, b in zip(stages, clock, clock[1:], strict=False):
                        stages[stage].append((b - a) * 1000.0)
        door = DoorCamera(fr, "bench")
        door.enable_liveness(LivenessTracker(antispoof, LivenessPolicy(), door.rule.window_s))
        decided = None
        for i, px in enumerate(pixels):
            _, event = door.observe(Frame(i, i / fps, px))
            if event is not None:
                decided = i
                break
    cpu = {k: statistics.median(v) for k, v in stages.items()}
    return {"cpu_ms_median": cpu, "cpu_ms_total": sum(cpu.values()), "decided_at_frame": decided}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="soak length (600: ten minutes)")
    ap.add_argument("--fps", type=float, default=10.0, help="frames analysed per second per camera")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--json", type=Path, default=Path("bench-results/door_service.json"))
    ap.add_argument(
        "--liveness-weights",
        type=Path,
        default=None,
        help="the .pth MiniFASNets on PyTorch (default: the shipped ONNX files)",
    )
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

    lines = ["[mqtt]", f"port = {port}"]
    if args.liveness_weights is not None:
        lines.insert(0, "liveness_weights = " + json.dumps(str(args.liveness_weights)))
    for name, cam in cams.items():
        lines += ["[[camera]]", f'name = "{name}"', f'source = "{cam.url}"', f"fps = {args.fps}"]
    config = work / "door.toml"
    config.write_text("\n".join(lines) + "\n")
    load_before = os.getloadavg()
    door = subprocess.Popen([sys.executable, "-m", "facerec", "-v", "door", "--config",
                             str(config), "--db", str(db)], env=env, stdout=subprocess.DEVNULL,
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

    load_after = os.getloadavg()
    appearance, evidence, window, publish = [], [], [], []
    for camera, t, event in arrivals:
        if event["type"] != "known":
            continue
        stamp = datetime.fromisoformat(str(event["timestamp"])).timestamp()
        publish.append((t - stamp) * 1000.0)
        captured = datetime.fromisoformat(str(event["frame_time"])).timestamp()
        evidence.append((t - captured) * 1000.0)
        begun = [s for s in cams[camera].starts if s <= captured]
        if begun:
            appearance.append((t - begun[-1]) * 1000.0)
            window.append((captured - begun[-1]) * 1000.0)
    frames = analysed(work / "door.log", args.seconds)
    costs = frame_costs(face, db, STREAM_FPS)
    warm = [v for s, v in rss if s >= min(30.0, args.seconds / 2)] or [v for _, v in rss]
    last = warm[-max(1, len(warm) // 4) :]
    growth = (statistics.median(last) / warm[0] - 1.0) * 100.0 if warm else None
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "cameras": len(cams), "resolution": list(SIZE), "stream_fps": STREAM_FPS,
        "analysis_fps": args.fps, "seconds": args.seconds,
        "appearances": sum(len(c.starts) for c in cams.values()),
        "events": [e["type"] for _, _, e in arrivals],
        "liveness_weights": str(args.liveness_weights) if args.liveness_weights else "shipped ONNX",
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "appearance_to_message_ms": summary(appearance),
        "evidence_complete_to_message_ms": summary(evidence),
        "appearance_to_evidence_complete_ms": summary(window),
        "decision_to_message_ms": summary(publish),
        "evidence_floor_ms": 1000.0 * (MIN_LIVENESS_FRAMES - 1) / args.fps,
        "frames": frames,
        "face_frame": costs,
        "rss_mb": {"first": warm[0] if warm else None, "last_quarter_median":
                   statistics.median(last) if last else None, "growth_pct": growth,
                   "samples": rss},
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"

    r = result["rss_mb"]
    print(f"{len(cams)} cameras, 640x480 at {STREAM_FPS} fps, analysed at {args.fps:g} fps, "
          f"{args.seconds:g} s; {result['appearances']} appearances, "
          f"{len(appearance)} known events; events {dict(Counter(result['events']))}; "
          f"liveness {result['liveness_weights']}; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")  # fmt: skip
    print("| measure | n | p50 ms | p95 ms |\n|---|---|---|---|")
    for label, key in (("appearance -> MQTT message", "appearance_to_message_ms"),
                       ("evidence complete -> MQTT message", "evidence_complete_to_message_ms"),
                       ("appearance -> evidence complete", "appearance_to_evidence_complete_ms"),
                       ("decision -> MQTT message", "decision_to_message_ms")):  # fmt: skip
        m = result[key]
        print(f"| {label} | {m['n']} | {f(m['p50'])} | {f(m['p95'])} |")
    print(
        f"The evidence window's floor at {args.fps:g} fps: {MIN_LIVENESS_FRAMES} frames of the "
        f"face, the last captured {result['evidence_floor_ms']:.0f} ms after the first."
    )
    c, at = costs, costs["decided_at_frame"]
    print("One face frame, CPU time on one thread: " + ", ".join(
        f"{k} {v:.1f} ms" for k, v in c["cpu_ms_median"].items()) +
        f" (total {c['cpu_ms_total']:.0f} ms)")  # fmt: skip
    if at is not None:
        print(f"Every frame analysed, the appearance is decided at its frame {at + 1}, captured "
              f"{at * 1000 / STREAM_FPS:.0f} ms after the first: with a core per camera, "
              f"appearance -> decision >= {at * 1000 / STREAM_FPS + c['cpu_ms_total']:.0f} ms")  # fmt: skip
    for name, fr in frames.items():
        print(
            f"{name}: {fr['analysed_per_s']:.1f} frames analysed/s, "
            f"{f(fr['ms_p50'])} ms a frame (p95 {f(fr['ms_p95'])})"
        )
    print(f"RSS: {f(r['first'])} MB after warm-up, {f(r['last_quarter_median'])} MB at the end "
          f"({'-' if growth is None else f'{growth:+.1f}'} %); JSON: {args.json}")  # fmt: skip


if __name__ == "__main__":
    main()
