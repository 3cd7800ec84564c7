"""The door in front of the application: the API key is checked before a byte of body is read,
and a body that does not arrive in time is cut off.

FastAPI parses a multipart form (spooling each file past 1 MiB to a temporary
file) before any dependency runs, `require_key` included, so an unauthenticated
client could open a request, declare megabytes and trickle them in: the
request held a temporary file for as long as the client liked (uvicorn's
keep-alive timeout covers idle connections between requests, not a slow
body). This ASGI middleware sits outside the application: for every route
that needs a key it checks the headers first and answers 401 (or 503 if the
database cannot say) without reading the body, and closes the connection; a
request that passes has its body reads bounded twice: each chunk within
`idle_s` of the previous one, the whole body within `body_s` of the request's
arrival. Past either, the read raises, the parser closes its temporary files,
and the client gets 408 and a closed connection.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facerec.errors import FacerecError
from facerec.server.auth import ApiKeyInfo, KeyStore

log = logging.getLogger(__name__)

#: Seconds a whole request body may take to arrive.
DEFAULT_BODY_TIMEOUT_S = 60.0
#: Seconds between two chunks of a body before the client counts as gone.
DEFAULT_IDLE_TIMEOUT_S = 10.0
#: Paths anyone may ask for: the probe, the API documents.
OPEN_PATHS = frozenset({"/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: Where the checked key is left for `require_key`, so it is looked up once per request.
SCOPE_KEY = "facerec.api_key"


class BodyTimeout(Exception):
    """Raised inside `receive` when the body is late."""


def needs_key(path: str) -> bool:
    """Every route of the API but the health probe (and the API documents outside it)."""
    return path.startswith("/v1/") and path not in OPEN_PATHS


def token_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key of `Authorization: Bearer <token>` or `X-API-Key: <token>`, else None."""
    bearer = api_key = None
    for key, value in headers:
        if key == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                bearer = rest.strip()
        elif key == b"x-api-key":
            api_key = value.decode("latin-1").strip() or None
    return bearer or api_key


class RequestGate:
    """ASGI middleware: a key before the body, and a body within its deadlines."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_s: float = DEFAULT_BODY_TIMEOUT_S,
        idle_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        if not body_s > 0 or not idle_s > 0:
            raise ValueError(f"body timeouts must be positive, got {body_s} and {idle_s}")
        self.app = app
        self.body_s = body_s
        self.idle_s = min(idle_s, body_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if needs_key(scope["path"]):
            refusal = await self._check_key(scope)
            if refusal is not None:
                await _answer(send, *refusal)
                return
        await self._with_deadlines(scope, receive, send)

    async def _check_key(self, scope: Scope) -> tuple[int, dict[str, Any], list[Any]] | None:
        """None when the request carries an active key (left in the scope); else the answer."""
        app = scope.get("app")
        keys = getattr(getattr(app, "state", None), "keys", None)
        token = token_of(scope.get("headers", []))
        info: ApiKeyInfo | None = None
        if isinstance(keys, KeyStore) and token:
            try:
                info = await anyio.to_thread.run_sync(keys.check, token)
            except FacerecError as exc:  # the database cannot answer: try again later
                log.warning(
                    "%s %s: cannot check the API key: %s", scope["method"], scope["path"], exc
                )
                body = {"detail": str(exc), "error": type(exc).__name__}
                return 503, body, [(b"retry-after", b"1")]
        if info is None:
            detail = "invalid or revoked API key" if token else "missing API key"
            return 401, {"detail": detail, "error": "HTTPError"}, [(b"www-authenticate", b"Bearer")]
        scope[SCOPE_KEY] = info
        return None

    async def _with_deadlines(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = time.monotonic() + self.body_s
        late = responded = False

        async def timed_receive() -> Message:
            nonlocal late
            left = min(self.idle_s, deadline - time.monotonic())
            if left <= 0:
                late = True
                raise BodyTimeout
            with anyio.move_on_after(left) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                late = True
                raise BodyTimeout
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done()
            return message

        done = False

        def body_done() -> None:
            nonlocal done
            done = True

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if late:  # the application made its own answer of our exception: ours instead
                if not responded:
                    responded = True
                    await _answer(send, *_late(self.body_s))
                return
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        async def receive_once_done() -> Message:
            # After the whole body, `receive` only waits for a disconnect: no deadline then
            # (a long model pass must not be cut off by the body timeout).
            return await (receive() if done else timed_receive())

        try:
            await self.app(scope, receive_once_done, guarded_send)
        except BodyTimeout:
            if not responded:
                responded = True
                await _answer(send, *_late(self.body_s))
        if late:
            log.info("cut off %s %s: body not received in time", scope["method"], scope["path"])


def _late(body_s: float) -> tuple[int, dict[str, Any], list[Any]]:
    detail = f"request body not received in time (the whole body within {body_s:g} s)"
    return 408, {"detail": detail, "error": "RequestTimeout"}, []


async def _answer(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    """A JSON answer, and the connection closed: its unread body is never read."""
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
