"""A request body size limit enforced while the body is read, not only from Content-Length.

A client can omit Content-Length (chunked transfer encoding) or state a small
one and send more, so trusting the header alone would let anyone fill the
server's memory or disk with one upload. This ASGI middleware refuses a
declared oversize at once (413, without reading the body), and otherwise
counts the bytes as the application receives them: the moment the count passes
the limit, the receive call raises, the application stops reading, and
whatever response it would have sent is replaced by a 413.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """Raised inside `receive` when the body passes the limit."""


class BodySizeLimit:
    """ASGI middleware: HTTP requests whose body exceeds `max_bytes` get 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"the body size limit must be positive, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            log.info("refused %s %s: declared %d bytes", scope["method"], scope["path"], declared)
            await self._refuse(send, declared)
            return

        received = 0
        exceeded = False
        responded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if exceeded:
                # The application turned our exception into some response of its own
                # (FastAPI answers 400 "error parsing the body"); answer 413 instead.
                if not responded:
                    responded = True
                    await self._refuse(send, received)
                return
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not responded:
                responded = True
                await self._refuse(send, received)
        if exceeded:
            log.info("refused %s %s: body over %d bytes", scope["method"], scope["path"], received)

    async def _refuse(self, send: Send, size: int) -> None:
        limit_mb = self.max_bytes / 2**20
        body = json.dumps(
            {
                "detail": f"request body over the {limit_mb:g} MiB limit",
                "error": "RequestTooLarge",
            }
        ).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
