"""A naive, line-by-line Python transcription of the Deep Image Matting benchmark's MATLAB evaluation code.

Independent of ``deepmatting.metrics`` (it imports nothing from it): the timing baseline of
``bench_metrics.py`` and the oracle of ``tests/test_metrics.py``. Each function follows one MATLAB file:

* ``compute_sad_loss.m``   -> :func:`ref_sad` (already / 1000 there)
* ``compute_mse_loss.m``   -> :func:`ref_mse`
* ``compute_gradient_loss.m`` + ``gaussgradient.m`` -> :func:`ref_grad` (/ 1000 as in ``evaluate.m``)
* ``compute_connectivity_error.m`` -> :func:`ref_conn` (/ 1000 as in ``evaluate.m``)

MATLAB's ``single`` is float32 and ``double`` float64; mixed ``single``/``double`` arithmetic is done in
single. Comparisons of a single with a double threshold are done exactly (in float64). Sums are taken in
float64. ``pred``/``target`` are uint8 (what ``imread`` gives the MATLAB code) or floats in [0, 1], taken as
``single(x)/255`` already done. ``trimap=None`` scores every pixel.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _single(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(np.float32)


def _single_diff_over_255(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(single(pred) - single(target)) / 255`` for uint8 inputs; float inputs are alphas already."""
    if pred.dtype == np.uint8 and target.dtype == np.uint8:
        return (_single(pred) - _single(target)) / np.float32(255)
    return _alpha(pred) - _alpha(target)


def _alpha(x: np.ndarray) -> np.ndarray:
    """``single(x) / 255`` for uint8, ``single(x)`` for floats."""
    return _single(x) / np.float32(255) if x.dtype == np.uint8 else _single(x)


def _unknown(trimap: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``single(trimap == 128)``."""
    if trimap is None:
        return np.ones(shape, dtype=np.float32)
    return (np.asarray(trimap) == 128).astype(np.float32)


def ref_sad(pred: np.ndarray, target: np.ndarray, trimap: np.ndarray | None = None) -> float:
    error_map = np.abs(_single_diff_over_255(pred, target))
    loss = np.sum((error_map * _unknown(trimap, pred.shape)).astype(np.float64))
    return float(loss) / 1000


def ref_mse(pred: np.ndarray, target: np.ndarray, trimap: np.ndarray | None = None) -> float:
    error_map = _single_diff_over_255(pred, target)
    mask = _unknown(trimap, pred.shape)
    total = float(np.sum((error_map**2 * mask).astype(np.float64)))
    count = float(np.sum(mask.astype(np.float64)))
    return total / count if count else math.nan


def mat2gray(a: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray(A)``: double, ``(A - min) / (max - min)``, clipped to [0, 1]; zeros if constant."""
    a = np.asarray(a).astype(np.float64)
    lo, hi = a.min(), a.max()
    if hi == lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0, 1)


def gauss(x: float, sigma: float) -> float:
    return math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def dgauss(x: float, sigma: float) -> float:
    return -x * gauss(x, sigma) / sigma**2


def gaussgradient_kernel(sigma: float) -> np.ndarray:
    """``hx`` of ``gaussgradient.m``: a (size, size) float64 kernel, built with the MATLAB loops."""
    epsilon = 1e-2
    halfsize = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    size = 2 * halfsize + 1
    hx = np.zeros((size, size))
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            u = (i - halfsize - 1, j - halfsize - 1)
            hx[i - 1, j - 1] = gauss(u[0], sigma) * dgauss(u[1], sigma)
    return hx / math.sqrt(np.sum(np.abs(hx) * np.abs(hx)))


def gaussgradient(im: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``[gx, gy] = gaussgradient(IM, sigma)``: ``imfilter(IM, h, 'replicate', 'conv')``, 2-D kernels."""
    hx = gaussgradient_kernel(sigma)
    hy = hx.T
    gx = ndimage.convolve(im, hx, mode="nearest")  # true convolution, replicated borders
    gy = ndimage.convolve(im, hy, mode="nearest")
    return gx, gy


def ref_grad(pred: np.ndarray, target: np.ndarray, trimap: np.ndarray | None = None) -> float:
    pred, target = mat2gray(pred), mat2gray(target)
    pred_x, pred_y = gaussgradient(pred, 1.4)
    target_x, target_y = gaussgradient(target, 1.4)
    pred_amp = np.sqrt(pred_x**2 + pred_y**2)
    target_amp = np.sqrt(target_x**2 + target_y**2)
    error_map = (pred_amp.astype(np.float32) - target_amp.astype(np.float32)) ** 2
    loss = np.sum((error_map * _unknown(trimap, pred.shape)).astype(np.float64))
    return float(loss) / 1000


def matlab_colon(a: float, d: float, b: float) -> list[float]:
    """``a:d:b`` for ``d > 0``, transcribed from Cleve Moler's ``colonop.m`` (how MATLAB builds it)."""
    tol = 2.0 * np.finfo(float).eps * max(abs(a), abs(b))
    n = math.floor((b - a) / d + 0.5)
    if a + n * d - b > tol:
        n = n - 1
    c = a + n * d
    if c - b > -tol:
        c = b
    v = [0.0] * (n + 1)
    for k in range(0, n // 2 + 1):
        v[k] = a + k * d
        v[n - k] = c - k * d
    if n % 2 == 0:
        v[n // 2] = (a + c) / 2
    return v


def bwconncomp4(bw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``bwconncomp(bw, 4)`` as a label image (0 = not in ``bw``) and ``cellfun(@numel, PixelIdxList)``.

    Components are numbered 1, 2, ... in column-major order of their first pixel, as MATLAB numbers them.
    """
    labels, count = ndimage.label(bw.T, structure=ndimage.generate_binary_structure(2, 1))
    labels = labels.T  # labelling the transpose numbers the components in column-major order
    return labels, np.bincount(labels.ravel(), minlength=count + 1)[1:]


def ref_conn(
    pred: np.ndarray, target: np.ndarray, trimap: np.ndarray | None = None, step: float = 0.1
) -> float:
    pred, target = _alpha(pred), _alpha(target)
    thresh_steps = matlab_colon(0.0, step, 1.0)
    l_map = np.ones(pred.shape) * (-1)
    for ii in range(1, len(thresh_steps)):
        pred_alpha_thresh = pred.astype(np.float64) >= thresh_steps[ii]
        target_alpha_thresh = target.astype(np.float64) >= thresh_steps[ii]
        labels, size_vec = bwconncomp4(pred_alpha_thresh & target_alpha_thresh)
        omega = np.zeros(pred.shape)
        if size_vec.size:
            max_id = int(np.argmax(size_vec))  # the first maximum, like MATLAB's max
            omega[labels == max_id + 1] = 1
        flag = (l_map == -1) & (omega == 0)
        l_map[flag] = thresh_steps[ii - 1]
    l_map[l_map == -1] = 1
    pred_d = pred - l_map.astype(np.float32)
    target_d = target - l_map.astype(np.float32)
    pred_phi = 1 - pred_d * (pred_d.astype(np.float64) >= 0.15).astype(np.float32)
    target_phi = 1 - target_d * (target_d.astype(np.float64) >= 0.15).astype(np.float32)
    loss = np.sum((np.abs(pred_phi - target_phi) * _unknown(trimap, pred.shape)).astype(np.float64))
    return float(loss) / 1000


def ref_evaluate(pred: np.ndarray, target: np.ndarray, trimap: np.ndarray | None = None) -> dict[str, float]:
    """The four errors as ``evaluate.m`` reports them."""
    return {
        "sad": ref_sad(pred, target, trimap),
        "mse": ref_mse(pred, target, trimap),
        "grad": ref_grad(pred, target, trimap),
        "conn": ref_conn(pred, target, trimap),
    }
