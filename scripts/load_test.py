"""A bounded load test of `facerec serve`: N parallel clients for a fixed time, enrolling and verifying.

Starts its own server on 127.0.0.1 (a free port, a temporary gallery, a fresh
API key) unless `--url` and `--token` point at one. Each client loops until
the time is up: enroll a new person (a unique name, one of the shared photos),
then verify that person twice. Afterwards it lists the gallery and counts
enrolments the server acknowledged (200) but does not have ("lost"), and for
its own server checks that the FAISS index holds exactly the people in SQLite.

Reports requests/s, p50/p95 latency per kind, status counts, 5xx and lost
enrolments; writes JSON. Exit code 1 if any 5xx, transport error or lost
enrolment occurred.

    python scripts/load_test.py [--clients 4] [--duration 30] [--json bench-results/load.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EX = SHARED / "face_recognition" / "examples"
PHOTOS = ["obama.jpg", "obama2.jpg", "biden.jpg", "obama-480p.jpg"]


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str
    status: int  # 0: transport error
    ms: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    from facerec.server.auth import KeyStore
    from facerec.storage import Database

    with Database.open(db) as database:
        token = KeyStore(database).create("load-test").token
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facerec", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--db", str(db), "--log-level", "warning"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=dict(os.environ, FACEREC_OFFLINE="1"),
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return proc, url, token
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not come up in 180 s")


def client(
    cid: int,
    url: str,
    token: str,
    until: float,
    photos: list[tuple[str, bytes]],
    samples: list[Sample],
    enrolled: list[str],
    lock: threading.Lock,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
        i = 0
        while time.monotonic() < until:
            name = f"load {cid}-{i}"
            filename, data = photos[(cid + i) % len(photos)]
            files = {"image": (filename, data, "image/jpeg")}
            status, ms = call(c, "/v1/enroll", {"name": name}, files)
            with lock:
                samples.append(Sample("enroll", status, ms))
                if status == 200:
                    enrolled.append(name)
            for _ in range(2):
                if time.monotonic() >= until:
                    break
                status, ms = call(c, "/v1/verify", {"name": name}, files)
                with lock:
                    samples.append(Sample("verify", status, ms))
            i += 1


def call(
    c: httpx.Client, path: str, data: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        status = c.post(path, data=data, files=files).status_code
    except httpx.TransportError:
        status = 0
    return status, (time.perf_counter() - start) * 1000


def stats(samples: list[Sample]) -> dict[str, float | int]:
    ms = np.array([s.ms for s in samples if s.status == 200])
    if ms.size == 0:
        return {"ok": 0}
    return {
        "ok": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--url", help="a running server (else one is started here)")
    ap.add_argument("--token", help="API key for --url")
    ap.add_argument("--json", type=Path, default=Path("bench-results/load.json"))
    args = ap.parse_args()
    if args.url and not args.token:
        raise SystemExit("--url needs --token")
    photos = [(p, (EX / p).read_bytes()) for p in PHOTOS]

    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        db = Path(tmp) / "gallery.db"
        if args.url:
            url, token = args.url, args.token
        else:
            proc, url, token = start_server(db, Path(tmp) / "server.log")
        try:
            samples: list[Sample] = []
            enrolled: list[str] = []
            lock = threading.Lock()
            start = time.monotonic()
            until = start + args.duration
            threads = [
                threading.Thread(
                    target=client, args=(i, url, token, until, photos, samples, enrolled, lock)
                )
                for i in range(args.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
                listed = {p["name"] for p in c.get("/v1/people", timeout=60).json()["people"]}
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
        index_ok = None
        if proc is not None:
            from facerec.gallery import Gallery

            with Gallery.open(db) as g:
                names, _ = g.prototypes()
                hits = g.search(np.eye(1, 128, dtype=np.float32), len(names) + 5)[0]
                index_ok = len(hits) == len(names) == g.info().n_people

    statuses = Counter(s.status for s in samples)
    lost = sorted(set(enrolled) - listed)
    report = {
        "clients": args.clients,
        "duration_s": round(elapsed, 2),
        "requests": len(samples),
        "requests_per_s": len(samples) / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "transport_errors": statuses.get(0, 0),
        "enrolments_acknowledged": len(enrolled),
        "lost_enrolments": len(lost),
        "index_matches_database": index_ok,
        "all": stats(samples),
        "enroll": stats([s for s in samples if s.kind == "enroll"]),
        "verify": stats([s for s in samples if s.kind == "verify"]),
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }
    print(
        f"{args.clients} clients, {elapsed:.1f} s: {len(samples)} requests, "
        f"{report['requests_per_s']:.2f} req/s; statuses {dict(statuses)}"
    )
    print(f"{'kind':<8}{'ok':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for kind in ("enroll", "verify", "all"):
        row = report[kind]
        assert isinstance(row, dict)
        if row.get("ok"):
            print(
                f"{kind:<8}{row['ok']:>6}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
                f"{row['max_ms']:>9.0f}"
            )
    print(
        f"5xx {report['server_errors_5xx']}, transport errors {report['transport_errors']}, "
        f"lost enrolments {len(lost)} of {len(enrolled)}, index matches database: {index_ok}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    bad = report["server_errors_5xx"] or report["transport_errors"] or lost or index_ok is False
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
