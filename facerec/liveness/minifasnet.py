"""MiniFASNet, the passive face anti-spoofing network of minivision-ai's Silent-Face-Anti-Spoofing.

MiniFASNet is MobileFaceNet (Chen et al., "MobileFaceNets: Efficient CNNs for
Accurate Real-Time Face Verification on Mobile Devices", 2018) pruned for an
80x80 input and a 3-way output (index 1 = a live face, 0 and 2 = two kinds of
spoof). Its authors train it with an auxiliary branch that predicts the
Fourier spectrum of the crop (recaptured images differ from live ones mostly
in high frequencies: moiré, print halftone, screen blur); that branch only
shapes the features during training and is absent from the released
weights, so it is absent here.

The layers are rebuilt from the paper's design and from the key names and
tensor shapes of the released state dicts (every key is used: `load_strict`):

* stem: conv 3x3/2 (3 -> 32) -> 40x40, then a depthwise 3x3/1; each followed by
  batch norm and a per-channel PReLU; no convolution has a bias.
* three stages, each opened by a stride-2 inverted bottleneck without a
  shortcut (1x1 expand + BN + PReLU, depthwise 3x3/2 + BN + PReLU, 1x1 linear
  projection + BN) and continued by residual bottlenecks at stride 1
  (same three convolutions, input added to the output): 64 channels at 20x20
  (4 blocks), 128 at 10x10 (6 blocks), 128 at 5x5 (2 blocks). Pruning left
  each bottleneck its own expansion width (`MiniFASNetSpec`).
* MiniFASNetV1SE puts a squeeze-and-excitation module (Hu et al., 2018:
  global average pool, 1x1 reduce by 4 + BN + ReLU, 1x1 expand + BN,
  sigmoid gate) on the last residual block of each stage, where it gates the
  residual branch before the shortcut is added.
* head: 1x1 conv 128 -> 512 + BN + PReLU, a depthwise 5x5 conv without padding
  that reduces the 5x5 map to one "global depthwise" feature + BN, a linear
  512 -> 128 + BatchNorm1d (the 128-d feature), a linear 128 -> 3 (logits).

Input: (N, 3, 80, 80) float, **BGR channels, 0..255, no normalisation** (the
authors' training transform skips the division by 255; their FAQ confirms it).
"""

from __future__ import annotations

import torch
from torch import nn

from facerec.liveness.spec import (  # re-exported: the network's widths live without torch
    CLASSES,
    FEATURE_DIM,
    HEAD_CHANNELS,
    INPUT_SIZE,
    MINIFASNET_V1SE,
    MINIFASNET_V2,
    REAL_CLASS,
    SE_REDUCTION,
    STAGE_CHANNELS,
    STEM_CHANNELS,
    MiniFASNetSpec,
)

__all__ = [
    "INPUT_SIZE",
    "MINIFASNET_V1SE",
    "MINIFASNET_V2",
    "REAL_CLASS",
    "MiniFASNet",
    "MiniFASNetSpec",
]


class ConvUnit(nn.Module):
    """Convolution without bias, batch norm, and (unless `linear`) a per-channel PReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        *,
        depthwise: bool = False,
        linear: bool = False,
    ) -> None:
        super().__init__()
        groups = cin if depthwise else 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = None if linear else nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (1x1 convolutions with batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // SE_REDUCTION
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.relu(self.bn1(self.fc1(self.pool(x))))
        return x * torch.sigmoid(self.bn2(self.fc2(w)))


class Bottleneck(nn.Module):
    """MobileNetV2's inverted bottleneck: 1x1 expand, depthwise 3x3, 1x1 linear projection.

    With `residual` (stride 1, same width in and out) the input is added to
    the output, after the optional SE gate.
    """

    def __init__(
        self,
        cin: int,
        expansion: int,
        cout: int,
        *,
        stride: int,
        residual: bool,
        squeeze_excite: bool = False,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv = ConvUnit(cin, expansion)
        self.conv_dw = ConvUnit(expansion, expansion, 3, stride, 1, depthwise=True)
        self.project = ConvUnit(expansion, cout, linear=True)
        self.se_module = SqueezeExcite(cout) if squeeze_excite else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class ResidualStage(nn.Module):
    """Residual bottlenecks at one resolution (held in `model`, as the state dict names them)."""

    def __init__(self, channels: int, expansions: tuple[int, ...], squeeze_excite: bool) -> None:
        super().__init__()
        last = len(expansions) - 1
        self.model = nn.Sequential(
            *(
                Bottleneck(
                    channels,
                    e,
                    channels,
                    stride=1,
                    residual=True,
                    squeeze_excite=squeeze_excite and i == last,
                )
                for i, e in enumerate(expansions)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    """(N, 3, 80, 80) BGR 0..255 -> (N, 3) logits; softmax index `REAL_CLASS` is p(live)."""

    def __init__(self, spec: MiniFASNetSpec) -> None:
        super().__init__()
        self.spec = spec
        c1, c2, c3 = STAGE_CHANNELS
        o1, o2, o3 = spec.stage_openers
        s1, s2, s3 = spec.stages
        se = spec.squeeze_excite
        self.conv1 = ConvUnit(3, STEM_CHANNELS, 3, 2, 1)
        self.conv2_dw = ConvUnit(STEM_CHANNELS, STEM_CHANNELS, 3, 1, 1, depthwise=True)
        self.conv_23 = Bottleneck(STEM_CHANNELS, o1, c1, stride=2, residual=False)
        self.conv_3 = ResidualStage(c1, s1, se)
        self.conv_34 = Bottleneck(c1, o2, c2, stride=2, residual=False)
        self.conv_4 = ResidualStage(c2, s2, se)
        self.conv_45 = Bottleneck(c2, o3, c3, stride=2, residual=False)
        self.conv_5 = ResidualStage(c3, s3, se)
        self.conv_6_sep = ConvUnit(c3, HEAD_CHANNELS)
        # 80 / 2 / 2 / 2 / 2 = 5: the global depthwise conv covers the whole map.
        self.conv_6_dw = ConvUnit(
            HEAD_CHANNELS, HEAD_CHANNELS, INPUT_SIZE // 16, depthwise=True, linear=True
        )
        self.linear = nn.Linear(HEAD_CHANNELS, FEATURE_DIM, bias=False)
        self.bn = nn.BatchNorm1d(FEATURE_DIM)
        self.prob = nn.Linear(FEATURE_DIM, CLASSES, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        x = self.conv_4(self.conv_34(x))
        x = self.conv_5(self.conv_45(x))
        x = self.conv_6_dw(self.conv_6_sep(x))
        return self.prob(self.bn(self.linear(torch.flatten(x, 1))))
