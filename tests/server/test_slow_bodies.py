"""Slow and unauthenticated request bodies, over raw sockets against a real `facerec serve`.

Before: the multipart body was read and spooled to a temporary file before the
key was checked, and nothing timed out a slow body: an unauthenticated
`POST /v1/identify` declaring 3 MB and sending 2 MB was still open after
150 s, and 60 of them held 62 temporary files. Now the key is checked from
the headers before any body is read (401, connection closed), and a body
that stalls or trickles past `--body-timeout` gets 408 (`facerec.server.gate`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from facerec.server.auth import KeyStore
from facerec.storage import Database

from ..served import serving_process

BODY_TIMEOUT_S = 3.0
BOUNDARY = "facerec-test-boundary"


@dataclass(frozen=True)
class Served:
    host: str
    port: int
    token: str
    proc: subprocess.Popen[bytes]
    folder: Path  # the test's own files (gallery, log), which the server may hold open

    def temp_files(self) -> list[str]:
        """Files the server holds open in a temporary folder, or deleted ones (a spooled
        upload is unlinked as it is created), besides the test's own."""
        out = []
        fds = Path(f"/proc/{self.proc.pid}/fd")
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                ours = target.startswith(str(self.folder))
                temporary = target.startswith(("/tmp/", "/var/tmp/", "/dev/shm/"))
                if not ours and (temporary or target.endswith("(deleted)")):
                    out.append(target)
        return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("slow")
    db = tmp / "g.db"
    with Database.open(db) as database:
        token = KeyStore(database).create("tests").token
    env = dict(os.environ, FACEREC_OFFLINE="1", FACEREC_DB=str(tmp / "unused.db"))
    args = ["--db", str(db), "--body-timeout", str(BODY_TIMEOUT_S), "--log-level", "warning"]
    with serving_process(args, env, tmp / "server.log") as (url, proc):
        host, port = url.removeprefix("http://").split(":")
        yield Served(host, int(port), token, proc, tmp)


def head(served: Served, length: int, token: str | None = None) -> bytes:
    """A multipart POST /v1/identify's headers and the start of its one file part."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /v1/identify HTTP/1.1\r\nHost: {served.host}:{served.port}\r\n{auth}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        f"Content-Type: image/png\r\n\r\n"
    ).encode()


def connect(served: Served) -> socket.socket:
    s = socket.create_connection((served.host, served.port), timeout=5)
    s.settimeout(5)
    return s


def send_some(s: socket.socket, data: bytes) -> None:
    """As much of `data` as the server takes (it may stop reading, or close)."""
    with contextlib.suppress(TimeoutError, BrokenPipeError, ConnectionResetError):
        s.sendall(data)


def answer(s: socket.socket, within: float) -> tuple[bytes, bool]:
    """(the response's bytes, whether the server closed the connection), waiting `within` s."""
    s.settimeout(within)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
        return got, True
    except TimeoutError:
        return got, False
    except ConnectionResetError:
        return got, True


def test_no_key_is_refused_before_any_body_is_read(served: Served) -> None:
    for token in (None, "frk_aaaaaaaa_" + "x" * 43):
        with connect(served) as s:
            start = time.monotonic()
            s.sendall(head(served, 3_000_000, token)[:-80])  # headers only, no body at all
            got, closed = answer(s, within=5)
        assert got.startswith(b"HTTP/1.1 401"), got[:200]
        assert closed and time.monotonic() - start < 3


def test_sixty_unauthenticated_uploads_hold_no_temporary_file(served: Served) -> None:
    socks = [connect(served) for _ in range(60)]
    try:
        for s in socks:  # 1.2 MB sent of 3 MB declared: past Starlette's 1 MiB in-memory spool
            s.settimeout(0.2)
            send_some(s, head(served, 3_000_000) + b"\0" * 1_200_000)
        held = served.temp_files()
        answers = [answer(s, within=5) for s in socks]
    finally:
        for s in socks:
            s.close()
    assert held == []
    assert all(got.startswith(b"HTTP/1.1 401") and closed for got, closed in answers), [
        a[0][:40] for a in answers if not a[0].startswith(b"HTTP/1.1 401")
    ][:3]


@pytest.mark.parametrize("pace", ["stalled", "trickle"])
def test_a_slow_body_with_a_valid_key_is_cut_off(served: Served, pace: str) -> None:
    with connect(served) as s:
        start = time.monotonic()
        s.sendall(head(served, 2_000_000, served.token) + b"\0" * 1_200_000)
        if pace == "trickle":  # never idle for long, but never done: the whole-body deadline
            s.settimeout(0.5)
            while time.monotonic() - start < BODY_TIMEOUT_S + 5:
                send_some(s, b"\0" * 1024)
                time.sleep(0.3)
                s.setblocking(False)
                try:
                    if s.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                finally:
                    s.settimeout(0.5)
        got, closed = answer(s, within=BODY_TIMEOUT_S + 8)
        took = time.monotonic() - start
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b"RequestTimeout" in got and closed
    assert took < BODY_TIMEOUT_S + 5, took
    time.sleep(0.5)
    assert served.temp_files() == []
