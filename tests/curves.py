"""Reading the shipped operating curves straight from their JSON, independently of facerec.decisions.operating.

Tests that pin a threshold compute the expected value here, from the raw
file, so that a break in the code that reads the curves cannot also move
the expectation.
"""

from __future__ import annotations

import json
from pathlib import Path

OPERATING_POINTS = Path(__file__).resolve().parents[1] / "facerec" / "models" / "operating_points"


def shipped_threshold(curve_file: str, far: float) -> float:
    """The smallest grid threshold whose measured FAR <= `far`, read from the raw JSON."""
    data = json.loads((OPERATING_POINTS / curve_file).read_text())
    pairs = data["provenance"]["impostor_pairs"]
    first, step = data["grid"]["first"], data["grid"]["resolution"]
    i = next(i for i, k in enumerate(data["false_accepts"]) if k <= far * pairs)
    return round(first + i * step, 4)
