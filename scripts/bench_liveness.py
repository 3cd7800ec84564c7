"""How often the liveness cues refuse replayed photos and accept a real recording.

Two measurements, on the shared photos only (no download; the weights come
from ../shared/data/models/antispoof unless --liveness-weights says otherwise):

1. The anti-spoofing CNN (`facerec.liveness.passive`) on *real photos*
   (LFW, openface, facenet-pytorch, face_recognition): these are camera
   captures of live faces and should mostly score live; the fraction at or
   above the threshold is the CNN's genuine acceptance on stills.
2. Clips rendered by `facerec.liveness.replay` from portraits of the shared
   sets, all attacks: `still`, `tilted_plane`, `framed_print`, `screen`,
   `mirror_flip` (the photo swapped for its mirror image every 2 frames) and
   slideshows of different real photos of one LFW person, each photo held
   for 2 frames (`slideshow`) or changed at every frame (`slideshow_fast`).
   The genuine case: the real recording `video/short_hamilton_clip.mp4`
   (Lin-Manuel Miranda on a stage), cut into overlapping windows of 4 s
   (20 analysed frames). Each clip goes through the door's path frame by
   frame (the default detector, quality gate, largest usable face), then every
   cue judges the clip's frames (`facerec.liveness.policy.assess`). Reported
   per clip type and cue: how often the cue says live / attack / undecided;
   and for the door: how often it would open (fused verdict live), with the
   default policy (every cue required) and with the CNN alone
   (--no-require-motion, where parallax and continuity can still refuse).

For attacks the figure of merit is the refusal rate (1 - opens); for the
recording the acceptance rate (opens). The renderings are not recaptures
(see `facerec.liveness.replay`) and one recording of one man is a small
genuine set, so these rates say how the cues behave on these sets, not what
a real attacker or every visitor achieves.

    python scripts/bench_liveness.py [--quick] [--json bench-results/liveness.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from facerec.camera.stream import FrameSource
from facerec.detectors import DetectedFace, Detector
from facerec.faces.alignment import warp_to_template
from facerec.faces.pipeline import ARCFACE_TEMPLATE
from facerec.faces.quality import QualityLimits
from facerec.faces.quality import assess as assess_quality
from facerec.liveness import continuity, replay
from facerec.liveness.continuity import appearance
from facerec.liveness.passive import AntiSpoof
from facerec.liveness.policy import FrameEvidence, LivenessPolicy, assess
from facerec.liveness.verdict import Cue, Verdict

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WEIGHTS = SHARED / "models" / "antispoof"
#: Portraits the attacks are made from (high resolution: an attacker prints a good photo).
PORTRAITS = [
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/obama2.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/alex-lacamoire.png",
    "face_recognition/examples/lin-manuel-miranda.png",
    "face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg",
    "face_recognition/examples/knn_examples/train/rose_leslie/img1.jpg",
    "facenet_pytorch/data/test_images/angelina_jolie/1.jpg",
    "facenet_pytorch/data/test_images/kate_siegel/1.jpg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
    "facenet_pytorch/data/test_images/shea_whigham/1.jpg",
    "openface/adams/1.jpg",
]
#: LFW people with many photos: the slideshow clips.
SLIDESHOW_PEOPLE = [
    "Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Jacques_Chirac", "Jennifer_Capriati",
    "Lleyton_Hewitt", "Laura_Bush", "Nestor_Kirchner", "Andre_Agassi", "Tom_Ridge",
    "Silvio_Berlusconi", "Megawati_Sukarnoputri",
]  # fmt: skip
ATTACKS: dict[str, Callable[[replay.BGRImage, int, int], list[replay.BGRImage]]] = {
    "still": lambda p, n, s: replay.still(p, n, s),
    "tilted_plane": lambda p, n, s: replay.tilted_plane(p, n, 30.0, s),
    "framed_print": lambda p, n, s: replay.framed_print(p, n, s),
    "screen": lambda p, n, s: replay.screen(p, n, s, focus_sigma=1.0),  # faint moire
    "mirror_flip": lambda p, n, s: replay.mirror_flip(p, n, 2, s),
}
#: The real recording (genuine), cut into windows of 4 s (20 analysed frames: the face is not
#: found in every frame) each 1 s after the last.
RECORDING = SHARED / "video" / "short_hamilton_clip.mp4"
WINDOW_FRAMES, WINDOW_STRIDE = 20, 5


class Door:
    """The door's per-frame path without the embedding: detection, quality gate, largest face."""

    def __init__(self, antispoof: AntiSpoof) -> None:
        self.detector = Detector()
        self.antispoof = antispoof
        self.limits = QualityLimits()

    def best_face(self, rgb: np.ndarray) -> tuple[DetectedFace, float, np.ndarray] | None:
        usable = []
        for det in self.detector.detect(rgb):
            chip = warp_to_template(rgb, det.landmarks_array(), ARCFACE_TEMPLATE)
            q = assess_quality(det, chip, self.limits)
            if q.ok:
                usable.append((det, q.yaw, chip))
        return max(usable, key=lambda d: d[0].area) if usable else None

    def evidence(self, frames: list[replay.BGRImage], fps: float) -> list[FrameEvidence]:
        out = []
        for i, bgr in enumerate(frames):
            rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            found = self.best_face(rgb)
            if found is None:
                continue
            det, yaw, chip = found
            p = self.antispoof.score(rgb, det.box).p_real
            out.append(FrameEvidence(i / fps, p, det.landmarks, yaw, appearance(chip)))
        return out


def recording_windows(door: Door, path: Path, fps: float, n: int) -> list[list[FrameEvidence]]:
    """The recording sampled at `fps` as the door samples it, in windows of `n` analysed frames."""
    frames = []
    with FrameSource(str(path), fps=fps) as source:
        for f in source:
            frames.append(np.ascontiguousarray(cv2.cvtColor(f.pixels, cv2.COLOR_RGB2BGR)))
    starts = range(0, max(len(frames) - n, 0) + 1, WINDOW_STRIDE)
    return [door.evidence(frames[i : i + n], fps) for i in starts]


def photo_stats(door: Door, files: list[Path], min_real: float) -> dict[str, object]:
    scores = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        found = door.best_face(rgb)
        if found is not None:
            scores.append(door.antispoof.score(rgb, found[0].box).p_real)
    a = np.asarray(scores)
    return {
        "faces": len(scores),
        "mean_p_live": float(a.mean()) if len(a) else None,
        "median_p_live": float(np.median(a)) if len(a) else None,
        "live_rate": float((a >= min_real).mean()) if len(a) else None,
    }


def judge_clip(evidence: list[FrameEvidence], policy: LivenessPolicy) -> dict[str, object]:
    fused = assess(evidence, policy)
    looks = [e.appearance for e in evidence if e.appearance is not None]
    steps = continuity.measure(looks, policy.continuity)
    cnn_only = assess(evidence, replace(policy, require_motion=False))
    passive, parallax = fused.cue(Cue.PASSIVE), fused.cue(Cue.PARALLAX)
    smooth = fused.cue(Cue.CONTINUITY)
    assert passive is not None and parallax is not None and smooth is not None
    return {
        "frames_with_face": len(evidence),
        "mean_p_live": float(np.mean([e.p_real for e in evidence])) if evidence else None,
        "passive": passive.verdict.value,
        "parallax": parallax.verdict.value,
        "parallax_residual": parallax.score,
        "continuity": smooth.verdict.value,
        "continuity_reason": smooth.reason,
        "mirror_copies": steps.mirrors,
        "cuts": steps.cuts,
        "most_mirrored": steps.most_mirrored,
        "mirror_ratio": steps.mirror_ratio,
        "door": fused.verdict.value,
        "door_cnn_only": cnn_only.verdict.value,
    }


def summarise(clips: list[dict[str, object]]) -> dict[str, object]:
    n = len(clips)
    out: dict[str, object] = {"clips": n}
    for key in ("passive", "parallax", "continuity", "door", "door_cnn_only"):
        counts = Counter(str(c[key]) for c in clips)
        out[key] = {v.value: counts.get(v.value, 0) / n for v in Verdict} if n else {}
    p = [float(c["mean_p_live"]) for c in clips if c["mean_p_live"] is not None]  # type: ignore[arg-type]
    r = [float(c["parallax_residual"]) for c in clips if c["parallax_residual"] is not None]  # type: ignore[arg-type]
    out["mean_p_live"] = float(np.mean(p)) if p else None
    # Without the continuity cue (before it existed): CNN and parallax both live.
    out["opens_without_continuity"] = (
        sum(c["passive"] == c["parallax"] == "live" for c in clips) / n if n else None
    )
    for key, pick in (("most_mirrored", max), ("mirror_ratio", min)):
        values = [float(c[key]) for c in clips if c["frames_with_face"]]  # type: ignore[arg-type]
        out[key] = pick(values) if values else None
    out["clips_with_cuts"] = sum(int(c["cuts"]) > 0 for c in clips)  # type: ignore[call-overload]
    out["parallax_residual_median"] = float(np.median(r)) if r else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few clips and photos (a smoke run)")
    ap.add_argument("--frames", type=int, default=15, help="frames per clip (5 fps)")
    ap.add_argument("--lfw", type=int, default=200, help="random LFW photos for the CNN")
    ap.add_argument("--liveness-weights", type=Path, default=WEIGHTS if WEIGHTS.is_dir() else None)
    ap.add_argument("--json", type=Path, default=Path("bench-results/liveness.json"))
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    portraits = [SHARED / p for p in PORTRAITS if (SHARED / p).is_file()]
    people = [p for p in SLIDESHOW_PEOPLE if (SHARED / "lfw" / "images" / p).is_dir()]
    lfw_n = args.lfw
    if args.quick:
        portraits, people, lfw_n = portraits[:2], people[:2], 10
    policy = LivenessPolicy()
    door = Door(AntiSpoof(args.liveness_weights))
    fps = 5.0
    start = time.perf_counter()

    rng = random.Random(0)
    lfw_all = sorted((SHARED / "lfw" / "images").glob("*/*.jpg"))
    photo_sets = {
        "lfw": rng.sample(lfw_all, min(lfw_n, len(lfw_all))),
        "openface": sorted((SHARED / "openface").glob("*/*.jpg")),
        "facenet_pytorch": sorted((SHARED / "facenet_pytorch/data/test_images").glob("*/*.jpg")),
        "face_recognition": sorted((SHARED / "face_recognition/examples").glob("*.jp*g")),
    }
    photos = {k: photo_stats(door, v, policy.min_real) for k, v in photo_sets.items()}

    kinds = [*ATTACKS, "slideshow", "slideshow_fast", "recording"]
    clips: dict[str, list[dict[str, object]]] = {k: [] for k in kinds}
    for i, path in enumerate(portraits):
        bgr = replay.read_bgr(path)
        found = door.best_face(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        if found is None:
            continue
        sheet = replay.crop_around(bgr, found[0].box, 3.0)  # a face-sized print
        for kind, render in ATTACKS.items():
            ev = door.evidence(render(sheet, args.frames, i), fps)
            clips[kind].append({"source": str(path.relative_to(SHARED)), **judge_clip(ev, policy)})
    for i, person in enumerate(people):
        files = sorted((SHARED / "lfw" / "images" / person).glob("*.jpg"))
        chosen = random.Random(i).sample(files, min(8, len(files)))
        photos_of = [replay.read_bgr(f) for f in chosen]
        for kind, hold in (("slideshow", 2), ("slideshow_fast", 1)):
            ev = door.evidence(replay.slideshow(photos_of, args.frames, hold, i), fps)
            clips[kind].append({"source": f"lfw/{person} x{len(chosen)}", **judge_clip(ev, policy)})
    if RECORDING.is_file():
        windows = recording_windows(door, RECORDING, fps, WINDOW_FRAMES)
        for k, ev in enumerate(windows[:2] if args.quick else windows):
            source = f"{RECORDING.relative_to(SHARED)} from frame {k * WINDOW_STRIDE}"
            clips["recording"].append({"source": source, **judge_clip(ev, policy)})

    summary = {k: summarise(v) for k, v in clips.items()}
    elapsed = time.perf_counter() - start

    print(f"CNN p(live) on real photos (threshold {policy.min_real}):")
    print(f"{'set':18} {'faces':>6} {'mean':>6} {'median':>7} {'live':>6}")
    for name, s in photos.items():
        if s["faces"]:
            print(f"{name:18} {s['faces']:>6} {s['mean_p_live']:>6.3f} {s['median_p_live']:>7.3f} "
                  f"{s['live_rate']:>6.1%}")  # fmt: skip
    print()
    print("Clips (fraction of clips; attacks should not open, the recording should):")
    head = f"{'clip':14} {'n':>3} {'p(live)':>7} | {'CNN live':>8} {'CNN atk':>7} | " \
           f"{'plx live':>8} {'plx atk':>7} {'plx und':>7} | {'cont live':>9} {'cont atk':>8} | " \
           f"{'opens':>6} {'opens CNN-only':>14}"  # fmt: skip
    print(head)
    for kind, s in summary.items():
        if not s["clips"]:
            continue
        pa, px, d, dc = s["passive"], s["parallax"], s["door"], s["door_cnn_only"]
        co = s["continuity"]
        assert isinstance(pa, dict) and isinstance(px, dict) and isinstance(co, dict)
        assert isinstance(d, dict) and isinstance(dc, dict)
        print(f"{kind:14} {s['clips']:>3} {s['mean_p_live'] or 0:>7.3f} | {pa['live']:>8.0%} {pa['attack']:>7.0%} | "
              f"{px['live']:>8.0%} {px['attack']:>7.0%} {px['undecided']:>7.0%} | "
              f"{co['live']:>9.0%} {co['attack']:>8.0%} | "
              f"{d['live']:>6.0%} {dc['live']:>14.0%}")  # fmt: skip
    print()
    print("Continuity measures (over all clips of a kind; a mirror copy needs mirrored >= "
          f"{policy.continuity.mirror_min} and ratio <= {policy.continuity.mirror_ratio}):")
    print(f"{'clip':14} {'max mirrored':>12} {'min ratio':>9} {'with cuts':>9} "
          f"{'opens without continuity':>24}")  # fmt: skip
    for kind, s in summary.items():
        if s["clips"]:
            print(f"{kind:14} {s['most_mirrored']:>12.2f} {s['mirror_ratio']:>9.2f} "
                  f"{s['clips_with_cuts']:>9} {s['opens_without_continuity']:>24.0%}")  # fmt: skip
    print(f"\n{elapsed:.0f} s on {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip

    result = {
        "policy": {
            "min_real": policy.min_real,
            "require_motion": policy.require_motion,
            "parallax": vars_of(policy.parallax),
            "continuity": vars_of(policy.continuity),
        },
        "frames_per_clip": args.frames,
        "fps": fps,
        "photos": photos,
        "clips": summary,
        "per_clip": clips,
        "seconds": elapsed,
        "load_average": os.getloadavg()[0],
        "machine": platform.platform(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


def vars_of(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


if __name__ == "__main__":
    main()
