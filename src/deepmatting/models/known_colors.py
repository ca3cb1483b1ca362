"""The colours of the nearest known foreground and background, spread into the unknown region.

A network trained on a few photos learns semantics slowly; what the classical methods get right with no
training at all is local colour: an unknown pixel whose colour is close to the nearby known foreground is
probably foreground. Giving the network, at every pixel, an estimate of the nearby known foreground colour
and background colour (as learning-based sampling methods do, e.g. Tang et al., CVPR 2019) lets it make
that comparison from its first step.

The estimate is a push-pull fill (Gortler et al., 1996): the image, masked by the known region, is
averaged down a pyramid of 2x2 cells together with the mask; going back up, each cell keeps the mean of
its own known pixels where it has any and takes the coarser level's colour where it has none, blended by
the fraction of known pixels. It runs at a quarter of the resolution, costs a few percent of the
network, and is made of average pooling and bilinear upsampling only (it exports to ONNX).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Resolution of the fill relative to the input, and the number of 2x2 pyramid levels above it.
FILL_STRIDE = 4
FILL_LEVELS = 7


def push_pull(values: torch.Tensor, known: torch.Tensor, levels: int = FILL_LEVELS) -> torch.Tensor:
    """Fill ``values`` where ``known`` is 0 with the colours of the nearest known pixels, coarse to fine.

    Parameters
    ----------
    values : Tensor, BxCxhxw float, any h and w
    known : Tensor, Bx1xhxw float in [0, 1] (the weight of each pixel's own value)
    levels : int

    Returns
    -------
    Tensor, BxCxhxw: ``values`` where known is 1, a smooth fill elsewhere (0 where nothing is known).

    Examples
    --------
    >>> values = torch.zeros(1, 1, 1, 8); values[..., 0] = 1.0
    >>> known = torch.zeros(1, 1, 1, 8); known[..., 0] = 1.0
    >>> bool((push_pull(values, known, levels=3) > 0.99).all())  # one known pixel fills the row
    True
    """
    h, w = values.shape[-2:]
    m = 2**levels  # zero padding to a multiple of 2^levels: padded pixels are simply unknown
    values = F.pad(values * known, (0, (m - w % m) % m, 0, (m - h % m) % m))
    known = F.pad(known, (0, (m - w % m) % m, 0, (m - h % m) % m))
    sums, weights = [values], [known]  # premultiplied means and known fractions per level
    for _ in range(levels):
        sums.append(F.avg_pool2d(sums[-1], 2))
        weights.append(F.avg_pool2d(weights[-1], 2))
    filled = sums[-1] / weights[-1].clamp_min(1e-6)  # (B, C, h/2^L, w/2^L)
    for total, fraction in zip(reversed(sums[:-1]), reversed(weights[:-1]), strict=True):
        coarse = F.interpolate(filled, size=total.shape[-2:], mode="bilinear", align_corners=False)
        own = total / fraction.clamp_min(1e-6)  # mean of the cell's own known pixels
        filled = own * fraction + coarse * (1 - fraction)  # (B, C, h', w')
    return filled[..., :h, :w]


def known_colors(image: torch.Tensor, background: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Estimates of the nearby known foreground and background colours at every pixel.

    Parameters
    ----------
    image : Tensor, Bx3xHxW, H and W multiples of 4 (normalised or not: the estimates are in its units)
    background, foreground : Tensor, Bx1xHxW float in [0, 1], the known regions (trimap channels)

    Returns
    -------
    Tensor, Bx6xHxW: the foreground colour estimate (3 channels), then the background's.
    """
    stacked = torch.cat([image * foreground, image * background, foreground, background], dim=1)
    small = F.avg_pool2d(stacked, FILL_STRIDE)  # (B, 8, H/4, W/4); H and W are multiples of 4 here
    fg, bg = small[:, 6:7], small[:, 7:8]  # known fractions of each cell
    fg_rgb = small[:, 0:3] / fg.clamp_min(1e-6)  # mean colour of the cell's known pixels
    bg_rgb = small[:, 3:6] / bg.clamp_min(1e-6)
    fill = torch.cat([push_pull(fg_rgb, fg), push_pull(bg_rgb, bg)], dim=1)  # (B, 6, H/4, W/4)
    return F.interpolate(fill, size=image.shape[-2:], mode="bilinear", align_corners=False)
