"""Liveness at the door, end to end: `facerec camera --claim` on a real recording and on replays.

The genuine case is a real recording of a live, moving face: Lin-Manuel
Miranda in `video/short_hamilton_clip.mp4`, enrolled from his still photo.
The attacks come from `facerec.liveness.replay` (see its docstring for what
these renderings can and cannot stand for): Obama's photo held still (the
clip the door used to accept at cosine 0.957), the same face as a print
turning in perspective or shown on a phone screen, one LFW photo of Colin
Powell swapped for its mirror image every 3 frames (the swap fakes nose
parallax), and a slideshow of eight different LFW photos of him (enrolled
from two others). Every clip runs through the real CLI with its defaults.
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

from ..conftest import missing_shared, shared_file
from .conftest import audit_rows, camera, events

OBAMA, POWELL, BLAIR = "Barack Obama", "Colin Powell", "Tony Blair"
MIRANDA = "Lin-Manuel Miranda"
FPS = 10
#: LFW photos (none enrolled), each swapped for its mirror image in one clip. The first three
#: opened the door before the continuity cue; the last, a near-frontal face whose mirror image
#: the detector aligns a little turned, needs the cue's search over turns and scalings.
MIRRORED = {
    "Colin_Powell_0003.jpg": POWELL,
    "Colin_Powell_0006.jpg": POWELL,
    "Tony_Blair_0004.jpg": BLAIR,
    "Tony_Blair_0005.jpg": BLAIR,
}


@pytest.fixture(scope="module")
def weights(shared: Path) -> Path:
    shared_file(shared, "models/antispoof/2.7_80x80_MiniFASNetV2.pth")
    shared_file(shared, "models/antispoof/4_0_0_80x80_MiniFASNetV1SE.pth")
    return shared / "models" / "antispoof"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    """Enrolled with the default detector and model, as `facerec enroll` would."""
    db = tmp_path_factory.mktemp("gallery") / "gallery.db"
    powell = shared_file(shared, "lfw/images/Colin_Powell")
    examples = "face_recognition/examples"
    with FaceRec(db) as fr:
        fr.enroll(OBAMA, [shared_file(shared, f"{examples}/obama.jpg")])
        fr.enroll(POWELL, [powell / "Colin_Powell_0001.jpg", powell / "Colin_Powell_0002.jpg"])
        blair = [shared_file(shared, f"lfw/images/Tony_Blair/Tony_Blair_000{i}.jpg") for i in (1, 2)]
        fr.enroll(BLAIR, blair)
        fr.enroll(MIRANDA, [shared_file(shared, f"{examples}/lin-manuel-miranda.png")])
    return db


@pytest.fixture()
def db(gallery: Path, tmp_path: Path) -> Path:
    for suffix in ("", ".faiss"):
        if os.path.exists(str(gallery) + suffix):
            shutil.copy(str(gallery) + suffix, str(tmp_path / "gallery.db") + suffix)
    return tmp_path / "gallery.db"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, pipeline, shared: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Replay clips (3 s at 10 fps; the mirror flips 6 s), built once from the shared photos."""
    out = tmp_path_factory.mktemp("clips")
    obama = replay.read_bgr(shared_file(shared, "face_recognition/examples/obama2.jpg"))
    rgb = np.ascontiguousarray(cv2.cvtColor(obama, cv2.COLOR_BGR2RGB))
    face = max(pipeline.detector.detect(rgb), key=lambda f: f.area)
    printed = replay.crop_around(obama, face.box, 3.0)  # a face-sized print
    on_phone = replay.crop_around(obama, face.box, 2.0)  # the face filling a phone's screen
    folder = shared_file(shared, "lfw/images/Colin_Powell")
    people = sorted(folder.glob("*.jpg"))[2:]
    if len(people) < 8:
        missing_shared("LFW's Colin_Powell photos are not all present")
    slides = [replay.read_bgr(p) for p in random.Random(0).sample(people, 8)]
    n = 3 * FPS
    made = {
        "still": replay.write_mp4(out / "still.mp4", replay.still(obama, n), FPS),
        "tilted": replay.write_mp4(out / "tilted.mp4", replay.tilted_plane(printed, n), FPS),
        "screen": replay.write_mp4(
            out / "screen.mp4", replay.screen(on_phone, n, focus_sigma=1.0), FPS
        ),
        "slideshow": replay.write_mp4(out / "powell.mp4", replay.slideshow(slides, n, 4), FPS),
    }
    for name in MIRRORED:
        folder = name.rsplit("_", 1)[0]
        photo = replay.read_bgr(shared_file(shared, f"lfw/images/{folder}/{name}"))
        clip = replay.mirror_flip(photo, 6 * FPS, every=3)
        made[name] = replay.write_mp4(out / f"mirror-{name}.mp4", clip, FPS)
    return made


@pytest.fixture(scope="module")
def hamilton(shared: Path) -> Path:
    return shared_file(shared, "video/short_hamilton_clip.mp4")


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
    # not moved, so the planar and continuity cues have nothing to say yet.
    assert cues(event) == {"passive": "attack", "parallax": "undecided", "continuity": "undecided"}
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
    # A rigid print turning changes smoothly from frame to frame: only its flatness gives it away.
    assert cues(event) == {"passive": "live", "parallax": "attack", "continuity": "live"}
    assert "flat picture" in str(event["liveness"]["reason"])  # type: ignore[index]
    assert min(event["scores"]) >= event["threshold"]  # type: ignore[type-var]  # it *was* Obama's face


def test_a_real_recording_of_the_person_opens_the_door_with_every_cue_live(
    hamilton: Path, db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    run = camera(
        ["--source", str(hamilton), "--claim", MIRANDA, "--liveness-weights", str(weights)],
        cli_env,
        db,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (event,) = events(run)
    assert event["decision"] == "accepted" and event["reason"] is None
    assert cues(event) == {"passive": "live", "parallax": "live", "continuity": "live"}
    liveness = event["liveness"]
    assert isinstance(liveness, dict)
    passive = next(c for c in liveness["cues"] if c["cue"] == "passive")
    # A real camera's face: p(live) about 0.8 (which frames are decided on moves with the
    # landmarks), well above the live floor of 0.5.
    assert passive["score"] >= 0.7
    (row,) = audit_rows(db)
    assert row["decision"] == "accepted" and json.loads(str(row["liveness"]))["verdict"] == "live"


@pytest.mark.parametrize("photo", sorted(MIRRORED))
def test_a_photo_and_its_mirror_image_do_not_open_the_door(
    photo: str, clips: dict[str, Path], db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    run = camera(
        ["--source", str(clips[photo]), "--claim", MIRRORED[photo], "--liveness-weights",
         str(weights)],
        cli_env,
        db,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert (event["decision"], event["reason"]) == ("rejected", "presentation attack")
    assert cues(event)["continuity"] == "attack"
    assert "mirror image" in str(event["liveness"]["reason"])  # type: ignore[index]
    assert min(event["scores"]) >= event["threshold"]  # type: ignore[type-var]  # it *was* them


def test_a_slideshow_of_the_persons_photos_does_not_open_the_door(
    clips: dict[str, Path], db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    run = camera(
        ["--source", str(clips["slideshow"]), "--claim", POWELL, "--liveness-weights",
         str(weights)],
        cli_env,
        db,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert (event["decision"], event["reason"]) == ("rejected", "presentation attack")
    # Each photo is another pose, so the nose "moves in depth": the parallax cue is fooled.
    assert cues(event) == {"passive": "live", "parallax": "live", "continuity": "attack"}
    assert "slideshow" in str(event["liveness"]["reason"])  # type: ignore[index]
    (row,) = audit_rows(db)
    assert (row["decision"], row["reason"]) == ("rejected", "presentation attack")


def test_a_photo_shown_on_a_phone_screen_does_not_open_the_door(
    clips: dict[str, Path], db: Path, weights: Path, cli_env: dict[str, str]
) -> None:
    run = camera(
        ["--source", str(clips["screen"]), "--claim", OBAMA, "--liveness-weights", str(weights)],
        cli_env,
        db,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    (event,) = events(run)
    assert (event["decision"], event["reason"]) == ("rejected", "presentation attack")
    assert min(event["scores"]) >= event["threshold"]  # type: ignore[type-var]  # Obama's face


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
