"""A camera's `command` (a lock or relay driven by a program): the unlock order on stdin as JSON,
never through a shell; a failing, missing or hanging program is logged, the door goes on; and
the configuration refuses a command on a camera without liveness."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from facerec.door import command
from facerec.door.command import run_command
from facerec.door.config import ConfigError, parse

ORDER = {"id": "e1", "camera": "front", "name": "Ada; rm -rf /", "similarity": 0.61,
         "threshold": 0.41, "far": 0.0001, "timestamp": "2026-12-07T15:58:02+00:00"}  # fmt: skip


def test_the_order_goes_to_the_program_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "order.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    run_command([sys.executable, "-c", script], ORDER, "front").join(30)
    assert json.loads(out.read_text()) == ORDER  # the name with `;` stayed data, not a command


def test_a_failing_missing_or_hanging_program_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="facerec.door.command")
    failing = [sys.executable, "-c", "import sys; sys.exit('relay jammed')"]
    run_command(failing, ORDER, "front").join(30)
    assert "exited 1: relay jammed" in caplog.text
    run_command([str(tmp_path / "no-such-lock")], ORDER, "front").join(30)
    assert "could not be run" in caplog.text
    monkeypatch.setattr(command, "COMMAND_TIMEOUT_S", 0.5)
    hanging = [sys.executable, "-c", "import time; time.sleep(30)"]
    run_command(hanging, ORDER, "front").join(30)
    assert "did not finish within 0.5 s; killed" in caplog.text


def test_a_command_needs_liveness_and_an_argument_list() -> None:
    cam = {"name": "front", "source": "rtsp://cam/stream", "command": ["/usr/bin/open-door", "1"]}
    assert parse({"camera": [cam]}, {}).cameras[0].command == ("/usr/bin/open-door", "1")
    with pytest.raises(ConfigError, match="command needs liveness"):
        parse({"camera": [{**cam, "liveness": False}]}, {})
    assert parse({"camera": [{**cam, "command": []}]}, {}).cameras[0].command == ()
    for bad in ("/usr/bin/open-door 1", [""], [1]):  # a shell line is refused, not split
        with pytest.raises(ConfigError, match="command must be a list"):
            parse({"camera": [{**cam, "command": bad}]}, {})
