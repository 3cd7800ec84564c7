"""5-point similarity alignment onto a canonical template.

A detector box says where a face is, not how it is posed: two crops of the
same person with the head tilted differently differ more, to an embedding
network, than two people photographed the same way. Warping the five
landmarks (eye centres, nose tip, mouth corners) onto the fixed template the
network was trained with removes in-plane rotation, scale and translation.

The transform is the least-squares similarity (rotation, uniform scale,
translation; no shear) of Umeyama, "Least-squares estimation of
transformation parameters between two point patterns", IEEE PAMI 13(4), 1991.
A similarity keeps the face's proportions, which carry identity; a full affine
would fit the five points better by distorting them.

Every function here is pure numpy/OpenCV so that training, album scans and the
camera all share exactly one warp.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Image = npt.NDArray[np.uint8]


class FitDirection(Enum):
    """Which point set the least-squares similarity is fitted onto.

    Least squares is not symmetric: fitting the landmarks onto the template
    shrinks the face a little (the fitted scale carries the landmarks'
    correlation with the template), fitting the template onto the landmarks
    does not. A network should see chips cut the way its training crops were.
    """

    #: Fit the template onto the landmarks and invert: dlib's `get_face_chip_details`.
    TEMPLATE_ONTO_LANDMARKS = "template-onto-landmarks"
    #: Fit the landmarks onto the template: InsightFace's `norm_crop` (skimage
    #: SimilarityTransform) and OpenCV's `FaceRecognizerSF.alignCrop`, i.e. ArcFace-family crops.
    LANDMARKS_ONTO_TEMPLATE = "landmarks-onto-template"


@dataclass(frozen=True, slots=True)
class Template:
    """Where the five landmarks land in a square chip of `size` pixels, and how they get there.

    Points are in MTCNN order: the eye on the image's left, the eye on the
    image's right, nose tip, left mouth corner, right mouth corner, as (x, y)
    in chip pixel coordinates (pixel centres at integers). `fit` is part of
    the template because two chips with the same points but fitted the other
    way differ in scale by a few per cent, which a network notices.
    """

    size: int
    points: tuple[tuple[float, float], ...]
    fit: FitDirection = FitDirection.TEMPLATE_ONTO_LANDMARKS

    def __post_init__(self) -> None:
        if len(self.points) != 5:
            raise ValueError(f"a template needs 5 points, got {len(self.points)}")
        if self.size <= 0:
            raise ValueError(f"template size must be positive, got {self.size}")

    def as_array(self) -> FloatArray:
        return np.asarray(self.points, dtype=np.float64)

    def scaled(self, size: int) -> Template:
        """The same geometry for a chip of another size."""
        f = size / self.size
        return Template(size, tuple((x * f, y * f) for x, y in self.points), self.fit)

    def fitted(self, fit: FitDirection) -> Template:
        """The same points, fitted the other way (or the same way)."""
        return replace(self, fit=fit)


#: ArcFace's 112x112 five-point template (InsightFace's `arcface_dst`), the
#: reference geometry of the ArcFace family (SFace, MobileFaceNet, IResNet).
#: Its fit here is the default; the models trained on it declare their own.
ARCFACE_TEMPLATE = Template(
    112,
    (
        (38.2946, 51.6963),
        (73.5318, 51.5014),
        (56.0252, 71.7366),
        (41.5493, 92.3655),
        (70.7299, 92.2041),
    ),
)


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> FloatArray:
    """Least-squares similarity mapping `src` points onto `dst` (Umeyama 1991).

    Returns the 2x3 matrix A with dst ≈ A @ [x, y, 1]. Points are (N, 2), N >= 2.
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 2:
        raise ValueError(f"need two (N, 2) arrays with N >= 2, got {s.shape} and {d.shape}")
    mu_s, mu_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mu_s, d - mu_d
    var_s = (sc**2).sum() / len(s)
    if var_s <= 1e-12:
        raise ValueError("source points are degenerate (all at one place)")
    cov = dc.T @ sc / len(s)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sig) @ sign) / var_s)
    out = np.empty((2, 3), dtype=np.float64)
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def transform_points(matrix: npt.ArrayLike, points: npt.ArrayLike) -> FloatArray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def alignment_matrix(landmarks: npt.ArrayLike, template: Template) -> FloatArray:
    """The 2x3 map from image pixels to chip pixels for one face, fitted as `template.fit` says.

    dlib, whose network is our default, fits its mean face onto the detected
    points and samples the chip through that map; for its template we do the
    same and invert it. ArcFace-family crops come from the direct fit of the
    landmarks onto the template. See `FitDirection`.
    """
    if template.fit is FitDirection.LANDMARKS_ONTO_TEMPLATE:
        return similarity_transform(landmarks, template.as_array())
    forward = np.vstack([similarity_transform(template.as_array(), landmarks), [0.0, 0.0, 1.0]])
    return np.linalg.inv(forward)[:2]


def warp_to_template(image: Image, landmarks: npt.ArrayLike, template: Template) -> Image:
    """Cut the aligned square chip for one face out of an RGB image.

    When the chip is much smaller than the face in the photo (a 150-px chip
    from a 1080p portrait), a single bilinear warp aliases; like dlib's
    `extract_image_chip`, we first shrink the image with area averaging so the
    final warp never downsamples by more than 2x.
    """
    import cv2  # deferred: the templates are needed by commands that never touch pixels

    matrix = alignment_matrix(landmarks, template)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    src: npt.NDArray[np.uint8] = image
    if scale < 0.5:
        factor = 0.5 / scale  # shrink the source so the remaining warp scales by ~0.5
        h, w = image.shape[:2]
        nw, nh = max(1, round(w / factor)), max(1, round(h / factor))
        src = np.asarray(cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        fx, fy = w / nw, h / nh
        # Pixel centres: x_small = (x + 0.5) / fx - 0.5.
        to_small = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]])
        from_small = np.linalg.inv(np.vstack([to_small, [0, 0, 1]]))[:2]
        matrix = matrix @ np.vstack([from_small, [0, 0, 1]])
    chip = cv2.warpAffine(
        src,
        matrix,
        (template.size, template.size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.ascontiguousarray(chip, dtype=np.uint8)


def alignment_error(landmarks: npt.ArrayLike, template: Template) -> FloatArray:
    """Per-landmark distance (chip pixels) between the warped landmarks and the template.

    A similarity cannot hit five points exactly; large residuals flag a
    landmark set that is not a frontal-ish face (or a detector mistake).
    """
    warped = transform_points(alignment_matrix(landmarks, template), landmarks)
    return np.linalg.norm(warped - template.as_array(), axis=1)
