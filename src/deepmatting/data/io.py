"""Reading images, alpha mattes and trimaps from files, with checks that name the file and the fix.

The one place that turns a file into the arrays of the sample dict:

- :func:`read_image`  -> ``HxWx3 float32 [0,1]``
- :func:`read_alpha`  -> ``HxW float32 [0,1]``
- :func:`read_trimap` -> ``HxW uint8 {0,128,255}``

Every reader applies the EXIF orientation, forces a full decode (so a truncated file fails here, not later),
and raises :class:`DatasetError` for anything it cannot turn into the documented array. The training data
loader, the evaluation code and ``deepmatting predict`` all read files through these functions; the pixel
values are converted by the rules of :mod:`deepmatting.data.pixels`, which the Python API uses too.
:func:`write_alpha` writes a matte back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetError
from .pixels import (
    DECODE_ERRORS,
    exif_orientation,
    image_pixels,
    plane_pixels,
    snap_trimap,
    to_unit_float,
    upright,
)

#: File extensions (lower case) that the readers and the datasets treat as images.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})

_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not hidden."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


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
            if exif_orientation(im, header_only=True) in _TRANSPOSING_ORIENTATIONS:
                w, h = h, w
    except DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot read the image header ({e}); "
                           "the file is missing or not an image, replace or remove it") from e
    return h, w


def _open(path: str | os.PathLike) -> Image.Image:
    """Open, fully decode and EXIF-rotate an image; any decoding failure becomes a DatasetError."""
    try:
        with Image.open(path) as im:
            im.load()  # force the full decode now: a truncated file must fail here, by name
            return upright(im)
    except DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot decode the image ({type(e).__name__}: {e}); the file is "
                           "missing, truncated or not an image, re-export it or remove it") from e


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


def _read_plane(path: str | os.PathLike, what: str) -> np.ndarray:
    """The single channel of a matte or trimap file, as stored (uint8, uint16, int32, float32 or bool).

    Gray modes are returned as they are. A palette file is expanded first. RGBA/LA files use their alpha
    channel unless it is fully opaque, in which case the colour channels carry the matte. Colour channels
    must be gray (equal within :data:`GRAY_TOLERANCE` levels), else the file is not a matte.
    """
    return plane_pixels(_open(path), path, what)


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
    return to_unit_float(_read_plane(path, "matte"), path)


def read_trimap(path: str | os.PathLike) -> np.ndarray:
    """Read a trimap as ``HxW uint8`` with values 0 (background), 128 (unknown), 255 (foreground).

    The file is read like a matte (:func:`read_alpha` rules for channels; 16-bit and float files are
    scaled to 0..255), then snapped like any trimap (:func:`deepmatting.data.pixels.snap_trimap`): values
    near 0, 128 or 255 (JPEG or resampling noise) are snapped to them, with a warning when they were more
    than a couple of levels off; values far from all three are an error.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    np.ndarray, HxW uint8 in {0, 128, 255}

    Raises
    ------
    DatasetError
        When the file is unreadable, has colour content, or holds values far from 0/128/255; the
        message lists the offending values.

    Examples
    --------
    >>> trimap = read_trimap("trimaps/cat.png")  # doctest: +SKIP
    >>> sorted(set(trimap.ravel().tolist())) <= [0, 128, 255]  # doctest: +SKIP
    True
    """
    return snap_trimap(_read_plane(path, "trimap"), path)


def write_alpha(path: str | os.PathLike, alpha: np.ndarray, bits: int = 8) -> None:
    """Write an ``HxW`` float alpha in [0,1] as an 8- or 16-bit grayscale PNG (values clipped to [0, 1])."""
    if bits not in (8, 16):
        raise ValueError(f"write_alpha: bits must be 8 or 16, got {bits}")
    a = np.clip(alpha, 0, 1)
    if bits == 16:
        Image.fromarray(np.round(a * 65535).astype(np.uint16)).save(path)
    else:
        Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L").save(path)
