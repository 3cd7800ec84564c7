"""The session's models live in tests/conftest.py (`pipeline`, `sface`, `sface_pipeline`)."""
