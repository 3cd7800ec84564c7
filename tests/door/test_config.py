"""The door configuration: the documented example loads, secrets come from the environment and
never show, and every mistake is refused with the key that is wrong (`facerec door` exits 2)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from facerec.camera.events import (
    ACCEPTED,
    ATTACK,
    IDENTIFIED,
    PRESENTATION_ATTACK,
    REJECTED,
    TIMEOUT,
    UNKNOWN,
)
from facerec.door.config import ConfigError, load, parse
from facerec.door.events import door_type, topic_level
from facerec.door.rtsp import explain_rtsp_failure

from .test_mqtt import decision

DOCS = Path(__file__).resolve().parents[2] / "docs" / "door.md"
ENV = {"FACEREC_RTSP_PASSWORD": "s3cret-pw", "FACEREC_MQTT_PASSWORD": "mqtt-pw"}


def documented_toml() -> str:
    (block,) = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    return block


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "door.toml"
    path.write_text(documented_toml())
    config = load(path, ENV)
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.prefix) == (
        "127.0.0.1",
        1883,
        "facerec",
    )
    assert config.mqtt.password == "mqtt-pw"
    front, garage, office = config.cameras
    assert front.name == "front_door" and "viewer:s3cret-pw@" in front.source
    assert front.liveness and not garage.liveness and garage.unknown_cooldown_s == 120
    assert front.roi == (0.4, 0.1, 1.0, 1.0) and garage.roi is None and office.roi is None
    assert (office.mode, office.claim) == ("claim", "Alice")
    assert config.frigate is not None and config.frigate.cameras == ("driveway",)
    assert config.frigate.url == "http://frigate.local:5000" and config.frigate.sub_label
    assert config.snapshot_days == 14
    # The records never show a secret (a config printed in a log or a traceback).
    assert "s3cret-pw" not in repr(config) and "mqtt-pw" not in repr(config)


def test_a_missing_variable_is_named_never_a_value(tmp_path: Path) -> None:
    path = tmp_path / "door.toml"
    path.write_text(documented_toml())
    with pytest.raises(ConfigError, match="FACEREC_RTSP_PASSWORD is not set") as info:
        load(path, {"FACEREC_MQTT_PASSWORD": "mqtt-pw"})
    assert "mqtt-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"camera": []}, "at least one"),
        ({"camera": [{"name": "front door", "source": "0"}]}, "name must be"),
        ({"camera": [{"name": "a/b", "source": "0"}]}, "name must be"),
        ({"camera": [{"name": "a"}]}, "source is required"),
        ({"camera": [{"name": "a", "source": "0"}] * 2}, "unique"),
        ({"camera": [{"name": "a", "source": "0", "mode": "claim"}]}, "claim = NAME"),
        ({"camera": [{"name": "a", "source": "0", "fps": 0}]}, "fps must be at least"),
        ({"camera": [{"name": "a", "source": "0", "liveness": "no"}]}, "true or false"),
        ({"camera": [{"name": "a", "source": "0", "k": 4, "n": 3}]}, "k <= n"),
        ({"camera": [{"name": "a", "source": "0", "password": "x"}]}, "unknown key"),
        ({"mqtt": {"port": 0}, "camera": [{"name": "a", "source": "0"}]}, "port must be"),
        ({"mqtt": {"prefix": "a/#"}, "camera": [{"name": "a", "source": "0"}]}, "plain topic"),
        ({"mqtt": {"backlog": 0}, "camera": [{"name": "a", "source": "0"}]}, "backlog"),
        ({"frigate": {"url": "frigate:5000"}}, "url must be"),
        ({"frigate": {"url": "http://f", "cameras": "driveway"}}, "cameras must be a list"),
        ({"frigate": {"url": "http://f", "sub_label": 1}}, "sub_label must be"),
    ],
)
def test_mistakes_are_refused_with_their_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(raw, {})


def test_the_cli_refuses_a_bad_config_with_one_line(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    bad = tmp_path / "door.toml"
    bad.write_text('[[camera]]\nname = "front"\nsource = "rtsp://u:{NOPE_PASSWORD}@cam/s"\n')
    for path, expected in (
        (bad, "NOPE_PASSWORD is not set"),
        (tmp_path / "missing.toml", "cannot read"),
    ):
        r = subprocess.run([sys.executable, "-m", "facerec", "door", "--config", str(path)],
                           env=cli_env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], r.stderr


def test_decisions_map_to_the_homes_three_types() -> None:
    assert door_type(decision(IDENTIFIED, "x")) == "known"
    assert door_type(decision(UNKNOWN, None)) == "unknown"
    assert door_type(decision(ATTACK, "x")) == "attack"
    assert door_type(decision(ACCEPTED, "x")) == "known"
    refused = decision(REJECTED, "x")
    assert door_type(refused) == "unknown"
    from dataclasses import replace

    assert door_type(replace(refused, reason=PRESENTATION_ATTACK)) == "attack"
    assert door_type(decision(TIMEOUT, None)) is None
    assert topic_level(" Lin-Manuel  Miranda ") == "lin-manuel_miranda"
    assert topic_level("a/b+#") == "a_b"


def test_an_rtsp_port_with_nothing_behind_it_is_explained() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    why = explain_rtsp_failure(f"rtsp://u:pw@127.0.0.1:{port}/x", timeout_s=1)
    assert why is not None and why.startswith(f"cannot reach 127.0.0.1:{port}") and "pw" not in why


def test_sources_are_logged_without_their_secrets() -> None:
    from facerec.camera.stream import describe

    assert describe("rtsp://viewer:s3cret@cam:554/s") == "rtsp://***@cam:554/s"
    masked = describe("http://cam/video.cgi?user=admin&password=s3cret&res=hd")
    assert masked == "http://cam/video.cgi?user=admin&password=***&res=hd"
    assert describe("rtsp://cam/s?pwd=s3cret") == "rtsp://cam/s?pwd=***"


def test_snapshot_days_is_a_number_of_days_from_zero() -> None:
    cam = {"camera": [{"name": "front", "source": "rtsp://cam/stream"}]}
    assert parse(cam, {}).snapshot_days == 7
    assert parse({**cam, "snapshot_days": 0}, {}).snapshot_days == 0
    for bad in (-1, "a week", True):
        with pytest.raises(ConfigError, match="snapshot_days"):
            parse({**cam, "snapshot_days": bad}, {})
