"""Foreground colours for an alpha matte, and RGBA cutouts that do not carry the old background.

A semi-transparent pixel of a photo mixes foreground and background: ``I = alpha F + (1 - alpha) B``.
Cutting it out with ``I`` as its colour keeps a halo of the old background; :func:`estimate_foreground`
recovers ``F`` (and ``B``) so that :func:`cutout` composites cleanly over anything.

Only the pixels near a transition of the matte need solving: where alpha is 0 all around, the foreground is
hidden and the background is the image; where alpha is 1 all around, the foreground is the image. The
fine levels of the solver run on tiles that hold such transitions, so time and memory follow the length of
the matte's edge, not the size of the photo.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from .data.pixels import as_image

#: A pixel is *settled* when every alpha within this many pixels (a square) is 0, or every one is 1.
SETTLED_MARGIN = 8
_TILE = 128  # side of the full-resolution tiles the fine levels are solved on
_FULL_FRAME_PIXELS = 1 << 16  # the coarse levels up to this many pixels are solved on the whole frame


def _nearest_index(n_src: int, n_dst: int) -> np.ndarray:
    """For each of ``n_dst`` positions, the nearest of ``n_src`` source positions (pixel centres)."""
    return np.minimum(((np.arange(n_dst) + 0.5) * n_src / n_dst).astype(np.intp), n_src - 1)


def _edge_pad(a: np.ndarray) -> np.ndarray:
    """``...xHxW`` -> ``...x(H+2)x(W+2)`` repeating the border (the neighbour of an edge pixel is itself)."""
    p = np.empty((*a.shape[:-2], a.shape[-2] + 2, a.shape[-1] + 2), a.dtype)
    p[..., 1:-1, 1:-1] = a
    _refresh_border(p)
    return p


def _refresh_border(p: np.ndarray) -> None:
    p[..., 0, 1:-1], p[..., -1, 1:-1] = p[..., 1, 1:-1], p[..., -2, 1:-1]
    p[..., 0], p[..., -1] = p[..., 1], p[..., -2]


def _sweeps(fb: np.ndarray, img: np.ndarray, a: np.ndarray, n_iter: int, regularization: float,
            gradient_weight: float) -> np.ndarray:
    """``n_iter`` Jacobi sweeps of one level's equations on a box: ``(2, 3, h, w)`` F and B -> the same.

    ``img`` is ``(3, h, w)``, ``a`` is ``(h, w)``. Each pixel solves its 2x2 system per channel from its 4
    neighbours' current values, clipped to [0, 1]; the box's border is replicated. Inside the image that
    border is wrong, and after ``k`` sweeps so are the pixels less than ``k`` from it: callers grow the
    box by ``n_iter`` where they need exact values. Channels first, so every operation runs along rows.
    """
    fbp = _edge_pad(fb)  # (2, 3, h+2, w+2)
    ap = _edge_pad(a)
    # neighbour weights: up, down, left, right; each (h, w)
    shifts = [(slice(0, -2), slice(1, -1)), (slice(2, None), slice(1, -1)),
              (slice(1, -1), slice(0, -2)), (slice(1, -1), slice(2, None))]
    da = [regularization + gradient_weight * np.abs(a - ap[s]) for s in shifts]
    dsum = da[0] + da[1] + da[2] + da[3]
    # per pixel 2x2 system [[a^2 + D, a(1-a)], [a(1-a), (1-a)^2 + D]] (F, B) = (a I + sum, (1-a) I + sum)
    a1 = 1 - a
    m00, m11, m01 = a * a + dsum, a1 * a1 + dsum, a * a1
    det = m00 * m11 - m01 * m01
    i00, i11, i01 = m11 / det, m00 / det, -m01 / det  # (h, w)
    data = np.stack([a * img, a1 * img])  # (2, 3, h, w)
    rhs = np.empty_like(data)
    tmp = np.empty_like(data)
    inner = fbp[..., 1:-1, 1:-1]  # (2, 3, h, w), a view
    for _ in range(n_iter):
        rhs[...] = data
        for d, s in zip(da, shifts, strict=True):
            np.multiply(d, fbp[(..., *s)], out=tmp)
            rhs += tmp
        f, b = inner  # views into the padded buffer, (3, h, w)
        np.multiply(i00, rhs[0], out=f)
        f += i01 * rhs[1]
        np.multiply(i01, rhs[0], out=b)
        b += i11 * rhs[1]
        np.clip(inner, 0, 1, out=inner)
        _refresh_border(fbp)
    return inner


class _MultiLevel:
    """The multi-level solver of one image, its coarse levels solved once, its fine levels box by box.

    Levels ``0..n`` have sizes ``round(size ** (level / n))``; level ``n`` is the image. Levels up to
    ``split`` (the last one of at most ``_FULL_FRAME_PIXELS`` pixels) are solved on the whole frame, on the
    first call of :meth:`solve`. The finer ones are solved for one full-resolution box at a time, each on
    the window of that level the box depends on: the nearest-neighbour sources of the next level's window,
    grown by the level's number of sweeps. The values in the box are then exactly those of solving every
    level on the whole frame.
    """

    def __init__(self, image: np.ndarray, alpha: np.ndarray, regularization: float, gradient_weight: float,
                 n_small_iterations: int, n_big_iterations: int, small_size: int):
        self.image, self.alpha = image, alpha
        self.weights = regularization, gradient_weight
        h0, w0 = alpha.shape
        n = max(1, int(np.ceil(np.log2(max(h0, w0)))))
        self.sizes = [(max(1, round(h0 ** (level / n))), max(1, round(w0 ** (level / n))))
                      for level in range(n + 1)]
        self.n_iter = [n_small_iterations if h <= small_size and w <= small_size else n_big_iterations
                       for h, w in self.sizes]
        self.split = max(level for level, (h, w) in enumerate(self.sizes) if h * w <= _FULL_FRAME_PIXELS)
        self.coarse: np.ndarray | None = None  # (2, 3, h, w) F and B of level split, solved when needed
        # nearest-neighbour maps, built once per level (a box's solve only slices them): rows and columns of
        # the image that each level samples, and of the previous level that each level upsamples from
        self.from_image = [(_nearest_index(h0, h), _nearest_index(w0, w)) for h, w in self.sizes]
        self.from_previous = [None] + [(_nearest_index(hp, h), _nearest_index(wp, w))
                                       for (hp, wp), (h, w) in zip(self.sizes, self.sizes[1:], strict=False)]

    def _level_data(self, level: int, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """The ``(3, h, w)`` image and ``(h, w)`` alpha of ``level`` (nearest-neighbour resized) in the window
        ``rows, cols``."""
        (h, w), (h0, w0) = self.sizes[level], self.alpha.shape
        if (h, w) == (h0, w0):
            return self.image[rows, cols].transpose(2, 0, 1), self.alpha[rows, cols]
        ys, xs = self.from_image[level]
        ys, xs = ys[rows, None], xs[None, cols]
        return self.image[ys, xs].transpose(2, 0, 1), self.alpha[ys, xs]

    def _upsampled(self, fb: np.ndarray, origin: tuple[int, int], level: int, rows: slice,
                   cols: slice) -> np.ndarray:
        """The previous level's ``fb`` (its pixel ``(0, 0)`` at ``origin`` of that level) resized to
        ``level``, in the window ``rows, cols``."""
        ys, xs = self.from_previous[level]
        ys, xs = ys[rows, None] - origin[0], xs[None, cols] - origin[1]
        return fb[:, :, ys, xs]

    def _solve_coarse(self) -> np.ndarray:
        fb = np.zeros((2, 3, 1, 1), np.float32)  # F and B stacked: (2, 3, h, w)
        for level in range(self.split + 1):
            h, w = self.sizes[level]
            whole = slice(0, h), slice(0, w)
            init = self._upsampled(fb, (0, 0), level, *whole) if level else fb
            fb = _sweeps(init, *self._level_data(level, *whole), self.n_iter[level], *self.weights)
        return fb

    def solve(self, rows: slice, cols: slice) -> np.ndarray:
        """``(2, 3, h, w)`` float32 F and B of the full-resolution box ``rows, cols``."""
        if self.coarse is None:
            self.coarse = self._solve_coarse()
        top = len(self.sizes) - 1
        need = (rows.start, rows.stop, cols.start, cols.stop)  # at level `top`, then coarser
        windows = []
        for level in range(top, self.split, -1):  # from the box down: what each level needs
            (h, w), r = self.sizes[level], self.n_iter[level]
            y0, y1 = max(need[0] - r, 0), min(need[1] + r, h)
            x0, x1 = max(need[2] - r, 0), min(need[3] + r, w)
            windows.append((level, slice(y0, y1), slice(x0, x1)))
            ys, xs = self.from_previous[level]
            need = (ys[y0], ys[y1 - 1] + 1, xs[x0], xs[x1 - 1] + 1)
        fb = self.coarse[:, :, need[0] : need[1], need[2] : need[3]]
        origin = need[0], need[2]
        for level, wr, wc in reversed(windows):  # then up again, each level on its window
            init = self._upsampled(fb, origin, level, wr, wc)
            fb = _sweeps(init, *self._level_data(level, wr, wc), self.n_iter[level], *self.weights)
            origin = wr.start, wc.start
        (oy, ox) = origin
        return fb[:, :, rows.start - oy : rows.stop - oy, cols.start - ox : cols.stop - ox]


_HIDDEN = np.zeros((1, 1, 3), np.float32)  # the colour of a hidden layer; broadcasts over a tile


def _tile_shape(h: int, w: int) -> tuple[int, int]:
    """Tiles of about ``_TILE ** 2`` pixels: square, or as long as it takes on an image thinner than a tile
    (a 2 px high strip in 2x128 tiles would pay the per-tile cost of every level 64 times over)."""
    if h < _TILE:
        return h, max(_TILE, _TILE * _TILE // h)
    if w < _TILE:
        return max(_TILE, _TILE * _TILE // w), w
    return _TILE, _TILE


def _tiles(image: np.ndarray, alpha: np.ndarray, **settings
           ) -> Iterator[tuple[slice, slice, np.ndarray, np.ndarray]]:
    """``(rows, cols, F, B)`` for tiles covering the image, ``F`` and ``B`` float32 ``(h, w, 3)`` (or
    ``(1, 1, 3)`` zeros: hidden, broadcast over the tile).

    Settled pixels (see :data:`SETTLED_MARGIN`) get ``F = alpha I`` and ``B = (1 - alpha) I``; the others the
    multi-level estimate, solved only for tiles that hold any.
    """
    h, w = alpha.shape
    solver = _MultiLevel(image, alpha, **settings)
    m = SETTLED_MARGIN
    th, tw = _tile_shape(h, w)
    for y in range(0, h, th):
        for x in range(0, w, tw):
            rows, cols = slice(y, min(y + th, h)), slice(x, min(x + tw, w))
            img = image[rows, cols]  # (th, tw, 3)
            y0, x0 = max(y - m, 0), max(x - m, 0)
            near = alpha[y0 : rows.stop + m, x0 : cols.stop + m]  # the tile and the margin around it
            if near.max() == 0:
                yield rows, cols, _HIDDEN, img
            elif near.min() == 1:
                yield rows, cols, img, _HIDDEN
            else:
                size = 2 * m + 1
                settled = ((ndimage.maximum_filter(near, size, mode="nearest") == 0)
                           | (ndimage.minimum_filter(near, size, mode="nearest") == 1))
                settled = settled[y - y0 : rows.stop - y0, x - x0 : cols.stop - x0, None]  # (th, tw, 1)
                a = alpha[rows, cols, None]
                f, b = solver.solve(rows, cols).transpose(0, 2, 3, 1)  # (th, tw, 3) each
                yield rows, cols, np.where(settled, a * img, f), np.where(settled, (1 - a) * img, b)


def _checked(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = as_image(image)
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"alpha must be HxW matching the image {image.shape[:2]}, got shape {alpha.shape}")
    if alpha.min() < 0 or alpha.max() > 1:  # copied only when it must change (a photo's alpha is large)
        alpha = np.clip(alpha, 0, 1)
    return image, alpha


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, *, regularization: float = 5e-3,
                        gradient_weight: float = 0.1, n_small_iterations: int = 10, n_big_iterations: int = 2,
                        small_size: int = 32, return_background: bool = False
                        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Foreground (and background) colours of an image given its alpha matte: multi-level estimation.

    Implements Germer, Uelwer, Conrad, Harmeling, "Fast Multi-Level Foreground Estimation", ICPR 2020
    (arXiv:2006.14970). ``F`` and ``B`` minimise

    ``sum_i (alpha_i F_i + (1 - alpha_i) B_i - I_i)^2
    + sum_{i ~ j} (regularization + gradient_weight |alpha_i - alpha_j|) (|F_i - F_j|^2 + |B_i - B_j|^2)``

    over 4-neighbours ``i ~ j``, solved coarse to fine: from a 1x1 image up to full resolution, each level
    the image and alpha are resized (nearest neighbour) to ``round(size ** (level / n_levels))``, ``F`` and
    ``B`` are initialised by upsampling the previous level, and a few sweeps update every pixel at once
    (Jacobi: each pixel solves its 2x2 system per channel from its neighbours' current values), clipped to
    [0,1]. (The paper and pymatting update in place, Gauss-Seidel style; the whole-image Jacobi update
    converges in the same few sweeps because each level starts from the previous one.)

    Only where the matte changes is there anything to estimate. A pixel is *settled* when every alpha
    within :data:`SETTLED_MARGIN` (8) pixels is 0 (then ``F = 0``, hidden, and ``B`` is the image) or every
    one is 1 (``F`` is the image, ``B = 0``; the scheme itself would smooth the image's texture there
    slightly, by about ``regularization`` times its Laplacian). Every other pixel gets exactly the value
    the scheme above gives on the whole frame, but the coarse levels are solved on the whole frame only up
    to 65536 pixels and the finer ones on 128x128 tiles (longer ones on a thinner image) holding unsettled
    pixels, each on the window it depends on. So the time and the memory beyond the outputs follow the
    matte's edge, not the photo (float32 throughout; ``benchmarks/bench_targets.py`` times a 12-megapixel
    photo).

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0,1] (uint8 accepted)
    alpha : np.ndarray, HxW float in [0,1]
    regularization : float, default 5e-3
        Smoothness weight everywhere (``epsilon`` in the paper).
    gradient_weight : float, default 0.1
        Extra smoothness where alpha changes (``omega``): colours do not bleed across alpha edges.
    n_small_iterations : int, default 10
        Sweeps per level while both sides are at most ``small_size``.
    n_big_iterations : int, default 2
        Sweeps per larger level.
    small_size : int, default 32
    return_background : bool, default False
        Also return the estimated background.

    Returns
    -------
    fg : np.ndarray, HxWx3 float32 in [0,1]
    bg : np.ndarray, HxWx3 float32 in [0,1] (only with ``return_background``)

    Examples
    --------
    >>> image = np.random.rand(60, 80, 3).astype(np.float32)
    >>> alpha = np.random.rand(60, 80).astype(np.float32)
    >>> estimate_foreground(image, alpha).shape
    (60, 80, 3)
    """
    image, alpha = _checked(image, alpha)
    fg = np.empty(image.shape, np.float32)
    bg = np.empty(image.shape, np.float32) if return_background else None
    settings = dict(regularization=regularization, gradient_weight=gradient_weight, small_size=small_size,
                    n_small_iterations=n_small_iterations, n_big_iterations=n_big_iterations)
    for rows, cols, f, b in _tiles(image, alpha, **settings):
        fg[rows, cols] = f
        if bg is not None:
            bg[rows, cols] = b
    return (fg, bg) if return_background else fg


#: The solver settings of :func:`estimate_foreground`'s signature, which :func:`cutout` uses.
_DEFAULT_SETTINGS = {k: v for k, v in estimate_foreground.__kwdefaults__.items() if k != "return_background"}


def cutout(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray | None = None) -> np.ndarray:
    """An RGBA cutout: the foreground colours with the matte as the alpha channel.

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0,1] (uint8 accepted)
    alpha : np.ndarray, HxW float in [0,1]
    fg : np.ndarray, HxWx3 float in [0,1], optional
        Foreground colours; estimated with :func:`estimate_foreground` (default settings) when not given, so
        the old background does not bleed into semi-transparent pixels. Leave it out unless you need the
        colours for something else too: the foreground is then estimated tile by tile straight into the
        cutout, with no full-size float copy of it.

    Returns
    -------
    np.ndarray, HxWx4 uint8 (RGBA, straight / not premultiplied alpha; RGB 0 where the colour is hidden)

    Examples
    --------
    >>> image = np.random.rand(30, 40, 3).astype(np.float32)
    >>> rgba = cutout(image, np.full((30, 40), 0.5, np.float32))
    >>> rgba.shape, rgba.dtype, int(rgba[0, 0, 3])
    ((30, 40, 4), dtype('uint8'), 128)
    """
    image, alpha = _checked(image, alpha)
    if fg is None:
        tiles = ((rows, cols, f) for rows, cols, f, _ in _tiles(image, alpha, **_DEFAULT_SETTINGS))
    else:
        fg = as_image(fg)
        if fg.shape != image.shape:
            raise ValueError(f"fg must match the image shape {image.shape}, got {fg.shape}")
        whole = slice(None)
        tiles = ((slice(y, y + _TILE), whole, fg[y : y + _TILE]) for y in range(0, len(fg), _TILE))
    rgba = np.empty((*alpha.shape, 4), np.uint8)
    for rows, cols, f in tiles:  # no full-size float temporaries
        rgba[rows, cols, :3] = np.round(f * 255)
        rgba[rows, cols, 3] = np.round(alpha[rows, cols] * 255)
    return rgba


def composite_on(image: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int] | str,
                 fg: np.ndarray | None = None) -> np.ndarray:
    """The cutout laid over a plain colour: ``fg * alpha + background * (1 - alpha)`` (for JPEG output).

    Parameters
    ----------
    image : np.ndarray, HxWx3 float in [0,1] (uint8 accepted)
    alpha : np.ndarray, HxW float in [0,1]
    background : (r, g, b) in 0..255, or a colour name or ``#rrggbb`` string (Pillow's colour names)
    fg : np.ndarray, HxWx3 float in [0,1], optional; estimated when not given

    Returns
    -------
    np.ndarray, HxWx3 uint8

    Examples
    --------
    >>> image = np.zeros((2, 2, 3), np.float32)
    >>> composite_on(image, np.zeros((2, 2), np.float32), "white")[0, 0].tolist()
    [255, 255, 255]
    """
    if isinstance(background, str):
        from PIL import ImageColor

        try:
            background = ImageColor.getrgb(background)[:3]
        except ValueError as e:
            raise ValueError(f"background colour {background!r}: not a colour name or #rrggbb value") from e
    color = np.asarray(background, np.float32)[:3] / 255
    image = as_image(image)
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"alpha must be HxW matching the image {image.shape[:2]}, got shape {alpha.shape}")
    fg = estimate_foreground(image, alpha) if fg is None else as_image(fg)
    a = np.clip(alpha, 0, 1)[..., None]
    return np.round((color + a * (fg - color)) * 255).astype(np.uint8)
