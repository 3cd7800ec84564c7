"""The door camera's pieces without a model: the vote window, frame sampling, events, webhook."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from facerec.camera.events import DecisionEvent, FrameLatency, Webhook, WebhookError, send_json
from facerec.camera.stream import FrameSource, StreamError, describe, is_live, parse_source
from facerec.camera.window import Presence, SlidingWindow, Vote, WindowDecision, WindowRule

OBAMA = "Barack Obama"


def votes(
    window: SlidingWindow, labels: list[str | None], dt: float = 0.2
) -> list[WindowDecision | None]:
    return [window.push(Vote(i * dt, lab, 0.95 if lab else 0.5, i)) for i, lab in enumerate(labels)]


def test_k_of_n_accepts_on_the_kth_agreeing_vote() -> None:
    w = SlidingWindow(WindowRule(k=3, n=5, window_s=10))
    out = votes(w, [OBAMA, None, OBAMA, OBAMA])
    assert out[:3] == [None, None, None]
    decided = out[3]
    assert decided is not None and decided.label == OBAMA
    assert len(decided.supporting) == 3


@pytest.mark.parametrize(
    "labels",
    [
        [None, OBAMA, None, OBAMA],  # one good frame among bad ones
        [OBAMA, OBAMA, None, None],  # one bad frame after two good ones
    ],
)
def test_one_frame_never_decides(labels: list[str | None]) -> None:
    w = SlidingWindow(WindowRule(k=3, n=5, window_s=10))
    assert all(d is None for d in votes(w, labels))


def test_rejection_needs_k_negative_votes_too() -> None:
    w = SlidingWindow(WindowRule(k=3, n=5, window_s=10))
    decided = votes(w, [None, OBAMA, None, None])[-1]
    assert decided is not None and decided.label is None


def test_only_the_last_n_votes_count() -> None:
    w = SlidingWindow(WindowRule(k=3, n=3, window_s=10))
    # Three yes votes in all, but never three among the last three.
    assert all(d is None for d in votes(w, [OBAMA, OBAMA, None, OBAMA, "Joe Biden", OBAMA]))


def test_votes_older_than_the_window_expire() -> None:
    w = SlidingWindow(WindowRule(k=3, n=5, window_s=1.0))
    assert w.push(Vote(0.0, OBAMA, 0.95)) is None
    assert w.push(Vote(0.5, OBAMA, 0.95)) is None
    assert w.push(Vote(2.0, OBAMA, 0.95)) is None  # the first two are more than 1 s old
    assert [v.t for v in w.votes] == [2.0]


def test_presence_announces_an_appearance_once_until_the_person_is_gone() -> None:
    p = Presence(cooldown_s=3.0)
    assert p.arrive(OBAMA, 1.0)  # a new appearance
    for t in (1.2, 2.0, 3.5, 6.0):  # Obama keeps voting: still the same appearance
        p.heard(Vote(t, OBAMA, 0.95))
    assert not p.arrive(OBAMA, 6.2)
    assert p.arrive("Joe Biden", 6.4) and p.present == {OBAMA, "Joe Biden"}
    p.heard(Vote(6.6, "Joe Biden", 0.95))
    p.expire(9.3)  # 3.3 s without a vote for Obama: gone; Biden was heard 2.7 s ago
    assert p.present == {"Joe Biden"}
    assert p.arrive(OBAMA, 9.4)  # back: a new appearance


def test_presence_counts_unknown_faces_and_needs_a_decision_not_a_vote() -> None:
    p = Presence(cooldown_s=1.0)
    p.heard(Vote(0.0, OBAMA, 0.95))  # a vote alone is not an appearance
    assert p.present == frozenset()
    assert p.arrive(None, 0.2) and not p.arrive(None, 1.0)  # one stranger, one event
    assert p.arrive(None, 2.5)  # ... until they were gone for the cooldown
    with pytest.raises(ValueError):
        Presence(cooldown_s=-1)


def test_window_rule_is_validated() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        WindowRule(k=6, n=5)
    with pytest.raises(ValueError, match="positive"):
        WindowRule(window_s=0)


def test_sources_are_parsed() -> None:
    assert parse_source("0") == 0 and is_live(0)
    assert is_live("rtsp://cam.local/stream") and not is_live("door.mp4")
    assert describe("rtsp://user:secret@cam.local/s") == "rtsp://***@cam.local/s"


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 10 fps; frame i is filled with grey level 10*i, so frames are recognisable."""
    path = tmp_path_factory.mktemp("video") / "count.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(20):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    return path


def test_a_file_is_sampled_on_its_own_clock(counter_video: Path) -> None:
    with FrameSource(str(counter_video), fps=2.5) as src:
        assert not src.live and not src.realtime
        frames = list(src)
    assert [f.index for f in frames] == [0, 4, 8, 12, 16]
    assert [round(f.t, 3) for f in frames] == [0.0, 0.4, 0.8, 1.2, 1.6]
    assert frames[0].pixels.shape == (48, 64, 3) and frames[0].pixels.dtype == np.uint8
    assert abs(int(frames[2].pixels.mean()) - 80) <= 3  # RGB of frame 8


def test_a_file_played_in_real_time_takes_its_duration(counter_video: Path) -> None:
    start = time.monotonic()
    with FrameSource(str(counter_video), fps=100, realtime=True) as src:
        frames = list(src)
    assert time.monotonic() - start >= 1.5  # 2 s of video, paced by the wall clock
    assert frames and [f.index for f in frames] == sorted({f.index for f in frames})


def test_frames_are_downscaled_to_max_side(counter_video: Path) -> None:
    with FrameSource(str(counter_video), fps=1, max_side=32) as src:
        assert next(iter(src)).pixels.shape == (24, 32, 3)


def test_a_missing_file_is_a_stream_error(tmp_path: Path) -> None:
    with pytest.raises(StreamError, match="no such video file"):
        FrameSource(str(tmp_path / "nope.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(StreamError, match="cannot open"):
        FrameSource(str(bad))


def event() -> DecisionEvent:
    return DecisionEvent(
        time=datetime(2026, 1, 1, tzinfo=UTC),
        source="door.mp4",
        mode="claim",
        claim=OBAMA,
        decision="accepted",
        name=OBAMA,
        best_score=0.97,
        threshold=0.9,
        scores=(0.95, float("nan"), 0.97),
        votes=3,
        frames=4,
        stream_time_s=1.2,
        latency_ms=120.0,
        frame_latencies=(FrameLatency(3, 0.6, 118.04),),
    )


def test_event_json_line() -> None:
    line = event().to_line()
    assert "\n" not in line
    data = json.loads(line)
    assert data["decision"] == "accepted" and data["name"] == OBAMA
    assert data["scores"] == [0.95, None, 0.97]  # NaN is not JSON
    assert data["frame_latencies_ms"] == [{"frame": 3, "t": 0.6, "ms": 118.0}]


def test_webhook_delivers(receiver: tuple[str, list[dict[str, object]]]) -> None:
    url, received = receiver
    hook = Webhook(url, timeout_s=2)
    hook.post(event())
    hook.close()
    assert hook.sent == 1 and received[0]["decision"] == "accepted"


def test_webhook_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    assert send_json(url, {"x": 1}, timeout_s=0.5) is False
    hook = Webhook(url, timeout_s=0.5)
    hook.post(event())
    hook.close()
    assert hook.failed == 1 and "webhook" in caplog.text
    with pytest.raises(WebhookError):
        Webhook("ftp://example.org/hook")


def closed_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
