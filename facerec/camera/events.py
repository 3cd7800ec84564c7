"""Decision events: what the door camera tells the world, once per decision.

An event goes three ways: a JSON line on stdout (for the script that runs the
door), an optional webhook POST (for the building's system), and a row in the
audit table (`facerec.camera.audit`). The webhook must never hold the door
up or bring the camera down: posts run on one background thread with a
timeout, a failure is logged and dropped, and a full queue (a webhook that has
been down for a while) drops new posts instead of growing without bound.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facerec.errors import FacerecError
from facerec.liveness.verdict import LivenessVerdict

log = logging.getLogger(__name__)

#: Decisions in claim mode and in watch mode.
ACCEPTED, REJECTED, TIMEOUT = "accepted", "rejected", "timeout"
IDENTIFIED, UNKNOWN = "identified", "unknown"
#: Watch mode: a face (known or not) that liveness judged not live: a photo, a screen.
ATTACK = "attack"
#: Decisions that make `facerec camera` exit 0.
POSITIVE = frozenset({ACCEPTED, IDENTIFIED})
#: The reason of a claim refused by liveness (the face matched, but not a live one).
PRESENTATION_ATTACK = "presentation attack"

#: Posts waiting for the webhook at most; later ones are dropped with a warning.
WEBHOOK_QUEUE = 100


@dataclass(frozen=True, slots=True)
class FrameLatency:
    """Processing time of one frame that took part in a decision."""

    frame: int
    t: float  # stream time, seconds
    ms: float


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """One decision of the door camera.

    `name` is the person the decision is about (the claimed person in claim
    mode; the recognised person in watch mode; None for an unknown face).
    `scores` are the cosine similarities of the window's frames, oldest first,
    and `best_score` the highest among the frames that support the decision.
    `frames` counts the frames processed since the previous decision (or the
    start); `latency_ms` is their median processing time.

    `reason` says why a claim was not accepted ("presentation attack", "not
    the claimed person", or why no decision came). `liveness` is the claim's
    liveness verdict with every cue's measurement, and `liveness_scores`
    the anti-spoofing CNN's p(live) per evidence frame, oldest first; both
    stay empty when liveness is off. `far` is the false-accept rate the
    threshold was set for (None when nothing was measured for it); `box` the
    deciding frame's face box (x1, y1, x2, y2) in frame pixels.
    """

    time: datetime  # wall clock, UTC
    source: str
    mode: str  # "claim" or "watch"
    claim: str | None
    decision: str
    name: str | None
    best_score: float | None
    threshold: float
    scores: tuple[float, ...]
    votes: int  # votes in the deciding window
    frames: int
    stream_time_s: float
    latency_ms: float | None
    frame_latencies: tuple[FrameLatency, ...]
    audit_id: int | None = None
    reason: str | None = None
    liveness: LivenessVerdict | None = None
    liveness_scores: tuple[float, ...] = ()
    far: float | None = None
    box: tuple[float, float, float, float] | None = None

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (datetimes as ISO 8601, floats rounded)."""
        return {
            "event": "decision",
            "time": self.time.isoformat(),
            "source": self.source,
            "mode": self.mode,
            "claim": self.claim,
            "decision": self.decision,
            "name": self.name,
            "best_score": _round(self.best_score),
            "threshold": _round(self.threshold),
            "far": self.far,
            "box": [round(float(x), 1) for x in self.box] if self.box is not None else None,
            "scores": [_round(s) for s in self.scores],
            "votes": self.votes,
            "frames": self.frames,
            "stream_time_s": round(self.stream_time_s, 3),
            "latency_ms": _round(self.latency_ms, 1),
            "frame_latencies_ms": [
                {"frame": f.frame, "t": round(f.t, 3), "ms": round(f.ms, 1)}
                for f in self.frame_latencies
            ],
            "audit_id": self.audit_id,
            "reason": self.reason,
            "liveness": liveness_json(self.liveness, self.liveness_scores),
        }

    def to_line(self) -> str:
        """One line of JSON, as printed on stdout."""
        return json.dumps(self.as_json(), ensure_ascii=False)


def liveness_json(
    verdict: LivenessVerdict | None, scores: tuple[float, ...]
) -> dict[str, Any] | None:
    """The liveness verdict as JSON (the event's, the webhook's and the audit row's)."""
    if verdict is None:
        return None
    return {
        "verdict": verdict.verdict.value,
        "reason": verdict.reason,
        "cues": [
            {
                "cue": c.cue.value,
                "verdict": c.verdict.value,
                "score": _round(c.score),
                "required": c.required,
                "reason": c.reason,
            }
            for c in verdict.cues
        ],
        "p_real": [_round(s) for s in scores],
    }


def _round(x: float | None, digits: int = 5) -> float | None:
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return None
    return round(float(x), digits)


class WebhookError(FacerecError):
    """A webhook URL that cannot be used at all (checked once, before the camera starts)."""


class Webhook:
    """POSTs each event as JSON to one URL from a background thread; never raises on failure."""

    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise WebhookError(f"webhook {url!r}: only http:// and https:// URLs are supported")
        if not timeout_s > 0:
            raise WebhookError(f"webhook timeout must be positive, got {timeout_s}")
        self.url = url
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[DecisionEvent | None] = queue.Queue(maxsize=WEBHOOK_QUEUE)
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def post(self, event: DecisionEvent) -> None:
        """Queue one event; dropped (and logged) if the queue is full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.failed += 1
            log.warning("webhook %s: %d posts waiting; event dropped", self.url, WEBHOOK_QUEUE)

    def close(self) -> None:
        """Send what is queued (each post bounded by the timeout), then stop the thread."""
        pending = self._queue.qsize()
        self._queue.put(None)
        self._thread.join(timeout=self.timeout_s * (pending + 1) + 1.0)
        if self._thread.is_alive():
            log.warning("webhook %s: posts still pending at exit were abandoned", self.url)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            if send_json(self.url, event.as_json(), timeout_s=self.timeout_s):
                self.sent += 1
            else:
                self.failed += 1


def send_json(url: str, payload: dict[str, Any], *, timeout_s: float) -> bool:
    """POST `payload` as JSON; True on a 2xx answer. Every failure is logged, none raised."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "facerec-camera"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        log.warning("webhook %s answered HTTP %d; event not delivered", url, exc.code)
        return False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        log.warning("webhook %s failed: %s; event not delivered", url, reason)
        return False
    if not 200 <= status < 300:
        log.warning("webhook %s answered HTTP %d; event not delivered", url, status)
        return False
    return True
