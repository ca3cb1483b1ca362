"""Reading images, alpha mattes and trimaps from files, with checks that name the file and the fix.

The one place that turns a file into the arrays of the sample dict:

- :func:`read_image`  -> ``HxWx3 float32 [0,1]``
- :func:`read_alpha`  -> ``HxW float32 [0,1]``
- :func:`read_trimap` -> ``HxW uint8 {0,128,255}``

Every reader applies the EXIF orientation, forces a full decode (so a truncated file fails here, not later),
and raises :class:`DatasetError` for anything it cannot turn into the documented array. The training data
loader, the evaluation code and ``deepmatting predict`` all read files through these functions.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: File extensions (lower case) that the readers and the datasets treat as images.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})

#: Trimap values within this many levels of 0, 128 or 255 (as left by lossy saving or resampling) are
#: snapped to that value by :func:`read_trimap`; anything else is an error.
TRIMAP_TOLERANCE = 2

#: Colour channels of an RGB mask that differ by at most this many 8-bit levels (JPEG chroma rounding)
#: still count as gray; the matte is then their mean.
GRAY_TOLERANCE = 3

_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
                  Image.DecompressionBombError)


class DatasetError(ValueError):
    """Bad input data: a missing, unreadable or malformed file, or a dataset folder laid out wrongly.

    The message names the file(s) or folder, the problem, and how to fix it.
    """


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not hidden."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _orientation(im: Image.Image, header_only: bool = False) -> int:
    """The EXIF orientation tag of an opened image (1 when absent).

    ``Image.getexif`` on a PNG decodes the whole image to look for an eXIf chunk stored after the pixels;
    with ``header_only`` only the chunks read with the header are consulted (the readers, which decode
    anyway, see late chunks too).
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
    except _DECODE_ERRORS:
        return 1  # a broken EXIF block is not worth failing on; the pixels are read as stored


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file after its EXIF orientation, reading only the header.

    Cheap (no pixel decoding), so datasets can check sizes of every file on construction.

    Raises
    ------
    DatasetError
        When the file is missing or not an image Pillow can identify.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            if _orientation(im, header_only=True) in _TRANSPOSING_ORIENTATIONS:
                w, h = h, w
    except _DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot read the image header ({e}); "
                           "the file is missing or not an image, replace or remove it") from e
    return h, w


#: Pillow modes that hold one gray channel (8-bit, 16-bit, 32-bit int or float, or 1-bit).
GRAY_MODES = ("1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _open(path: str | os.PathLike) -> Image.Image:
    """Open, fully decode and EXIF-rotate an image; any decoding failure becomes a DatasetError."""
    try:
        with Image.open(path) as im:
            im.load()  # force the full decode now: a truncated file must fail here, by name
            return upright(im)
    except _DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot decode the image ({type(e).__name__}: {e}); the file is "
                           "missing, truncated or not an image, re-export it or remove it") from e


def _to_unit_float(arr: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Integer or float pixel values -> float32 in [0,1], keeping the precision of the source."""
    if arr.dtype == np.uint8:
        return np.multiply(arr, np.float32(1 / 255), dtype=np.float32)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype.kind in "ui":  # 16-bit files, which Pillow opens as I;16 or I (32-bit ints)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 65535:
            raise DatasetError(f"{path}: integer pixel values {lo}..{hi} are outside the 16-bit range "
                               "0..65535; save it as an 8- or 16-bit image")
        return np.multiply(arr, np.float32(1 / 65535), dtype=np.float32)
    if arr.dtype.kind == "f":  # 32-bit float TIFFs: taken as already in [0,1]
        out = arr.astype(np.float32)
        lo, hi = float(out.min()), float(out.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
            raise DatasetError(f"{path}: float pixel values span {lo:g}..{hi:g}, expected 0..1; "
                               "rescale it to 0..1 or save it as an 8- or 16-bit image")
        return np.clip(out, 0.0, 1.0, out=out)
    raise DatasetError(f"{path}: unsupported pixel type {arr.dtype}; save it as an 8- or 16-bit PNG")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as ``HxWx3 float32`` in [0,1].

    EXIF orientation is applied; grayscale is repeated to three channels; an alpha channel (RGBA, LA) is
    dropped; palette, CMYK and other colour modes are converted to RGB; 16-bit grayscale keeps its
    precision (values / 65535). Pillow decodes 48-bit RGB PNG/TIFF files to 8 bits per channel, so
    those are read at 8-bit precision.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    np.ndarray, HxWx3 float32 in [0, 1]

    Raises
    ------
    DatasetError
        When the file is missing, truncated or not a decodable image.

    Examples
    --------
    >>> image = read_image("photo.jpg")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((1080, 1920, 3), dtype('float32'))
    """
    return image_pixels(_open(path), path)


def upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF orientation says (unchanged when it has none)."""
    return ImageOps.exif_transpose(im) if _orientation(im) != 1 else im


def image_pixels(im: Image.Image, where: str | os.PathLike = "image") -> np.ndarray:
    """The pixels of a decoded (and upright) PIL image as ``HxWx3 float32`` in [0,1], as :func:`read_image`
    converts them; ``where`` names the source in error messages."""
    if im.mode in GRAY_MODES:
        gray = _to_unit_float(np.asarray(im), where)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "LA":
        im = im.convert("L")
        return np.repeat(_to_unit_float(np.asarray(im), where)[:, :, None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return _to_unit_float(np.asarray(im), where)


def _read_plane(path: str | os.PathLike, what: str) -> np.ndarray:
    """The single channel of a matte or trimap file, as stored (uint8, uint16, int32, float32 or bool).

    Gray modes are returned as they are. A palette file is expanded first. RGBA/LA files use their alpha
    channel unless it is fully opaque, in which case the colour channels carry the matte. Colour channels
    must be gray (equal within :data:`GRAY_TOLERANCE` levels), else the file is not a matte.
    """
    return plane_pixels(_open(path), path, what)


def plane_pixels(im: Image.Image, where: str | os.PathLike, what: str) -> np.ndarray:
    """The single channel of a decoded (and upright) PIL matte/trimap/mask, as :func:`_read_plane` reads
    it; ``where`` names the source and ``what`` the kind of plane in error messages."""
    if im.mode in GRAY_MODES:
        return np.asarray(im)
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


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte as ``HxW float32`` in [0,1] (0 = background, 1 = foreground).

    Accepted: single-channel 8-bit, 16-bit (precision kept, values / 65535) and float files; RGB files
    whose three channels are equal (JPEG rounding of up to :data:`GRAY_TOLERANCE` levels is tolerated);
    RGBA / LA files, whose alpha channel is the matte (unless it is fully opaque, then the colour
    channels must hold a gray matte); palette files. EXIF orientation is applied.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    np.ndarray, HxW float32 in [0, 1]

    Raises
    ------
    DatasetError
        When the file is unreadable or truncated, or has colour content ("not a matte").

    Examples
    --------
    >>> alpha = read_alpha("masks/cat.png")  # doctest: +SKIP
    >>> alpha.dtype, float(alpha.min()) >= 0.0, float(alpha.max()) <= 1.0  # doctest: +SKIP
    (dtype('float32'), True, True)
    """
    return _to_unit_float(_read_plane(path, "matte"), path)


def _trimap_lut(tolerance: int) -> np.ndarray:
    """uint8 -> snapped trimap value; 1 marks values too far from 0, 128 and 255."""
    lut = np.ones(256, np.uint8)
    for v in (0, 128, 255):
        lut[max(0, v - tolerance):min(255, v + tolerance) + 1] = v
    return lut


_TRIMAP_LUT = _trimap_lut(TRIMAP_TOLERANCE)


def read_trimap(path: str | os.PathLike) -> np.ndarray:
    """Read a trimap as ``HxW uint8`` with values 0 (background), 128 (unknown), 255 (foreground).

    The file is read like a matte (:func:`read_alpha` rules for channels; 16-bit and float files are
    scaled to 0..255). Values within :data:`TRIMAP_TOLERANCE` levels of 0, 128 or 255 are snapped to them
    (JPEG or resampling noise); any other value is an error.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}

    Raises
    ------
    DatasetError
        When the file is unreadable, has colour content, or holds values other than 0/128/255; the
        message lists the offending values.

    Examples
    --------
    >>> trimap = read_trimap("trimaps/cat.png")  # doctest: +SKIP
    >>> sorted(set(trimap.ravel().tolist())) <= [0, 128, 255]  # doctest: +SKIP
    True
    """
    plane = _read_plane(path, "trimap")
    if plane.dtype == np.bool_:
        plane = plane.astype(np.uint8) * 255
    elif plane.dtype != np.uint8:
        plane = np.round(_to_unit_float(plane, path) * 255).astype(np.uint8)
    out = _TRIMAP_LUT.take(plane)
    bad = out == 1
    if bad.any():
        values = np.unique(plane[bad])
        shown = ", ".join(str(v) for v in values[:12]) + (", ..." if len(values) > 12 else "")
        raise DatasetError(
            f"{path}: not a trimap: {int(bad.sum())} pixels have values other than 0, 128 and 255 "
            f"(found {shown}; values within ±{TRIMAP_TOLERANCE} are accepted). Save it as 8-bit grayscale "
            "with 0 = background, 128 = unknown, 255 = foreground, without resampling or JPEG compression")
    return out
