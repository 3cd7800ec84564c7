"""Running the door service from its configuration file until it ends or is stopped."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from facerec.api import FaceRec
from facerec.door.config import DoorConfig
from facerec.door.mqtt import Publisher
from facerec.door.service import DoorService

log = logging.getLogger(__name__)


def door_threads(cameras: int) -> int | None:
    """Model threads per frame when the user chose none: one with several cameras (each camera
    analyses on a core of its own; a team of threads per frame would wait at every layer for
    the thread the other camera displaced), else the usual default (None)."""
    return 1 if cameras > 1 else None


def serve(fr: FaceRec, config: DoorConfig, config_path: Path) -> int:
    """Run every camera of `config`; returns the exit code (0: every file played, or stopped).

    SIGTERM and SIGINT stop the cameras, then the events still waiting for the
    broker get `mqtt.drain_timeout_s` to go out before the service says offline.
    """
    publisher = Publisher(config.mqtt, [c.name for c in config.cameras])
    service = DoorService(fr, config, publisher)  # fails here, before connecting, on a bad setup
    publisher.start()
    log.info("door: %d camera(s) from %s", len(config.cameras), config_path)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("door: %s received; stopping", signal.Signals(signum).name)
        service.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    try:
        service.run()
    finally:
        publisher.close(config.mqtt.drain_timeout_s)
    return 0
