"""The side-by-side figure: image | predicted alpha | masked image (| ground truth | error).

Figures are drawn with Matplotlib's object API on the Agg canvas: no pyplot, no global backend switch, no
display needed, nothing left open.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .atomic import atomic_write
from .data.pixels import as_image, as_trimap
from .foreground import estimate_foreground
from .tensors import TRIMAP_UNKNOWN

#: Panel titles, left to right (the last two only when the ground truth is given).
TITLES = ("Image", "Predicted alpha", "Masked image", "Ground truth", "Error |pred - gt|")

#: The outline of the trimap's unknown region on the image panel, and its legend entry.
OUTLINE_COLOR = "yellow"
OUTLINE_LABEL = "edge of the trimap's unknown region"

#: Images are shown at most this many pixels on their longer side (block-averaged), which keeps the
#: figure fast to draw and the PNG small whatever the input size.
DISPLAY_SIDE = 800

#: A panel is at most this many times longer than it is high (or high than long). A more extreme image (a
#: 1x100000 strip) is drawn stretched to this shape: at its own shape it would be a figure hundreds of
#: metres wide, or a line thinner than a pixel.
MAX_PANEL_ASPECT = 5.0


def checkerboard(h: int, w: int, square: int = 16, colors: tuple[float, float] = (0.6, 0.9)) -> np.ndarray:
    """A gray checkerboard, the usual backdrop for transparency.

    Parameters
    ----------
    h, w : int
    square : int, default 16
        Side of a square in pixels.
    colors : (float, float)
        Gray levels of the two kinds of square.

    Returns
    -------
    np.ndarray, HxWx3 float32 in [0,1]

    Examples
    --------
    >>> checkerboard(4, 4, square=2)[:, :, 0]
    array([[0.6, 0.6, 0.9, 0.9],
           [0.6, 0.6, 0.9, 0.9],
           [0.9, 0.9, 0.6, 0.6],
           [0.9, 0.9, 0.6, 0.6]], dtype=float32)
    """
    if square < 1:
        raise ValueError(f"square must be at least 1 pixel, got {square}")
    cells = (np.arange(h)[:, None] // square + np.arange(w)[None, :] // square) % 2  # (h, w)
    board = np.where(cells == 0, colors[0], colors[1]).astype(np.float32)
    return np.repeat(board[:, :, None], 3, axis=2)


def _background(kind: str | Sequence[float], h: int, w: int, square: int) -> np.ndarray:
    if isinstance(kind, str):
        named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "green": (0.0, 0.7, 0.2)}
        if kind == "checkerboard":
            return checkerboard(h, w, square)
        if kind not in named:
            raise ValueError(f"background must be 'checkerboard', {sorted(named)} or an RGB triple, "
                             f"got {kind!r}")
        kind = named[kind]
    rgb = np.asarray(kind, np.float32).reshape(-1)
    if rgb.shape != (3,) or rgb.min() < 0 or rgb.max() > 1:
        raise ValueError(f"a background colour must be three floats in [0, 1], got {kind!r}")
    return np.broadcast_to(rgb, (h, w, 3))


def _shrink(a: np.ndarray, k: int) -> np.ndarray:
    """Average ``k x k`` blocks of an ``HxW[xC]`` array (the ragged right/bottom edge is cropped).

    A side shorter than ``k`` is averaged whole (to one pixel), so no side of the result is empty: a
    1x100000 image shrinks to 1x800, not to 0x800.
    """
    ky, kx = min(k, a.shape[0]), min(k, a.shape[1])
    if ky == kx == 1:
        return a
    h, w = a.shape[0] // ky * ky, a.shape[1] // kx * kx
    a = a[:h, :w]
    return a.reshape(h // ky, ky, w // kx, kx, *a.shape[2:]).mean(axis=(1, 3))


def side_by_side(image: np.ndarray, alpha: np.ndarray, path: str | os.PathLike | None = None, *,
                 gt: np.ndarray | None = None, trimap: np.ndarray | None = None, fg: np.ndarray | None = None,
                 titles: Sequence[str] = TITLES, background: str | Sequence[float] = "checkerboard",
                 panel_inches: float = 4.0, dpi: int = 100) -> Figure:
    """One row of panels: image, predicted alpha, masked image (and ground truth, error when ``gt`` is given).

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0,1] (uint8 accepted)
    alpha : np.ndarray, HxW float in [0,1], the prediction
    path : path, optional
        Where to save the figure as PNG.
    gt : np.ndarray, HxW float in [0,1], optional
        Ground-truth alpha: adds "Ground truth" and "Error |pred - gt|" panels (with a colour bar).
    trimap : np.ndarray, HxW uint8 {0,128,255}, optional
        The unknown region is outlined on the image (with a legend), and the error is shown inside it only.
    fg : np.ndarray, HxWx3 float in [0,1], optional
        Foreground colours for the masked image (estimated at display resolution when not given).
    titles : sequence of str
        Panel titles, in the order of :data:`TITLES`.
    background : "checkerboard", "white", "black", "green" or an RGB triple in [0,1]
        What the masked image is composited on.
    panel_inches, dpi : float, int
        Height of a panel in inches and the resolution of the saved PNG (4 in at 100 dpi: 400 px).

    Returns
    -------
    matplotlib.figure.Figure
        Its ``axes`` are the panels, left to right (3, or 5 with ``gt``).

    Examples
    --------
    >>> image = np.random.rand(64, 96, 3).astype(np.float32)
    >>> fig = side_by_side(image, np.random.rand(64, 96).astype(np.float32))
    >>> [ax.get_title() for ax in fig.axes]
    ['Image', 'Predicted alpha', 'Masked image']
    """
    image = as_image(image)
    h, w = image.shape[:2]
    planes = {"alpha": alpha, "gt": gt, "fg": fg}
    for name, a in planes.items():
        if a is not None and np.shape(a)[:2] != (h, w):
            raise ValueError(f"{name} is {np.shape(a)} but the image is {image.shape}; "
                             "they must have the same size")
    tri = as_trimap(trimap) if trimap is not None else None
    if tri is not None and tri.shape != (h, w):
        raise ValueError(f"trimap is {tri.shape} but the image is {image.shape}; "
                         "they must have the same size")

    k = max(1, -(-max(h, w) // DISPLAY_SIDE))  # display scale: block-average large images
    img = _shrink(image, k)
    a = _shrink(np.clip(np.asarray(alpha, np.float32), 0, 1), k)
    dh, dw = a.shape
    f = estimate_foreground(img, a) if fg is None else _shrink(as_image(fg), k)
    back = _background(background, dh, dw, max(2, 16 * dh // 400))
    masked = a[..., None] * f + (1 - a[..., None]) * back

    n = 5 if gt is not None else 3
    aspect = min(max(dw / dh, 1 / MAX_PANEL_ASPECT), MAX_PANEL_ASPECT)  # of a panel, width / height
    height = panel_inches + 0.5  # room for the titles
    width = max(panel_inches * aspect * n, 2 * height)  # tall images get side margins: the row stays >= 2:1
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax in axes:
        ax.set_box_aspect(1 / aspect)  # the image's own shape, unless it is more extreme than the limit
    shown = {"interpolation": "antialiased", "aspect": "auto"}  # the panel's shape is set just above
    axes[0].imshow(img, **shown)
    if tri is not None:
        unknown = _shrink((tri == TRIMAP_UNKNOWN).astype(np.float32), k)
        # an outline needs an edge inside the panel (level 0.5 crossed) and contour needs 2x2 samples
        if min(dh, dw) >= 2 and unknown.min() < 0.5 < unknown.max():
            axes[0].contour(unknown, levels=[0.5], colors=OUTLINE_COLOR, linewidths=0.6)
            outline = Line2D([], [], color=OUTLINE_COLOR, linewidth=1.5, label=OUTLINE_LABEL)
            axes[0].legend(handles=[outline], loc="lower left", fontsize="small", framealpha=0.75)
    axes[1].imshow(a, cmap="gray", vmin=0, vmax=1, **shown)
    axes[2].imshow(np.clip(masked, 0, 1), **shown)
    if gt is not None:
        g = _shrink(np.clip(np.asarray(gt, np.float32), 0, 1), k)
        err = np.abs(a - g)
        if tri is not None:
            err = err * (_shrink((tri == TRIMAP_UNKNOWN).astype(np.float32), k) > 0)
        axes[3].imshow(g, cmap="gray", vmin=0, vmax=1, **shown)
        errors = axes[4].imshow(err, cmap="inferno", vmin=0, vmax=max(0.05, float(err.max())), **shown)
        cax = axes[4].inset_axes([1.03, 0.0, 0.05, 1.0])  # a child of the panel: fig.axes stays 5 long
        fig.colorbar(errors, cax=cax)
    for ax, title in zip(axes, titles, strict=False):
        ax.set_title(title)
        ax.set_axis_off()
    if path is not None:
        _save_png(fig, path, dpi)
    return fig


def _save_png(fig: Figure, path, dpi: int) -> None:
    """Save ``fig`` as PNG into an open binary file, or atomically to a path (never a partial file)."""
    if hasattr(path, "write"):
        fig.savefig(path, format="png", dpi=dpi)
    else:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


def panel_grid(rows: Sequence[Sequence[tuple[np.ndarray, str]]], path: str | os.PathLike | None = None, *,
               panel_inches: float = 3.0, dpi: int = 100) -> Figure:
    """A grid of titled panels, one list of ``(array, title)`` per row (the README's figures).

    Arrays are HxW (drawn in gray, 0 black to 1 white) or HxWx3 RGB, float in [0, 1]; all panels take the
    aspect of the first one. Returns the figure (its ``axes`` row by row); saves it as PNG when ``path``
    is given.

    Examples
    --------
    >>> fig = panel_grid([[(np.zeros((8, 12)), "a"), (np.ones((8, 12, 3)), "b")]])
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b']
    """
    h, w = np.shape(rows[0][0][0])[:2]
    columns = max(len(row) for row in rows)
    fig = Figure(figsize=(panel_inches * columns, (panel_inches * h / w + 0.4) * len(rows)), dpi=dpi,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for row_axes, row in zip(axes, rows, strict=True):
        for ax, (panel, title) in zip(row_axes, row, strict=False):
            ax.imshow(panel, cmap="gray" if np.ndim(panel) == 2 else None, vmin=0, vmax=1)
            ax.set_title(title, fontsize=10)
        for ax in row_axes:
            ax.set_axis_off()
    if path is not None:
        _save_png(fig, path, dpi)
    return fig
