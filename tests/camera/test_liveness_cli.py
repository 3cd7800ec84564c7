"""Liveness at the door, end to end: `facerec camera --claim` on replayed photos and on the genuine proxy.

The clips come from `facerec.liveness.replay` (see its docstring for what
these renderings can and cannot stand for): Obama's photo held still (the
clip the door used to accept at cosine 0.957), the same face as a print
turning in perspective, and, as the genuine proxy, a slideshow of eight
different LFW photos of Colin Powell (enrolled from two others).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facerec.api import FaceRec
from facerec.liveness import replay

from ..conftest import shared_file
from .conftest import audit_rows, camera, events

OBAMA, POWELL = "Barack Obama", "Colin Powell"
FPS = 10


@pytest.fixture(scope="module")
def weights(shared: Path) -> Path:
    shared_file(shared, "models/antispoof/2.7_80x80_MiniFASNetV2.pth")
    shared_file(shared, "models/antispoof/4_0_0_80x80_MiniFASNetV1SE.pth")
    return shared / "models" / "antispoof"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, pipeline, shared: Path) -> Path:  # type: ignore[no-untyped-def]
    db = tmp_path_factory.mktemp("gallery") / "gallery.db"
    powell = shared / "lfw" / "images" / "Colin_Powell"
    with FaceRec(db, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [shared_file(shared, "face_recognition/examples/obama.jpg")])
        fr.enroll(POWELL, [powell / "Colin_Powell_0001.jpg", powell / "Colin_Powell_0002.jpg"])
    return db


@pytest.fixture()
def db(gallery: Path, tmp_path: Path) -> Path:
    for suffix in ("", ".faiss"):
        shutil.copy(str(gallery) + suffix, str(tmp_path / "gallery.db") + suffix)
    return tmp_path / "gallery.db"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, pipeline, shared: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Replay clips (3 s at 10 fps) and the genuine proxy, built once from the shared photos."""
    out = tmp_path_factory.mktemp("clips")
    obama = replay.read_bgr(shared_file(shared, "face_recognition/examples/obama2.jpg"))
    rgb = np.ascontiguousarray(cv2.cvtColor(obama, cv2.COLOR_BGR2RGB))
    face = max(pipeline.detector.detect(rgb), key=lambda f: f.area)
    printed = replay.crop_around(obama, face.box, 3.0)  # a face-sized print
    people = sorted((shared / "lfw" / "images" / "Colin_Powell").glob("*.jpg"))[2:]
    if len(people) < 8:
        pytest.skip("LFW's Colin_Powell photos are not all present")
    slides = [replay.read_bgr(p) for p in random.Random(0).sample(people, 8)]
    n = 3 * FPS
    return {
        "still": replay.write_mp4(out / "still.mp4", replay.still(obama, n), FPS),
        "tilted": replay.write_mp4(out / "tilted.mp4", replay.tilted_plane(printed, n), FPS),
        "slideshow": replay.write_mp4(out / "powell.mp4", replay.slideshow(slides, n, 4), FPS),
    }


def cues(event: dict[str, object]) -> dict[str, str]:
    liveness = event["liveness"]
    assert isinstance(liveness, dict)
    return {c["cue"]: c["verdict"] for c in liveness["cues"]}


def test_a_photo_held_still_no_longer_opens_the_door(
    clips: dict[str, Path],
    db: Path,
    weights: Path,
    cli_env: dict[str, str],
    receiver: tuple[str, list[dict[str, object]]],
) -> None:
    url, received = receiver
    args = ["--source", str(clips["still"]), "--claim", OBAMA, "--webhook", url]
    run = camera([*args, "--liveness-weights", str(weights)], cli_env, db)
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert (event["decision"], event["reason"]) == ("rejected", "presentation attack")
    # The CNN refuses it at once (the wide crop sees the photo's edges on black); the face has
    # not moved, so the planar cue has nothing to say yet.
    assert cues(event) == {"passive": "attack", "parallax": "undecided"}
    liveness = event["liveness"]
    assert isinstance(liveness, dict) and len(liveness["p_real"]) == event["votes"] == 3
    assert received == [event]  # the webhook carries the same liveness record
    (row,) = audit_rows(db)
    assert row["reason"] == event["reason"] and json.loads(str(row["liveness"])) == liveness

    # The same clip without liveness: what the door did before (the identity matches).
    run = camera([*args, "--no-liveness"], cli_env, db)
    assert run.returncode == 0, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "accepted" and event["liveness"] is None


def test_a_print_turning_like_a_plane_is_a_presentation_attack(
    clips: dict[str, Path], db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    # --liveness-threshold 0: the CNN cannot refuse, so this is the planar-motion cue's verdict.
    run = camera(
        ["--source", str(clips["tilted"]), "--claim", OBAMA, "--liveness-weights", str(weights),
         "--liveness-threshold", "0"],
        cli_env,
        db,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert (event["decision"], event["reason"]) == ("rejected", "presentation attack")
    assert cues(event) == {"passive": "live", "parallax": "attack"}
    assert "flat picture" in str(event["liveness"]["reason"])  # type: ignore[index]
    assert min(event["scores"]) >= event["threshold"]  # type: ignore[type-var]  # it *was* Obama's face


def test_the_genuine_proxy_is_accepted_with_both_cues_live(
    clips: dict[str, Path], db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    run = camera(
        [
            "--source",
            str(clips["slideshow"]),
            "--claim",
            POWELL,
            "--liveness-weights",
            str(weights),
        ],
        cli_env,
        db,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "accepted" and event["reason"] is None
    assert cues(event) == {"passive": "live", "parallax": "live"}
    (row,) = audit_rows(db)
    assert row["decision"] == "accepted" and json.loads(str(row["liveness"]))["verdict"] == "live"


def test_the_turn_challenge_is_announced_and_must_be_met(
    clips: dict[str, Path], db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    run = camera(
        ["--source", str(clips["still"]), "--claim", OBAMA, "--liveness-weights", str(weights),
         "--challenge", "turn", "--no-require-motion", "--liveness-threshold", "0"],
        cli_env,
        db,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    prompt, event = events(run)
    assert prompt["event"] == "challenge" and prompt["direction"] in ("left", "right")
    assert f"turn your head to your {prompt['direction']}" == prompt["prompt"]
    # A photo cannot turn: the CNN was told to accept anything, the challenge still keeps it out.
    assert event["decision"] == "timeout" and "liveness undecided" in str(event["reason"])
    assert cues(event)["challenge"] == "undecided"


def test_missing_weights_fail_before_any_frame_and_say_what_to_do(
    clips: dict[str, Path], db: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--source", str(clips["still"]), "--claim", OBAMA, "--liveness-weights", str(empty)]
    run = camera(args, cli_env, db)
    assert run.returncode == 2
    # No event, only the error object --json promises (facerec.schemas.ErrorEnvelopeJSON).
    assert json.loads(run.stdout)["error"]["exit_code"] == 2
    assert "--no-liveness" in run.stderr and "leave --liveness-weights out" in run.stderr
    assert "raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing" in run.stderr
    assert audit_rows(db) == []


def test_the_shipped_models_need_no_download(
    clips: dict[str, Path], db: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """No --liveness-weights, an empty torch-hub folder: the ONNX files in the package decide."""
    env = {**cli_env, "TORCH_HOME": str(tmp_path / "empty-torch-home")}
    run = camera(["--source", str(clips["still"]), "--claim", OBAMA], env, db)
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert (event["decision"], event["reason"]) == ("rejected", "presentation attack")
    assert not os.path.exists(tmp_path / "empty-torch-home")  # nothing fetched
