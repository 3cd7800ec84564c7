"""A face inside a region a person drew: the detector run again on that region, enlarged.

A face the detector missed in the whole photo (too small at the scan's
size, or too soft) is often found when its region alone is detected at a
larger scale: the region plus a margin is cut out, scaled so its longer side
is `REGION_SIDE` pixels, detected, and the face nearest the drawn box's
centre is mapped back into the photo's coordinates. Its chip and embedding
come from the enlarged region, aligned on its own landmarks, as any face's do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from facerec.detectors import DetectedFace
from facerec.faces.images import LoadedImage
from facerec.faces.pipeline import Face

#: Longer side, in pixels, the drawn region is detected at.
REGION_SIDE = 480
#: Margin added around the drawn box on each side, as a fraction of its size.
MARGIN = 0.3


def face_in_region(
    image: LoadedImage,
    box: Sequence[float],
    faces: Callable[[LoadedImage], list[Face]],
) -> Face | None:
    """The face whose centre is nearest the centre of `box` (photo pixels), or None."""
    h, w = image.pixels.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h) or min(x2 - x1, y2 - y1) < 4:
        raise ValueError(f"box {[round(v) for v in box]} is not inside the {w}x{h} photo")
    mx, my = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
    left, top = int(max(0, x1 - mx)), int(max(0, y1 - my))
    right, bottom = int(min(w, x2 + mx)), int(min(h, y2 + my))
    region = image.pixels[top:bottom, left:right]
    scale = REGION_SIDE / max(region.shape[:2])
    size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    big = np.asarray(Image.fromarray(region).resize(size, Image.Resampling.LANCZOS))
    found = faces(dataclasses.replace(image, pixels=big, original_size=None))
    if not found:
        return None
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2

    def back(x: float, y: float) -> tuple[float, float]:
        return left + x / scale, top + y / scale

    def distance(f: Face) -> float:
        b = f.detection.box
        fx, fy = back((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        return float(np.hypot(fx - cx, fy - cy))

    best = min(found, key=distance)
    b = best.detection.box
    bx1, by1 = back(b[0], b[1])
    bx2, by2 = back(b[2], b[3])
    marks = tuple(back(x, y) for x, y in best.detection.landmarks)
    detection = DetectedFace((bx1, by1, bx2, by2), best.detection.score, marks)  # type: ignore[arg-type]
    return dataclasses.replace(best, detection=detection)
