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
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_write
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

#: The Pillow formats of those extensions: a reader given ``formats=IMAGE_FORMATS`` tries no other decoder
#: (the web server's uploads, whose bytes may be anything: Pillow knows some 40 formats, EPS through
#: Ghostscript among them).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")

_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not hidden."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def image_size(path: str | os.PathLike, formats: tuple[str, ...] | None = None) -> tuple[int, int]:
    """``(height, width)`` of an image file after its EXIF orientation, reading only the header.

    Cheap (no pixel decoding), so datasets can check sizes of every file on construction. ``formats``
    (Pillow format names, e.g. :data:`IMAGE_FORMATS`) limits the decoders tried; None tries all.

    Raises
    ------
    DatasetError
        When the file is missing or not an image Pillow can identify.
    """
    try:
        with Image.open(path, formats=formats) as im:
            w, h = im.size
            if exif_orientation(im, header_only=True) in _TRANSPOSING_ORIENTATIONS:
                w, h = h, w
    except DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot read the image header ({e}); "
                           "the file is missing or not an image, replace or remove it") from e
    return h, w


#: The largest image the readers decode, in pixels: well below Pillow's decompression-bomb error (179 MP),
#: so a file that claims a huge size fails fast, by name. Readers and datasets take ``max_pixels``.
DEFAULT_MAX_PIXELS = 50_000_000

#: The best ratio deflate can reach (258-byte matches in 2-bit codes): compressed PNG pixel data smaller than
#: its raw size / this cannot hold the whole image, whatever the pixels are.
_DEFLATE_MAX_RATIO = 1032
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_data_too_short(source) -> bool:
    """True when a PNG's compressed pixel data (IDAT chunks) is too short for the size its header claims.

    Pillow fills a PNG whose zlib stream ends early with zeros, silently; this reads chunk headers only.
    """
    own = not hasattr(source, "read")
    f = open(source, "rb") if own else source
    position = 0 if own else f.tell()  # a file object Pillow has opened is past the signature
    try:
        f.seek(0)  # the start of the file, where Image.open reads an image from (it seeks there too)
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
        raw = idat = 0
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR":
                w, h, depth, color = struct.unpack(">IIBB", f.read(10))
                raw = h * (1 + -(-w * _PNG_CHANNELS.get(color, 4) * depth // 8))
                f.seek(length - 10 + 4, os.SEEK_CUR)
                continue
            if kind == b"IDAT":
                idat += length
            if kind == b"IEND":
                break
            f.seek(length + 4, os.SEEK_CUR)
        return idat * _DEFLATE_MAX_RATIO + 1024 < raw
    except (OSError, struct.error):
        return False  # unreadable headers: Pillow reports those itself
    finally:
        if own:
            f.close()
        else:
            f.seek(position)


def _open(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS,
          formats: tuple[str, ...] | None = None) -> Image.Image:
    """Open, fully decode and EXIF-rotate an image; any decoding failure becomes a DatasetError.

    Images over ``max_pixels`` (None: no limit beyond Pillow's) are refused from the header, before decoding.
    ``formats`` limits the decoders tried (see :func:`image_size`). The orientation is the one the header
    gives, as :func:`image_size` reads it: a PNG's eXIf chunk stored after the pixels is ignored (the PNG
    specification places eXIf before IDAT), so the size a header check reports is the size read.
    """
    try:
        with Image.open(path, formats=formats) as im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise DatasetError(f"{path}: {w}x{h} is {w * h / 1e6:.3g} MP, more than the limit of "
                                   f"{max_pixels / 1e6:g} MP for one image; downscale it, or raise the limit "
                                   "(max_pixels=, --max-megapixels)")
            if im.format == "PNG" and _png_data_too_short(path):
                raise DatasetError(f"{path}: truncated: the file holds far too little pixel data for the "
                                   f"{w}x{h} image its header claims; re-export it or remove it")
            turned = exif_orientation(im, header_only=True) != 1  # before load() reads late chunks
            im.load()  # force the full decode now: a truncated file must fail here, by name
            return upright(im) if turned else im
    except DatasetError:
        raise
    except DECODE_ERRORS as e:
        raise DatasetError(f"{path}: cannot decode the image ({type(e).__name__}: {e}); the file is "
                           "missing, truncated or not an image, re-export it or remove it") from e


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS, *,
               formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Read a photo as ``HxWx3 float32`` in [0,1].

    EXIF orientation is applied; grayscale is repeated to three channels; an alpha channel (RGBA, LA) is
    dropped; palette, CMYK and other colour modes are converted to RGB; 16-bit grayscale keeps its
    precision (values / 65535). Pillow decodes 48-bit RGB PNG/TIFF files to 8 bits per channel, so
    those are read at 8-bit precision.

    Parameters
    ----------
    path : str or os.PathLike
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (50 MP)
        Larger images are refused from the header, before decoding; None lifts the limit.
    formats : tuple of str, optional
        The Pillow formats the file may be decoded as (e.g. :data:`IMAGE_FORMATS`); None tries all.

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
    return image_pixels(_open(path, max_pixels, formats), path)


def _read_plane(path: str | os.PathLike, what: str, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                formats: tuple[str, ...] | None = None) -> np.ndarray:
    """The single channel of a matte or trimap file, as stored (uint8, uint16, int32, float32 or bool).

    Gray modes are returned as they are. A palette file is expanded first. RGBA/LA files use their alpha
    channel unless it is fully opaque, in which case the colour channels carry the matte. Colour channels
    must be gray (equal within :data:`GRAY_TOLERANCE` levels), else the file is not a matte.
    """
    return plane_pixels(_open(path, max_pixels, formats), path, what)


def read_alpha(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS, *,
               formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Read an alpha matte as ``HxW float32`` in [0,1] (0 = background, 1 = foreground).

    Accepted: single-channel 8-bit, 16-bit (precision kept, values / 65535) and float files; RGB files
    whose three channels are equal (JPEG rounding of up to :data:`GRAY_TOLERANCE` levels is tolerated);
    RGBA / LA files, whose alpha channel is the matte (unless it is fully opaque, then the colour
    channels must hold a gray matte); palette files. EXIF orientation is applied.

    Parameters
    ----------
    path : str or os.PathLike
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (50 MP)
        Larger images are refused from the header, before decoding; None lifts the limit.
    formats : tuple of str, optional
        The Pillow formats the file may be decoded as (e.g. :data:`IMAGE_FORMATS`); None tries all.

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
    return to_unit_float(_read_plane(path, "matte", max_pixels, formats), path)


def read_trimap(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS, *,
                formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Read a trimap as ``HxW uint8`` with values 0 (background), 128 (unknown), 255 (foreground).

    The file is read like a matte (:func:`read_alpha` rules for channels; 16-bit and float files are
    scaled to 0..255), then snapped like any trimap (:func:`deepmatting.data.pixels.snap_trimap`): values
    near 0, 128 or 255 (JPEG or resampling noise) are snapped to them, with a warning when they were more
    than a couple of levels off; values far from all three are an error.

    Parameters
    ----------
    path : str or os.PathLike
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS` (50 MP)
        Larger images are refused from the header, before decoding; None lifts the limit.
    formats : tuple of str, optional
        The Pillow formats the file may be decoded as (e.g. :data:`IMAGE_FORMATS`); None tries all.

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
    return snap_trimap(_read_plane(path, "trimap", max_pixels, formats), path)


#: zlib level of the PNGs the package writes (alphas, cutouts, the server's images): 1 saves a 12 MP RGBA
#: cutout about 4x faster than Pillow's default 6 (measured 0.46 s against 2.0 s), for a file about a
#: fifth larger.
PNG_COMPRESS_LEVEL = 1


def write_alpha(path: str | os.PathLike, alpha: np.ndarray, bits: int = 8,
                compress_level: int = PNG_COMPRESS_LEVEL) -> None:
    """Write an ``HxW`` float alpha in [0,1] as an 8- or 16-bit grayscale PNG (values clipped to [0, 1]).

    ``compress_level`` is zlib's (0-9), :data:`PNG_COMPRESS_LEVEL` by default.
    """
    if bits not in (8, 16):
        raise ValueError(f"write_alpha: bits must be 8 or 16, got {bits}")
    a = np.clip(alpha, 0, 1)
    if bits == 16:
        im = Image.fromarray(np.round(a * 65535).astype(np.uint16))
    else:
        im = Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L")
    save_image(path, im, compress_level=compress_level)


def save_image(path, image: Image.Image, **params) -> None:
    """Save a Pillow image atomically to the path ``path`` (the format from the suffix; ``params`` are
    Pillow's): a kill or a full disk leaves the old file or none, never a truncated file under ``path``
    (:class:`deepmatting.atomic.WriteError`). An open binary file is written directly (PNG unless
    ``format=`` says otherwise)."""
    if hasattr(path, "write"):  # an open binary file (the server's in-memory PNGs)
        image.save(path, format=params.pop("format", "PNG"), **params)
        return
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: no image format for the suffix {Path(path).suffix!r}")
    atomic_write(path, lambda f: image.save(f, format=fmt, **params))
