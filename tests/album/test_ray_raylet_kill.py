"""`album scan --ray-address local` whose raylet is killed mid-scan ends with an `error:` line, code 2.

Before: Ray's core worker ended the driver with exit code 1 and pages of
its own logs, no `error:` line (Ray does so some seconds after its raylet
dies, from C++, where no Python exception can be caught). Now
`distributed.RayletWatch` notices the raylet is gone and ends the scan
first. A real kill: the raylet the scan started is SIGKILLed once the scan
has written its first batch.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import shared_file

pytest.importorskip("ray")


def rows(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return int(con.execute("SELECT count(*) FROM album_photos").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def raylets(pid: int) -> list[int]:
    """Pids of raylet processes descended from `pid` (the scan started its own Ray)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                name = (Path("/proc") / str(child) / "comm").read_text().strip()
            except OSError:
                continue
            if name == "raylet":
                out.append(child)
    return out


@pytest.mark.slow  # starts a local Ray instance (~20 s here)
def test_a_killed_raylet_ends_the_scan_with_an_error_line(
    shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    import os
    import signal

    photos = tmp_path / "photos"
    photos.mkdir()
    lfw = shared_file(shared, "lfw/images")
    for person in sorted(lfw.iterdir())[:100]:
        first = next(iter(sorted(person.glob("*.jpg"))), None)
        if first is not None:
            shutil.copy(first, photos / first.name)
    db = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "facerec", "album", "scan", str(photos), "--db", str(db)]
    proc = subprocess.Popen(
        [*cmd, "--ray-address", "local"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and killed is None:
        found = raylets(proc.pid)
        if found and rows(db) > 0:
            os.kill(found[0], signal.SIGKILL)
            killed = found[0]
        time.sleep(0.2)
    _, err = proc.communicate(timeout=120)
    assert killed is not None, f"the scan ended before its raylet could be killed:\n{err[-2000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, lines[-5:])
    errors = [line for line in lines if line.startswith("error:")]
    assert errors and "raylet" in errors[-1] and "rerun" in errors[-1], lines[-5:]
    assert rows(db) < 100  # it really stopped mid-scan
