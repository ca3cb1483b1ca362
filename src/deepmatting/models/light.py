"""``light-unet``: a MobileNetV2-style encoder with a U-Net decoder, sized for a 2-core CPU.

The encoder returns features at strides 2, 4, 8, 16, 32; the decoder reads their channel counts from the
encoder (nothing hard-coded twice), upsamples step by step, fuses each skip connection, and predicts alpha
at full resolution from the stride-2 features and the network input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBNAct, InvertedResidual, SeparableConv

# (output channels, number of blocks, stride of the first block) per stage; expansion 4 after the stem.
LIGHT_STAGES: tuple[tuple[int, int, int], ...] = ((24, 2, 2), (32, 3, 2), (96, 3, 2), (160, 3, 2))


def _scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width / 8)) * 8)


class LightEncoder(nn.Module):
    """Input ``BxCxHxW`` (H, W multiples of 32) -> features at strides 2, 4, 8, 16, 32.

    Attributes
    ----------
    channels : list[int]
        Channels of each returned feature map, finest first.
    strides : list[int]
        Their strides relative to the input.
    """

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        stem = _scaled(16, width)
        self.stem = nn.Sequential(ConvBNAct(in_channels, stem, 3, 2), InvertedResidual(stem, stem, expand=1))
        self.stages = nn.ModuleList()
        self.channels, self.strides = [stem], [2]
        cin = stem
        for cout, blocks, stride in LIGHT_STAGES:
            cout = _scaled(cout, width)
            layers = [
                # the first block works at stride 2: expanding less there saves most of the cost
                InvertedResidual(cin, cout, stride, expand=1 if not self.stages else 4),
                *[InvertedResidual(cout, cout) for _ in range(blocks - 1)],
            ]
            self.stages.append(nn.Sequential(*layers))
            self.channels.append(cout)
            self.strides.append(self.strides[-1] * stride)
            cin = cout

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]  # (B, C1, H/2, W/2)
        for stage in self.stages:
            features.append(stage(features[-1]))  # (B, Ck, H/2^k, W/2^k)
        return features


class LightDecoder(nn.Module):
    """Features (finest first) and the network input -> alpha logits ``Bx1xHxW`` (``out_channels`` maps)."""

    def __init__(self, encoder_channels: list[int], in_channels: int, head_channels: int = 8,
                 out_channels: int = 1):
        super().__init__()
        self.context = ConvBNAct(encoder_channels[-1], encoder_channels[-1], 1)
        self.fuse = nn.ModuleList()
        cin = encoder_channels[-1]
        for skip in reversed(encoder_channels[:-1]):  # strides 16, 8, 4, 2
            self.fuse.append(SeparableConv(cin + skip, skip))
            cin = skip
        # full resolution: cheap 3x3 convs on the upsampled stride-2 features and the raw input
        self.reduce = ConvBNAct(cin, head_channels, 1)
        self.head = nn.Sequential(
            ConvBNAct(head_channels + in_channels, head_channels, 3),
            nn.Conv2d(head_channels, out_channels, 3, padding=1),
        )

    def forward(self, features: list[torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        x = self.context(features[-1])  # (B, C5, H/32, W/32)
        for fuse, skip in zip(self.fuse, reversed(features[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))  # (B, Cskip, h, w)
        x = F.interpolate(self.reduce(x), size=inputs.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([x, inputs], dim=1))  # (B, out_channels, H, W) logits
