"""Absent shared data: a local run skips with the reason, a CI run (CI=true) fails loudly."""

from __future__ import annotations

import pytest

from .conftest import missing_shared


def test_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="att_faces not present"):
        missing_shared("att_faces not present")


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_fails_in_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"att_faces not present.*CI=true"):
        missing_shared("att_faces not present")
