"""`facerec camera` as a door script runs it: a real subprocess on MP4 files built from real photos.

The videos (640x480, mp4v, 10 fps) letterbox the shared photos: the person in
some stretches, an empty scene (an aeroplane) or someone else in others. The
camera processes 5 frames per second of video time, so the frame a decision
falls on is known in advance and the assertions can be exact about it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facerec.api import FaceRec
from facerec.cli import app

from ..conftest import shared_file
from .conftest import audit_rows, camera, events

EX = "face_recognition/examples"
OBAMA, BIDEN, KIT = "Barack Obama", "Joe Biden", "Kit Harington"
SIZE = (640, 480)
VIDEO_FPS = 10


def letterbox(path: Path) -> np.ndarray:
    """The photo scaled to fit 640x480, centred on black (BGR, as VideoWriter wants)."""
    image = cv2.imread(str(path))
    assert image is not None, path
    h, w = image.shape[:2]
    scale = min(SIZE[0] / w, SIZE[1] / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    out = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    y, x = (SIZE[1] - resized.shape[0]) // 2, (SIZE[0] - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


def write_video(path: Path, segments: list[tuple[Path, float]]) -> Path:
    """An MP4 of `segments`: (photo, seconds) shown one after another."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, SIZE)
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    try:
        for photo, seconds in segments:
            frame = letterbox(photo)
            for _ in range(round(seconds * VIDEO_FPS)):
                writer.write(frame)
    finally:
        writer.release()
    return path


@pytest.fixture(scope="module")
def photos(shared: Path) -> dict[str, Path]:
    return {
        "obama": shared_file(shared, f"{EX}/obama.jpg"),
        "obama2": shared_file(shared, f"{EX}/obama2.jpg"),
        "biden": shared_file(shared, f"{EX}/biden.jpg"),
        "kit": shared_file(shared, f"{EX}/knn_examples/train/kit_harington/john1.jpeg"),
        "kit2": shared_file(shared, f"{EX}/knn_examples/train/kit_harington/john2.jpeg"),
        "stranger": shared_file(shared, f"{EX}/lin-manuel-miranda.png"),
        "empty": shared_file(shared, "nonface/pilatus800.jpg"),
    }


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory, pipeline, photos: dict[str, Path]) -> Path:  # type: ignore[no-untyped-def]
    """A gallery with Obama (obama.jpg), Biden and Kit Harington (john1), made once; tests get copies."""
    db = tmp_path_factory.mktemp("gallery") / "gallery.db"
    with FaceRec(db, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [photos["obama"]])
        fr.enroll(BIDEN, [photos["biden"]])
        fr.enroll(KIT, [photos["kit"]])
    return db


@pytest.fixture()
def db(enrolled: Path, tmp_path: Path) -> Path:
    for suffix in ("", ".faiss"):
        shutil.copy(str(enrolled) + suffix, str(tmp_path / "gallery.db") + suffix)
    return tmp_path / "gallery.db"


def test_claim_accepted_despite_one_bad_frame(
    photos: dict[str, Path], db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # Frames processed at 0.0 .. 1.0 s: empty, empty, Obama, Obama, BIDEN, Obama.
    video = write_video(
        tmp_path / "door.mp4",
        [(photos["empty"], 0.4), (photos["obama2"], 0.4), (photos["biden"], 0.2),
         (photos["obama2"], 0.6)],
    )  # fmt: skip
    run = camera(
        ["--source", str(video), "--claim", OBAMA, "--save-images", "--no-liveness",
         "--webhook", "http://127.0.0.1:9/unreachable", "--webhook-timeout-s", "0.5"],
        cli_env,
        db,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "accepted" and event["name"] == OBAMA and event["claim"] == OBAMA
    assert event["stream_time_s"] == pytest.approx(1.0)  # the third match, not before
    scores = event["scores"]
    assert isinstance(scores, list) and len(scores) == 4
    assert sum(s >= event["threshold"] for s in scores) == 3  # Biden's frame voted no
    assert event["frames"] == 6 and event["votes"] == 4
    latencies = event["frame_latencies_ms"]
    assert isinstance(latencies, list) and len(latencies) == 4
    assert all(f["ms"] > 0 for f in latencies) and event["latency_ms"] > 0
    assert "webhook" in run.stderr  # the unreachable webhook was logged, nothing crashed

    (row,) = audit_rows(db)
    assert row["id"] == event["audit_id"]
    assert (row["mode"], row["claimed_name"], row["decision"]) == ("claim", OBAMA, "accepted")
    assert row["identity_id"] is not None and row["frames"] == 6
    assert json.loads(str(row["scores"])) == pytest.approx(scores, abs=1e-4)
    image = row["image"]
    assert isinstance(image, bytes) and image[:3] == b"\xff\xd8\xff"  # a JPEG, as asked

    # Removing the person removes their audit event, image and all.
    rm = subprocess.run(
        [sys.executable, "-m", "facerec", "remove", OBAMA, "--db", str(db)],
        env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rm.returncode == 0, rm.stderr
    assert audit_rows(db) == []


def test_claim_rejected_despite_one_good_frame(
    photos: dict[str, Path],
    db: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    receiver: tuple[str, list[dict[str, object]]],
) -> None:
    # Frames processed at 0.0 .. 0.6 s: Biden, Biden, OBAMA, Biden.
    video = write_video(
        tmp_path / "door.mp4",
        [(photos["biden"], 0.4), (photos["obama2"], 0.2), (photos["biden"], 0.6)],
    )
    url, received = receiver
    run = camera(
        ["--source", str(video), "--claim", OBAMA, "--webhook", url, "--no-liveness"], cli_env, db
    )
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "rejected" and event["stream_time_s"] == pytest.approx(0.6)
    scores = event["scores"]
    assert isinstance(scores, list) and len(scores) == 4
    assert max(scores) >= event["threshold"] and event["best_score"] == max(scores)
    assert received == [event]  # the webhook got the same event as stdout
    (row,) = audit_rows(db)
    assert row["decision"] == "rejected" and row["image"] is None  # no image unless asked


def test_watch_reports_each_person_and_unknown_faces(
    photos: dict[str, Path], db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    video = write_video(
        tmp_path / "lobby.mp4",
        [(photos["empty"], 0.2), (photos["biden"], 0.6), (photos["stranger"], 0.6),
         (photos["obama2"], 0.6)],
    )  # fmt: skip
    run = camera(["--source", str(video), "--watch", "--no-liveness"], cli_env, db)
    assert run.returncode == 0, run.stdout + run.stderr
    got = [(e["decision"], e["name"]) for e in events(run)]
    assert got == [("identified", BIDEN), ("unknown", None), ("identified", OBAMA)]
    rows = audit_rows(db)
    assert [r["decision"] for r in rows] == ["identified", "unknown", "identified"]
    assert rows[1]["identity_id"] is None and all(r["mode"] == "watch" for r in rows)


def test_a_region_of_interest_leaves_out_faces_centred_outside_it(
    photos: dict[str, Path], db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The photos are centred in the frame: a region over its left edge sees none of them,
    one over its middle sees all three people, as the whole frame does."""
    video = write_video(
        tmp_path / "lobby.mp4",
        [(photos["biden"], 0.6), (photos["stranger"], 0.6), (photos["obama2"], 0.6)],
    )
    args = ["--source", str(video), "--watch", "--no-liveness", "--json"]
    edge = camera([*args, "--roi", "0,0,0.25,1"], cli_env, db)
    assert edge.returncode == 0, edge.stdout + edge.stderr
    assert events(edge) == [] and audit_rows(db) == []
    middle = camera([*args, "--roi", "0.25,0,0.75,1"], cli_env, db)
    got = [(e["decision"], e["name"]) for e in events(middle)]
    assert got == [("identified", BIDEN), ("unknown", None), ("identified", OBAMA)]
    for event in events(middle):  # boxes in the frame's pixels, centred in the region
        x1, _, x2, _ = event["box"]  # type: ignore[misc]
        assert 160 <= (x1 + x2) / 2 <= 480, event


def test_watch_reports_each_appearance_once_with_its_own_frames(
    photos: dict[str, Path],
    db: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    receiver: tuple[str, list[dict[str, object]]],
) -> None:
    """Three people in turn, 5 s each: three events (the window used to decide every 3 frames)."""
    segments = [(OBAMA, photos["obama2"], 5.0), (BIDEN, photos["biden"], 5.0),
                (KIT, photos["kit2"], 6.0)]  # fmt: skip
    video = write_video(tmp_path / "lobby.mp4", [(photo, s) for _, photo, s in segments])
    url, received = receiver
    run = camera(
        ["--source", str(video), "--watch", "--fps", "2", "--webhook", url, "--no-liveness"],
        cli_env,
        db,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    got = events(run)
    assert [(e["decision"], e["name"]) for e in got] == [("identified", n) for n, _, _ in segments]
    start = 0.0
    for event, (_, _, seconds) in zip(got, segments, strict=True):
        # Only this appearance's frames: all within the person's own stretch of the video.
        frames = event["frame_latencies_ms"]
        assert isinstance(frames, list) and event["votes"] == len(frames) == 3
        assert all(start <= f["t"] < start + seconds for f in frames), (event["name"], frames)
        assert all(s >= event["threshold"] for s in event["scores"])  # type: ignore[attr-defined]
        start += seconds
    assert [r["decision"] for r in audit_rows(db)] == ["identified"] * 3  # audit follows events
    assert [e["name"] for e in received] == [n for n, _, _ in segments]  # and so does the webhook


def test_no_face_until_the_stream_ends_is_a_timeout(
    photos: dict[str, Path], db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    video = write_video(tmp_path / "empty.mp4", [(photos["empty"], 0.6)])
    run = camera(["--source", str(video), "--claim", OBAMA, "--no-liveness"], cli_env, db)
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "timeout" and event["votes"] == 0 and event["frames"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--claim", "Nobody"], "no person named 'Nobody'"),
        (["--claim", OBAMA, "--watch"], "exactly one of"),
        (["--claim", OBAMA, "--k", "6"], "k <= n"),
        (["--watch", "--roi", "0.5,0,0.2,1"], "--roi must be x1,y1,x2,y2"),
        (["--watch", "--roi", "0,0,1"], "--roi must be x1,y1,x2,y2"),
        (["--watch", "--roi", "nan,0,1,1"], "--roi must be x1,y1,x2,y2"),
    ],
)
def test_errors_exit_2(
    photos: dict[str, Path], db: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    """Setup errors fail before any frame, so these run the CLI in-process (no model load)."""
    video = write_video(tmp_path / "v.mp4", [(photos["empty"], 0.2)])
    result = CliRunner().invoke(app, ["camera", "--source", str(video), *args, "--db", str(db)])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stdout == ""


def test_a_missing_video_exits_2(db: Path, tmp_path: Path) -> None:
    source = str(tmp_path / "nope.mp4")
    result = CliRunner().invoke(
        app, ["camera", "--source", source, "--claim", OBAMA, "--db", str(db)]
    )
    assert result.exit_code == 2 and "no such video file" in result.stderr, result.output
