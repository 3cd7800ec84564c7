"""Two networks as one model: weighted score fusion written as an embedding.

Two face networks trained on different data make different mistakes, so the
weighted sum of their cosines, s = w_1 cos_1 + w_2 cos_2 (score-level fusion),
separates people better than either alone. Written as an embedding it needs
nothing new above the Embedder: the fused embedding of a face is the
concatenation of each member's unit-length embedding scaled by sqrt(w_i),
with the weights summing to 1, so it has unit length and the cosine of two
fused embeddings is exactly s. The gallery, its FAISS inner-product index,
prototypes, operating curves and `reembed` then treat a fusion as one more
model: one name, one embedding per face, one digest to pin (the members'
weights SHA-256s and the fusion weights, `fusion_digest`).

Each member sees the chip it was trained on: its own template (dlib's 150-px
chip, SFace's 112-px ArcFace chip), cut from the same five landmarks
(`ModelSpec.templates`; the pipeline cuts one chip per template). Flip
averaging, when on, applies within each member.

`sface+dlib` fuses the two permissively licensed models. Its weight was fit
on LFW `pairs_dev.txt` by `scripts/bench_fusion.py`, which also reports the
held-out figures: the weight is refit on the other four folds for each fold
evaluated, so the LFW accuracy it prints never saw its own fold. AT&T and
Yale played no part in the fit.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from facerec.errors import ModelError
from facerec.models.base import FusionMember, LoadedModel, ModelSpec
from facerec.models.dlib_spec import DLIB_SPEC
from facerec.models.sface import SFACE_SPEC

Embeddings = npt.NDArray[np.float32]

SFACE_DLIB = "sface+dlib"

#: dlib's share of the `sface+dlib` score; SFace has the rest. `python
#: scripts/bench_fusion.py` fits it on a 0.02 grid to the largest TAR at FAR 1e-4
#: (the door's operating point) over every pair of all LFW photos of the people of
#: pairs_dev.txt's five folds (14.4 million impostor pairs), flip off. dlib's cosines
#: spread over a range about a quarter as wide as SFace's, which is why its weight is
#: the larger one. The optimum is flat: 0.2 to 0.7 are within 0.1 point of TAR.
SFACE_DLIB_DLIB_WEIGHT = 0.58


def fused_spec(
    name: str, members: Sequence[FusionMember], *, threshold: float, provenance: str
) -> ModelSpec:
    """The spec of a fusion of `members` (single networks, weights > 0 summing to 1).

    Its template, mean and std are the first member's (see `ModelSpec`); its
    licence lists every member's, and it is non-commercial if any member is.
    """
    if len(members) < 2:
        raise ValueError(f"{name}: a fusion needs at least two members")
    if any(m.spec.members for m in members):
        raise ValueError(f"{name}: a fusion's members must be single networks")
    if any(not m.weight > 0 for m in members) or not math.isclose(
        sum(m.weight for m in members), 1.0, abs_tol=1e-9
    ):
        raise ValueError(f"{name}: member weights must be positive and sum to 1")
    first = members[0].spec
    return ModelSpec(
        name=name,
        template=first.template,
        embedding_dim=sum(m.spec.embedding_dim for m in members),
        mean=first.mean,
        std=first.std,
        threshold=threshold,
        licence="; ".join(f"{m.spec.name}: {m.spec.licence}" for m in members),
        origin=(
            "fusion of "
            + " and ".join(f"{m.spec.name} (weight {m.weight:g})" for m in members)
            + f"; {provenance}"
        ),
        non_commercial=any(m.spec.non_commercial for m in members),
        members=tuple(members),
    )


SFACE_DLIB_SPEC = fused_spec(
    SFACE_DLIB,
    (
        FusionMember(SFACE_SPEC, round(1.0 - SFACE_DLIB_DLIB_WEIGHT, 6)),
        FusionMember(DLIB_SPEC, SFACE_DLIB_DLIB_WEIGHT),
    ),
    # PROVISIONAL, like the members': the mean of the 5 fold-wise accuracy-optimal
    # thresholds on LFW pairs_dev (0.6618), not set for a stated false-accept rate; a
    # gallery uses the shipped operating point (FAR 1e-4) or `facerec calibrate`.
    threshold=0.662,
    provenance="weights fit on LFW pairs_dev.txt (scripts/bench_fusion.py)",
)

#: Every fusion facerec registers, by name.
FUSIONS = {SFACE_DLIB_SPEC.name: SFACE_DLIB_SPEC}


def fusion_digest(spec: ModelSpec, members: Sequence[LoadedModel]) -> str:
    """SHA-256 over each member's name and weights digest and the fusion weights.

    What a gallery pins: another file for either member, or another weight,
    gives other embeddings under the same name, so it gives another digest.
    """
    desc = {
        "fusion": spec.name,
        "members": [
            [m.spec.name, m.weights_sha256, f.weight]
            for m, f in zip(members, spec.members, strict=True)
        ],
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def load_fusion(spec: ModelSpec, load_member: Callable[[str], LoadedModel]) -> LoadedModel:
    """Load every member with `load_member(name)` (their packaged, hash-checked weights)."""
    if not spec.members:
        raise ValueError(f"{spec.name} is not a fusion")
    members = tuple(load_member(m.spec.name) for m in spec.members)
    for member, declared in zip(members, spec.members, strict=True):
        if member.spec != declared.spec:
            raise ModelError(f"{spec.name}: member {member.spec.name} loaded with another spec")
    return LoadedModel(spec, None, fusion_digest(spec, members), members)


def fuse(parts: Sequence[Embeddings], weights: Sequence[float]) -> Embeddings:
    """Fused embeddings from each member's (N, D_i) unit-length embeddings of the same N faces.

    Part i is scaled by sqrt(weights[i]) and the parts are concatenated; with
    unit parts and weights summing to 1 that is already unit length, and the
    row is renormalised only to absorb float rounding (a zero row stays zero).
    """
    if len(parts) != len(weights) or not parts:
        raise ValueError(f"{len(parts)} member embeddings for {len(weights)} weights")
    rows = {len(p) for p in parts}
    if len(rows) != 1:
        raise ValueError(f"members embedded different numbers of faces: {sorted(rows)}")
    out = np.concatenate(
        [
            np.asarray(p, dtype=np.float64) * math.sqrt(w)
            for p, w in zip(parts, weights, strict=True)
        ],
        axis=1,
    )
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)
