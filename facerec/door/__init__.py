"""The door at home: a long-running service for IP cameras, publishing decisions over MQTT.

`facerec door --config door.toml` (docs/door.md): `config` reads and checks
the TOML, `service` runs one thread per camera on `facerec.camera`'s door
decisions, `events` maps them to `known` / `unknown` / `attack`, `mqtt` and
`discovery` publish them for Home Assistant, `rtsp` explains a stream that
did not open.
"""
