"""MiniFASNet's shapes and the two released variants, readable without PyTorch.

The network itself (`facerec.liveness.minifasnet`) needs torch; the door's
default road runs the shipped ONNX files and needs only these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The crop the network sees, in pixels (both released models).
INPUT_SIZE = 80
#: Index of "live face" among the three outputs.
REAL_CLASS = 1


@dataclass(frozen=True, slots=True)
class MiniFASNetSpec:
    """The widths pruning left: one expansion width per bottleneck, and where the SE modules sit."""

    name: str
    stage_openers: tuple[int, int, int]  # expansion of the stride-2 bottleneck opening each stage
    stages: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # residual blocks' expansions
    squeeze_excite: bool  # an SE module on the last residual block of each stage


#: Widths read off the released state dicts (`2.7_80x80_MiniFASNetV2.pth`, `4_0_0_80x80_MiniFASNetV1SE.pth`).
MINIFASNET_V2 = MiniFASNetSpec(
    "MiniFASNetV2",
    stage_openers=(103, 231, 308),
    stages=((13, 13, 13, 13), (231, 52, 26, 77, 26, 26), (26, 26)),
    squeeze_excite=False,
)
MINIFASNET_V1SE = MiniFASNetSpec(
    "MiniFASNetV1SE",
    stage_openers=(103, 231, 308),
    stages=((13, 26, 13, 52), (154, 52, 26, 52, 26, 26), (26, 26)),
    squeeze_excite=True,
)

STEM_CHANNELS = 32
STAGE_CHANNELS = (64, 128, 128)
HEAD_CHANNELS = 512
FEATURE_DIM = 128
CLASSES = 3
SE_REDUCTION = 4
