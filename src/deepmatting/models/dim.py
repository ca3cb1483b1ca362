"""``dim-vgg16``: Deep Image Matting (Xu, Price, Cohen, Huang, CVPR 2017), randomly initialised.

Encoder: the 13 convolutions of VGG16 on a 4-channel input (RGB + trimap) with 5 max-pools whose indices
are kept, then a 1x1 bottleneck convolution. Decoder: a 1x1 convolution, then 5 unpooling layers (using the
encoder's max-pool indices) each followed by a 5x5 convolution, and a 5x5 alpha prediction layer. The small
refinement stage (4 convolutions on the image and the raw alpha, residual) is optional (``refine=True``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _conv_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.ReLU(inplace=True))


class VGG16Encoder(nn.Module):
    """Input ``Bx4xHxW`` (H, W multiples of 32) -> bottleneck features and the 5 max-pool indices."""

    def __init__(self, in_channels: int = 4, bottleneck: int = 512):
        super().__init__()
        self.stages = nn.ModuleList()
        self.channels, self.strides = [], []
        cin = in_channels
        for cout, n in VGG16_STAGES:
            self.stages.append(
                nn.Sequential(*[_conv_relu(cin if i == 0 else cout, cout, 3) for i in range(n)])
            )
            self.channels.append(cout)
            self.strides.append(2 ** len(self.strides) * 2)
            cin = cout
        self.bottleneck = _conv_relu(cin, bottleneck, 1)  # fc6 as a 1x1 convolution
        self.channels.append(bottleneck)
        self.strides.append(self.strides[-1])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        features, indices = [], []
        for stage in self.stages:
            x = stage(x)
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)  # (B, C, H/2^k, W/2^k)
            features.append(x)
            indices.append(idx)
        features.append(self.bottleneck(x))  # (B, 512, H/32, W/32)
        return features, indices


class UnpoolDecoder(nn.Module):
    """DIM decoder: 1x1 conv, then (unpool with the encoder's indices -> 5x5 conv) x 5, 5x5 alpha layer."""

    def __init__(self, encoder_channels: list[int], in_channels: int = 4, refine: bool = False):
        super().__init__()
        pooled = encoder_channels[:-1]  # channels at each max-pool, finest first: 64,128,256,512,512
        self.deconv6 = _conv_relu(encoder_channels[-1], pooled[-1], 1)
        self.deconvs = nn.ModuleList()
        for i in range(len(pooled) - 1, -1, -1):
            cout = pooled[i - 1] if i > 0 else pooled[0]
            self.deconvs.append(_conv_relu(pooled[i], cout, 5))
        self.pred = nn.Conv2d(pooled[0], 1, 5, padding=2)
        self.refine = (
            nn.Sequential(
                _conv_relu(4, 64, 3),
                _conv_relu(64, 64, 3),
                _conv_relu(64, 64, 3),
                nn.Conv2d(64, 1, 3, padding=1),
            )
            if refine
            else None
        )

    def forward(
        self, encoded: tuple[list[torch.Tensor], list[torch.Tensor]], inputs: torch.Tensor
    ) -> torch.Tensor:
        features, indices = encoded
        x = self.deconv6(features[-1])  # (B, 512, H/32, W/32)
        for deconv, idx in zip(self.deconvs, reversed(indices), strict=True):
            x = F.max_unpool2d(x, idx, 2, 2, output_size=(idx.shape[-2] * 2, idx.shape[-1] * 2))
            x = deconv(x)  # (B, C, h, w)
        logits = self.pred(x)  # (B, 1, H, W)
        if self.refine is not None:
            # the refinement stage sees the RGB input and the raw alpha and adds a residual to it
            raw = torch.sigmoid(logits)
            logits = logits + self.refine(torch.cat([inputs[:, :3], raw], dim=1))
        return logits
