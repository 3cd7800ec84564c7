"""Frames from a camera, a video file or a network stream, at the rate we can process them.

Every source yields `Frame`s stamped with the *stream's* clock: seconds since
the stream opened for a live source, the position in the file for a video.
Everything downstream (the processing rate, the decision window, the timeout)
reads that clock only, so a recorded clip is decided exactly as the live
camera that filmed it would be, and a test on an MP4 is a test of the door.

Live sources (a device index, an rtsp:// or http:// URL) are drained by a
reader thread that keeps only the newest frame: OpenCV's capture buffer would
otherwise hand us frames that are seconds old once processing falls behind,
and a door must decide on what is in front of it now. A video file is read in
order and sampled at `fps` of its own timeline, so the result does not depend
on how fast this machine is; `realtime=True` instead plays the file at its
native speed through the same newest-frame reader, dropping what processing
cannot keep up with, exactly like a camera.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from facerec.errors import FacerecError
from facerec.faces.images import RGBImage

log = logging.getLogger(__name__)

#: URL schemes OpenCV's FFmpeg backend opens as network streams.
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: Query parameters that carry a secret in some cameras' URLs.
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:password|passwd|pass|pwd|pw|token|auth|key)=)[^&;#]*")
#: Consecutive failed reads after which a live source counts as gone.
MAX_READ_FAILURES = 50


class StreamError(FacerecError):
    """A video source that cannot be opened or read."""


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One frame to decide on: RGB pixels and where it sits on the stream's clock."""

    index: int  # frame number in the stream (0-based; live: frames captured so far)
    t: float  # seconds on the stream clock
    pixels: RGBImage  # (H, W, 3) uint8 RGB
    captured: float | None = None  # time.monotonic() when a live frame was read; None for files


def parse_source(text: str) -> int | str:
    """`0`, `1`, ... is a camera device index; a URL stays a URL; anything else is a file path."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return text


def is_live(source: int | str) -> bool:
    """Devices and network streams are live; files are not (they have their own timeline)."""
    return isinstance(source, int) or bool(_URL.match(source))


def describe(source: int | str) -> str:
    """How a source is named in logs, events and the audit table (credentials in URLs removed)."""
    if isinstance(source, int):
        return f"camera:{source}"
    text = re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1***@", source)
    return _SECRET_PARAM.sub(r"\1***", text)  # cameras that take ?user=...&password=...


def fit(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale so the longer side is at most `max_side` (detection cost grows with area)."""
    if not max_side:
        return pixels
    h, w = pixels.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return pixels
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


class FrameSource:
    """Iterate over the frames to process, `fps` per second of stream time at most.

    Use as a context manager; iterating yields `Frame`s until the stream ends
    (end of file, or a live source that stopped delivering).
    """

    def __init__(
        self,
        source: int | str,
        *,
        fps: float = 5.0,
        realtime: bool | None = None,
        max_side: int | None = 1280,
    ) -> None:
        """`realtime` None: live sources are real time, files are read on their own clock."""
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.source = source
        self.name = describe(source)
        self.fps = float(fps)
        self.live = is_live(source)
        self.realtime = self.live if realtime is None else bool(realtime)
        self.max_side = max_side
        self._cap = self._open()
        self._reader: _NewestFrameReader | None = None
        self._last = -1  # the newest frame handed out (live)

    def _open(self) -> cv2.VideoCapture:
        if not self.live:
            path = Path(str(self.source)).expanduser()
            if not path.is_file():
                raise StreamError(f"{self.name}: no such video file")
            cap = cv2.VideoCapture(str(path))
        else:
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise StreamError(f"{self.name}: cannot open the video source")
        return cap

    @property
    def native_fps(self) -> float | None:
        """The source's own frame rate, when it declares a plausible one."""
        value = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return value if 0.0 < value < 1000.0 else None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reader thread (if any) and release the capture. Idempotent."""
        if self._reader is not None:
            stopped = self._reader.stop()
            self._reader = None
            if not stopped:
                return  # the thread may still be inside read(); releasing now could crash
        self._cap.release()

    def __iter__(self) -> Iterator[Frame]:
        frames = self._newest_frames() if self.realtime else self._file_frames()
        for frame in frames:
            yield self._fitted(frame)

    def _fitted(self, frame: Frame) -> Frame:
        return Frame(frame.index, frame.t, fit(frame.pixels, self.max_side), frame.captured)

    def fresher(self, frame: Frame) -> Frame:
        """The reader's newest frame if it is newer than `frame` (never waiting), else `frame`.

        For a caller that had to wait before analysing `frame` (the door's
        cameras share the models): deciding on a frame that went stale while
        waiting would only add that wait to the door's latency. A file read on
        its own clock has no newer frame; it keeps its sampling.
        """
        reader = self._reader
        if reader is None:
            return frame
        newest = reader.newest()
        if newest is None or newest.index <= max(frame.index, self._last):
            return frame
        self._last = newest.index
        return self._fitted(newest)

    # -- file on its own clock ------------------------------------------------------------------
    def _file_frames(self) -> Iterator[Frame]:
        native = self.native_fps or 25.0
        rate = _Rate(self.fps)
        index = -1
        while True:
            if not self._cap.grab():
                return
            index += 1
            t = _position(self._cap, index, native)
            if not rate.due(t):
                continue  # grabbed but never converted: skipping is cheap
            ok, bgr = self._cap.retrieve()
            if not ok or bgr is None:
                log.warning("%s: frame %d could not be decoded; skipped", self.name, index)
                continue
            yield Frame(index, t, _rgb(bgr))

    # -- live (or a file played in real time) ---------------------------------------------------
    def _newest_frames(self) -> Iterator[Frame]:
        self._reader = _NewestFrameReader(
            self._cap, self.name, pace=not self.live, native_fps=self.native_fps or 25.0
        )
        # A live frame is stamped on arrival, a little early or late for its slot: one that is
        # early still takes it (dropping it would wait a whole frame more for the evidence).
        rate = _Rate(self.fps, slack=0.5 if self.live else 0.0)
        while True:
            frame = self._reader.next_after(self._last)
            if frame is None:
                return
            self._last = frame.index
            if rate.due(frame.t):
                yield frame


class _Rate:
    """At most `fps` frames per second of stream time, on a fixed grid.

    A frame is due once the stream clock reaches the next grid point (less
    `slack` periods: a live frame stamped on arrival may come a little early);
    after a stall (slow processing of a live source) the grid restarts from
    the frame in hand instead of letting a backlog of "overdue" slots through
    at once.
    """

    def __init__(self, fps: float, slack: float = 0.0) -> None:
        self._period = 1.0 / fps
        self._slack = slack * self._period
        self._next: float | None = None

    def due(self, t: float) -> bool:
        if self._next is not None and t + 1e-6 + self._slack < self._next:
            return False
        self._next = t + self._period if self._next is None else self._next + self._period
        if self._next <= t:
            self._next = t + self._period
        return True


def _position(cap: cv2.VideoCapture, index: int, native_fps: float) -> float:
    """The grabbed frame's time in the file; frame number / fps when the container has none."""
    ms = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
    if ms > 0.0 or index == 0:
        return ms / 1000.0
    return index / native_fps


def _rgb(bgr: np.ndarray) -> RGBImage:
    if bgr.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB))
    if bgr.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


class _NewestFrameReader:
    """A thread that reads a capture continuously and keeps only the newest frame.

    With `pace` (a file played as if live) it sleeps so the file's timeline
    advances with the wall clock; a live source paces itself.
    """

    def __init__(self, cap: cv2.VideoCapture, name: str, *, pace: bool, native_fps: float) -> None:
        self._cap = cap
        self._name = name
        self._pace = pace
        self._native_fps = native_fps
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"frames {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        index = -1
        failures = 0
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    if self._pace:
                        return  # end of file
                    failures += 1
                    if failures >= MAX_READ_FAILURES:
                        log.warning("%s: no frame in %d reads; stream ended", self._name, failures)
                        return
                    time.sleep(0.02)
                    continue
                failures = 0
                index += 1
                if self._pace:
                    t = _position(self._cap, index, self._native_fps)
                    ahead = t - (time.monotonic() - start)
                    if ahead > 0 and self._stop.wait(ahead):
                        return
                    captured = None
                else:
                    captured = time.monotonic()
                    t = captured - start
                frame = Frame(index, t, _rgb(bgr), captured)
                with self._cond:
                    self._frame = frame
                    self._cond.notify_all()
        except Exception:
            log.exception("%s: frame reader failed", self._name)
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def next_after(self, index: int) -> Frame | None:
        """The newest frame later than `index`, waiting for one; None once the stream has ended."""
        with self._cond:
            while True:
                if self._frame is not None and self._frame.index > index:
                    return self._frame
                if self._done:
                    return None
                self._cond.wait(timeout=1.0)

    def newest(self) -> Frame | None:
        """The newest frame read so far (None before the first), without waiting."""
        with self._cond:
            return self._frame

    def stop(self) -> bool:
        """Ask the thread to end and wait for it (5 s at most); False if it is still running."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            log.warning("%s: frame reader did not stop within 5 s", self._name)
            return False
        return True
