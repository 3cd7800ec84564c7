"""The door service's configuration: one TOML file, checked whole before anything starts.

A camera URL carries a password, so secrets are written as `{ENV_VAR}` and
substituted from the environment when the file is read (Frigate's
convention); a missing variable is an error that names the variable, never
its value. The records are frozen: what was checked is what runs. Sources
are only ever logged through `describe`, which hides the credentials.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facerec.camera.strangers import DEFAULT_UNKNOWN_COOLDOWN_S
from facerec.camera.window import DEFAULT_COOLDOWN_S
from facerec.errors import FacerecError

#: `{NAME}` in a string value is replaced by the environment variable NAME.
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Camera names become MQTT topic levels and Home Assistant ids: no `/`, `+`, `#` or spaces.
_CAMERA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Events kept for the broker while it is away; the oldest is dropped beyond this.
DEFAULT_BACKLOG = 1000
#: Days an event's snapshot (a JPEG of the face) is kept before it is purged.
DEFAULT_SNAPSHOT_DAYS = 7.0
MODES = ("watch", "claim")


class ConfigError(FacerecError):
    """A door configuration that cannot run; the message says which key and why."""


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "facerec"
    discovery_prefix: str = "homeassistant"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "facerec-door"
    keepalive_s: int = 30
    backlog: int = DEFAULT_BACKLOG
    #: At exit (file sources played), wait this long for the broker to take what is pending.
    drain_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CameraConfig:
    name: str
    source: str = field(repr=False)  # may hold a password: log `describe(source)` only
    mode: str = "watch"
    claim: str | None = None
    fps: float = 5.0
    liveness: bool = True
    cooldown_s: float = DEFAULT_COOLDOWN_S
    unknown_cooldown_s: float = DEFAULT_UNKNOWN_COOLDOWN_S
    k: int = 3
    n: int = 5
    window_s: float = 10.0
    max_side: int = 1280
    #: Play a file at its own speed, dropping frames like a live camera (live sources always do).
    realtime: bool = False
    #: A program (argument list) run with the unlock order on stdin for each live `known` face.
    command: tuple[str, ...] = ()
    #: Region of interest (x1, y1, x2, y2) in frame fractions; None: the whole frame.
    roi: tuple[float, float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class FrigateConfig:
    """The Frigate bridge (`facerec.door.frigate`): Frigate's API and which events to answer."""

    url: str  # Frigate's HTTP API, e.g. http://frigate:5000
    topic: str = "frigate/events"
    cameras: tuple[str, ...] = ()  # empty: every camera
    zones: tuple[str, ...] = ()  # empty: anywhere
    sub_label: bool = True  # write the name back to Frigate
    retries: int = 3
    timeout_s: float = 5.0
    max_snapshot_bytes: int = 10_000_000


@dataclass(frozen=True, slots=True)
class DoorConfig:
    mqtt: MqttConfig
    cameras: tuple[CameraConfig, ...]
    liveness_weights: Path | None = None
    #: A lost live stream is retried after 1, 2, 4, ... seconds, at most this long.
    max_backoff_s: float = 30.0
    frigate: FrigateConfig | None = None
    #: Each event keeps a snapshot this many days (0: none is kept); older ones are purged.
    snapshot_days: float = DEFAULT_SNAPSHOT_DAYS


def load(path: Path, env: Mapping[str, str] | None = None) -> DoorConfig:
    """Read and check a door TOML file (`{VAR}` from `env`, default the process environment)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the door configuration: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, os.environ if env is None else env, where=str(path))


def parse(raw: Mapping[str, Any], env: Mapping[str, str], *, where: str = "config") -> DoorConfig:
    """Check a parsed TOML document; every problem names its key."""
    raw = _substitute(raw, env, where)
    _only(raw, {"mqtt", "camera", "liveness_weights", "max_backoff_s", "frigate", "snapshot_days"},
          where)  # fmt: skip
    mqtt = _mqtt(raw.get("mqtt", {}), f"{where}: [mqtt]")
    frigate = _frigate(raw["frigate"], f"{where}: [frigate]") if "frigate" in raw else None
    cams = raw.get("camera", [])
    if not isinstance(cams, list) or not (cams or frigate):
        raise ConfigError(f"{where}: at least one [[camera]] table (or [frigate]) is needed")
    cameras = tuple(_camera(c, f"{where}: [[camera]] #{i + 1}") for i, c in enumerate(cams))
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: camera names must be unique, got {names}")
    weights = raw.get("liveness_weights")
    if weights is not None and not isinstance(weights, str):
        raise ConfigError(f"{where}: liveness_weights must be a folder path")
    backoff = _number(raw, "max_backoff_s", 30.0, where, low=0.1)
    days = _number(raw, "snapshot_days", DEFAULT_SNAPSHOT_DAYS, where, low=0)
    path = Path(weights).expanduser() if weights else None
    return DoorConfig(mqtt, cameras, path, backoff, frigate, days)


def _frigate(raw: Any, where: str) -> FrigateConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    _only(raw, set(FrigateConfig.__dataclass_fields__), where)
    url = raw.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ConfigError(f"{where}: url must be Frigate's http:// or https:// address")
    lists = {}
    for key in ("cameras", "zones"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of names")
        lists[key] = tuple(value)
    sub_label = raw.get("sub_label", True)
    if not isinstance(sub_label, bool):
        raise ConfigError(f"{where}: sub_label must be true or false")
    d = FrigateConfig(url=url)
    return FrigateConfig(
        url=url.rstrip("/"),
        topic=_text(raw, "topic", d.topic, where),
        cameras=lists["cameras"],
        zones=lists["zones"],
        sub_label=sub_label,
        retries=int(_number(raw, "retries", d.retries, where, low=0)),
        timeout_s=_number(raw, "timeout_s", d.timeout_s, where, low=0.1),
        max_snapshot_bytes=int(
            _number(raw, "max_snapshot_bytes", d.max_snapshot_bytes, where, low=1)
        ),
    )


def _mqtt(raw: Any, where: str) -> MqttConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    keys = set(MqttConfig.__dataclass_fields__)
    _only(raw, keys, where)
    d = MqttConfig()
    port = raw.get("port", d.port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port must be an integer in 1..65535, got {port!r}")
    prefix = _text(raw, "prefix", d.prefix, where)
    discovery = _text(raw, "discovery_prefix", d.discovery_prefix, where)
    for key, value in (("prefix", prefix), ("discovery_prefix", discovery)):
        if not value or any(c in value for c in "+#") or value.startswith("/"):
            raise ConfigError(f"{where}: {key} must be a plain topic, got {value!r}")
    backlog = raw.get("backlog", d.backlog)
    if isinstance(backlog, bool) or not isinstance(backlog, int) or not 1 <= backlog <= 1_000_000:
        raise ConfigError(f"{where}: backlog must be an integer in 1..1000000, got {backlog!r}")
    return MqttConfig(
        host=_text(raw, "host", d.host, where),
        port=port,
        prefix=prefix.rstrip("/"),
        discovery_prefix=discovery.rstrip("/"),
        username=_optional_text(raw, "username", where),
        password=_optional_text(raw, "password", where),
        client_id=_text(raw, "client_id", d.client_id, where),
        keepalive_s=int(_number(raw, "keepalive_s", d.keepalive_s, where, low=5)),
        backlog=backlog,
        drain_timeout_s=_number(raw, "drain_timeout_s", d.drain_timeout_s, where, low=0),
    )


def _camera(raw: Any, where: str) -> CameraConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    _only(raw, set(CameraConfig.__dataclass_fields__), where)
    name = raw.get("name")
    if not isinstance(name, str) or not _CAMERA_NAME.match(name):
        raise ConfigError(
            f"{where}: name must be 1-64 letters, digits, '_' or '-' (it becomes an MQTT "
            f"topic level), got {name!r}"
        )
    where = f"{where} ({name})"
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{where}: source is required (rtsp://, http://, a device index, a file)")
    d = CameraConfig(name=name, source=source)
    mode = _text(raw, "mode", d.mode, where)
    if mode not in MODES:
        raise ConfigError(f"{where}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    claim = _optional_text(raw, "claim", where)
    if (mode == "claim") != (claim is not None):
        raise ConfigError(f'{where}: mode = "claim" needs claim = NAME, and only it')
    liveness = raw.get("liveness", True)
    realtime = raw.get("realtime", False)
    if not isinstance(liveness, bool) or not isinstance(realtime, bool):
        raise ConfigError(f"{where}: liveness and realtime must be true or false")
    command = raw.get("command", [])
    if not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
        raise ConfigError(f"{where}: command must be a list of arguments, the program first")
    if command and not liveness:
        raise ConfigError(f"{where}: command needs liveness (it would open the door to a photo)")
    k, n = int(_number(raw, "k", d.k, where, low=1)), int(_number(raw, "n", d.n, where, low=1))
    if k > n:
        raise ConfigError(f"{where}: need k <= n, got k={k}, n={n}")
    return CameraConfig(
        name=name,
        source=source.strip(),
        mode=mode,
        claim=claim,
        fps=_number(raw, "fps", d.fps, where, low=0.01),
        liveness=liveness,
        cooldown_s=_number(raw, "cooldown_s", d.cooldown_s, where, low=0),
        unknown_cooldown_s=_number(raw, "unknown_cooldown_s", d.unknown_cooldown_s, where, low=0),
        k=k,
        n=n,
        window_s=_number(raw, "window_s", d.window_s, where, low=0.01),
        max_side=int(_number(raw, "max_side", d.max_side, where, low=0)),
        realtime=realtime,
        command=tuple(command),
        roi=_roi(raw.get("roi"), where),
    )


def _roi(value: Any, where: str) -> tuple[float, float, float, float] | None:
    """A region of interest: `[x1, y1, x2, y2]` in frame fractions, checked by `Region`."""
    if value is None:
        return None
    from facerec.camera.region import Region  # numpy and the pipeline: only for a region

    what = f"{where}: roi must be [x1, y1, x2, y2] in fractions of the frame (0 to 1)"
    if not isinstance(value, list) or len(value) != 4:
        raise ConfigError(f"{what}, got {value!r}")
    try:
        region = Region(*value)
    except ValueError as exc:
        raise ConfigError(f"{what}; {exc}") from None
    return float(region.x1), float(region.y1), float(region.x2), float(region.y2)


def _substitute(value: Any, env: Mapping[str, str], where: str) -> Any:
    """`{VAR}` replaced in every string; a missing variable names itself, not any value."""
    if isinstance(value, str):

        def one(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise ConfigError(f"{where}: environment variable {m.group(1)} is not set")
            return env[m.group(1)]

        return _VAR.sub(one, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, where) for v in value]
    return value


def _only(raw: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _text(raw: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _number(raw: Mapping[str, Any], key: str, default: float, where: str, *, low: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if value < low:
        raise ConfigError(f"{where}: {key} must be at least {low:g}, got {value!r}")
    return float(value)
