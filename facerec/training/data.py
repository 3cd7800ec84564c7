"""Training data: face chips detected and aligned once, cached, and served with light augmentation.

Why a cache: detection (MTCNN) costs far more than a training step's forward
pass on CPU, and it gives the same answer every epoch. So each photo is
detected and warped to the model's template exactly once, with the same
detector and warp as the rest of facerec (`detectors/`, `alignment.py`; the
face is the one nearest the image centre, as in `evaluation.embed`), and the
uint8 chips are kept in one compressed ``.npz``.

The cache is keyed by what determines its content:

* the **data fingerprint**: SHA-256 over the sorted (relative path, file
  SHA-256) of every selected photo, so renaming, adding or editing one photo
  gives a new cache (and a checkpoint records which data it was trained on);
* the **preparation key**: template geometry, detector settings and the miss
  policy, so a model with another chip size or template never reads chips cut
  for another one.

The file is ``<cache dir>/<fingerprint>-<preparation key>.npz`` (default cache
dir: ``chips/`` in the user cache directory, e.g. ``~/.cache/facerec/chips``).

Two miss policies: training sets **skip** photos where no face is found (and
count them; a wrong crop teaches the wrong identity), evaluation sets use
`evaluation.embed`'s **fallback** crop at the set's mean landmark positions so
that figures are not flattered by dropping hard photos.

Leakage: LFW figures are only honest if the people of the evaluated fold were
never trained on, hence `lfw_fold_identities` and `read_identity_list` to
exclude identities before training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt
import platformdirs
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from facerec.detectors import DetectedFace, DetectorConfig, DetectorKind
from facerec.errors import FacerecError, ImageError
from facerec.evaluation.embed import central_face
from facerec.evaluation.pairs import Pair, folder_identities, read_lfw_pairs
from facerec.faces.alignment import Template, warp_to_template
from facerec.faces.images import RGBImage, load_image
from facerec.models.base import sha256_file

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever the cache's content or layout changes; older files are rebuilt."""

MissPolicy = Literal["skip", "fallback"]

Chips = npt.NDArray[np.uint8]


class DataError(FacerecError):
    """A training or validation set that cannot be used (empty, too few identities, bad list)."""


class FaceDetector(Protocol):
    """What the cache needs of a detector (`facerec.detectors.Detector` fits)."""

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]: ...


# ---------------------------------------------------------------------------
# Which photos
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageItem:
    """One photo of a set: its file, its path relative to the set's root, its identity."""

    path: Path
    rel: str
    identity: str


def folder_items(
    root: Path,
    *,
    min_images: int = 2,
    max_per_identity: int | None = None,
    exclude: Collection[str] = (),
) -> list[ImageItem]:
    """`root/<identity>/<photo>` as items, identities with fewer than `min_images` photos dropped.

    `max_per_identity` keeps the first N photos (sorted by name) of each
    identity: LFW has one person with 530 photos, who would otherwise weigh
    more in the cache than 200 others (PK sampling balances the batches anyway,
    so the rest would mostly cost detection time). `exclude` drops identities
    before anything is read, so their photos are not even detected.
    """
    if min_images < 1:
        raise ValueError(f"min_images must be >= 1, got {min_images}")
    if max_per_identity is not None and max_per_identity < min_images:
        raise ValueError(f"max_per_identity ({max_per_identity}) is below min_images")
    root = root.resolve()
    items: list[ImageItem] = []
    for name, paths in folder_identities(root).items():
        if name in exclude or len(paths) < min_images:
            continue
        for path in paths[:max_per_identity]:
            items.append(ImageItem(path, path.relative_to(root).as_posix(), name))
    if not items:
        raise DataError(f"{root}: no identity with at least {min_images} photos left to use")
    return items


def pair_items(pairs: Sequence[Pair], root: Path) -> list[ImageItem]:
    """The distinct photos of a pair list; identity = the photo's folder name (LFW layout)."""
    root = root.resolve()
    paths = sorted({p.a.resolve() for p in pairs} | {p.b.resolve() for p in pairs})
    out = []
    for path in paths:
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            raise DataError(f"{path} is outside the set's root {root}") from None
        out.append(ImageItem(path, rel, path.parent.name))
    return out


def lfw_fold_identities(pairs_file: Path, fold: int) -> frozenset[str]:
    """Every person named in fold `fold` (1-based, as LFW numbers them) of a pairs file.

    LFW's View-2 folds are identity-disjoint; training on any of these people
    and evaluating on that fold would measure memory, not generalisation.
    """
    pairs = read_lfw_pairs(pairs_file)
    folds = sorted({p.fold for p in pairs})
    if not 1 <= fold <= len(folds):
        raise DataError(f"{pairs_file}: has folds 1..{len(folds)}, not {fold}")
    chosen = [p for p in pairs if p.fold == folds[fold - 1]]
    return frozenset(x.parent.name for p in chosen for x in (p.a, p.b))


def read_identity_list(path: Path) -> frozenset[str]:
    """Identity names, one per line; blank lines and `#` comments ignored."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"{path}: cannot read identity list ({exc.strerror or exc})") from None
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(n for n in names if n)


def data_fingerprint(items: Iterable[ImageItem]) -> str:
    """SHA-256 over the sorted (relative path, file SHA-256) lines of a set.

    Content, not timestamps: a copied set has the fingerprint of its original,
    an edited photo changes it. Identity names are the folder names, which
    the relative paths already carry.
    """
    h = hashlib.sha256()
    for rel, digest in sorted((it.rel, sha256_file(it.path)) for it in items):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preparation:
    """How chips are cut: template, detector settings, what to do with misses."""

    template: Template
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    misses: MissPolicy = "skip"

    def key(self) -> str:
        """Short digest of everything that changes the chips (part of the cache file name)."""
        desc = {
            "version": CACHE_VERSION,
            "size": self.template.size,
            "points": [[round(v, 4) for v in pt] for pt in self.template.points],
            "min_face_size": self.detector.min_face_size,
            "thresholds": list(self.detector.thresholds),
            "factor": self.detector.factor,
            "min_score": self.detector.min_score,
            "misses": self.misses,
        }
        if self.detector.resolved_kind is not DetectorKind.MTCNN:
            # Only other detectors add to the key, so existing MTCNN caches stay valid.
            desc["detector"] = self.detector.resolved_kind.value
            desc["yunet"] = dataclasses.asdict(self.detector.yunet)
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    """`chips/` in the user cache directory (e.g. ~/.cache/facerec/chips)."""
    return platformdirs.user_cache_path("facerec", appauthor=False) / "chips"


@dataclass(frozen=True, slots=True, eq=False)
class ChipSet:
    """Aligned chips with identity labels: what a cache file holds, in memory.

    `labels[i]` indexes `names`; `paths[i]` is row i's photo relative to the
    set's root. `missed` lists photos without a detected face (left out under
    the "skip" policy, fallback-cropped under "fallback"), `unreadable` those
    that could not be decoded. `from_cache` says whether detection was skipped.
    """

    chips: Chips
    labels: npt.NDArray[np.int64]
    names: tuple[str, ...]
    paths: tuple[str, ...]
    fingerprint: str
    missed: tuple[str, ...]
    unreadable: tuple[str, ...]
    cache_path: Path | None = None
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def chip_size(self) -> int:
        return int(self.chips.shape[1])

    def counts(self) -> dict[str, int]:
        """Chips per identity."""
        c = np.bincount(self.labels, minlength=len(self.names))
        return {n: int(c[i]) for i, n in enumerate(self.names)}

    def identities_sha256(self) -> str:
        """Digest of the fingerprint and the identities kept: pins a filtered subset."""
        h = hashlib.sha256(self.fingerprint.encode())
        for name in sorted(self.names):
            h.update(f"\n{name}".encode())
        return h.hexdigest()

    def where(self, keep_identity: Callable[[str, int], bool]) -> ChipSet:
        """The chips of the identities for which `keep_identity(name, n_chips)` holds, relabelled 0..M-1."""
        counts = self.counts()
        kept = [n for n in self.names if keep_identity(n, counts[n])]
        new_label = {self.names.index(n): i for i, n in enumerate(kept)}
        rows = np.array([int(lab) in new_label for lab in self.labels], dtype=bool)
        labels = np.array([new_label[int(lab)] for lab in self.labels[rows]], dtype=np.int64)
        return ChipSet(
            chips=self.chips[rows],
            labels=labels,
            names=tuple(kept),
            paths=tuple(p for p, r in zip(self.paths, rows, strict=True) if r),
            fingerprint=self.fingerprint,
            missed=self.missed,
            unreadable=self.unreadable,
            cache_path=self.cache_path,
            from_cache=self.from_cache,
        )

    def exclude(self, names: Collection[str]) -> ChipSet:
        """Without the given identities (e.g. the people of the fold being evaluated)."""
        return self.where(lambda n, _: n not in names)

    def with_min_chips(self, n: int) -> ChipSet:
        """Only identities with at least `n` chips (a positive pair needs 2)."""
        return self.where(lambda _, c: c >= n)


def load_or_build(
    items: Sequence[ImageItem],
    prep: Preparation,
    *,
    cache_dir: Path | None = None,
    detector: FaceDetector | None = None,
    progress: bool = False,
    batch_size: int = 16,
) -> ChipSet:
    """The chips of `items`, from the cache when it holds them, else detected, aligned and cached.

    `detector` defaults to the one `prep.detector` configures and is only
    created when the cache misses. A corrupt or outdated cache file is logged
    and rebuilt.
    """
    if not items:
        raise DataError("no photos to prepare")
    fingerprint = data_fingerprint(items)
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    path = folder / f"{fingerprint}-{prep.key()}.npz"
    if path.is_file():
        try:
            cached = _read_cache(path, fingerprint, prep)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unusable chip cache (%s); rebuilding it", path, exc)
        else:
            log.info("%s: %d chips from the cache", path, len(cached))
            return cached
    if detector is None:
        from facerec.detectors import Detector

        detector = Detector(prep.detector)
    built = _build(items, prep, fingerprint, detector, progress=progress, batch_size=batch_size)
    _write_cache(path, built, prep)
    log.info(
        "%s: cached %d chips of %d photos (%d without a face, %d unreadable)",
        path,
        len(built),
        len(items),
        len(built.missed),
        len(built.unreadable),
    )
    return ChipSet(
        built.chips,
        built.labels,
        built.names,
        built.paths,
        built.fingerprint,
        built.missed,
        built.unreadable,
        cache_path=path,
        from_cache=False,
    )


def _build(
    items: Sequence[ImageItem],
    prep: Preparation,
    fingerprint: str,
    detector: FaceDetector,
    *,
    progress: bool,
    batch_size: int,
) -> ChipSet:
    size = prep.template.size
    found: list[tuple[ImageItem, npt.NDArray[np.float64]]] = []  # relative landmarks
    misses: list[ImageItem] = []
    unreadable: list[str] = []
    chips: list[RGBImage] = []
    kept: list[ImageItem] = []
    pending: list[tuple[ImageItem, RGBImage]] = []  # misses to crop after the pass (fallback)
    bar = tqdm(total=len(items), desc="detecting", unit="photo", disable=not progress)
    for start in range(0, len(items), batch_size):
        chunk: list[tuple[ImageItem, RGBImage]] = []
        for it in items[start : start + batch_size]:
            try:
                chunk.append((it, load_image(it.path).pixels))
            except ImageError as exc:
                log.warning("skipping %s", exc)
                unreadable.append(it.rel)
        detections = detector.detect_batch([img for _, img in chunk]) if chunk else []
        for (it, img), faces in zip(chunk, detections, strict=True):
            h, w = img.shape[:2]
            if faces:
                lm = central_face(faces, w, h).landmarks_array()
                found.append((it, lm / [w, h]))
                chips.append(warp_to_template(img, lm, prep.template))
                kept.append(it)
            else:
                misses.append(it)
                if prep.misses == "fallback":
                    pending.append((it, img))
        bar.update(len(items[start : start + batch_size]))
    bar.close()
    if pending:
        if not found:
            raise DataError("the detector found no face in any photo of this set")
        fallback = np.mean([rel for _, rel in found], axis=0)
        for it, img in pending:
            h, w = img.shape[:2]
            chips.append(warp_to_template(img, fallback * [w, h], prep.template))
            kept.append(it)
    if not kept:
        raise DataError(f"no face found in any of {len(items)} photos")
    order = sorted(range(len(kept)), key=lambda i: kept[i].rel)  # a stable, content-free order
    names = tuple(sorted({it.identity for it in kept}))
    label_of = {n: i for i, n in enumerate(names)}
    return ChipSet(
        chips=np.stack([chips[i] for i in order]).reshape(-1, size, size, 3),
        labels=np.array([label_of[kept[i].identity] for i in order], dtype=np.int64),
        names=names,
        paths=tuple(kept[i].rel for i in order),
        fingerprint=fingerprint,
        missed=tuple(sorted(it.rel for it in misses)),
        unreadable=tuple(sorted(unreadable)),
    )


def _write_cache(path: Path, chips: ChipSet, prep: Preparation) -> None:
    """Write atomically (temporary file, then rename): a crash never leaves half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".chips-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                version=np.array(CACHE_VERSION),
                prep=np.array(prep.key()),
                fingerprint=np.array(chips.fingerprint),
                chips=chips.chips,
                labels=chips.labels,
                names=np.array(chips.names, dtype=str),
                paths=np.array(chips.paths, dtype=str),
                missed=np.array(chips.missed, dtype=str),
                unreadable=np.array(chips.unreadable, dtype=str),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(path: Path, fingerprint: str, prep: Preparation) -> ChipSet:
    with np.load(path, allow_pickle=False) as z:
        if int(z["version"]) != CACHE_VERSION:
            raise ValueError(f"cache version {int(z['version'])}, expected {CACHE_VERSION}")
        if str(z["fingerprint"]) != fingerprint or str(z["prep"]) != prep.key():
            raise ValueError("fingerprint or preparation differs from the file name")
        chips = np.asarray(z["chips"], dtype=np.uint8)
        labels = np.asarray(z["labels"], dtype=np.int64)
        names = tuple(str(n) for n in z["names"])
        paths = tuple(str(p) for p in z["paths"])
        missed = tuple(str(p) for p in z["missed"])
        unreadable = tuple(str(p) for p in z["unreadable"])
    size = prep.template.size
    if chips.shape[1:] != (size, size, 3) or not len(chips) == len(labels) == len(paths):
        raise ValueError(f"inconsistent shapes {chips.shape}, {labels.shape}, {len(paths)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError("labels out of range")
    return ChipSet(
        chips,
        labels,
        names,
        paths,
        fingerprint,
        missed,
        unreadable,
        cache_path=path,
        from_cache=True,
    )


# ---------------------------------------------------------------------------
# Augmentation and the Dataset
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Augment:
    """Light augmentation: what a re-detected, re-aligned photo of the same face could look like.

    Kept small on purpose: the chips are already aligned, and the network must
    keep working on aligned chips, so large rotations or crops would only teach
    it invariances it never needs. Flip probability; brightness, contrast and
    saturation factors drawn in [1 - x, 1 + x]; rotation in degrees, relative
    scale and shift in pixels drawn uniformly in [-x, x].
    """

    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    rotate_deg: float = 5.0
    scale: float = 0.04
    shift_px: float = 3.0


def augment_chip(chip: RGBImage, rng: np.random.Generator, aug: Augment) -> npt.NDArray[np.float32]:
    """One random variant of an aligned chip, as float32 RGB in 0..255 (H, W, 3)."""
    size = chip.shape[0]
    angle = rng.uniform(-aug.rotate_deg, aug.rotate_deg)
    scale = 1.0 + rng.uniform(-aug.scale, aug.scale)
    dx, dy = rng.uniform(-aug.shift_px, aug.shift_px, size=2)
    flip = rng.random() < aug.flip
    b, c, s = (1.0 + rng.uniform(-x, x) for x in (aug.brightness, aug.contrast, aug.saturation))

    matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, scale)
    matrix[:, 2] += (dx, dy)
    img = cv2.warpAffine(
        chip, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    if flip:
        img = img[:, ::-1]
    gray = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = gray[..., None] + (img - gray[..., None]) * s  # saturation
    img = (img - gray.mean()) * c + gray.mean()  # contrast
    img = img * b  # brightness
    return np.ascontiguousarray(np.clip(img, 0.0, 255.0), dtype=np.float32)


class ChipDataset(Dataset[tuple[torch.Tensor, int]]):
    """(normalised CHW float tensor, label) per chip, augmented deterministically.

    The augmentation of item i in epoch e is a function of (seed, e, i) only,
    not of the order items are asked for: runs are reproducible, a resumed run
    sees what an uninterrupted one would, and DataLoader workers need no
    shared random state. (A photo repeated within one batch, which the PK
    sampler does for identities with fewer than K photos, gets the same
    augmentation both times: a zero-distance positive, which the losses handle.)
    """

    def __init__(
        self,
        data: ChipSet,
        mean: tuple[float, float, float],
        std: float,
        *,
        augment: Augment | None = Augment(),
        seed: int = 0,
    ) -> None:
        self.data = data
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.float32(std)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations `__getitem__` draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.data)

    def image(self, index: int) -> npt.NDArray[np.float32]:
        """Item `index` as augmented float RGB (H, W, 3), before normalisation."""
        chip = self.data.chips[index]
        if self.augment is None:
            return chip.astype(np.float32)
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        return augment_chip(chip, rng, self.augment)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = (self.image(index) - self._mean) / self._std
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), int(
            self.data.labels[index]
        )


# ---------------------------------------------------------------------------
# Pair sets (validation and evaluation)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class PairChips:
    """A verification pair list over cached chips: pair i compares rows a[i] and b[i].

    `folds` are the pair file's folds (LFW's are identity-disjoint).
    """

    chips: ChipSet
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    same: npt.NDArray[np.bool_]
    folds: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.same)


def load_pair_chips(
    pairs: Sequence[Pair],
    root: Path,
    detector_config: DetectorConfig,
    template: Template,
    *,
    cache_dir: Path | None = None,
    detector: FaceDetector | None = None,
    progress: bool = False,
) -> PairChips:
    """Chips for every photo of `pairs`, cut as `facerec evaluate` cuts them (fallback for misses).

    Cached like training chips, so evaluating every epoch, or before and
    after fine-tuning, detects each photo once.
    """
    if not pairs:
        raise DataError("no pairs to evaluate")
    items = pair_items(pairs, root)
    prep = Preparation(template, detector_config, misses="fallback")
    chips = load_or_build(items, prep, cache_dir=cache_dir, detector=detector, progress=progress)
    if chips.unreadable:
        raise DataError(
            f"{len(chips.unreadable)} pair photos are unreadable, e.g. {chips.unreadable[0]}"
        )
    row = {rel: i for i, rel in enumerate(chips.paths)}
    root = root.resolve()

    def index(p: Path) -> int:
        return row[p.resolve().relative_to(root).as_posix()]

    return PairChips(
        chips=chips,
        a=np.array([index(p.a) for p in pairs], dtype=np.int64),
        b=np.array([index(p.b) for p in pairs], dtype=np.int64),
        same=np.array([p.same for p in pairs], dtype=bool),
        folds=np.array([p.fold for p in pairs], dtype=np.int64),
    )
