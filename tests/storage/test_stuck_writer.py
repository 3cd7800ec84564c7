"""A writer that stops inside its transaction cannot block every other writer (PostgreSQL).

Found by a red team: an enrolment frozen with `kill -STOP` inside its write
transaction kept the advisory write lock "idle in transaction", and every
other writer on every machine failed with "canceling statement due to lock
timeout" until it resumed or died, without saying who held the lock. Each
holder here is a real second process on a real PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from facerec.errors import GalleryError
from facerec.storage import Database
from facerec.storage.database import BUSY_TIMEOUT_MS, WRITER_IDLE_TIMEOUT_MS

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sqlalchemy import text
    from facerec.storage import Database

    url, how, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with Database.open(url) as db, db.write() as s:
        s.execute(text("UPDATE meta SET value = value WHERE key = 'revision'"))
        ready.touch()
        if how == "busy":  # working inside the transaction: never idle, never ended
            s.execute(text("SELECT pg_sleep(:t)"), {"t": float(sys.argv[4])})
        else:  # frozen: the server hears nothing from it
            time.sleep(float(sys.argv[4]))
    """
)


def _hold(url: str, how: str, seconds: float, tmp_path: Path) -> subprocess.Popen[str]:
    ready = tmp_path / f"ready-{how}"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, how, str(ready), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.02)
    return proc


def _write(db: Database) -> float:
    start = time.monotonic()
    with db.write() as s:
        s.execute(text("UPDATE meta SET value = value WHERE key = 'revision'"))
    return time.monotonic() - start


@pytest.mark.slow  # waits out the lock timeout once
def test_a_frozen_writer_is_ended_and_a_busy_one_is_named(
    postgres_url: str, tmp_path: Path
) -> None:
    with Database.open(postgres_url) as db:
        # Frozen, exactly as found: kill -STOP right after it took the lock.
        frozen = _hold(postgres_url, "frozen", 60, tmp_path)
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            waited = _write(db)  # would fail after BUSY_TIMEOUT_MS before the fix
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
            frozen.kill()
            frozen.communicate()
        assert WRITER_IDLE_TIMEOUT_MS / 1000 - 0.5 < waited < BUSY_TIMEOUT_MS / 1000

        # A holder that is working (not idle) is not ended; the waiter's error names it.
        busy = _hold(postgres_url, "busy", BUSY_TIMEOUT_MS / 1000 + 5, tmp_path)
        try:
            with pytest.raises(GalleryError) as info:
                _write(db)
        finally:
            busy.kill()
            busy.communicate()
        message = str(info.value)
        assert f"facerec pid {os.getpid()} on " in message  # the waiting session
        assert f"(facerec pid {busy.pid} on " in message  # the holding session
        assert "gave up" in message and "active" in message, message
