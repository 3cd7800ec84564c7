"""A camera's region of interest (`roi`): only faces centred in it count, and events keep the
frame's coordinates. The clip puts the street (a stranger, Joe Biden) on the left of the frame
and the door (Barack Obama, enrolled) on the right, as photos on a wall (liveness off)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facerec.camera.region import MARGIN, Region, faces_in_region
from facerec.door.config import ConfigError, parse
from facerec.faces.images import LoadedImage
from facerec.liveness import replay

from ..conftest import shared_file
from .conftest import Broker, Door, door_toml
from .test_service import EX, HAMILTON, OBAMA, gallery

#: The door's side of the frame, below the top 30 % (frame fractions).
DOOR_ROI = [0.5, 0.3, 1.0, 1.0]
#: Where each photo is pasted in the 640x480 frame (pixels: x1, y1, x2, y2).
STREET, DOOR = (120, 40, 440, 480), (330, 150, 630, 470)
SECONDS, FPS = 3.0, 10
#: Where Lin-Manuel Miranda moves in `HAMILTON` (640x360), away from the others at its end.
LIVE_ROI = [0.2, 0.0, 0.65, 0.6]


def paste(frame: np.ndarray, photo: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """`photo` scaled to fit `box` and centred in it."""
    x1, y1, x2, y2 = box
    ph, pw = photo.shape[:2]
    scale = min((x2 - x1) / pw, (y2 - y1) / ph)
    small = cv2.resize(photo, (round(pw * scale), round(ph * scale)), interpolation=cv2.INTER_AREA)
    y, x = y1 + (y2 - y1 - small.shape[0]) // 2, x1 + (x2 - x1 - small.shape[1]) // 2
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small


def scene(shared: Path, *who: str) -> np.ndarray:
    """The wall with the stranger on the street side and/or Obama at the door (BGR)."""
    photos = {"biden": ("biden.jpg", STREET), "obama": ("obama2.jpg", DOOR)}
    frame = replay.room(0)
    for name in who:
        file, box = photos[name]
        paste(frame, replay.read_bgr(shared_file(shared, f"{EX}/{file}")), box)
    return frame


def street_and_door(shared: Path, path: Path) -> Path:
    """3 s of the stranger alone on the street side, 3 s of both (faces of similar size: without
    a region, no clear subject), 3 s of Obama alone at the door."""
    rng = np.random.default_rng(0)
    frames = []
    for who in (("biden",), ("biden", "obama"), ("obama",)):
        still = scene(shared, *who)
        n = round(SECONDS * FPS)
        frames += [replay.recompress(replay.sensor_noise(still, rng), 85) for _ in range(n)]
    return replay.write_mp4(path, frames, FPS)


def snapshot(db: Path, audit_id: int) -> np.ndarray:
    """An event's snapshot (JPEG in the audit table), decoded."""
    con = sqlite3.connect(db)
    try:
        (jpeg,) = con.execute("SELECT image FROM audit_events WHERE id = ?", (audit_id,)).fetchone()
    finally:
        con.close()
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image)


def unlike(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two pictures, `b` scaled to `a`'s size (0-255)."""
    b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def voted(log: str, camera: str, start: float, end: float) -> list[str]:
    """What `camera`'s frames between `start` and `end` s said (the service's -v frame log)."""
    found = re.findall(rf"{camera} frame \d+ at ([\d.]+) s: (.*?); \d+ ms", log)
    return [what for t, what in found if start <= float(t) < end]


@pytest.mark.slow  # the service runs the models over the clip twice (~40 s on 2 cores)
def test_a_passer_by_outside_the_region_is_not_seen_and_boxes_stay_in_the_frame(
    shared: Path, tmp_path: Path, cli_env: dict[str, str], broker: Broker
) -> None:
    """The same clip on two cameras. Without a region: the stranger alone is an `unknown`, the
    two faces together are no clear subject, Obama alone is `known`. With the region over the
    door: one `known`, decided while the stranger was still in the frame (he is no rival there,
    and no vote), and its box in the whole frame's pixels, where the other camera found him.
    A real recording of a live stranger (liveness on) through a region: `unknown`, judged live
    (the liveness cues get the face where it is in the frame)."""
    db = gallery(cli_env, tmp_path / "g.db", OBAMA, shared_file(shared, f"{EX}/obama.jpg"))
    clip = street_and_door(shared, tmp_path / "street.mp4")
    config = tmp_path / "door.toml"
    config.write_text(door_toml(broker.port, [
        {"name": "whole", "source": str(clip), "liveness": False},
        {"name": "door", "source": str(clip), "liveness": False, "roi": DOOR_ROI},
        {"name": "live", "source": str(shared_file(shared, HAMILTON)), "roi": LIVE_ROI},
    ], weights=shared / "models" / "antispoof"))  # fmt: skip
    door = Door(config, db, cli_env)
    try:
        assert door.wait(300) == 0, door.stderr()
    finally:
        door.terminate()
    events = door.events()
    by_camera = {c: [(e["type"], e["name"]) for e in events if e["camera"] == c]
                 for c in ("whole", "door", "live")}  # fmt: skip
    assert by_camera == {
        "whole": [("unknown", None), ("known", OBAMA)],
        "door": [("known", OBAMA)],
        "live": [("unknown", None)],
    }, events
    # The liveness cues read the whole frame at the face's frame coordinates: a live stranger.
    (live,) = [e for e in events if e["camera"] == "live"]
    assert live["liveness"]["verdict"] == "live", live
    assert Region(*LIVE_ROI).contains(tuple(live["box"]), 640, 360), live
    log = door.stderr()
    assert "camera door: only faces centred in the region [0.5, 0.3, 1.0, 1.0]" in log
    # While both stood there: no subject for the whole frame, Obama for the door's region.
    both = SECONDS + 0.5, 2 * SECONDS - 0.2
    whole_votes = voted(log, "whole", *both)
    assert whole_votes and all("similar sizes" in w for w in whole_votes), whole_votes
    door_votes = voted(log, "door", *both)
    assert door_votes and all(w.startswith(OBAMA) for w in door_votes), door_votes
    # The stranger alone: his face is detected (in the margin) but centred outside the region.
    alone = voted(log, "door", 0.0, SECONDS - 0.2)
    assert alone and all(w == "no face in the region" for w in alone), alone
    # The event's box is in the whole frame's pixels, not the crop's: where the camera without
    # a region found him, inside the pasted photo and centred in the region.
    (known,) = [e for e in events if e["camera"] == "door"]
    (reference,) = [e for e in events if e["camera"] == "whole" and e["type"] == "known"]
    assert np.allclose(known["box"], reference["box"], atol=8), (known["box"], reference["box"])
    x1, y1, x2, y2 = known["box"]
    assert DOOR[0] <= x1 < x2 <= DOOR[2] and DOOR[1] <= y1 < y2 <= DOOR[3]
    assert Region(*DOOR_ROI).contains((x1, y1, x2, y2), 640, 480)
    # Its snapshot is cut from the frame there: his face, as the other camera's snapshot shows it.
    pictures = {e["audit_id"]: snapshot(db, e["audit_id"]) for e in events}
    assert unlike(pictures[known["audit_id"]], pictures[reference["audit_id"]]) < 30


def test_faces_found_in_the_region_are_where_the_whole_frame_has_them(
    shared: Path, pipeline: Any
) -> None:
    """Detected on the region's crop, a face's box and five points come back in the frame's
    pixels (the liveness cues and snapshots read the frame there); the stranger, his face in
    the crop's margin but centred outside the region, is left out."""
    pixels = cv2.cvtColor(scene(shared, "biden", "obama"), cv2.COLOR_BGR2RGB)
    image = LoadedImage(source="scene", pixels=pixels, sha256="")
    whole = pipeline.faces(image)
    assert len(whole) == 2
    (inside,) = faces_in_region(image, Region(*DOOR_ROI), pipeline.faces)
    (same,) = [f for f in whole if f.detection.box[0] > DOOR[0]]
    assert np.allclose(inside.detection.box, same.detection.box, atol=4)
    assert np.allclose(inside.detection.landmarks, same.detection.landmarks, atol=4)
    # The stranger's face lies in the detected crop (its margin), centred outside the region.
    (stranger,) = [f for f in whole if f is not same]
    left = Region(*DOOR_ROI).crop(640, 480)[0]
    assert left <= stranger.detection.box[0] and stranger.detection.box[2] > DOOR_ROI[0] * 640


def test_a_region_is_detected_with_a_margin_and_judged_by_the_face_centre() -> None:
    region = Region(*DOOR_ROI)
    assert region.pixels(640, 480) == (320.0, 144.0, 640.0, 480.0)
    # The margin (a quarter of the region's size) reaches left and up, clipped to the frame.
    assert region.crop(640, 480) == (240, 60, 640, 480)
    assert MARGIN == 0.25
    # A face half outside counts when its centre is inside, and not the other way round.
    assert region.contains((300.0, 200.0, 360.0, 260.0), 640, 480)
    assert not region.contains((250.0, 200.0, 330.0, 260.0), 640, 480)
    assert not region.contains((400.0, 60.0, 460.0, 120.0), 640, 480)
    # Fractions: the same region at another resolution.
    assert region.crop(1280, 960) == (480, 120, 1280, 960)
    # A sliver of a region still crops at least a pixel.
    left, top, right, bottom = Region(0.999, 0.999, 1.0, 1.0).crop(10, 10)
    assert right > left and bottom > top
    for bad in ((0.5, 0.5, 0.5, 1.0), (0.0, 0.0, 1.1, 1.0), (float("nan"), 0, 1, 1)):
        with pytest.raises(ValueError):
            Region(*bad)


CAM = {"name": "front", "source": "rtsp://cam/stream"}


def test_roi_loads_as_a_rectangle_and_defaults_to_the_whole_frame() -> None:
    assert parse({"camera": [CAM]}, {}).cameras[0].roi is None
    cam = parse({"camera": [{**CAM, "roi": [0.5, 0, 1, 0.75]}]}, {}).cameras[0]
    assert cam.roi == (0.5, 0.0, 1.0, 0.75)


@pytest.mark.parametrize(
    ("roi", "why"),
    [
        ([0.1, 0.1, 0.9], "got [0.1, 0.1, 0.9]"),
        ([0, 0, 1, 1, 0], "got [0, 0, 1, 1, 0]"),
        ("0,0,1,1", "got '0,0,1,1'"),
        ({"x1": 0}, "got {'x1': 0}"),
        ([0, 0, "1", 1], "'1' is not a finite number"),
        ([0, 0, True, 1], "True is not a finite number"),
        ([0, 0, float("nan"), 1], "nan is not a finite number"),
        ([0, 0, float("inf"), 1], "inf is not a finite number"),
        ([-0.1, 0, 1, 1], "-0.1 is outside 0..1"),
        ([0, 0, 1.5, 1], "1.5 is outside 0..1"),
        ([0.5, 0, 0.5, 1], "x1 < x2 and y1 < y2"),
        ([0, 0.8, 1, 0.2], "x1 < x2 and y1 < y2"),
    ],
)
def test_a_bad_roi_is_refused_naming_the_camera_and_the_key(roi: object, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"camera": [{**CAM, "roi": roi}]}, {})
    message = str(info.value)
    assert message.startswith("config: [[camera]] #1 (front): roi must be [x1, y1, x2, y2]")
    assert why in message, message


def test_the_cli_refuses_a_nan_roi_with_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """TOML has `nan` and `inf`: `facerec door` exits 2 before any stream, naming camera and key."""
    bad = tmp_path / "door.toml"
    bad.write_text('[[camera]]\nname = "front"\nsource = "rtsp://cam/s"\nroi = [0, 0, nan, 1]\n')
    r = subprocess.run([sys.executable, "-m", "facerec", "door", "--config", str(bad)],
                       env=cli_env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and "[[camera]] #1 (front): roi must be" in line, line
    assert "nan is not a finite number" in line, line
