"""Fixtures of the door camera tests, and how they run `facerec camera` and read what it wrote."""

from __future__ import annotations

import http.server
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


def camera(args: list[str], env: dict[str, str], db: Path) -> subprocess.CompletedProcess[str]:
    """`facerec camera ARGS --db DB --json` as a door script runs it."""
    return subprocess.run(
        [sys.executable, "-m", "facerec", "camera", *args, "--db", str(db), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def events(run: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """The JSON lines a run printed on stdout."""
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def audit_rows(db: Path) -> list[dict[str, object]]:
    """The audit table as plain sqlite3 sees it."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM audit_events ORDER BY id")]
    finally:
        con.close()


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A local webhook endpoint on 127.0.0.1: (its URL, the JSON bodies POSTed to it so far)."""
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/door", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
