"""Home Assistant MQTT discovery: the entities each door camera appears as, without YAML.

Per camera, under `<discovery_prefix>/<component>/facerec_<camera>/<object>/config`
(retained, so Home Assistant finds them whenever it starts):

- a `sensor` "last person": the name of the last known person, or `unknown` / `attack`;
- a `binary_sensor` "known person at the door": on at a `known` event, off after
  `KNOWN_ON_S` seconds (Home Assistant's `off_delay`);
- an `event` entity "door": fires `known`, `unknown` or `attack` with the event's fields.

All three read the camera's retained state (`<prefix>/cameras/<camera>`) or its
event feed, and share the service's availability topic.
"""

from __future__ import annotations

from typing import Any

from facerec.door.config import MqttConfig
from facerec.door.events import TYPES

#: The binary sensor "known person at the door" stays on this long after a `known` event.
KNOWN_ON_S = 30


def discovery_configs(config: MqttConfig, cameras: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) of every entity of every camera."""
    out: list[tuple[str, dict[str, Any]]] = []
    prefix, disc = config.prefix, config.discovery_prefix
    for camera in cameras:
        node = f"facerec_{camera}"
        state = f"{prefix}/cameras/{camera}"
        common = {
            "availability_topic": f"{prefix}/availability",
            "device": {
                "identifiers": [node],
                "name": f"facerec {camera}",
                "manufacturer": "facerec",
                "model": "door camera",
            },
        }
        out.append((f"{disc}/sensor/{node}/last_person/config", {
            **common,
            "name": "Last person",
            "unique_id": f"{node}_last_person",
            "state_topic": state,
            "value_template": "{{ value_json.last_person }}",
            "json_attributes_topic": state,
            "json_attributes_template": "{{ value_json.last_event | tojson }}",
            "icon": "mdi:face-recognition",
        }))  # fmt: skip
        out.append((f"{disc}/binary_sensor/{node}/known_person/config", {
            **common,
            "name": "Known person at the door",
            "unique_id": f"{node}_known_person",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.known_present else 'OFF' }}",
            "device_class": "occupancy",
            "off_delay": KNOWN_ON_S,
        }))  # fmt: skip
        out.append((f"{disc}/event/{node}/door/config", {
            **common,
            "name": "Door",
            "unique_id": f"{node}_door",
            "state_topic": f"{state}/event",
            "event_types": list(TYPES),
        }))  # fmt: skip
    return out
