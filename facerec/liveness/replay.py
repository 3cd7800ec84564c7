"""Synthetic presentation attacks: video frames of a photo held up to a camera, for tests and benchmarks.

There is no recording of a real attack in the shared data (and one of a real
live face: `video/short_hamilton_clip.mp4`, the genuine case of the tests),
so the liveness cues are exercised on renderings:

- `still`: the photo fills the view and does not move (a print on a stand,
  a phone propped up): the attack the door used to accept;
- `tilted_plane`: the photo as a rigid plane turning up to `max_deg` about
  both axes, seen in full perspective (focal length = frame width, about a
  53 degree field of view), drifting a little;
- `framed_print`: the photo printed with a white paper margin, held by a
  shaking hand in front of a room, the video heavily recompressed;
- `screen`: the photo shown on a phone: an RGB sub-pixel grid resampled by
  the camera (moire; faint with `focus_sigma`), lower contrast, a glare, a
  black bezel, held by a slightly trembling hand;
- `slideshow`: different real photos of one person, one after another: an
  attack that fakes head motion (every photo is another pose);
- `mirror_flip`: one photo filling the view, swapped for its horizontal mirror
  image every few frames: the mirror turns the face the other way, so the
  nose seems to move against the eyes and mouth (fake parallax).

What these cannot show: a rendering is not a recapture. Real prints have
halftone dots, paper texture and colour shifts, real screens have their own
pixel pitch, refresh and reflections; the anti-spoofing CNN was trained on
those and may see none of them here. Slideshows and mirror flips fool the
planar-motion cue (every photo, and the mirror image, is another pose); the
continuity cue (`facerec.liveness.continuity`) is what catches them. Frames
are BGR uint8 (what `cv2.VideoWriter` takes), `SIZE` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

BGRImage = npt.NDArray[np.uint8]

#: Frame size of every rendering (width, height), the door camera's usual resolution.
SIZE = (640, 480)


def room(seed: int = 0) -> BGRImage:
    """A plain background: a wall with a soft gradient and a little texture."""
    w, h = SIZE
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 120 + 40 * (x / w) - 25 * (y / h)
    wall = np.stack([base * 0.95, base, base * 1.05], axis=-1)
    wall += rng.normal(0, 3, size=wall.shape)
    return np.clip(wall, 0, 255).astype(np.uint8)


def letterbox(photo: BGRImage, fill: float = 1.0, background: BGRImage | None = None) -> BGRImage:
    """The photo scaled to `fill` of the frame's height (or width), centred on `background`."""
    w, h = SIZE
    out = np.zeros((h, w, 3), np.uint8) if background is None else background.copy()
    ph, pw = photo.shape[:2]
    scale = fill * min(w / pw, h / ph)
    resized = cv2.resize(photo, (max(1, round(pw * scale)), max(1, round(ph * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)  # fmt: skip
    y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


def sensor_noise(frame: BGRImage, rng: np.random.Generator, sigma: float = 2.0) -> BGRImage:
    """A camera never delivers the same frame twice."""
    noisy = frame.astype(np.float32) + rng.normal(0, sigma, size=frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def recompress(frame: BGRImage, quality: int) -> BGRImage:
    """Encode and decode as JPEG at `quality` (a streaming camera's compression)."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)


def project_plane(
    sheet: BGRImage,
    background: BGRImage,
    *,
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    height_frac: float = 0.7,
) -> BGRImage:
    """`sheet` as a flat rectangle turned by the angles, seen by a pinhole camera (f = frame width).

    The sheet's centre sits on the optical axis (plus `shift` pixels) at the
    distance where it would fill `height_frac` of the frame seen head-on.
    """
    w, h = SIZE
    f = float(w)
    sh, sw = sheet.shape[:2]
    size = height_frac * h / sh  # world units: pixels at the reference distance
    corners = (
        np.array(
            [[-sw / 2, -sh / 2, 0], [sw / 2, -sh / 2, 0], [sw / 2, sh / 2, 0], [-sw / 2, sh / 2, 0]]
        )
        * size
    )
    a, b, c = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    world = (ry @ rx @ rz @ corners.T).T + np.array([shift[0], shift[1], f])
    image = np.stack(
        [f * world[:, 0] / world[:, 2] + w / 2, f * world[:, 1] / world[:, 2] + h / 2], 1
    )
    m = cv2.getPerspectiveTransform(
        np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32), image.astype(np.float32)
    )
    out = background.copy()
    cv2.warpPerspective(sheet, m, (w, h), dst=out, borderMode=cv2.BORDER_TRANSPARENT,
                        flags=cv2.INTER_AREA)  # fmt: skip
    return out


def still(photo: BGRImage, n: int, seed: int = 0) -> list[BGRImage]:
    """The photo filling the view, motionless; only sensor noise and compression change."""
    rng = np.random.default_rng(seed)
    frame = letterbox(photo)
    return [recompress(sensor_noise(frame, rng), 85) for _ in range(n)]


def tilted_plane(photo: BGRImage, n: int, max_deg: float = 30.0, seed: int = 0) -> list[BGRImage]:
    """The photo as a plane sweeping +-max_deg in yaw (and half that in pitch) over `n` frames."""
    rng = np.random.default_rng(seed)
    bg = room(seed)
    frames = []
    for i in range(n):
        phase = 2 * np.pi * i / max(n, 1)
        shift = (float(rng.normal(0, 12)), float(rng.normal(0, 8)))
        frame = project_plane(photo, bg, yaw_deg=max_deg * np.sin(phase),
                              pitch_deg=0.5 * max_deg * np.cos(phase), shift=shift)  # fmt: skip
        frames.append(recompress(sensor_noise(frame, rng), 80))
    return frames


def with_margin(photo: BGRImage, frac: float = 0.08) -> BGRImage:
    """The photo on white paper with a margin of `frac` of its longer side."""
    m = max(2, round(frac * max(photo.shape[:2])))
    paper = cv2.copyMakeBorder(photo, m, m, m, m, cv2.BORDER_CONSTANT, value=(245, 245, 240))
    return np.asarray(paper, dtype=np.uint8)


def framed_print(photo: BGRImage, n: int, seed: int = 0) -> list[BGRImage]:
    """A print with its paper margin, held by a shaking hand, the video recompressed hard."""
    return _held_up(with_margin(photo), room(seed + 1), n, np.random.default_rng(seed),
                    tilt_sd=4, roll=(0, 3), shift_sd=6, height_frac=0.8, noise=3.0,
                    quality=40)  # fmt: skip


def on_screen(photo: BGRImage, pixel_pitch: int = 3) -> BGRImage:
    """The photo as a phone screen shows it up close: RGB sub-pixels, lower contrast, glare, bezel."""
    ph, pw = photo.shape[:2]
    cols, rows = 270, round(270 * ph / pw)  # the screen's own resolution
    content = cv2.resize(photo, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32)
    content = 30 + 0.8 * content  # black level and reduced contrast of an LCD
    content[..., 0] *= 1.08  # a blue cast
    subpixels = np.zeros((rows * pixel_pitch, cols * pixel_pitch, 3), np.float32)
    big = np.repeat(np.repeat(content, pixel_pitch, axis=0), pixel_pitch, axis=1)
    for k, channel in enumerate((2, 1, 0)):  # R, G, B stripes left to right (BGR order)
        subpixels[:, k::pixel_pitch, channel] = big[:, k::pixel_pitch, channel] * pixel_pitch
    subpixels = 0.5 * subpixels + 0.5 * big  # the camera is not focused on the sub-pixels
    y, x = np.mgrid[0 : subpixels.shape[0], 0 : subpixels.shape[1]].astype(np.float32)
    glare = 60 * np.exp(
        -(
            ((x - 0.7 * x.max()) / (0.25 * x.max())) ** 2
            + ((y - 0.3 * y.max()) / (0.3 * y.max())) ** 2
        )
    )
    screen = np.clip(subpixels + glare[..., None], 0, 255).astype(np.uint8)
    bezel = max(4, screen.shape[1] // 25)
    return cv2.copyMakeBorder(screen, bezel, 2 * bezel, bezel, bezel, cv2.BORDER_CONSTANT,
                              value=(18, 18, 18))  # fmt: skip


def screen(photo: BGRImage, n: int, seed: int = 0, focus_sigma: float = 0.0) -> list[BGRImage]:
    """A phone showing the photo, held up to the camera with a slight tremor.

    `focus_sigma` (screen pixels) blurs the screen as a camera focused past its
    sub-pixels would: at 0 the moire is strong enough to hide the face from
    the detector, at 1 it is faint and the face is found and recognised.
    """
    sheet = on_screen(photo)
    if focus_sigma > 0:
        sheet = np.asarray(cv2.GaussianBlur(sheet, (0, 0), focus_sigma), dtype=np.uint8)
    return _held_up(sheet, room(seed + 2), n, np.random.default_rng(seed),
                    tilt_sd=3, roll=(2, 1), shift_sd=5, height_frac=0.85, noise=2.0,
                    quality=80)  # fmt: skip


def _held_up(
    sheet: BGRImage,
    bg: BGRImage,
    n: int,
    rng: np.random.Generator,
    *,
    tilt_sd: float,
    roll: tuple[float, float],
    shift_sd: float,
    height_frac: float,
    noise: float,
    quality: int,
) -> list[BGRImage]:
    """A flat `sheet` held up before `bg` by a trembling hand: tilt, roll and shift per frame
    (normal, in degrees and pixels), sensor noise, then recompressed at JPEG `quality`."""
    frames = []
    for _ in range(n):
        frame = project_plane(sheet, bg, yaw_deg=float(rng.normal(0, tilt_sd)),
                              pitch_deg=float(rng.normal(0, tilt_sd)),
                              roll_deg=float(rng.normal(*roll)),
                              shift=(float(rng.normal(0, shift_sd)), float(rng.normal(0, shift_sd))),
                              height_frac=height_frac)  # fmt: skip
        frames.append(recompress(sensor_noise(frame, rng, noise), quality))
    return frames


def slideshow(photos: Sequence[BGRImage], n: int, hold: int = 2, seed: int = 0) -> list[BGRImage]:
    """Different photos of one person, each for `hold` frames, cycling: fake head motion."""
    rng = np.random.default_rng(seed)
    stills = [letterbox(p) for p in photos]
    return [recompress(sensor_noise(stills[(i // hold) % len(stills)], rng), 85) for i in range(n)]


def mirror_flip(photo: BGRImage, n: int, every: int = 3, seed: int = 0) -> list[BGRImage]:
    """The photo filling the view, swapped for its mirror image every `every` frames."""
    rng = np.random.default_rng(seed)
    shown = letterbox(photo)
    flipped = np.ascontiguousarray(shown[:, ::-1])
    return [recompress(sensor_noise(flipped if (i // every) % 2 else shown, rng), 85)
            for i in range(n)]  # fmt: skip


def crop_around(photo: BGRImage, box: tuple[float, float, float, float], scale: float) -> BGRImage:
    """The part of `photo` around a face box, `scale` times its size (clipped): a face-sized print."""
    x1, y1, x2, y2 = box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, scale * max(x2 - x1, y2 - y1) / 2
    h, w = photo.shape[:2]
    top, bottom = max(0, round(cy - half)), min(h, round(cy + half))
    left, right = max(0, round(cx - half)), min(w, round(cx + half))
    return np.ascontiguousarray(photo[top:bottom, left:right])


def read_bgr(path: Path) -> BGRImage:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot be read as an image")
    return np.asarray(image, dtype=np.uint8)


def write_mp4(path: Path, frames: Sequence[BGRImage], fps: float) -> Path:
    """An mp4v video of `frames` (each `SIZE`)."""
    fourcc = cv2.VideoWriter.fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(path), fourcc, fps, SIZE)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write mp4v")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path
