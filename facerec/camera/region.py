"""A camera's region of interest: where in the frame the door is, as fractions of the frame.

A door camera often sees more than the door: the street behind it, a
neighbour's path. Only faces whose box centre lies inside the region count;
a passer-by outside it casts no vote, so it can neither be announced nor
reset or feed the evidence gathered on the person at the door. The region is
written in fractions of the frame (`x1, y1, x2, y2`, the top left corner
`0, 0`) so it survives a change of resolution or of `max_side`.

The detector runs on the region alone, enlarged by `MARGIN` of its size on
each side (and clipped to the frame): less to scan than the whole frame, and
a face whose centre is just inside is not cut in half at the region's edge.
The faces found are mapped back to the frame's pixel coordinates (box and
landmarks), so events, snapshots and the liveness cues see them where they
are in the frame. Their chips and embeddings are cut from the same pixels as
on the whole frame.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facerec.detectors import DetectedFace
from facerec.faces.images import LoadedImage
from facerec.faces.pipeline import Face

#: Margin around the region that is detected too, on each side, as a fraction of its size.
MARGIN = 0.25


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle in frame fractions: 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        """Every way of writing a region (a TOML list, `--roi`) is checked here, with the
        reason a user can act on."""
        values = (self.x1, self.y1, self.x2, self.y2)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{v!r} is not a finite number")
            if not 0 <= v <= 1:
                raise ValueError(f"{v!r} is outside 0..1")
        if not (self.x1 < self.x2 and self.y1 < self.y2):
            raise ValueError(f"it needs x1 < x2 and y1 < y2 (an area), got {list(values)}")

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region in the pixels of a `width` x `height` frame."""
        return self.x1 * width, self.y1 * height, self.x2 * width, self.y2 * height

    def contains(self, box: tuple[float, float, float, float], width: int, height: int) -> bool:
        """Whether a box's centre (frame pixels) lies inside the region."""
        x1, y1, x2, y2 = self.pixels(width, height)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return x1 <= cx <= x2 and y1 <= cy <= y2

    def crop(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) pixels detected: the region plus `MARGIN`, in the frame."""
        x1, y1, x2, y2 = self.pixels(width, height)
        mx, my = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
        left, top = max(0, math.floor(x1 - mx)), max(0, math.floor(y1 - my))
        right, bottom = min(width, math.ceil(x2 + mx)), min(height, math.ceil(y2 + my))
        # At least a pixel either way, whatever the rounding did to a sliver of a region.
        return (
            min(left, width - 1),
            min(top, height - 1),
            max(right, left + 1),
            max(bottom, top + 1),
        )


def faces_in_region(
    image: LoadedImage, region: Region, faces: Callable[[LoadedImage], list[Face]]
) -> list[Face]:
    """The faces of `image` whose centre is in `region`, detected on the region (plus its
    margin) alone, in the frame's pixel coordinates."""
    height, width = image.pixels.shape[:2]
    left, top, right, bottom = region.crop(width, height)
    if (left, top, right, bottom) == (0, 0, width, height):
        found = faces(image)  # the region, with its margin, is the whole frame
    else:
        part = np.ascontiguousarray(image.pixels[top:bottom, left:right])
        found = [_moved(f, left, top) for f in faces(dataclasses.replace(image, pixels=part))]
    return [f for f in found if region.contains(f.detection.box, width, height)]


def _moved(face: Face, dx: float, dy: float) -> Face:
    """A face found in a crop, put back where the crop's corner `(dx, dy)` sits in the frame."""
    d = face.detection
    box = (d.box[0] + dx, d.box[1] + dy, d.box[2] + dx, d.box[3] + dy)
    marks = tuple((x + dx, y + dy) for x, y in d.landmarks)
    return dataclasses.replace(face, detection=DetectedFace(box, d.score, marks))  # type: ignore[arg-type]
