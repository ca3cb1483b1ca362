"""Conversions between the numpy sample dict and the tensors the model reads.

The one place that knows the conventions:

- image  ``HxWx3 float32 [0,1]``            -> ``Bx3xHxW float32 [0,1]``
- trimap ``HxW uint8 {0,128,255}``           -> ``Bx1xHxW float32 {0, 0.5, 1}``
- alpha  ``HxW float32 [0,1]``               -> ``Bx1xHxW float32 [0,1]``
- prior  ``HxW`` or ``HxWxC float32 [0,1]``  -> ``Bx1xHxW`` or ``BxCxHxW`` (classical mattes a model reads)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: Trimap values in the uint8 files and sample dicts.
TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255


def trimap_to_float(trimap: np.ndarray) -> np.ndarray:
    """Map a uint8 trimap {0,128,255} to float32 {0, 0.5, 1} (values in between are scaled linearly).

    Parameters
    ----------
    trimap : np.ndarray, HxW uint8
    """
    t = np.asarray(trimap)
    out = t.astype(np.float32) / 255.0
    out[t == TRIMAP_UNKNOWN] = 0.5
    return out


def float_to_trimap(trimap: np.ndarray | torch.Tensor) -> np.ndarray:
    """Map a float trimap in [0,1] to uint8 {0,128,255}: < 0.25 is bg, > 0.75 is fg, the rest unknown."""
    if isinstance(trimap, torch.Tensor):
        trimap = trimap.detach().cpu().numpy()
    t = np.asarray(trimap, dtype=np.float32)
    out = np.full(t.shape, TRIMAP_UNKNOWN, np.uint8)
    out[t < 0.25] = TRIMAP_BG
    out[t > 0.75] = TRIMAP_FG
    return out


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``HxWx3`` float32 [0,1] (or ``BxHxWx3``) -> ``Bx3xHxW`` float32 tensor."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    if x.ndim == 3:
        x = x.unsqueeze(0)
    return x.permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W)


def plane_to_tensor(plane: np.ndarray) -> torch.Tensor:
    """``HxW`` (or ``BxHxW``) array -> ``Bx1xHxW`` float32 tensor, values unchanged."""
    x = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))
    if x.ndim == 2:
        x = x.unsqueeze(0)
    return x.unsqueeze(1)  # (B, 1, H, W)


def batch_prior_to_tensor(priors: np.ndarray) -> torch.Tensor:
    """``BxHxW`` or ``BxHxWxC`` classical mattes -> ``BxCxHxW`` float32."""
    priors = np.asarray(priors)
    return plane_to_tensor(priors) if priors.ndim == 3 else image_to_tensor(priors)


def trimap_to_tensor(trimap: np.ndarray) -> torch.Tensor:
    """``HxW`` uint8 {0,128,255} trimap -> ``Bx1xHxW`` float32 {0, 0.5, 1}."""
    return plane_to_tensor(trimap_to_float(trimap))


def collate(samples: Sequence[dict]) -> dict:
    """Stack sample dicts of equal size into a batch of tensors.

    Returns a dict with ``image`` Bx3xHxW, ``trimap`` Bx1xHxW float {0,0.5,1}, ``alpha`` Bx1xHxW,
    ``fg``/``bg`` Bx3xHxW and ``prior`` BxCxHxW (classical mattes) when every sample has them, and
    ``name`` (list of str).
    """
    batch = {
        "image": image_to_tensor(np.stack([s["image"] for s in samples])),
        "trimap": trimap_to_tensor(np.stack([s["trimap"] for s in samples])),
        "alpha": plane_to_tensor(np.stack([s["alpha"] for s in samples])),
        "name": [s.get("name", str(i)) for i, s in enumerate(samples)],
    }
    for key in ("fg", "bg"):
        if all(s.get(key) is not None for s in samples):
            batch[key] = image_to_tensor(np.stack([s[key] for s in samples]))
    if all(s.get("prior") is not None for s in samples):
        batch["prior"] = batch_prior_to_tensor(np.stack([s["prior"] for s in samples]))
    return batch
