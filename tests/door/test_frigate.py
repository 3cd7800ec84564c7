"""The Frigate bridge against a real broker and a Frigate stand-in serving its documented API:
a person's snapshot is recognised and the name written back as a sub_label; whatever Frigate
sends that is not a usable person event is skipped, and the bridge goes on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ..conftest import shared_file
from .conftest import Broker, Door, FrigateStandIn, Reader
from .test_service import EX, LIN, gallery, wait_for


def person(
    event_id: str, camera: str = "driveway", kind: str = "new", label: str = "person"
) -> bytes:
    after = {"id": event_id, "camera": camera, "label": label, "current_zones": ["porch"]}
    return json.dumps({"type": kind, "before": after, "after": after}).encode()


@pytest.mark.slow  # the service loads the models (~10 s)
def test_frigate_events_get_names_and_bad_ones_are_skipped(
    shared: Path, tmp_path: Path, cli_env: dict[str, str], broker: Broker
) -> None:
    db = gallery(
        cli_env, tmp_path / "g.db", LIN, shared_file(shared, f"{EX}/lin-manuel-miranda.png")
    )
    frigate = FrigateStandIn()
    lin_jpeg = shared_file(shared, f"{EX}/lin-manuel-miranda.png").read_bytes()
    frigate.snapshots = {
        "1700000000.1-lin": lin_jpeg,
        "1700000001.2-html": b"<html>not an image</html>",
        "1700000002.3-obama": shared_file(shared, f"{EX}/obama.jpg").read_bytes(),
        "1700000003.4-flaky": lin_jpeg,
        "1700000004.5-car": lin_jpeg,
        "1700000005.6-back": lin_jpeg,
    }
    frigate.fail_first = {"1700000003.4-flaky": 2}  # HTTP 500 twice, then the snapshot
    config = tmp_path / "door.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nprefix = "facerec"\n'
        f'[frigate]\nurl = "{frigate.url}"\ncameras = ["driveway"]\nzones = ["porch"]\n'
    )
    reader = Reader(broker.port, ("facerec/events",)).start()
    door = Door(config, db, cli_env)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="frigate")
    try:
        wait_for(lambda: "frigate: listening on frigate/events" in door.stderr(), 120, "the bridge")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        for payload in [
            b"{not json",
            b"[1, 2]",
            person("1700000000.1-lin"),
            person("1700000000.1-lin", kind="update"),  # already named: not fetched again
            person("1700000004.5-car", label="car"),
            person("1700000005.6-back", camera="backyard"),  # not a bridged camera
            person("../../etc/passwd"),
            person("1700000001.2-html"),
            person("1700000002.3-obama"),
            person("1700000003.4-flaky"),
        ]:
            client.publish("frigate/events", payload, qos=1).wait_for_publish(5)
        assert reader.wait(lambda r: len(r.on("facerec/events")) == 3, 120), door.stderr()
        time.sleep(1.0)
    finally:
        client.loop_stop()
        client.disconnect()
        code = door.terminate()
        frigate.stop()
        reader.stop()
    assert code == 0, door.stderr()
    events = reader.on("facerec/events")
    assert [(e["frigate_event"], e["type"], e["name"]) for e in events] == [
        ("1700000000.1-lin", "known", LIN),
        ("1700000002.3-obama", "unknown", None),
        ("1700000003.4-flaky", "known", LIN),
    ]
    assert all(e["source"] == "frigate" and e["liveness"] is None and e["far"] for e in events)
    assert [i for i, _ in frigate.sub_labels] == ["1700000000.1-lin", "1700000003.4-flaky"]
    body = frigate.sub_labels[0][1]
    assert body["subLabel"] == LIN and body["subLabelScore"] == pytest.approx(
        events[0]["similarity"], abs=1e-3
    )
    assert frigate.gets == {"1700000000.1-lin": 1, "1700000001.2-html": 1,
                            "1700000002.3-obama": 1, "1700000003.4-flaky": 3}  # fmt: skip
    log = door.stderr()
    assert "an event that is not JSON was skipped" in log
    assert "malformed id or camera" in log
    assert "the snapshot is not a usable image" in log
