"""Album scan throughput and peak RSS under photo-worker counts and glibc malloc policies.

    python scripts/bench_scan_settings.py                       # the four default variants
    python scripts/bench_scan_settings.py --photos 200 default:2 mmap8:2 mmap2:1

A variant is POLICY:THREADS. POLICY is `default` (glibc's sliding mmap
threshold) or `mmapN` (a fixed threshold of N MiB, as
`facerec.runtime.limit_heap_fragmentation` sets with 8); THREADS is
`Album.scan(threads=...)`: photos detected at once, one model thread each
(the README's older table, from before YuNet, measured torch threads). Each variant scans the same photos (built as
`scripts/bench_album.py` builds them) into a fresh gallery in its own process,
so one policy cannot leak into the next. This is how the scan's defaults were
chosen; `bench_album.py` then checks over 2,000 photos that the peak stays flat.

Prints a table and writes JSON (default bench-results/scan_settings.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_album  # the photo builder and the RSS sampler

RUNNER = r"""
import ctypes, json, sys
from facerec.album.api import Album
from facerec.api import FaceRec
policy, threads, folder, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if policy.startswith("mmap"):
    ctypes.CDLL("libc.so.6").mallopt(-3, int(policy[4:]) << 20)  # M_MMAP_THRESHOLD
with FaceRec(db) as fr, Album(fr) as album:
    fr.pipeline  # load the models before the clock starts
    s = album.scan(folder, threads=threads)
print(json.dumps({"photos": s.processed, "faces": s.faces, "seconds": s.seconds}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("variants", nargs="*", default=["mmap2:1", "default:1", "mmap2:2", "mmap8:2"])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--json", type=Path, default=Path("bench-results/scan_settings.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        folder = Path(tmp) / "album"
        bench_album.build_album(folder, args.photos)
        for variant in args.variants:
            policy, threads = variant.split(":")
            db = Path(tmp) / f"{policy}-{threads}.db"
            cmd = [sys.executable, "-c", RUNNER, policy, threads, str(folder), str(db)]
            done, samples = bench_album.run_sampled(cmd)
            if done is None or done.returncode != 0:
                raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:] if done else ''}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            r.update(
                policy=policy,
                threads=int(threads),
                photos_per_s=r["photos"] / r["seconds"],
                peak_rss_mib=max(m for _, m in samples),
            )
            rows.append(r)
            print(
                f"{variant}: {r['photos_per_s']:.2f} photos/s, peak {r['peak_rss_mib']:.0f} MiB",
                file=sys.stderr,
            )
    print("| malloc policy | photos at once (album.scan threads) | photos/s | peak RSS MiB |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['policy']} | {r['threads']} | {r['photos_per_s']:.2f} | {r['peak_rss_mib']:.0f} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "photos": args.photos,
        "cores": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "runs": rows,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
