"""A live camera's frames as the door takes them: a frame a little early for its slot is not
dropped, and an analysis that had to wait (a real HTTP MJPEG stream, read by OpenCV) takes the
newest frame rather than the one it was holding."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from facerec.camera.stream import FrameSource, _Rate

from ..conftest import shared_file
from .conftest import MjpegServer

FPS = 10


def numbered_jpegs(n: int) -> list[bytes]:
    """Small distinct frames (the stream's content does not matter here, only its timing)."""
    out = []
    for i in range(n):
        img = np.full((120, 160, 3), 30 + 7 * i, np.uint8)
        cv2.putText(img, str(i), (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        out.append(bytes(cv2.imencode(".jpg", img)[1]))
    return out


def test_a_frame_a_little_early_for_its_slot_is_analysed() -> None:
    """A live frame is stamped on arrival, a little early or late for its slot. After a slow
    frame the slots restart from it; the next frame, a millisecond early, must still be taken
    (dropping it waited a whole frame more for evidence). A file keeps its exact sampling."""
    live = _Rate(FPS, slack=0.5)
    assert live.due(0.0) and live.due(0.35)  # 0.35: the analysis was slow; next slot 0.45
    assert live.due(0.449)
    assert not live.due(0.47)  # but never two frames for one slot
    file = _Rate(FPS)
    assert file.due(0.0) and file.due(0.35) and not file.due(0.449) and file.due(0.45)


def test_an_analysis_that_waited_takes_the_newest_frame(shared: Path) -> None:
    server = MjpegServer(numbered_jpegs(20), FPS, clocked=True)
    try:
        with FrameSource(server.url, fps=FPS) as frames:
            stream = iter(frames)
            held = next(stream)
            time.sleep(0.5)  # another camera had the cores
            now = frames.fresher(held)
            assert now.index >= held.index + 3, (held.index, now.index)
            assert now.captured is not None and held.captured is not None
            assert now.captured - held.captured >= 0.25
            later = next(stream)
            assert later.index > now.index  # never back to the frames it passed over
    finally:
        server.stop()
    clip = shared_file(shared, "video/short_hamilton_clip.mp4")
    with FrameSource(str(clip), fps=5) as frames:  # a file on its own clock keeps its sampling
        first = next(iter(frames))
        time.sleep(0.3)
        assert frames.fresher(first) is first and first.captured is None
