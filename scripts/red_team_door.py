"""Replays of photos against the real door: how often `facerec camera --claim` opens.

Issue 24's attacks, rerun through the CLI as a door script runs it (a
subprocess per clip, the default detector, model and liveness policy):

- `mirror_flip`: one LFW photo of the person (not an enrolled one) filling
  the frame, swapped for its mirror image every 3 frames, 10 fps, 6 s;
- `slideshow`: 8 other LFW photos of the person, each for 4 frames, 10 fps, 3 s;
- `recording`: the real recording `video/short_hamilton_clip.mp4`, claimed
  by Lin-Manuel Miranda enrolled from his still photo (the genuine case).

Each person is enrolled from their first two LFW photos. Prints a table of
tried / opened per attack and writes JSON. `--checkout DIR` runs the door
from another source tree (e.g. `git archive OLD | tar -x -C DIR`), the clips
still rendered by this one, to compare before and after a change.

    OMP_NUM_THREADS=1 python scripts/red_team_door.py [--photos 6] [--checkout DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from facerec.api import FaceRec
from facerec.liveness import replay

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WEIGHTS = SHARED / "models" / "antispoof"
RECORDING = SHARED / "video" / "short_hamilton_clip.mp4"
PEOPLE = ["Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Laura_Bush"]
FPS = 10


def door(clip: Path, name: str, db: Path, checkout: Path | None) -> dict[str, object]:
    """One `facerec camera --claim` run: its exit code and its decision event."""
    env = {**os.environ, "FACEREC_OFFLINE": "1"}
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    args = ["--source", str(clip), "--claim", name, "--db", str(db), "--json",
            "--liveness-weights", str(WEIGHTS)]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "facerec", "camera", *args], env=env,
                         capture_output=True, text=True, timeout=300,
                         cwd=checkout)  # fmt: skip
    lines = [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]
    event = lines[-1] if lines else {}
    liveness = event.get("liveness") or {}
    return {
        "clip": clip.name,
        "claim": name,
        "exit": run.returncode,
        "decision": event.get("decision"),
        "reason": event.get("reason"),
        "cues": {c["cue"]: c["verdict"] for c in liveness.get("cues", [])},
        "why": liveness.get("reason"),
        "stream_time_s": event.get("stream_time_s"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=6, help="mirror-flip clips per person")
    ap.add_argument("--checkout", type=Path, help="run the door from this source tree")
    ap.add_argument("--json", type=Path, default=Path("bench-results/red_team_door.json"))
    args = ap.parse_args()
    start = time.perf_counter()
    runs: dict[str, list[dict[str, object]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        out, db = Path(tmp), Path(tmp) / "gallery.db"
        with FaceRec(db) as fr:
            for person in PEOPLE:
                files = sorted((SHARED / "lfw" / "images" / person).glob("*.jpg"))
                fr.enroll(person.replace("_", " "), files[:2], largest=True)
            fr.enroll("Lin-Manuel Miranda",
                      [SHARED / "face_recognition/examples/lin-manuel-miranda.png"])  # fmt: skip
        for person in PEOPLE:
            name = person.replace("_", " ")
            files = sorted((SHARED / "lfw" / "images" / person).glob("*.jpg"))[2:]
            for f in files[: args.photos]:
                frames = replay.mirror_flip(replay.read_bgr(f), 6 * FPS, every=3)
                clip = replay.write_mp4(out / f"mirror-{f.stem}.mp4", frames, FPS)
                runs["mirror_flip"].append(door(clip, name, db, args.checkout))
            for k in range(2):
                chosen = random.Random(k).sample(files, min(8, len(files)))
                frames = replay.slideshow([replay.read_bgr(p) for p in chosen], 3 * FPS, 4, k)
                clip = replay.write_mp4(out / f"slideshow-{person}-{k}.mp4", frames, FPS)
                runs["slideshow"].append(door(clip, name, db, args.checkout))
        runs["recording"].append(door(RECORDING, "Lin-Manuel Miranda", db, args.checkout))
    print(f"{'attack':12} {'tried':>5} {'opened':>6}  decisions")
    for kind, rs in runs.items():
        opened = sum(r["decision"] == "accepted" for r in rs)
        decisions = ", ".join(f"{d} {sum(r['decision'] == d for r in rs)}"
                              for d in sorted({str(r["decision"]) for r in rs}))  # fmt: skip
        print(f"{kind:12} {len(rs):>5} {opened:>6}  {decisions}")
    elapsed = time.perf_counter() - start
    print(f"\n{elapsed:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": runs, "seconds": elapsed}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
