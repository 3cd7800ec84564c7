"""Watching with liveness, frame by frame on the door camera itself (`DoorCamera` in watch mode,
the default model and the shared anti-spoofing weights): a live face is named; back after
leaving, he is named again on his new frames alone; his photo held up and moved a few seconds
later is one attack, never a match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facerec.api import FaceRec
from facerec.camera.door import DoorCamera
from facerec.camera.events import ATTACK, IDENTIFIED, DecisionEvent
from facerec.camera.liveness import LivenessTracker
from facerec.camera.stream import Frame, FrameSource
from facerec.liveness import replay
from facerec.liveness.passive import AntiSpoof
from facerec.liveness.policy import LivenessPolicy

from ..conftest import shared_file

EX = "face_recognition/examples"
LIN = "Lin-Manuel Miranda"
FPS = 5


@pytest.mark.slow  # loads the default model and MiniFASNet, ~20 s of frames
def test_a_photo_after_the_live_person_left_is_an_attack(shared: Path, tmp_path: Path) -> None:
    photo = shared_file(shared, f"{EX}/lin-manuel-miranda.png")
    clip = shared_file(shared, "video/short_hamilton_clip.mp4")
    antispoof = AntiSpoof(shared / "models" / "antispoof")
    with FaceRec(tmp_path / "g.db") as fr:
        fr.enroll(LIN, [photo])
        door = DoorCamera(fr, "door")
        door.enable_liveness(LivenessTracker(antispoof, LivenessPolicy(), door.rule.window_s))
        events: list[DecisionEvent] = []
        t = 0.0

        def show(pixels: np.ndarray) -> None:
            nonlocal t
            t += 1 / FPS
            _, event = door.observe(Frame(round(t * FPS), t, pixels))
            if event is not None:
                events.append(event)

        with FrameSource(str(clip), fps=FPS) as frames:
            live = [f.pixels for f in frames]
        empty = np.full((480, 640, 3), 40, np.uint8)
        for pixels in live:  # him, live, until he is named and two frames more
            show(pixels)
            if events and door.liveness is not None and len(door.liveness.frames) == 2:
                break
        assert [(e.decision, e.name) for e in events] == [(IDENTIFIED, LIN)]
        for _ in range(4 * FPS):  # he left: 4 s with nobody in view
            show(empty)
        back = t + 1 / FPS
        for pixels in live:  # back: a new appearance, decided on its own frames
            show(pixels)
        for _ in range(4 * FPS):
            show(empty)
        # His photo, held up and waved about for 12 s (a still one leaves liveness undecided:
        # no event, the door keeps looking; a moving one shows it is flat).
        shown = t + 1 / FPS
        for bgr in replay.tilted_plane(replay.read_bgr(photo), 12 * FPS):
            show(np.ascontiguousarray(bgr[:, :, ::-1]))
    assert [(e.decision, e.name) for e in events] == [
        (IDENTIFIED, LIN), (IDENTIFIED, LIN), (ATTACK, LIN)
    ], [(e.decision, e.name, e.liveness.reason if e.liveness else None) for e in events]  # fmt: skip
    again = events[1]
    assert min(f.t for f in again.frame_latencies) >= back - 1e-6  # none of the old frames
    assert again.liveness is not None and len(again.liveness_scores) >= 4
    # Nor any of the old liveness evidence: no more evidence frames than were shown since.
    assert len(again.liveness_scores) <= round((again.stream_time_s - back) * FPS) + 1
    attack = events[2]
    assert attack.liveness is not None and attack.liveness.verdict.value == "attack"
    assert attack.far is not None and attack.box is not None
    # Decided on the photo's frames alone: none of his live frames from before he left voted.
    assert attack.votes >= 3 and min(f.t for f in attack.frame_latencies) >= shown - 1e-6
