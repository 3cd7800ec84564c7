"""A camera's `command`: a program run for each decision that may open the door.

For a lock or relay driven by a program rather than over MQTT. The program
(an argument list, never a shell line: nothing from a stream reaches a shell)
is run with the unlock order as JSON on stdin (`facerec.door.mqtt.unlock_order`:
who, the similarity, the threshold and the FAR it was set for), only for a
`known` face a camera judged live: exactly when `<prefix>/unlock/<camera>` is
published, never for a Frigate snapshot or a camera without liveness. It runs
on a thread of its own, so a slow lock never holds up the cameras, and is
killed after `COMMAND_TIMEOUT_S`; its exit status is logged.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

#: A command still running after this long is killed (a lock that hangs must not pile up).
COMMAND_TIMEOUT_S = 10.0


def run_command(argv: Sequence[str], order: Mapping[str, object], camera: str) -> threading.Thread:
    """Start `argv` with `order` as JSON on stdin, on a thread; returns the thread (started)."""
    body = json.dumps(dict(order), ensure_ascii=False)
    thread = threading.Thread(
        target=_run, args=(list(argv), body, camera), name=f"command {camera}", daemon=True
    )
    thread.start()
    return thread


def _run(argv: list[str], body: str, camera: str) -> None:
    try:
        done = subprocess.run(argv, input=body, text=True, capture_output=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        log.error("camera %s: command %s did not finish within %g s; killed", camera, argv[0],
                  COMMAND_TIMEOUT_S)  # fmt: skip
        return
    except OSError as exc:
        log.error("camera %s: command %s could not be run: %s", camera, argv[0], exc.strerror)
        return
    if done.returncode != 0:
        log.error("camera %s: command %s exited %d: %s", camera, argv[0], done.returncode,
                  done.stderr.strip()[-500:])  # fmt: skip
    else:
        log.info("camera %s: command %s ran", camera, argv[0])
