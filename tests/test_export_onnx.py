"""scripts/export_onnx.py reproduces the ONNX files the package ships, and they pass its parity checks.

Byte-for-byte reproduction holds for the torch release CI installs (2.14.1, the
one that wrote the files); another release may serialise the same graph
differently, and then this test says which file differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # exports three networks and runs dlib's reference: about half a minute
def test_the_export_script_reproduces_the_shipped_files(shared: Path, tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    pytest.importorskip("onnx")
    out = tmp_path / "export.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_onnx.py"), "--check", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert len(report["files"]) == 3
    for row in report["files"]:
        assert row["same_as_shipped"], row
        assert 0 < row["max_abs_diff"] <= 1e-4, row
