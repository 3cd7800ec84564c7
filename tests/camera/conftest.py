"""Fixtures of the door camera tests."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest


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
