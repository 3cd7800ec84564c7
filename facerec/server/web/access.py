"""Who may use the review pages: sessions, sign-in with an API key, CSRF tokens.

Bound to a loopback address (the default) the pages open without signing in:
only this machine can reach them. Bound anywhere else (`ServerConfig.web_sign_in`,
set by `facerec serve --host`), every page but the sign-in form needs a
session, which signing in with an active API key that has the 'review' scope
(`facerec keys grant NAME review`) opens. Either way each
browser gets a session cookie (HttpOnly, SameSite=Strict: no script reads it
and no other site's page sends it) and a random CSRF token, which every
state-changing request must carry in its form, compared in constant time.

Sessions live in this process's memory: a restart signs everyone out, which
is what a single-process review server wants. Each lasts `SESSION_S` from its
last use; the API key is checked again on every request, so revoking it
ends its sessions.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from facerec.server.auth import KeyStore
from facerec.server.scopes import REVIEW, has_scope

COOKIE = "facerec_session"
#: Seconds a session lasts after its last request.
SESSION_S = 8 * 3600
#: Sessions kept at most (oldest dropped first): a flood of sign-ins cannot fill memory.
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class Session:
    token: str
    csrf: str
    key: str | None  # the API key that signed in (None: loopback, no sign-in)
    seen: float = field(default_factory=time.monotonic)


class Sessions:
    """The review pages' sessions (thread-safe: handlers run in the threadpool)."""

    def __init__(self, keys: KeyStore | None, *, sign_in: bool) -> None:
        self.keys = keys
        self.sign_in = sign_in
        self._lock = threading.Lock()
        self._by_token: dict[str, Session] = {}

    def open(self, key: str | None) -> Session:
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), key)
        with self._lock:
            if len(self._by_token) >= MAX_SESSIONS:
                oldest = min(self._by_token.values(), key=lambda x: x.seen)
                del self._by_token[oldest.token]
            self._by_token[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie, or None (unknown, expired, or its key revoked)."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._by_token.get(token)
            if s is None or now - s.seen > SESSION_S:
                self._by_token.pop(token, None)
                return None
            s.seen = now
        if self.sign_in and (s.key is None or self.keys is None or self.keys.check(s.key) is None):
            self.close(token)
            return None
        return s

    def close(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)

    def sign_in_with(self, api_key: str) -> Session | None:
        """A new session for a valid, active API key with the review scope; None otherwise."""
        info = self.keys.check(api_key) if self.keys is not None else None
        if info is None or self.keys is None:
            return None
        if not has_scope(self.keys.database, info.name, REVIEW):
            return None
        return self.open(api_key)


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    """Does the form's token match the session's? Constant time in the token's content."""
    if session is None or not sent:
        return False
    return hmac.compare_digest(session.csrf.encode(), sent.encode())
