"""Rerun the red team's attacks (issue 24) and print which held: the next round starts from here.

Each attack is reproduced in the setting it was found in (two processes on
a real PostgreSQL, a real `facerec serve` over raw sockets, real clips
through `facerec camera`, real scans of hostile images) by one or more test
modules of the suite; this script runs each attack's tests on their own,
slow ones included, and reports per attack whether the defence held
(every test passed), broke (a test failed) or could not be tried (an error
before any test ran, e.g. missing shared data). Prints a table, writes JSON.

    python scripts/red_team.py [--only race,mirror] [--json bench-results/red_team.json]

Exit code 0 when every attack tried was held.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Attack:
    key: str
    what: str
    tests: tuple[str, ...]


ATTACKS = (
    Attack(
        "race",
        "two people enrol under one new name at once (2 processes; SQLite and PostgreSQL)",
        ("tests/gallery/test_enrol_race.py", "tests/gallery/test_store.py::"
         "test_enroll_against_a_stale_snapshot_is_refused"),
    ),
    Attack(
        "replay",
        "one photo and its mirror, a slideshow, a phone screen at the door (facerec camera)",
        ("tests/camera/test_liveness_cli.py", "tests/liveness/test_continuity.py"),
    ),
    Attack(
        "pg-stats",
        "a removed face read back from PostgreSQL's statistics; remove says what stays on disk",
        ("tests/gallery/test_pg_statistics.py",
         "tests/test_cli_postgres.py::test_the_core_verbs_on_postgresql"),
    ),
    Attack(
        "deleted-photos",
        "faces of deleted photo files kept by the album",
        ("tests/album/test_album_prune.py",),
    ),
    Attack(
        "slow-uploads",
        "unauthenticated slow uploads holding connections and temporary files",
        ("tests/server/test_slow_bodies.py",),
    ),
    Attack(
        "memory",
        "huge, 16-bit and float images amplifying memory (server and album scans)",
        ("tests/server/test_decode_budget_http.py", "tests/album/test_album_memory.py",
         "tests/test_decode_budget.py"),
    ),
    Attack(
        "stuck-writer",
        "a writer frozen inside its transaction blocking every writer (PostgreSQL)",
        ("tests/storage/test_stuck_writer.py",),
    ),
    Attack(
        "names",
        "invisible and bidi characters making two names print alike",
        ("tests/gallery/test_store.py::test_names_are_validated_and_normalised",
         "tests/gallery/test_names_migration.py"),
    ),
    Attack(
        "breaks",
        "deliberate breaks of the 1:N threshold and the enrolment guard go unnoticed",
        ("tests/test_threshold_pins.py", "tests/test_enrolment.py"),
    ),
    Attack(
        "smaller",
        "health while the database is down, a killed raylet, odd file names, long names",
        ("tests/server/test_health_postgres.py", "tests/album/test_ray_raylet_kill.py",
         "tests/album/test_album_report.py", "tests/server/test_api_server.py"),
    ),
)

_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def run(attack: Attack) -> dict[str, object]:
    """One attack's tests, slow ones included, in a fresh pytest process."""
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow",
         *attack.tests],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    tail = (r.stdout.strip().splitlines() or [""])[-1]
    counts = {kind: int(n) for n, kind in _COUNTS.findall(tail)}
    passed = counts.get("passed", 0)
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    verdict = "held" if r.returncode == 0 and passed else "BROKEN" if failed else "not tried"
    return {
        "attack": attack.key,
        "what": attack.what,
        "verdict": verdict,
        "passed": passed,
        "failed": failed,
        "seconds": round(time.monotonic() - start, 1),
        "tests": list(attack.tests),
        "summary": tail,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated attack keys (default: all)")
    ap.add_argument("--json", type=Path, default=ROOT / "bench-results" / "red_team.json")
    args = ap.parse_args()
    wanted = {k for k in args.only.split(",") if k}
    unknown = wanted - {a.key for a in ATTACKS}
    if unknown:
        ap.error(f"unknown attack(s): {', '.join(sorted(unknown))}")
    results = []
    print(f"{'attack':<16}{'verdict':<11}{'tests':>7}{'s':>8}  what")
    for attack in ATTACKS:
        if wanted and attack.key not in wanted:
            continue
        res = run(attack)
        results.append(res)
        print(
            f"{attack.key:<16}{res['verdict']:<11}{res['passed']}/{res['passed'] + res['failed']:<5}"
            f"{res['seconds']:>8}  {attack.what}",
            flush=True,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0 if all(r["verdict"] != "BROKEN" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
