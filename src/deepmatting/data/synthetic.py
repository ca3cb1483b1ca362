"""Procedural matting data: soft shapes, hair and fur strands, glass and smoke, over textured backgrounds.

The built-in default dataset, so that training, the demo and the tests run on a fresh machine with no
download. Each sample is a pure function of ``(seed, index)``: a foreground colour field ``fg``, a
background ``bg``, an alpha matte and their composite ``image = alpha * fg + (1 - alpha) * bg``, plus a
trimap from :func:`make_trimap` with a width drawn per sample.

What makes it look like matting rather than blobs:

- a body with anti-aliased edges whose softness varies along the outline (crisp in places, defocused in
  others), sometimes with lace-like holes;
- hair: hundreds of thin curved strands (0.25-1.2 px wide, partial coverage) that grow from part of the
  outline in clumps, bend under gravity and wave, plus a few long fly-away hairs; or short dense fur;
  strands are splatted at twice the resolution and summed down, so coverage is sub-pixel accurate;
- semi-transparent glass (alpha 0.15-0.6 with a more opaque rim) or smoke (very soft, noisy alpha);
- textured foregrounds and backgrounds (multi-octave noise through random palettes, stripes, checks,
  bokeh discs, lighting gradients, grain), where the hair or body colour is often borrowed from the
  background so that foreground and background look alike somewhere.

Everything is vectorised numpy (noise is upsampled from small random grids with Pillow; strands are one
ragged array splatted with ``np.bincount``): about 20-30 ms of one core per 320x320 sample on the 2-core
development machine (``benchmarks/bench_data.py``).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image

from .datasets import _SeededDataset
from .transforms import Transform, composite
from .trimap import make_trimap

#: Spawn key that separates the sample streams from the augmentation streams ``default_rng([seed, epoch, i])``
#: (SeedSequence ignores trailing zeros, so ``[seed, i]`` alone would collide with ``[seed, epoch=i, 0]``).
_SAMPLE_STREAM = 0x5A4D

#: Most points (2x-grid samples along hair / fur strands) drawn per 320x320 sample; the cost bound.
MAX_STRAND_POINTS = 50_000

#: Default trimap band widths (pixels at 320x320; scaled with the image size) drawn per sample.
TRIMAP_WIDTH_RANGE = (4, 16)


# --------------------------------------------------------------------------------------------------
# Noise, colours and patterns
# --------------------------------------------------------------------------------------------------

def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic upsampling of a small float grid to ``h x w`` (Pillow, float32, writeable)."""
    return np.array(Image.fromarray(grid.astype(np.float32, copy=False)).resize((w, h), Image.BICUBIC))


def _noise(rng: np.random.Generator, h: int, w: int, scale: float, octaves: int = 3,
           persistence: float = 0.5) -> np.ndarray:
    """Smooth multi-octave noise, ``HxW float32`` normalised to [0, 1]; ``scale`` is the feature size (px).

    Octaves are summed on a small grid pyramid (each level doubles the grid and adds finer random values),
    so only the last level is enlarged to the full size.
    """
    gh, gw = max(2, math.ceil(h / scale) + 1), max(2, math.ceil(w / scale) + 1)
    grid = rng.random((gh, gw), dtype=np.float32)
    amp = 1.0
    for _ in range(octaves - 1):
        scale /= 2
        if scale < 1.5 or 2 * gh > h or 2 * gw > w:
            break
        gh, gw, amp = 2 * gh, 2 * gw, amp * persistence
        grid = _upsample(grid, gh, gw)
        grid += amp * rng.random((gh, gw), dtype=np.float32)
    out = _upsample(grid, h, w)
    lo, hi = float(out.min()), float(out.max())
    out -= lo
    out *= np.float32(1.0 / max(hi - lo, 1e-6))
    return out


def _random_colors(rng: np.random.Generator, k: int, sat: tuple[float, float] = (0.15, 0.9),
                   val: tuple[float, float] = (0.15, 0.95)) -> np.ndarray:
    """``k x 3`` float32 RGB colours drawn in HSV around a random base hue."""
    base = rng.random()
    colors = [colorsys.hsv_to_rgb((base + rng.normal(0, 0.15)) % 1.0, rng.uniform(*sat), rng.uniform(*val))
              for _ in range(k)]
    return np.asarray(colors, np.float32)


def _palette(t: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Map ``t`` (HxW in [0,1]) through a piecewise-linear palette of ``K x 3`` colours -> HxWx3.

    Through a 1024-entry lookup table (one gather instead of per-pixel interpolation).
    """
    x = np.linspace(0, len(colors) - 1, 1024)
    knots = np.arange(len(colors))
    lut = np.stack([np.interp(x, knots, colors[:, c]) for c in range(3)], 1).astype(np.float32)
    return lut.take((np.clip(t, 0, 1) * 1023).astype(np.int32), axis=0)  # take: faster than lut[idx]


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)``, broadcastable ``Hx1`` and ``1xW`` float32."""
    return (np.arange(h, dtype=np.float32)[:, None] + 0.5), (np.arange(w, dtype=np.float32)[None, :] + 0.5)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _texture(rng: np.random.Generator, h: int, w: int, s: float, colors: np.ndarray) -> np.ndarray:
    """A coloured texture (HxWx3 float32): palette-mapped noise, stripes, checks or bokeh discs, with
    lighting and grain; ``s`` scales feature sizes (1 at 320 px)."""
    y, x = _coords(h, w)
    kind = ("noise", "noise", "stripes", "checks", "bokeh")[int(rng.integers(5))]
    if kind == "noise":
        t = _noise(rng, h, w, rng.uniform(15, 120) * s, octaves=4, persistence=rng.uniform(0.35, 0.7))
        img = _palette(t, colors)
    elif kind in ("stripes", "checks"):
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(6, 40) * s
        warp = _noise(rng, h, w, rng.uniform(40, 160) * s) * rng.uniform(0, 2.5 * period)
        u = (x * math.cos(angle) + y * math.sin(angle) + warp) / period
        wave = np.sin(2 * math.pi * u)
        if kind == "checks":
            v = (-x * math.sin(angle) + y * math.cos(angle) + warp) / period
            wave = wave * np.sin(2 * math.pi * v)
        sharp = rng.uniform(1, 8)
        t = 0.5 + 0.5 * np.tanh(sharp * wave) / math.tanh(sharp)
        img = _palette(t * 0.999, colors[:3] if len(colors) >= 3 else colors)
    else:  # bokeh: soft discs of light over a noisy gradient
        img = _palette(_noise(rng, h, w, 150 * s, octaves=2), colors) * 0.6
        for _ in range(int(rng.integers(15, 45))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = rng.uniform(4, 35) * s
            y0, y1 = max(0, int(cy - r - 2)), min(h, int(cy + r + 3))
            x0, x1 = max(0, int(cx - r - 2)), min(w, int(cx + r + 3))
            if y0 >= y1 or x0 >= x1:
                continue
            d = np.sqrt((y[y0:y1] - cy) ** 2 + (x[:, x0:x1] - cx) ** 2)
            disc = _smoothstep((r - d) / (1.5 * s + r * 0.15))[:, :, None] * rng.uniform(0.2, 0.6)
            img[y0:y1, x0:x1] += disc * (colors[rng.integers(len(colors))] + 0.3)
    light = 0.65 + 0.5 * _noise(rng, h, w, rng.uniform(100, 300) * s, octaves=2)
    img *= light[:, :, None]
    grain = rng.random((h, w, 1), dtype=np.float32)  # luminance grain
    grain -= 0.5
    grain *= rng.uniform(0.01, 0.05)
    img += grain
    return np.clip(img, 0, 1, out=img)


def _defocused_texture(rng: np.random.Generator, h: int, w: int, s: float, colors: np.ndarray,
                       factor: float) -> np.ndarray:
    """A texture rendered at ``1 / factor`` of the size and enlarged: an out-of-focus background."""
    hs, ws = max(8, round(h / factor)), max(8, round(w / factor))
    small = _texture(rng, hs, ws, s * min(hs / h, ws / w), colors)
    return np.stack([_upsample(small[:, :, c], h, w) for c in range(3)], axis=2).clip(0, 1)


# --------------------------------------------------------------------------------------------------
# Alpha components
# --------------------------------------------------------------------------------------------------

class _Outline:
    """A star-shaped outline ``r(theta)`` around a centre, sampled in a lookup table over the angle."""

    N = 2048

    def __init__(self, rng: np.random.Generator, cy: float, cx: float, radius: float, wobble: float):
        self.cy, self.cx = cy, cx
        th = np.linspace(-math.pi, math.pi, self.N, endpoint=False)
        r = np.ones(self.N)
        dr = np.zeros(self.N)
        for k in range(1, 8):
            a, ph = rng.normal(0, wobble / k ** 1.3), rng.uniform(0, 2 * math.pi)
            r += a * np.cos(k * th + ph)
            dr -= a * k * np.sin(k * th + ph)
        self.r = (radius * np.maximum(r, 0.25)).astype(np.float32)
        self.slope = (1 / np.sqrt(1 + (dr / np.maximum(r, 0.25)) ** 2)).astype(np.float32)

    def index(self, theta: np.ndarray) -> np.ndarray:
        return ((theta + math.pi) * (self.N / (2 * math.pi))).astype(np.int32) % self.N

    def point(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boundary points ``(y, x)`` at angles ``theta``."""
        r = self.r[self.index(theta)]
        return self.cy + r * np.sin(theta), self.cx + r * np.cos(theta)

    def signed_distance(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate signed distance to the outline (positive inside, px) and the angle, both HxW."""
        y, x = _coords(h, w)
        dy, dx = y - self.cy, x - self.cx
        theta = np.arctan2(dy, dx)
        i = self.index(theta)
        return (self.r.take(i) - np.sqrt(dy * dy + dx * dx)) * self.slope.take(i), theta


def _soft_edge(dist: np.ndarray, ramp: np.ndarray | float) -> np.ndarray:
    """Coverage of a pixel at signed distance ``dist`` from an edge blurred over ``ramp`` px (>= 1: AA)."""
    return np.clip(0.5 + dist / ramp, 0, 1)


def _angular_noise(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """A smooth periodic function of the angle with values in [lo, hi], tabulated at ``n`` angles."""
    th = np.linspace(0, 2 * math.pi, n, endpoint=False)
    f = sum(rng.normal(0, 1 / k) * np.cos(k * th + rng.uniform(0, 6.3)) for k in range(1, 6))
    f = (f - f.min()) / max(f.max() - f.min(), 1e-6)
    return (lo + (hi - lo) * f ** rng.uniform(1, 3)).astype(np.float32)


def _body(rng: np.random.Generator, h: int, w: int, s: float) -> tuple[np.ndarray, _Outline]:
    """The main opaque shape: a wobbly outline with anti-aliased edges of varying softness."""
    m = min(h, w)
    out = _Outline(rng, cy=rng.uniform(0.4, 0.95) * h, cx=rng.uniform(0.25, 0.75) * w,
                   radius=rng.uniform(0.2, 0.38) * m, wobble=rng.uniform(0.05, 0.3))
    dist, theta = out.signed_distance(h, w)
    ramp = _angular_noise(rng, _Outline.N, 1.0, rng.uniform(1.5, 8) * s).take(out.index(theta))
    alpha = _soft_edge(dist, ramp)
    if rng.random() < 0.35:  # a second, overlapping part (shoulder, ear, handle)
        part = _Outline(rng, cy=out.cy + rng.normal(0, 0.2) * m, cx=out.cx + rng.normal(0, 0.25) * m,
                        radius=rng.uniform(0.08, 0.2) * m, wobble=rng.uniform(0.05, 0.3))
        d2, _ = part.signed_distance(h, w)
        alpha = np.maximum(alpha, _soft_edge(d2, rng.uniform(1, 3) * s))
    if rng.random() < 0.2:  # lace / mesh: a lattice of small holes in a part of the body
        y, x = _coords(h, w)
        a = rng.uniform(0, math.pi)
        period = rng.uniform(5, 12) * s
        u = (x * math.cos(a) + y * math.sin(a)) / period
        v = (-x * math.sin(a) + y * math.cos(a)) / period
        d = np.sqrt((u - np.round(u)) ** 2 + (v - np.round(v)) ** 2) * period
        holes = _soft_edge(rng.uniform(0.25, 0.4) * period - d, 1.0)
        region = _smoothstep((_noise(rng, h, w, 80 * s, octaves=1) - 0.45) * 6)
        alpha = alpha * (1 - holes * region)
    return alpha.astype(np.float32), out


def _splat2x(ys: np.ndarray, xs: np.ndarray, weights: list[np.ndarray], h: int, w: int) -> list[np.ndarray]:
    """Splat points given on a 2x grid (cell centres at i + 0.5) and sum them into ``h x w`` pixels.

    Each point's weight is spread bilinearly over the four nearest 2x cells, and each cell counts for the
    1x pixel that contains it (2x supersampling, so thin lines get sub-pixel accurate coverage).
    Points outside the image are dropped. Returns one ``HxW float32`` grid per entry of ``weights``.
    """
    y, x = ys - 0.5, xs - 0.5
    y0, x0 = np.floor(y), np.floor(x)
    fy, fx = (y - y0).astype(np.float32), (x - x0).astype(np.float32)
    y0, x0 = y0.astype(np.intp), x0.astype(np.intp)  # intp: np.bincount is several times slower on int32
    rows, cols = np.stack([y0, y0 + 1]), np.stack([x0, x0 + 1])  # (2, N) 2x-cell indices
    wy = np.stack([1 - fy, fy]) * ((rows >= 0) & (rows < 2 * h))
    wx = np.stack([1 - fx, fx]) * ((cols >= 0) & (cols < 2 * w))
    rows = np.clip(rows, 0, 2 * h - 1) >> 1  # -> 1x pixel rows
    cols = np.clip(cols, 0, 2 * w - 1) >> 1
    idx = (rows[:, None] * w + cols[None]).ravel()  # (2, 2, N) -> 4N pixel indices
    b = (wy[:, None] * wx[None]).reshape(4, -1)  # (4, N) bilinear weights
    return [np.bincount(idx, (b * wt).ravel(), minlength=h * w).reshape(h, w).astype(np.float32)
            for wt in weights]


def _strands(rng: np.random.Generator, h: int, w: int, s: float, outline: _Outline, kind: str,
             hair_color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hair or fur strands growing from part of ``outline``: (alpha HxW, colour HxWx3)."""
    m = min(h, w)
    r_mean = float(outline.r.mean())
    if kind == "hair":
        spread = rng.uniform(0.5, 1.6) * math.pi
        centre = -math.pi / 2 + rng.normal(0, 0.5)  # mostly on top (y grows downwards)
        clump_gap = rng.uniform(3, 8) * s  # px along the outline between clumps
        per_clump = int(rng.integers(6, 18))
        length = (rng.uniform(0.1, 0.35) * m, 0.35)  # (typical length, log-normal spread per clump)
        width = (0.25, 1.1)
        root_depth = 4 * s
    else:  # fur: short dense strands all around a part of the outline
        spread = rng.uniform(0.8, 2.0) * math.pi
        centre = rng.uniform(-math.pi, math.pi)
        clump_gap = rng.uniform(1.5, 3) * s
        per_clump = int(rng.integers(6, 12))
        length = (rng.uniform(5, 16) * s, 0.5)
        width = (0.3, 1.0)
        root_depth = 2 * s
    n_clumps = max(1, round(spread * r_mean / clump_gap))
    n = n_clumps * per_clump

    # Roots: clumps along the outline sector; strands of a clump share direction, bend and wave.
    clump_theta = centre + (rng.random(n_clumps) - 0.5) * spread
    theta_root = np.repeat(clump_theta, per_clump) + rng.normal(0, 1, n) * (clump_gap / r_mean)
    ry, rx = outline.point(theta_root)
    normal = theta_root + rng.normal(0, 0.15, n)  # outward, roughly radial
    ry, rx = ry - root_depth * np.sin(normal), rx - root_depth * np.cos(normal)
    lengths = np.repeat(length[0] * np.exp(rng.normal(0, length[1], n_clumps)), per_clump)
    lengths *= np.exp(rng.normal(0, 0.15, n))
    gravity = (math.pi / 2 + rng.normal(0, 0.5)) if kind == "hair" else 0.0
    pull = np.repeat(rng.uniform(0, 1.6 if kind == "hair" else 0.2, n_clumps), per_clump)
    wave_f = np.repeat(rng.uniform(0.3, 3.0, n_clumps), per_clump) * rng.uniform(0.9, 1.1, n)
    wave_a = np.repeat(rng.uniform(0, 0.5, n_clumps), per_clump) * (rng.random() < 0.7)
    wave_p = np.repeat(rng.uniform(0, 2 * math.pi, n_clumps), per_clump) + rng.normal(0, 0.3, n)
    widths = rng.uniform(*width, n) * (1 + 0.5 * (s - 1) * (kind == "fur"))
    opacity = rng.uniform(0.5, 1.0, n)
    if kind == "hair":  # a few long, faint fly-away hairs
        fly = rng.random(n) < 0.04
        lengths[fly] *= rng.uniform(1.3, 2.0, int(fly.sum()))
        widths[fly] *= 0.5
        pull[fly] *= rng.uniform(-1, 1, int(fly.sum()))

    shade = rng.uniform(0.55, 1.35, n)

    # Keep the cost bounded: past a point budget, draw a subset of strands and thicken them a little.
    counts = np.maximum(4, np.ceil(1.6 * lengths).astype(np.int64))  # points 1.25 cells apart on the 2x grid
    budget = MAX_STRAND_POINTS * s * s
    if counts.sum() > budget:
        ratio = counts.sum() / budget
        keep = np.flatnonzero(rng.random(n) < 1 / ratio)
        widths = widths * min(1.6, math.sqrt(ratio))
        per_strand = (normal, ry, rx, lengths, counts, pull, wave_f, wave_a, wave_p, widths, opacity, shade)
        normal, ry, rx, lengths, counts, pull, wave_f, wave_a, wave_p, widths, opacity, shade = (
            v[keep] for v in per_strand)
        n = keep.size

    # Paths: a ragged array of points, strand k owning points start[k] .. start[k] + counts[k] - 1.
    def per_point(v: np.ndarray) -> np.ndarray:
        return np.repeat(np.asarray(v, np.float32), counts)

    start = np.cumsum(counts) - counts
    t = (np.arange(counts.sum()) - np.repeat(start, counts)).astype(np.float32)
    t /= per_point(counts)  # 0..1 along each strand
    turn = pull * np.angle(np.exp(1j * (gravity - normal)))  # total turn towards gravity
    direction = per_point(normal) + per_point(turn) * (t * np.sqrt(t))
    direction += per_point(wave_a) * np.sin(per_point(2 * math.pi * wave_f) * t + per_point(wave_p))
    ds = per_point(2 * lengths / counts)  # step on the 2x grid
    ys = np.cumsum((ds * np.sin(direction)).astype(np.float64))  # one running sum over all strands ...
    xs = np.cumsum((ds * np.cos(direction)).astype(np.float64))
    ys0, xs0 = np.concatenate([[0.0], ys])[start], np.concatenate([[0.0], xs])[start]
    ys += np.repeat(2 * ry - ys0, counts)  # ... restarted at each strand's root
    xs += np.repeat(2 * rx - xs0, counts)

    # Coverage area (in 1x px^2) per point: width x step, tapering to the tip; lighter towards the tips.
    taper = (1 - t * t) if kind == "hair" else (1 - t)
    area = per_point(widths * opacity * lengths / counts) * taper
    shade = per_point(shade) * (0.85 + 0.3 * t)
    cov, shade_sum = _splat2x(ys, xs, [area, area * shade], h, w)
    alpha = 1 - np.exp(-1.6 * cov)
    brightness = np.where(cov > 1e-6, shade_sum / np.maximum(cov, 1e-6), 1.0)
    color = np.clip(hair_color[None, None, :] * brightness[:, :, None], 0, 1)
    return alpha.astype(np.float32), color.astype(np.float32)


def _transparent(rng: np.random.Generator, h: int, w: int, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Glass (tinted, alpha 0.15-0.6 with a denser rim) or smoke (very soft noisy alpha): (alpha, colour)."""
    m = min(h, w)
    out = _Outline(rng, cy=rng.uniform(0.15, 0.85) * h, cx=rng.uniform(0.15, 0.85) * w,
                   radius=rng.uniform(0.12, 0.3) * m, wobble=rng.uniform(0.0, 0.25))
    dist, _ = out.signed_distance(h, w)
    if rng.random() < 0.55:  # glass
        inside = _soft_edge(dist, rng.uniform(1, 2) * s)
        base = rng.uniform(0.15, 0.4) + rng.uniform(0.05, 0.25) * _noise(rng, h, w, 60 * s, octaves=2)
        rim = np.exp(-np.maximum(dist, 0) / (rng.uniform(1.5, 5) * s)) * rng.uniform(0.3, 0.7)
        alpha = inside * np.clip(base + rim, 0, 0.95)
        color = _palette(_noise(rng, h, w, 50 * s), _random_colors(rng, 3, sat=(0, 0.3), val=(0.6, 1.0)))
    else:  # smoke / veil
        r = float(out.r.mean())
        soft = _smoothstep((dist + rng.uniform(0, 0.3) * r) / (rng.uniform(0.3, 0.8) * r))
        wisps = _noise(rng, h, w, rng.uniform(15, 50) * s, octaves=4, persistence=0.6)
        alpha = soft * np.clip(rng.uniform(0.2, 0.8) * (0.3 + wisps * 1.2), 0, 0.9)
        gray = rng.uniform(0.3, 1.0)
        tint = gray + rng.normal(0, 0.05, 3)
        color = np.clip(tint + 0.1 * (_noise(rng, h, w, 40 * s)[:, :, None] - 0.5), 0, 1)
    return alpha.astype(np.float32), color.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Sample generator and dataset
# --------------------------------------------------------------------------------------------------

_HAIR_COLORS = np.array([[0.1, 0.07, 0.05], [0.3, 0.18, 0.1], [0.55, 0.38, 0.22], [0.85, 0.72, 0.5],
                         [0.55, 0.2, 0.08], [0.75, 0.75, 0.72], [0.95, 0.93, 0.9]], np.float32)


def synthesize(rng: np.random.Generator, size: int | tuple[int, int] = 320,
               trimap_width_range: tuple[int, int] = TRIMAP_WIDTH_RANGE) -> dict:
    """One synthetic matting sample drawn with ``rng``.

    Parameters
    ----------
    rng : np.random.Generator
    size : int or (int, int), default 320; the output height and width
    trimap_width_range : (int, int), trimap band width at 320 px, scaled with ``min(h, w) / 320``

    Returns
    -------
    dict with ``image``, ``fg``, ``bg`` (HxWx3 float32 [0,1]), ``alpha`` (HxW float32 [0,1]),
    ``trimap`` (HxW uint8 {0,128,255}) and ``name`` ("synthetic").
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 16 or w < 16:
        raise ValueError(f"synthetic samples must be at least 16x16, got {h}x{w}")
    s = min(h, w) / 320

    bg_colors = _random_colors(rng, int(rng.integers(3, 6)))
    if rng.random() < 0.4:
        bg = _defocused_texture(rng, h, w, s, bg_colors, rng.uniform(2, 6) * s)
    else:
        bg = _texture(rng, h, w, s, bg_colors)

    # Foreground colours; often borrowed from the background so that they look alike somewhere.
    body_colors = _random_colors(rng, int(rng.integers(2, 5)))
    if rng.random() < 0.5:
        body_colors[rng.integers(len(body_colors))] = np.clip(bg[rng.integers(h), rng.integers(w)]
                                                              + rng.normal(0, 0.04, 3), 0, 1)
    hair_color = _HAIR_COLORS[rng.integers(len(_HAIR_COLORS))] * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    if rng.random() < 0.35:
        hair_color = bg[rng.integers(h), rng.integers(w)] * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    hair_color = np.clip(hair_color, 0.02, 1)
    body_tex = _texture(rng, h, w, s, body_colors)

    a_body, outline = _body(rng, h, w, s)
    layers = [(a_body, body_tex)]
    roll = rng.random()
    if roll < 0.55:
        layers.append(_strands(rng, h, w, s, outline, "hair", hair_color))
    elif roll < 0.8:
        layers.append(_strands(rng, h, w, s, outline, "fur", hair_color))
    if rng.random() < 0.5 or roll >= 0.8:
        layers.append(_transparent(rng, h, w, s))

    # alpha = 1 - prod(1 - a_k); fg = mean of the layers' colours weighted by their coverage (a running
    # mean, starting from the body texture, which is also the colour where no layer is present).
    keep = 1 - a_body
    fg = body_tex
    weight = a_body + np.float32(1e-3)
    for a, color in layers[1:]:
        keep *= 1 - a
        weight += a
        fg = fg + (a / weight)[:, :, None] * (color - fg)
    alpha = np.clip(1 - keep, 0, 1)
    alpha[alpha < 1e-3] = 0  # exact zeros and ones where the layers are (numerically) absent / opaque
    alpha[alpha > 1 - 1e-3] = 1
    fg = np.clip(fg, 0, 1)
    image = composite(alpha, fg, bg)
    lo, hi = trimap_width_range
    width = int(round(rng.integers(lo, hi + 1) * s))
    return {"image": image, "alpha": alpha, "trimap": make_trimap(alpha, width), "fg": fg, "bg": bg,
            "name": "synthetic"}


class SyntheticMattingDataset(_SeededDataset):
    """``n`` procedural matting samples; sample ``i`` is a pure function of ``(seed, i)``.

    Needs no files: the default dataset for training, the demo and the tests. Each sample is drawn by
    :func:`synthesize` with a generator seeded by ``(seed, i)`` alone; a ``transform`` then gets
    ``np.random.default_rng([seed, epoch, i])`` (see :meth:`set_epoch`), so augmentations change with the
    epoch while the underlying samples do not.

    Parameters
    ----------
    n : int, number of samples
    size : int or (int, int), default 320
    seed : int, default 0
    transform : callable ``(sample, rng) -> sample``, optional
    trimap_width_range : (int, int), default (4, 16), trimap band width at 320 px

    Examples
    --------
    >>> ds = SyntheticMattingDataset(100, size=320, seed=0)
    >>> sample = ds[0]
    >>> sample["image"].shape, sample["alpha"].dtype, sample["trimap"].dtype
    ((320, 320, 3), dtype('float32'), dtype('uint8'))
    """

    def __init__(self, n: int, size: int | tuple[int, int] = 320, seed: int = 0,
                 transform: Transform | None = None,
                 trimap_width_range: tuple[int, int] = TRIMAP_WIDTH_RANGE):
        super().__init__(transform, seed)
        if n < 0:
            raise ValueError(f"SyntheticMattingDataset: n must be >= 0, got {n}")
        self.n, self.size = int(n), size
        self.trimap_width_range = trimap_width_range

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        i = self._index(i)
        seq = np.random.SeedSequence([self.seed, i], spawn_key=(_SAMPLE_STREAM,))
        sample = synthesize(np.random.default_rng(seq), self.size, self.trimap_width_range)
        sample["name"] = f"synthetic_{self.seed}_{i:06d}"
        return self._finish(sample, self.rng(i))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, size={self.size}, seed={self.seed})"
