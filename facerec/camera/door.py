"""The door camera: frames in, decisions out.

Per frame, the pipeline finds every face; the one voted on is the frame's
clear subject (`pipeline.select_subject`: the person at the door is the one
closest to the camera, a face cut off by the frame edge is a passer-by, and a
blurred or turned-away main face is no evidence either way, nor is a frame
with two people of similar size). With a region of interest
(`facerec.camera.region`) only the faces whose centre lies in it are seen at
all: a passer-by outside it is no rival, no vote and no event. The subject's
embedding is compared with the claimed person's prototype (claim mode, 1:1,
`FaceRec.claim`) or searched in the gallery (watch mode, 1:N,
`FaceRec.identify_embeddings`, with unknown rejection): the very decisions
`facerec verify` and `facerec identify` make on a photo. The result is one
vote in a `SlidingWindow`. A frame without a usable face casts no vote.

Decisions: claim mode ends with `accepted`, `rejected` (k frames said "not
them", or the face was not live: reason "presentation attack") or `timeout`
(no decision within the time limit, or the stream ended). With liveness on
(`LivenessTracker`), k matching frames are not enough: the claimed face's
frames within the vote window must also be judged live; while liveness is
undecided (a face that has not moved yet) the door keeps looking.

Watch mode reports one event per appearance: `identified` or `unknown` when
the window agrees on someone not already in view (`Presence`), nothing while
they stay, and a new event only after they have been gone for the cooldown.
The window starts afresh whenever the voted label changes, so an event's
scores are that person's frames only, never the previous person's. Unknown
faces are told apart by `RecentStrangers`: three strangers in turn are three
events, one stranger back within the unknown cooldown is none.

Liveness guards watching as it guards claims (a watch wired to a lock must not
open for a photo): with a tracker, the current face's frames are its evidence,
the event waits while liveness is undecided, and a face that is not live is
reported as `attack` (with the name it resembles), never as identified.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np

from facerec.api import FaceRec
from facerec.camera.events import (
    ACCEPTED,
    ATTACK,
    IDENTIFIED,
    PRESENTATION_ATTACK,
    REJECTED,
    TIMEOUT,
    UNKNOWN,
    DecisionEvent,
    FrameLatency,
)
from facerec.camera.liveness import LivenessTracker
from facerec.camera.region import Region, faces_in_region
from facerec.camera.strangers import DEFAULT_UNKNOWN_COOLDOWN_S, RecentStrangers
from facerec.camera.stream import Frame
from facerec.camera.window import (
    DEFAULT_COOLDOWN_S,
    Presence,
    SlidingWindow,
    Vote,
    WindowDecision,
    WindowRule,
)
from facerec.decisions.decision import Claim, DecisionThreshold
from facerec.decisions.names import name_key
from facerec.errors import FacerecError, MultipleFacesError, NoFaceError, UnknownPersonError
from facerec.faces.images import LoadedImage, RGBImage
from facerec.faces.pipeline import Face, select_subject
from facerec.liveness.verdict import LivenessVerdict, Verdict

log = logging.getLogger(__name__)

#: Frames whose latency feeds an event's median (bounded: watch mode may run for days).
LATENCY_HISTORY = 256
#: Margin around the detector box in a saved audit image, as a fraction of the box size.
IMAGE_MARGIN = 0.25
JPEG_QUALITY = 90


class CameraError(FacerecError):
    """The door camera cannot start: nothing to compare with, a bad option."""


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one frame contributed: a vote (`voted`), or why not (`reason`)."""

    frame: int
    t: float
    latency_ms: float
    faces: int
    voted: bool
    label: str | None
    score: float | None
    box: tuple[float, float, float, float] | None
    reason: str | None


class DoorCamera:
    """Turns frames into votes and votes into `DecisionEvent`s, for one claim or for watching."""

    def __init__(
        self,
        fr: FaceRec,
        source: str,
        *,
        claim: str | None = None,
        rule: WindowRule | None = None,
        save_images: bool = False,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        unknown_cooldown_s: float = DEFAULT_UNKNOWN_COOLDOWN_S,
        region: Region | None = None,
    ) -> None:
        """Loads the model and checks the gallery up front, so a bad setup fails before any frame.

        With a `region`, only the faces whose centre lies inside it are seen at all.
        """
        self.source = source
        self.region = region
        self.rule = rule or WindowRule()
        self.save_images = save_images
        self.claim = name_key(claim) if claim is not None else None
        self.mode = "claim" if self.claim is not None else "watch"
        self.liveness: LivenessTracker | None = None
        self._presence = Presence(cooldown_s)
        self._fr = fr
        if self.claim is not None and not fr.has(self.claim):
            raise UnknownPersonError(self.claim)
        if self.claim is None and not fr.people():
            raise CameraError(
                f"{fr.display}: no one is enrolled; watch mode has no one to recognise"
            )
        fr.check_model()
        # A claim is decided on the claimed person's prototype (its size sets the operating
        # point); watching names anyone in the gallery, so its threshold follows the gallery.
        # Both are resolved once: every frame is then decided exactly as `FaceRec.verify` /
        # `FaceRec.identify` decide a photo.
        self._claim: Claim | None = None
        self._identification: DecisionThreshold | None = None
        if self.claim is not None:
            self._claim = fr.claim(self.claim)
            self.threshold = self._claim.threshold.value
        else:
            self._identification = fr.identification_threshold()
            self.threshold = self._identification.value
        # Two unknown faces are the same stranger when they would pass a 1:1 check.
        self._strangers = RecentStrangers(fr.decision_threshold().value, unknown_cooldown_s)
        self._key: str | None = None  # who the window's votes are about (a name, a stranger)
        self._box: tuple[float, float, float, float] | None = None
        self._window = SlidingWindow(self.rule)
        self._crops: dict[int, RGBImage] = {}
        self._latencies: deque[FrameLatency] = deque(maxlen=LATENCY_HISTORY)
        self._frames = 0
        self._last_t = 0.0
        self._pending_image: bytes | None = None

    def enable_liveness(self, tracker: LivenessTracker) -> None:
        """Judge the face's liveness too (after the gallery checks, so those fail first)."""
        self.liveness = tracker

    @property
    def present(self) -> frozenset[str]:
        """Watch: the enrolled people announced and not yet gone (strangers and attacks left out)."""
        return frozenset(k for k in self._presence.present if k and not k.startswith("\x00"))

    @property
    def decision_threshold(self) -> DecisionThreshold:
        """The threshold in force with what is known of its FAR (claim: 1:1; watch: 1:N)."""
        if self._claim is not None:
            return self._claim.threshold
        assert self._identification is not None
        return self._identification

    # -- per frame ------------------------------------------------------------------------------
    def observe(self, frame: Frame) -> tuple[FrameResult, DecisionEvent | None]:
        """Process one frame; the event if this frame completed a decision."""
        start = time.perf_counter()
        image = LoadedImage(source=f"{self.source}@{frame.t:.3f}s", pixels=frame.pixels, sha256="")
        faces = self._faces(image)
        vote: Vote | None = None
        reason: str | None = None
        best: Face | None = None
        try:
            best = select_subject(faces, image).face
        except (NoFaceError, MultipleFacesError) as exc:  # no face, or no clear subject
            reason = exc.reason if faces else "no face" + (" in the region" if self.region else "")
        else:
            label, score = self._judge(best)
            vote = Vote(frame.t, label, score, frame.index)
        latency_ms = (time.perf_counter() - start) * 1000.0
        self._frames += 1
        self._last_t = frame.t
        self._latencies.append(FrameLatency(frame.index, frame.t, latency_ms))
        result = FrameResult(
            frame=frame.index,
            t=frame.t,
            latency_ms=latency_ms,
            faces=len(faces),
            voted=vote is not None,
            label=vote.label if vote else None,
            score=vote.score if vote else None,
            box=best.detection.box if best is not None else None,
            reason=reason,
        )
        _log_frame(self.source, result)
        self._presence.expire(frame.t)
        if self.liveness is not None:
            self.liveness.expire(frame.t)
        if vote is None or best is None:
            self._window.expire(frame.t)
            return result, None
        key = self._key_of(vote, best)
        last = self._window.votes[-1].t if self._window.votes else None
        if self.mode == "watch" and last is not None and (
            self._key != key or vote.t - last > self._presence.cooldown_s
        ):
            # Someone else now, or the same face back after leaving: a new appearance is
            # decided on its own frames (a photo held up must not ride on live frames before).
            self._reset()
        self._key = key
        self._box = best.detection.box
        for heard in (key, f"\x00attack {key}"):  # whoever is present stays present
            self._presence.heard(Vote(vote.t, heard, vote.score, vote.frame))
        if self.liveness is not None and (vote.label is not None or self.mode == "watch"):
            self.liveness.add(frame.pixels, best, frame.t)
        if self.save_images:
            self._crops[frame.index] = _crop(frame.pixels, best.detection.box)
        decided = self._window.push(vote)
        kept = {v.frame for v in self._window.votes}
        self._crops = {i: c for i, c in self._crops.items() if i in kept}
        if decided is None:
            return result, None
        liveness = None
        if self.liveness is not None and (decided.label is not None or self.mode == "watch"):
            liveness = self.liveness.verdict()
            if liveness.verdict is Verdict.UNDECIDED:
                log.info("%s: %s matched; liveness undecided (%s)", self.source,
                         self.claim or decided.label or "an unknown face", liveness.reason)  # fmt: skip
                return result, None  # keep looking: the next matching frame asks again
        if liveness is not None and liveness.verdict is Verdict.ATTACK:
            key = f"\x00attack {key}"  # announced even for a face seen before: once per attempt
        if self.mode == "watch" and not self._announce(key, frame.t):
            self._reset()  # still the same appearance: nothing to announce
            return result, None
        return result, self._decide(decided, frame.t, liveness)

    def _faces(self, image: LoadedImage) -> list[Face]:
        """The frame's faces; with a region, only those whose centre is in it (frame pixels)."""
        if self.region is None:
            return self._fr.faces(image)
        return faces_in_region(image, self.region, self._fr.faces)

    def _key_of(self, vote: Vote, face: Face) -> str:
        """Whom a vote is about: the name, or (watch) which stranger; claims have one subject."""
        if vote.label is not None:
            return vote.label
        if self.mode == "claim":
            return ""
        # A control character cannot occur in a stored name, so no enrolled name collides.
        return f"\x00stranger {self._strangers.see(face.embedding, vote.t)}"

    def _announce(self, key: str, t: float) -> bool:
        """Watch: is this decision a new appearance (a stranger: a new visit) worth an event?"""
        if key.startswith("\x00stranger "):
            return self._strangers.announce(int(key.rsplit(" ", 1)[1]))
        return self._presence.arrive(key, t)

    def _judge(self, face: Face) -> tuple[str | None, float]:
        """(label, similarity) of one face: the claim if it matches, the identified name, or None."""
        if self._claim is not None:
            v = self._claim.verify(face.embedding)
            return (self._claim.name if v.accepted else None), v.similarity
        ident = self._fr.identify_embeddings(face.embedding[None, :], self._identification)[0]
        return ident.name, ident.similarity

    # -- decisions ------------------------------------------------------------------------------
    def _decide(
        self, decided: WindowDecision, t: float, liveness: LivenessVerdict | None = None
    ) -> DecisionEvent:
        reason = None
        if self.mode == "claim":
            decision = ACCEPTED if decided.label is not None else REJECTED
            if decision == REJECTED:
                reason = "not the claimed person"
            elif liveness is not None and liveness.verdict is Verdict.ATTACK:
                decision, reason = REJECTED, PRESENTATION_ATTACK
                log.warning("%s: claim %r refused: %s", self.source, self.claim, liveness.reason)
            name = self.claim
            best_score = max(v.score for v in decided.votes)
        else:
            decision = IDENTIFIED if decided.label is not None else UNKNOWN
            name = decided.label
            best_score = max(v.score for v in decided.supporting)
            if liveness is not None and liveness.verdict is Verdict.ATTACK:
                decision, reason = ATTACK, PRESENTATION_ATTACK
                log.warning("%s: a face that is not live%s: %s", self.source,
                            f" resembling {name!r}" if name else "", liveness.reason)  # fmt: skip
        event = self._event(decision, name, best_score, decided.votes, t, reason, liveness)
        image = None
        if self.save_images:
            top = max(decided.supporting, key=lambda v: v.score)
            crop = self._crops.get(top.frame)
            image = encode_jpeg(crop) if crop is not None else None
        self._pending_image = image
        self._reset()
        return event

    def timeout(self, reason: str) -> DecisionEvent:
        """The decision when time ran out or the stream ended before the window agreed."""
        liveness = None
        if self.liveness is not None and self.liveness.frames:
            liveness = self.liveness.verdict()
            if liveness.verdict is Verdict.UNDECIDED:
                reason = f"{reason}; liveness undecided ({liveness.reason})"
        log.info("%s: no decision (%s)", self.source, reason)
        votes = self._window.votes
        scores = [v.score for v in votes]
        event = self._event(
            TIMEOUT,
            self.claim,
            max(scores) if scores else None,
            votes,
            self._last_t,
            reason,
            liveness,
        )
        self._pending_image = None
        self._reset()
        return event

    def _reset(self) -> None:
        self._window.reset()
        self._crops = {}
        if self.liveness is not None:
            self.liveness.reset()

    def take_image(self) -> bytes | None:
        """The JPEG saved with the last decision (only with `save_images`), handed out once."""
        image, self._pending_image = self._pending_image, None
        return image

    def _event(
        self,
        decision: str,
        name: str | None,
        best_score: float | None,
        votes: tuple[Vote, ...],
        t: float,
        reason: str | None = None,
        liveness: LivenessVerdict | None = None,
    ) -> DecisionEvent:
        voting = {v.frame for v in votes}
        latencies = [f.ms for f in self._latencies]
        event = DecisionEvent(
            time=datetime.now(UTC),
            source=self.source,
            mode=self.mode,
            claim=self.claim,
            decision=decision,
            name=name,
            best_score=best_score,
            threshold=self.threshold,
            scores=tuple(v.score for v in votes),
            votes=len(votes),
            frames=self._frames,
            stream_time_s=t,
            latency_ms=statistics.median(latencies) if latencies else None,
            frame_latencies=tuple(f for f in self._latencies if f.frame in voting),
            reason=reason,
            liveness=liveness,
            far=threshold_far(self.decision_threshold),
            box=self._box if votes else None,
            liveness_scores=(
                tuple(f.p_real for f in self.liveness.frames)
                if liveness is not None and self.liveness is not None
                else ()
            ),
        )
        self._frames = 0
        self._latencies.clear()
        return event


Deliver = Callable[[DecisionEvent, bytes | None], None]


def run(
    camera: DoorCamera,
    frames: Iterable[Frame],
    deliver: Deliver,
    *,
    timeout_s: float | None = None,
    once: bool = False,
) -> list[DecisionEvent]:
    """Feed `frames` to `camera` and `deliver` each decision as it happens; returns them all.

    Claim mode stops at its decision, or delivers `timeout` once `timeout_s`
    of stream time has passed since the first frame, or the stream ended.
    Watch mode stops after the first decision with `once` (which also makes
    an undecided end a `timeout` event), after `timeout_s`, or at the end of
    the stream; Ctrl-C ends watching quietly.
    """
    single = camera.mode == "claim" or once
    events: list[DecisionEvent] = []
    start: float | None = None
    try:
        for frame in frames:
            start = frame.t if start is None else start
            _, event = camera.observe(frame)
            if event is not None:
                deliver(event, camera.take_image())
                events.append(event)
                if single:
                    return events
            if timeout_s is not None and frame.t - start >= timeout_s:
                if single:
                    event = camera.timeout(f"no decision within {timeout_s:g} s")
                    deliver(event, None)
                    events.append(event)
                return events
    except KeyboardInterrupt:
        if single:
            raise
        log.info("%s: watching stopped", camera.source)
        return events
    if single:
        event = camera.timeout("the stream ended")
        deliver(event, None)
        events.append(event)
    return events


def threshold_far(threshold: DecisionThreshold) -> float | None:
    """The FAR the threshold was set for (an operating point's target), else its measured FAR."""
    return threshold.target_far if threshold.target_far is not None else threshold.far


def _log_frame(source: str, r: FrameResult) -> None:
    what = f"{r.label or 'no match'} (cos {r.score:.3f})" if r.voted else r.reason or "no vote"
    log.info("%s frame %d at %.2f s: %s; %.0f ms", source, r.frame, r.t, what, r.latency_ms)


def _crop(pixels: RGBImage, box: tuple[float, float, float, float]) -> RGBImage:
    """The face with a margin, clipped to the frame (a copy: the frame buffer is not kept)."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * IMAGE_MARGIN, (y2 - y1) * IMAGE_MARGIN
    h, w = pixels.shape[:2]
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    return np.ascontiguousarray(pixels[top:bottom, left:right]).copy()


def encode_jpeg(pixels: RGBImage) -> bytes | None:
    """JPEG bytes of an RGB image, or None for an empty crop."""
    if pixels.size == 0:
        return None
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    return bytes(buf) if ok else None
