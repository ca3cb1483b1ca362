"""Pixels to the arrays of the sample dict: the one conversion rule, for files and for arrays alike.

- :func:`to_unit_float`: bool, 8-bit, 16-bit or float values -> ``float32`` in [0, 1];
- :func:`snap_trimap`: a trimap plane (any of those types) -> ``uint8`` {0, 128, 255}, near values snapped;
- :func:`image_pixels` / :func:`plane_pixels`: a decoded PIL image -> an RGB image / a single plane;
- :func:`as_image`, :func:`as_trimap`, :func:`as_mask`: what :func:`deepmatting.predict` and the other
  functions of the API accept (NumPy arrays or PIL images), checked and converted.

The file readers of :mod:`deepmatting.data.io` and the API share these functions, so a trimap or a matte
means the same thing whether it comes from a file or from memory. Every problem is a :class:`DatasetError`
(a ``ValueError``) that names the file or the argument.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps

from ..tensors import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN
from .errors import DatasetError

#: Trimap values within this many 8-bit levels of 0, 128 or 255 (resampling noise) are snapped silently.
TRIMAP_TOLERANCE = 2

#: Values up to this many levels away (JPEG compression, a float trimap from another tool such as
#: pymatting's 128/255) are snapped to the nearest level with a warning that counts them; values
#: further from every level (a soft mask passed as a trimap) are an error.
TRIMAP_SNAP = 48

#: Colour channels of an RGB mask that differ by at most this many 8-bit levels (JPEG chroma rounding)
#: still count as gray; the matte is then their mean.
GRAY_TOLERANCE = 3

#: Pillow modes that hold one gray channel (8-bit, 16-bit, 32-bit int or float, or 1-bit).
GRAY_MODES = ("1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")

_EXIF_ORIENTATION = 0x0112
#: What Pillow raises for a file it cannot decode (the readers turn them into DatasetError).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
                 Image.DecompressionBombError)


# ---- the conversion rule ------------------------------------------------------------------------
def to_unit_float(arr: np.ndarray, where: str | os.PathLike = "image") -> np.ndarray:
    """Pixel values -> ``float32`` in [0, 1], keeping the precision of the source.

    bool -> 0/1; uint8 -> /255; uint16 -> /65535; floats must be finite and within [0, 1] (1e-3 of slack,
    then clipped). Other integer types are ambiguous (8-bit values in a wide type?) and refused; 16-bit files,
    which Pillow opens as 32-bit ``I``, reach this rule as uint16 (:func:`pil_array`).

    Parameters
    ----------
    arr : np.ndarray, any shape
    where : str or path, names the source in error messages

    Returns
    -------
    np.ndarray, float32 in [0, 1], same shape (no copy for a float32 input already in range)

    Raises
    ------
    DatasetError
        Values out of range, NaN or infinite values, or an unsupported dtype.
    """
    if arr.dtype == np.uint8:
        return np.multiply(arr, np.float32(1 / 255), dtype=np.float32)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint16:
        return np.multiply(arr, np.float32(1 / 65535), dtype=np.float32)
    if arr.dtype.kind == "f":
        out = arr.astype(np.float32, copy=False)
        if not out.size:
            return out
        lo, hi = float(out.min()), float(out.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise DatasetError(f"{where}: contains NaN or infinite values")
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise DatasetError(f"{where}: float values span {lo:g}..{hi:g}, expected 0..1 (divide 8-bit "
                               "data by 255, or pass it as uint8)")
        if lo < 0 or hi > 1:
            out = np.clip(out, 0.0, 1.0)
        return out
    raise DatasetError(f"{where}: unsupported pixel type {arr.dtype}; use uint8 (0..255), uint16 (0..65535) "
                       "or float values in [0, 1]")


def pil_array(im: Image.Image, where: str | os.PathLike = "image") -> np.ndarray:
    """The pixels of a gray PIL image as stored, 32-bit integer modes (16-bit files) narrowed to uint16."""
    arr = np.asarray(im)
    if arr.dtype.kind in "ui" and arr.dtype.itemsize > 1 and arr.dtype != np.uint16:
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise DatasetError(f"{where}: integer pixel values {lo}..{hi} are outside the 16-bit range "
                               "0..65535; save it as an 8- or 16-bit image")
        arr = arr.astype(np.uint16)
    return arr


def _snap_table() -> np.ndarray:
    """uint8 -> the nearest trimap level within TRIMAP_SNAP levels; 1 marks values too far from all."""
    lut = np.ones(256, np.uint8)
    for level in (TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG):
        lut[max(0, level - TRIMAP_SNAP):min(255, level + TRIMAP_SNAP) + 1] = level
    return lut


_SNAP = _snap_table()


def snap_trimap(plane: np.ndarray, where: str | os.PathLike = "trimap") -> np.ndarray:
    """A trimap plane -> ``HxW uint8`` in {0, 128, 255}.

    bool planes are background/foreground; other types are scaled to 0..255 by :func:`to_unit_float`
    (so a float trimap in [0, 1], e.g. pymatting's with 128/255 for unknown, is accepted). Values within
    :data:`TRIMAP_TOLERANCE` levels of 0, 128 or 255 are snapped silently; within :data:`TRIMAP_SNAP`
    levels, snapped to the nearest level with a ``UserWarning`` that says how many pixels were changed.

    Parameters
    ----------
    plane : np.ndarray, HxW
    where : str or path, names the source in messages

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}

    Raises
    ------
    DatasetError
        When pixels lie further from every level (the message lists the values): probably a soft mask.

    Examples
    --------
    >>> snap_trimap(np.array([[0.0, 128 / 255, 1.0]])).tolist()
    [[0, 128, 255]]
    """
    if plane.dtype == np.bool_:
        return plane.astype(np.uint8) * TRIMAP_FG
    if plane.dtype != np.uint8:
        plane = np.round(to_unit_float(plane, where) * 255).astype(np.uint8)
    out = _SNAP.take(plane)
    bad = out == 1
    if bad.any():
        values = np.unique(plane[bad])
        shown = ", ".join(str(v) for v in values[:12]) + (", ..." if len(values) > 12 else "")
        raise DatasetError(
            f"{where}: not a trimap: {int(bad.sum())} pixels are far from background (0), unknown (128) and "
            f"foreground (255) (found {shown}). Use 0/128/255 (8-bit) or 0/0.5/1 (float), or pass a coarse "
            "mask as a mask instead")
    moved = int(np.count_nonzero(np.abs(out.astype(np.int16) - plane) > TRIMAP_TOLERANCE))
    if moved:
        warnings.warn(f"{where}: {moved} pixels were not exactly 0, 128 or 255 (JPEG compression, "
                      "resampling or another tool's float levels) and were snapped to the nearest level",
                      UserWarning, stacklevel=3)
    return out


# ---- decoded PIL images -----------------------------------------------------------------------------
def exif_orientation(im: Image.Image, header_only: bool = False) -> int:
    """The EXIF orientation tag of an opened image (1 when absent).

    ``Image.getexif`` on a PNG decodes the whole image to look for an eXIf chunk stored after the pixels;
    with ``header_only`` only the chunks read with the header are consulted. The file readers use the
    header's orientation too (a late eXIf is out of place by the PNG specification, and browsers ignore
    it), so a size read from the header is the size decoded.
    """
    try:
        if header_only and im.format == "PNG":
            raw = im.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        return int(exif.get(_EXIF_ORIENTATION, 1) or 1)
    except DECODE_ERRORS:
        return 1  # a broken EXIF block is not worth failing on; the pixels are read as stored


def upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF orientation says (unchanged when it has none)."""
    return ImageOps.exif_transpose(im) if exif_orientation(im) != 1 else im


def image_pixels(im: Image.Image, where: str | os.PathLike = "image") -> np.ndarray:
    """The pixels of a decoded (and upright) PIL image as ``HxWx3 float32`` in [0,1].

    Grayscale is repeated to three channels; an alpha channel (RGBA, LA) is dropped; palette, CMYK and
    other colour modes are converted to RGB; 16-bit grayscale keeps its precision. ``where`` names the
    source in error messages.
    """
    if im.mode in GRAY_MODES:
        gray = to_unit_float(pil_array(im, where), where)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "LA":
        im = im.convert("L")
        return np.repeat(to_unit_float(np.asarray(im), where)[:, :, None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return to_unit_float(np.asarray(im), where)


def plane_pixels(im: Image.Image, where: str | os.PathLike, what: str) -> np.ndarray:
    """The single channel of a decoded (and upright) PIL matte, trimap or mask, as stored.

    Gray modes are returned as they are (uint8, uint16, float32 or bool; 32-bit integers as uint16).
    A palette image is expanded first. RGBA/LA images use their alpha channel unless it is fully opaque,
    in which case the colour channels carry the plane. Colour channels must be gray (equal within
    :data:`GRAY_TOLERANCE` levels), else the image is not a plane. ``where`` names the source and ``what``
    the kind of plane in error messages.
    """
    if im.mode in GRAY_MODES:
        return pil_array(im, where)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode not in ("RGB", "RGBA", "LA"):
        im = im.convert("RGB")
    arr = np.asarray(im)
    if im.mode in ("RGBA", "LA"):
        a = arr[:, :, -1]
        if a.min() < 255:
            return a
        arr = arr[:, :, :-1]
        if im.mode == "LA":
            return arr[:, :, 0]
    r, g, b = arr[:, :, 0], arr[:, :, 1], arr[:, :, 2]
    if np.array_equal(r, g) and np.array_equal(r, b):
        return r
    c = arr.astype(np.int16)
    spread = int((c.max(axis=2) - c.min(axis=2)).max())
    if spread <= GRAY_TOLERANCE:
        return np.round(c.mean(axis=2)).astype(np.uint8)
    kind = "RGBA file with a fully opaque alpha channel and" if im.mode == "RGBA" else "RGB file with"
    raise DatasetError(f"{where}: not a {what}: a {kind} colour content (channels differ by up to {spread} "
                       f"levels). Save the {what} as a single-channel grayscale image (or as the alpha "
                       "channel of an RGBA file)")


# ---- arrays handed to the API -------------------------------------------------------------------------
def as_image(image: np.ndarray | Image.Image, name: str = "image") -> np.ndarray:
    """Check and convert an image to ``HxWx3 float32`` in [0,1].

    Accepts a PIL image (converted like :func:`deepmatting.data.read_image`: EXIF orientation, gray
    repeated, alpha dropped, 16-bit kept), or an array ``HxWx3`` (``HxW`` gray and ``HxWx4`` with the alpha
    dropped are accepted too) of bool, uint8, uint16 or float in [0,1] (:func:`to_unit_float`).

    Raises
    ------
    DatasetError
        Wrong shape, dtype or value range.
    """
    if isinstance(image, Image.Image):
        return image_pixels(upright(image), name)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise DatasetError(f"{name} must be an HxWx3 array (or a PIL image), got shape {a.shape}")
    a = to_unit_float(a, name)
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def as_plane(plane: np.ndarray | Image.Image, name: str) -> np.ndarray:
    """A PIL image (read like a file, :func:`plane_pixels`) or an ``HxW`` / ``HxWx1`` array, as stored."""
    if isinstance(plane, Image.Image):
        plane = plane_pixels(upright(plane), name, name)
    a = np.asarray(plane)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise DatasetError(f"{name} must be an HxW array, got shape {a.shape}")
    return a


def as_trimap(trimap: np.ndarray | Image.Image) -> np.ndarray:
    """Check and convert a trimap to ``HxW uint8`` in {0, 128, 255} (:func:`snap_trimap`'s rules).

    Accepts uint8 {0,128,255}, float {0, 0.5, 1} (pymatting's 128/255 too), bool, and near values.
    """
    return np.ascontiguousarray(snap_trimap(as_plane(trimap, "trimap"), "trimap"))


def as_mask(mask: np.ndarray | Image.Image) -> np.ndarray:
    """Check and convert a coarse (binary or soft) mask to ``HxW float32`` in [0,1]."""
    return np.ascontiguousarray(to_unit_float(as_plane(mask, "mask"), "mask"))
