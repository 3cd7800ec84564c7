"""`facerec serve` as a real subprocess: started on a free port, up when /v1/health answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(
    args: list[str],
    env: Mapping[str, str],
    log: Path,
    startup_s: float = 180,
    cwd: str | Path | None = None,
) -> Iterator[str]:
    """The URL of `facerec serve *args` on 127.0.0.1, stopped (SIGTERM, then SIGKILL) on exit.

    The server's output goes to `log`; a server that exits or is not up within
    `startup_s` (it loads the model before it listens) fails the test with it.
    """
    with serving_process(args, env, log, startup_s, cwd) as (url, _):
        yield url


@contextmanager
def serving_process(
    args: list[str],
    env: Mapping[str, str],
    log: Path,
    startup_s: float = 180,
    cwd: str | Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serving`, with the server's process too (to look at its memory or open files)."""
    port = free_port()
    cmd = [sys.executable, "-m", "facerec", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*cmd, *args], env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up in {startup_s} s")
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
