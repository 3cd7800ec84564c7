"""Album scan throughput vs face_recognition (dlib), decoding threads vs processes, and flat RSS.

What it does, all on photos it builds itself from the shared sets (face_recognition,
facenet_pytorch, openface portraits and group photos, plus LFW) by augmentation:
random flip, crop (85-100 %), scale and JPEG quality, longest side at most 1600 px
(the scan's own `--max-side`, so both systems see the same pixels):

1. decode only: the scan's reader (read, hash, decode) over the photos with a thread
   pool and with a process pool of the same size: why the scan uses threads;
2. `facerec album scan` over `--photos` photos (default 200) in a subprocess: photos/s
   and faces/s from its own summary (model loading excluded), plus wall time;
3. `facerec album scan --ray` over the same photos (skipped with `--skip-ray` or when the
   'distributed' extra is missing): a Ray instance started on this machine for the scan,
   one single-thread worker per core, so the difference to 2. is the engine's overhead
   (its start, the actors loading the models, moving rows); here the scan's seconds
   include all of that, and the RSS is the driver's alone (the workers are other
   processes);
4. face_recognition (dlib HOG `face_locations` + `face_encodings`, its defaults) over
   the same photos, installed by this script into its own venv (not a project
   dependency): `dlib-bin`, `face-recognition-models`, `face-recognition --no-deps`;
5. RSS across a `--rss-photos` (default 2000) photo scan: sampled from
   /proc/<pid>/status every 0.25 s (peaks, per quarter of the run), and logged by the
   scan itself after every batch (what a leak would make grow): the medians of the
   first and last quarter of that series show it stays flat. `--rss-seconds` stops a
   long run early and reports what it has.

Prints a table and writes JSON to `--json` (default bench-results/album.json).

    python scripts/bench_album.py [--photos 200] [--rss-photos 2000] [--rss-seconds 0]
        [--workers N] [--threads N] [--detector mtcnn|yunet] [--skip-ray]
        [--skip-face-recognition] [--fr-venv DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from facerec.detectors import DEFAULT_DETECTOR

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SETS = ("face_recognition", "facenet_pytorch", "openface")
LFW_SOURCES = 40
MAX_SIDE = 1600
SUFFIXES = {".jpg", ".jpeg", ".png"}

FR_RUNNER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import face_recognition

    paths = sorted(p for p in Path(sys.argv[1]).rglob("*.jpg"))
    faces = 0
    start = time.perf_counter()
    for p in paths:
        img = face_recognition.load_image_file(str(p))
        boxes = face_recognition.face_locations(img)
        faces += len(face_recognition.face_encodings(img, boxes))
    seconds = time.perf_counter() - start
    print(json.dumps({"photos": len(paths), "faces": faces, "seconds": seconds}))
    """
)


def sources() -> list[Path]:
    """The shared photos the album is built from (skip, saying why, when absent)."""
    out: list[Path] = []
    for s in SETS:
        out += sorted(p for p in (SHARED / s).rglob("*") if p.suffix.lower() in SUFFIXES)
    lfw = SHARED / "lfw" / "images"
    if lfw.is_dir():
        people = sorted(d for d in lfw.iterdir() if d.is_dir())[:LFW_SOURCES]
        out += [sorted(d.glob("*.jpg"))[0] for d in people]
    if not out:
        raise SystemExit(f"no shared photos under {SHARED}")
    return out


def build_album(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` augmented photos in subfolders of 100 (the scan is recursive)."""
    rng = random.Random(seed)
    srcs = sources()
    images = {}
    out = []
    for i in range(n):
        src = srcs[i % len(srcs)]
        if src not in images:
            images[src] = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
        img = images[src]
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.85, 1.0)), int(h * rng.uniform(0.85, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = img.crop((x, y, x + cw, y + ch))
        scale = min(rng.uniform(0.6, 1.3), MAX_SIDE / max(img.size))
        img = img.resize(
            (max(32, int(img.width * scale)), max(32, int(img.height * scale))),
            Image.Resampling.LANCZOS,
        )
        path = folder / f"part{i // 100:03d}" / f"photo{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, quality=rng.randint(60, 95))
        out.append(path)
    return out


def decode_rate(paths: list[Path], workers: int) -> dict[str, float]:
    """Photos/s of the scan's reader (read + hash + decode + shrink), threads vs processes."""
    from facerec.album.scan import PhotoFile

    files = [PhotoFile(p, p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    out = {}
    for kind, pool_type in (("threads", ThreadPoolExecutor), ("processes", ProcessPoolExecutor)):
        with pool_type(workers) as pool:
            list(pool.map(fetch_one, files[: workers * 2]))  # warm up (process start, imports)
            start = time.perf_counter()
            for _ in pool.map(fetch_one, files, chunksize=1):
                pass
            out[kind] = len(files) / (time.perf_counter() - start)
    return out


_FETCHER: Any = None


def fetch_one(file: Any) -> Any:
    """The scan's reader, one per process: its decode budget holds a lock, which no process
    can be sent, so each process makes its own (threads share the first)."""
    global _FETCHER
    if _FETCHER is None:
        from facerec.album.scan import Fetcher

        _FETCHER = Fetcher(frozenset(), max_side=MAX_SIDE)
    return _FETCHER(file)


# The RSS run's child: the real CLI, with the scan's per-batch `release_memory` traced so the
# RSS *between* batches (what a leak would grow) is logged, not only the in-batch peaks.
TRACED_SCAN = textwrap.dedent(
    """
    import sys, time
    import facerec.album.scan as scan

    log = open(sys.argv[1], "w")
    release = scan.release_memory

    def traced():
        release()
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                log.write(f"{time.monotonic()} {int(line.split()[1]) / 1024:.1f}\\n")
                log.flush()

    scan.release_memory = traced
    sys.argv = ["facerec", *sys.argv[2:]]
    from facerec.cli import main

    main()
    """
)


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_sampled(
    cmd: list[str], max_seconds: float | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str] | None, list[tuple[float, float]]]:
    """Run `cmd`, sampling its RSS (MiB) every 0.25 s; stop it after `max_seconds` if given."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        start = time.monotonic()
        samples: list[tuple[float, float]] = []
        stopped = False
        while proc.poll() is None:
            r = rss_mib(proc.pid)
            if r is not None:
                samples.append((time.monotonic() - start, r))
            if max_seconds and time.monotonic() - start > max_seconds:
                proc.terminate()
                stopped = True
                proc.wait(timeout=60)
                break
            time.sleep(0.25)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    return (None if stopped else done), samples


def scan_cmd(folder: Path, db: Path, args: argparse.Namespace, *, ray: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "facerec", "album", "scan", str(folder), "--db", str(db)]
    cmd += ["--json", "--no-thumbnails"] if args.no_thumbnails else ["--json"]
    if ray:
        cmd += ["--ray"]  # a local Ray instance, one single-thread worker per core
    else:
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
    return [*cmd, "--detector", args.detector] if args.detector else cmd


def facerec_scan(
    folder: Path, work: Path, args: argparse.Namespace, *, ray: bool = False
) -> dict[str, float]:
    db = work / ("bench-ray.db" if ray else "bench.db")
    start = time.perf_counter()
    done, samples = run_sampled(scan_cmd(folder, db, args, ray=ray))
    wall = time.perf_counter() - start
    assert done is not None
    if done.returncode != 0:
        raise SystemExit(f"facerec album scan failed:\n{done.stderr[-3000:]}")
    s = json.loads(done.stdout)
    return {
        "photos": s["processed"],
        "faces": s["faces"],
        "scan_seconds": s["seconds"],
        "wall_seconds": wall,
        "photos_per_s": s["processed"] / s["seconds"],
        "faces_per_s": s["faces"] / s["seconds"],
        "peak_rss_mib": max((r for _, r in samples), default=float("nan")),
    }


def face_recognition_venv(venv: Path) -> Path:
    """A venv with face_recognition (dlib-bin wheels, no compiler needed); reused if present."""
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run([python, "-c", "import face_recognition"], capture_output=True)
        if probe.returncode == 0:
            return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    # --no-deps below skips face_recognition's pin on a source build of dlib, so its other
    # needs come here; face_recognition_models' __init__ imports pkg_resources (setuptools<81).
    subprocess.run(
        [*pip, "dlib-bin", "face-recognition-models", "numpy", "pillow", "setuptools<81"],
        check=True,
    )
    subprocess.run([*pip, "face-recognition", "--no-deps"], check=True)
    return python


def face_recognition_scan(folder: Path, python: Path, work: Path) -> dict[str, float]:
    runner = work / "fr_runner.py"
    runner.write_text(FR_RUNNER)
    done, samples = run_sampled([str(python), str(runner), str(folder)])
    assert done is not None
    if done.returncode != 0:
        raise SystemExit(f"face_recognition run failed:\n{done.stderr[-3000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "photos": r["photos"],
        "faces": r["faces"],
        "scan_seconds": r["seconds"],
        "photos_per_s": r["photos"] / r["seconds"],
        "faces_per_s": r["faces"] / r["seconds"],
        "peak_rss_mib": max((x for _, x in samples), default=float("nan")),
    }


def rss_run(n: int, work: Path, args: argparse.Namespace) -> dict[str, object]:
    folder = work / "rss-album"
    t0 = time.perf_counter()
    build_album(folder, n, seed=1)
    built = time.perf_counter() - t0
    db = work / "rss.db"
    child = work / "traced_scan.py"
    child.write_text(TRACED_SCAN)
    trace = work / "between-batches.txt"
    cmd = [sys.executable, str(child), str(trace), *scan_cmd(folder, db, args)[3:]]
    done, samples = run_sampled(cmd, max_seconds=args.rss_seconds or None)
    import sqlite3

    con = sqlite3.connect(db)
    try:
        scanned = int(con.execute("SELECT COUNT(*) FROM album_photos").fetchone()[0])
    finally:
        con.close()
    between = [float(line.split()[1]) for line in trace.read_text().splitlines() if line.strip()]
    q = max(1, len(between) // 4)
    quarters = [samples[i * len(samples) // 4 : (i + 1) * len(samples) // 4] for i in range(4)]
    return {
        "photos_in_folder": n,
        "photos_scanned": scanned,
        "completed": done is not None and done.returncode == 0,
        "build_seconds": built,
        "seconds": samples[-1][0] if samples else 0.0,
        "batches": len(between),
        "peak_rss_mib": max((r for _, r in samples), default=float("nan")),
        "between_batches_first_quarter_median_mib": statistics.median(between[:q]),
        "between_batches_last_quarter_median_mib": statistics.median(between[-q:]),
        "peak_per_quarter_mib": [max((r for _, r in qs), default=0.0) for qs in quarters],
        "between_batches": between,
        "curve": [(round(t, 2), round(r, 1)) for t, r in samples[:: max(1, len(samples) // 400)]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--rss-photos", type=int, default=2000, help="0 skips the RSS run")
    ap.add_argument("--rss-seconds", type=float, default=0, help="stop the RSS run after this")
    ap.add_argument("--workers", type=int, default=None, help="scan decoder threads")
    ap.add_argument(
        "--threads", type=int, default=None, help="photos detected at once [one per core]"
    )
    ap.add_argument(
        "--detector", choices=("mtcnn", "yunet"), default=None, help="[facerec's default]"
    )
    ap.add_argument("--no-thumbnails", action="store_true")
    ap.add_argument("--skip-ray", action="store_true", help="no `--ray` scan")
    ap.add_argument("--skip-face-recognition", action="store_true")
    ap.add_argument("--fr-venv", type=Path, default=None, help="reuse/create this venv")
    ap.add_argument("--json", type=Path, default=ROOT / "bench-results" / "album.json")
    args = ap.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    result: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": cores,
            "load_avg_at_start": os.getloadavg(),
        },
        "photos": args.photos,
        "detector": args.detector or str(DEFAULT_DETECTOR),
    }
    with tempfile.TemporaryDirectory(prefix="bench-album-") as tmp:
        work = Path(tmp)
        album = work / "album"
        paths = build_album(album, args.photos)
        print(f"built {len(paths)} photos in {album}", file=sys.stderr)
        result["decode_photos_per_s"] = decode_rate(paths, args.workers or max(1, (cores or 2) - 1))
        print(f"decode: {result['decode_photos_per_s']}", file=sys.stderr)
        result["facerec"] = facerec_scan(album, work, args)
        print(f"facerec: {result['facerec']}", file=sys.stderr)
        if not args.skip_ray:
            if importlib.util.find_spec("ray") is None:
                print("ray: the 'distributed' extra is not installed; skipped", file=sys.stderr)
            else:
                result["facerec_ray"] = facerec_scan(album, work, args, ray=True)
                print(f"facerec --ray: {result['facerec_ray']}", file=sys.stderr)
        if not args.skip_face_recognition:
            python = face_recognition_venv(args.fr_venv or work / "fr-venv")
            result["face_recognition"] = face_recognition_scan(album, python, work)
            print(f"face_recognition: {result['face_recognition']}", file=sys.stderr)
        if args.rss_photos:
            result["rss"] = rss_run(args.rss_photos, work, args)
    result["machine"]["load_avg_at_end"] = os.getloadavg()  # type: ignore[index]

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwritten: {args.json}")


def print_table(r: dict[str, object]) -> None:
    rows = [("system", "photos", "faces", "photos/s", "faces/s", "peak RSS MiB")]
    for key, label in (
        ("facerec", "facerec album scan"),
        ("facerec_ray", "facerec album scan --ray (local Ray)"),
        ("face_recognition", "face_recognition"),
    ):
        x = r.get(key)
        if isinstance(x, dict):
            rows.append(
                (
                    label,
                    str(x["photos"]),
                    str(x["faces"]),
                    f"{x['photos_per_s']:.2f}",
                    f"{x['faces_per_s']:.2f}",
                    f"{x['peak_rss_mib']:.0f}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    d = r.get("decode_photos_per_s")
    if isinstance(d, dict):
        print(
            f"\ndecode only (photos/s): threads {d['threads']:.1f}, processes {d['processes']:.1f}"
        )
    rss = r.get("rss")
    if isinstance(rss, dict):
        state = "complete" if rss["completed"] else "stopped early"
        peaks = ", ".join(f"{p:.0f}" for p in rss["peak_per_quarter_mib"])
        print(
            f"RSS over a {rss['photos_in_folder']}-photo scan ({rss['photos_scanned']} scanned, "
            f"{state}, {rss['seconds']:.0f} s): between batches, median of the first quarter "
            f"{rss['between_batches_first_quarter_median_mib']:.0f} MiB, last quarter "
            f"{rss['between_batches_last_quarter_median_mib']:.0f} MiB; peak per quarter "
            f"{peaks} MiB; peak {rss['peak_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
