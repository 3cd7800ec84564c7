"""The door service: one thread per camera, each deciding with `facerec.camera`'s door.

Per camera a thread opens the source, feeds its frames to a `DoorCamera` (the
same decisions as `facerec camera`, liveness included) and hands each
decision to the audit table, stdout (one JSON line) and MQTT. Frames are
dropped, never queued: a live source is read by `FrameSource`'s newest-frame
reader, so a camera whose analysis falls behind decides on what is in front
of it now. Cameras analyse at the same time, at most one frame per core's
worth of model threads (`facerec.runtime.threads`; the door runs one thread
a camera when it has several): the pipeline lends each caller its own copy of
a network that keeps state (`facerec.faces.replicas`), each camera has its
own anti-spoofing networks, so one camera never waits for another's frame.
A camera that did wait for a core decides on the newest frame its source
has by then, not on the one it was holding.

A live source that cannot be opened, or stops delivering, is retried after
1, 2, 4 ... seconds (at most `max_backoff_s`); the camera's retained MQTT
state says `error` with the reason meanwhile, and the other cameras go on.
A file is played once. The service ends when every camera has ended (only
files), or when it is stopped (SIGTERM, Ctrl-C).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from facerec.api import FaceRec
from facerec.camera.audit import AuditLog
from facerec.camera.door import DoorCamera, threshold_far
from facerec.camera.events import IDENTIFIED, UNKNOWN, DecisionEvent
from facerec.camera.liveness import LivenessTracker
from facerec.camera.region import Region
from facerec.camera.stream import Frame, FrameSource, StreamError, describe, is_live, parse_source
from facerec.camera.window import WindowRule
from facerec.door.command import run_command
from facerec.door.config import CameraConfig, ConfigError, DoorConfig
from facerec.door.events import DoorEvent, to_door_event
from facerec.door.frigate import FrigateBridge, Recognised
from facerec.door.mqtt import Publisher, unlock_order, unlocks
from facerec.door.rtsp import explain_rtsp_failure
from facerec.errors import GalleryError, ImageError
from facerec.faces.images import decode_image
from facerec.runtime import available_cores, threads

log = logging.getLogger(__name__)

#: The first retry of a lost live source waits this long; each failure doubles it.
FIRST_BACKOFF_S = 1.0
#: Snapshots past their keep time are purged at start and this often.
PURGE_EVERY_S = 600.0


class DoorService:
    """Runs every configured camera until the files end or `stop()` is called."""

    def __init__(
        self,
        fr: FaceRec,
        config: DoorConfig,
        publisher: Publisher,
        *,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        """Builds every camera's `DoorCamera` first, so a bad setup fails before any stream opens."""
        self.fr = fr
        self.config = config
        self.publisher = publisher
        self.events: list[DoorEvent] = []
        self._emit = emit or (lambda line: print(line, file=sys.stdout, flush=True))
        self._stop = threading.Event()
        self._out = threading.Lock()  # stdout and MQTT see the events in the same order
        self._audit = AuditLog(fr.database)
        for cam in config.cameras:
            source = parse_source(cam.source)
            if not is_live(source) and not Path(str(source)).expanduser().is_file():
                raise ConfigError(f"camera {cam.name}: {describe(source)}: no such video file")
        self._doors = {cam.name: self._door(cam) for cam in config.cameras}
        # Frames analysed at once: one per core's worth of model threads (counted now: building
        # the cameras loaded the model, which applied the thread count).
        at_once = max(1, available_cores() // threads())
        self._cores = threading.BoundedSemaphore(at_once)
        log.info("door: up to %d frame(s) analysed at once, %d model thread(s) each", at_once,
                 threads())  # fmt: skip
        self._present: dict[str, frozenset[str]] = {cam.name: frozenset() for cam in config.cameras}
        # Claim cameras: (decision, reason, stream time) of the last decision, announced or not.
        self._last_claim: dict[str, tuple[str, str | None, float]] = {}
        self.frigate = (
            FrigateBridge(config.frigate, config.mqtt, self.recognise_snapshot)
            if config.frigate is not None
            else None
        )

    def _door(self, cam: CameraConfig) -> DoorCamera:
        rule = WindowRule(k=cam.k, n=cam.n, window_s=cam.window_s)
        door = DoorCamera(self.fr, cam.name, claim=cam.claim, rule=rule,
                          save_images=self.config.snapshot_days > 0, cooldown_s=cam.cooldown_s,
                          unknown_cooldown_s=cam.unknown_cooldown_s,
                          region=Region(*cam.roi) if cam.roi else None)  # fmt: skip
        if cam.liveness:
            from facerec.liveness.policy import LivenessPolicy

            antispoof = self._antispoof()  # a camera's own networks: they keep per-call state
            door.enable_liveness(LivenessTracker(antispoof, LivenessPolicy(), cam.window_s))
        else:
            log.warning("camera %s: liveness = false: a photo of %s opens this door", cam.name,
                        cam.claim or "anyone enrolled")  # fmt: skip
        log.info("camera %s: %s, %s, threshold %.4f (%s)", cam.name, describe(cam.source),
                 f"claim {cam.claim!r}" if cam.claim else "watching", door.threshold,
                 door.decision_threshold.describe())  # fmt: skip
        if cam.roi:
            log.info("camera %s: only faces centred in the region %s (frame fractions)", cam.name,
                     list(cam.roi))  # fmt: skip
        return door

    def _antispoof(self):  # type: ignore[no-untyped-def]  # imported only when liveness is on
        from facerec.camera.door import CameraError
        from facerec.errors import ModelError
        from facerec.liveness.passive import AntiSpoof

        try:
            return AntiSpoof(self.config.liveness_weights)
        except ModelError as exc:
            raise CameraError(
                f"{exc} (set liveness_weights in the door configuration, or liveness = false "
                "on a camera to run it without liveness)"
            ) from None

    # -- running ----------------------------------------------------------------------------------
    def run(self) -> None:
        """Start every camera's thread and wait for them (all files played, or `stop()`)."""
        threads = [
            threading.Thread(
                target=self._camera, args=(cam,), name=f"camera {cam.name}", daemon=True
            )
            for cam in self.config.cameras
        ]
        for t in threads:
            t.start()
        if self.frigate is not None:
            self.frigate.start()
        # Files end; Frigate, like a live camera, runs until the service is stopped.
        purged = -math.inf
        while (self.frigate or any(t.is_alive() for t in threads)) and not self._stop.is_set():
            if time.monotonic() - purged >= PURGE_EVERY_S:
                purged = time.monotonic()
                self.purge_snapshots()
            time.sleep(0.2)
        self._stop.set()
        if self.frigate is not None:
            self.frigate.close()
        for t in threads:
            t.join(timeout=5.0)

    def stop(self) -> None:
        self._stop.set()

    def purge_snapshots(self, now: datetime | None = None) -> int:
        """Drop this door's snapshots older than `snapshot_days` (all of them with 0)."""
        now = now or datetime.now(UTC)
        before = now - timedelta(days=self.config.snapshot_days)
        try:
            n = self._audit.purge_images(before, [c.name for c in self.config.cameras])
        except GalleryError as exc:  # the database is away: the next round tries again
            log.warning("door: snapshots could not be purged: %s", exc)
            return 0
        if n:
            log.info("door: %d snapshot(s) older than %g day(s) purged", n,
                     self.config.snapshot_days)  # fmt: skip
        return n

    def _camera(self, cam: CameraConfig) -> None:
        try:
            self._camera_loop(cam)
        except Exception:  # one camera's failure must not take the door down
            log.exception("camera %s failed", cam.name)
            self.publisher.camera_status(cam.name, "error", "internal error (see the log)")

    def _camera_loop(self, cam: CameraConfig) -> None:
        source = parse_source(cam.source)
        live = is_live(source)
        backoff = FIRST_BACKOFF_S
        start = time.monotonic()
        while not self._stop.is_set():
            self.publisher.camera_status(cam.name, "connecting")
            try:
                frames = FrameSource(source, fps=cam.fps, realtime=cam.realtime or None,
                                     max_side=cam.max_side or None)  # fmt: skip
            except StreamError:
                why = _why(source)
                log.error("camera %s: cannot open %s: %s; retrying in %g s", cam.name,
                          describe(source), why, backoff)  # fmt: skip
                self.publisher.camera_status(cam.name, "error", why)
                if not live or self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.config.max_backoff_s)
                continue
            with frames:
                self.publisher.camera_status(cam.name, "live")
                log.info("camera %s: %s open", cam.name, frames.name)
                for frame in self._clocked(frames, live, start):
                    backoff = FIRST_BACKOFF_S
                    self._observe(cam, frame, frames if live else None, start)
            if not live:
                self.publisher.camera_status(cam.name, "ended")
                log.info("camera %s: %s played to its end", cam.name, frames.name)
                return
            if self._stop.is_set():
                return
            log.warning("camera %s: %s stopped delivering; reconnecting in %g s", cam.name,
                        frames.name, backoff)  # fmt: skip
            self.publisher.camera_status(cam.name, "error", "the stream stopped")
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.config.max_backoff_s)

    def _clocked(self, frames: FrameSource, live: bool, start: float) -> Iterator[Frame]:
        """Frames until stopped; a live source's on the service's clock (it survives reconnects)."""
        for frame in frames:
            if self._stop.is_set():
                return
            if live:  # each connection restarts the stream's clock; the vote window must not
                frame = _on_clock(frame, start)
            yield frame

    def _observe(
        self, cam: CameraConfig, frame: Frame, live: FrameSource | None, start: float
    ) -> None:
        door = self._doors[cam.name]
        with self._cores:
            if live is not None:  # if another camera had the cores: decide on what is there now
                frame = _on_clock(live.fresher(frame), start)
            _, event = door.observe(frame)
            present, self._present[cam.name] = self._present[cam.name], door.present
            for name in sorted(present - door.present):  # out of view for the cooldown
                self.publisher.person_gone(cam.name, name)
            if event is None or self._repeated_claim(cam, event, frame.t):
                return
            image = door.take_image()
            event = dataclasses.replace(event, audit_id=self._audit.record(event, image))
        self._deliver(cam, event, _wall_clock(frame.captured), image is not None)

    def _repeated_claim(self, cam: CameraConfig, event: DecisionEvent, t: float) -> bool:
        """Claim mode decides every few frames while the person stands there: announce the
        first decision, then the same one again only after `cooldown_s` without it."""
        if cam.mode != "claim":
            return False
        last = self._last_claim.get(cam.name)
        self._last_claim[cam.name] = (event.decision, event.reason, t)
        return (
            last is not None
            and last[:2] == (event.decision, event.reason)
            and t - last[2] <= cam.cooldown_s + cam.window_s
        )

    def recognise_snapshot(self, camera: str, event_id: str, data: bytes) -> Recognised | None:
        """A Frigate snapshot: 1:N on its largest usable face, published like a camera's event."""
        try:
            image = decode_image(data, source=f"frigate:{camera}/{event_id}")
        except ImageError as exc:
            log.warning("frigate: event %s: the snapshot is not a usable image (%s)", event_id,
                        exc)  # fmt: skip
            return None
        start = time.perf_counter()
        with self._cores:
            faces = [f for f in self.fr.identify_image(image).faces if f.identification]
            if not faces:
                log.info("frigate: event %s: no usable face in the snapshot", event_id)
                return None
            face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            ident = face.identification
            assert ident is not None
            event = DecisionEvent(
                time=datetime.now(UTC), source=f"frigate:{camera}", mode="watch", claim=None,
                decision=IDENTIFIED if ident.name is not None else UNKNOWN, name=ident.name,
                best_score=ident.similarity, threshold=ident.threshold, scores=(ident.similarity,),
                votes=1, frames=1, stream_time_s=0.0,
                latency_ms=(time.perf_counter() - start) * 1000.0, frame_latencies=(),
                far=threshold_far(self.fr.identification_threshold()), box=face.box,
            )  # fmt: skip
            event = dataclasses.replace(event, audit_id=self._audit.record(event))
        self._publish(to_door_event(event, camera, frigate_id=event_id))
        return Recognised(ident.name, ident.similarity)

    def _deliver(
        self, cam: CameraConfig, event: DecisionEvent, captured: datetime | None, snapshot: bool
    ) -> None:
        door_event = to_door_event(event, cam.name, frame_time=captured, snapshot=snapshot)
        self._publish(door_event)
        if door_event is not None and cam.command and unlocks(door_event):
            run_command(cam.command, unlock_order(door_event), cam.name)

    def _publish(self, door_event: DoorEvent | None) -> None:
        if door_event is None:
            return
        log.info("camera %s: %s %s", door_event.camera, door_event.type, door_event.name or "")
        with self._out:
            self.events.append(door_event)
            self._emit(json.dumps(door_event.payload(), ensure_ascii=False))
            self.publisher.publish_event(door_event)


def _on_clock(frame: Frame, start: float) -> Frame:
    """A live frame on the service's clock (seconds since the camera's thread began)."""
    captured = frame.captured if frame.captured is not None else time.monotonic()
    return Frame(frame.index, captured - start, frame.pixels, captured)


def _wall_clock(captured: float | None) -> datetime | None:
    """When a frame stamped with `time.monotonic()` was captured, as a UTC time."""
    if captured is None:
        return None
    return datetime.fromtimestamp(time.time() - (time.monotonic() - captured), UTC)


def _why(source: int | str) -> str:
    """Why a source did not open, as far as can be told (never with its credentials)."""
    if isinstance(source, str) and source.lower().startswith("rtsp://"):
        reason = explain_rtsp_failure(source)
        if reason is not None:
            return reason
    return "the source cannot be opened"
