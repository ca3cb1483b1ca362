"""A decoder built for edges: a U-Net to stride 2, then a refinement path at full resolution.

The U-Net part fuses the encoder's features from stride 32 up to stride 2 and predicts coarse alpha logits
there (semantics: which pixels are foreground). Upsampled bilinearly, that prediction is smooth: hair
strands and fine holes are thinner than a stride-2 pixel. The refinement path therefore works on the
full-resolution network input itself (the normalised image and the trimap encoding), the upsampled coarse
logits and a few upsampled decoder channels, and adds a residual to the logits, so detail is made from the
image at full resolution rather than only upsampled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBNAct


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class EdgeDecoder(nn.Module):
    """Features (finest first, strides 2..32) and the network input -> alpha logits ``Bx1xHxW``.

    Parameters
    ----------
    encoder_channels : list[int]
        Channels of the encoder's features, finest (stride 2) first.
    in_channels : int
        Channels of the network input (normalised RGB + trimap encoding).
    widths : sequence of int
        Decoder channels at strides 16, 8, 4, 2 (one per skip connection, coarsest first).
    refine_channels : int
        Width of the full-resolution refinement path.
    guide_channels : int
        Decoder channels carried to full resolution.
    zero_output : bool
        Start the output layers at zero (the logits are 0 everywhere): for models whose output is a
        correction of an input matte, which then start as that matte.
    """

    def __init__(
        self,
        encoder_channels: list[int],
        in_channels: int,
        widths: tuple[int, ...] = (96, 64, 48, 32),
        refine_channels: int = 16,
        guide_channels: int = 8,
        zero_output: bool = False,
    ):
        super().__init__()
        skips = list(reversed(encoder_channels[:-1]))  # strides 16, 8, 4, 2
        if len(widths) != len(skips):
            raise ValueError(f"EdgeDecoder: {len(skips)} skip connections need as many widths, got {widths}")
        self.context = ConvBNAct(encoder_channels[-1], widths[0], 1)
        self.fuse = nn.ModuleList()
        cin = widths[0]
        for skip, width in zip(skips, widths, strict=True):
            self.fuse.append(nn.Sequential(ConvBNAct(cin + skip, width, 3), ConvBNAct(width, width, 3)))
            cin = width
        self.coarse = nn.Conv2d(cin, 1, 3, padding=1)  # stride-2 alpha logits
        self.guide = ConvBNAct(cin, guide_channels, 1)  # decoder channels carried to full resolution
        self.refine = nn.Sequential(
            ConvBNAct(in_channels + 1 + guide_channels, refine_channels, 3),
            ConvBNAct(refine_channels, refine_channels, 3),
            nn.Conv2d(refine_channels, 1, 3, padding=1),
        )
        if zero_output:
            for conv in (self.coarse, self.refine[-1]):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, features: list[torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        x = self.context(features[-1])  # (B, W0, H/32, W/32)
        for fuse, skip in zip(self.fuse, reversed(features[:-1]), strict=True):
            x = fuse(torch.cat([_up(x, skip), skip], dim=1))  # (B, Wk, h, w)
        coarse = _up(self.coarse(x), inputs)  # (B, 1, H, W) logits, smooth
        guide = _up(self.guide(x), inputs)  # (B, G, H, W)
        detail = self.refine(torch.cat([inputs, coarse, guide], dim=1))  # (B, 1, H, W)
        return coarse + detail
