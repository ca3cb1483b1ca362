"""``cf-knn-fusion``: a learned, bounded fusion of closed-form and KNN matting (after Cho, Tai, Kweon,
"Natural image matting using deep convolutional neural networks", ECCV 2016, who fused the same two
mattes with a CNN).

The network (a ``light-unet`` at half width) reads the image, the trimap, both classical mattes and their
disagreement, and predicts two maps per pixel:

- ``share`` in (0, 1): how much of closed-form against KNN to take, ``blend = knn + share (cf - knn)``;
- ``correction`` in (-1, 1): a move away from the blend, scaled by ``bound = margin + |cf - knn|``.

``alpha = clip(blend + bound * correction, 0, 1)``. So the output never leaves the two mattes' range by more
than ``margin + |cf - knn|``: where closed-form and KNN agree (``|cf - knn|`` small), the network can move
the matte by at most about ``margin`` (0.1), which keeps it from overriding a right classical answer in a
wide unknown region; where they disagree, it chooses between them and beyond. Both output layers start at
zero, so the untrained model is the mean of the two classical mattes (a sound classical answer).
"""

from __future__ import annotations

import torch
from torch import nn

from .light import LightDecoder, LightEncoder

#: How far (in alpha) the fused matte may leave the range of the two mattes where they agree.
FUSION_MARGIN = 0.1
#: Width multiplier of the light U-Net inside (times ``ModelConfig.width``).
FUSION_WIDTH = 0.5


def build_fusion(in_channels: int, width: float) -> tuple[nn.Module, nn.Module]:
    """``(encoder, decoder)``: a light U-Net whose decoder outputs ``(share logit, correction logit)``,
    ``Bx2xHxW``, both zero at first."""
    encoder = LightEncoder(in_channels, width)
    decoder = LightDecoder(encoder.channels, in_channels, out_channels=2)
    last = decoder.head[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return encoder, decoder


def disagreement(priors: torch.Tensor) -> torch.Tensor:
    """``Bx2xHxW`` (closed-form, KNN) in [0, 1] -> ``Bx1xHxW`` ``|cf - knn|``."""
    return (priors[:, :1] - priors[:, 1:2]).abs()


def fuse(outputs: torch.Tensor, priors: torch.Tensor, margin: float = FUSION_MARGIN) -> torch.Tensor:
    """The fused matte (see the module docstring).

    Parameters
    ----------
    outputs : Tensor, Bx2xHxW float, the network's (share, correction) logits
    priors : Tensor, Bx2xHxW float in [0, 1], the closed-form and KNN mattes
    margin : float

    Returns
    -------
    Tensor, Bx1xHxW float in [0, 1]
    """
    outputs, priors = outputs.float(), priors.float()  # in float32 under bf16 autocast too: alpha is exact
    cf, knn = priors[:, :1], priors[:, 1:2]
    blend = knn + torch.sigmoid(outputs[:, :1]) * (cf - knn)
    bound = margin + (cf - knn).abs()
    return (blend + bound * torch.tanh(outputs[:, 1:2])).clamp(0.0, 1.0)
