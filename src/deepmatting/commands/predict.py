"""``deepmatting predict``: alpha mattes, RGBA cutouts and figures for an image or a folder of images.

A thin layer over :func:`deepmatting.inference.predict` and :func:`deepmatting.foreground.cutout`. Folders
are matched by file stem (``images/cat.jpg`` with ``trimaps/cat.png``); a file that cannot be read is
reported by name on stderr and the rest are still processed; the exit status is 1 when any image failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from ..inference import DEFAULT_TILE_SIZE
from .options import add_checkpoint, add_device

HELP = "predict alpha mattes, RGBA cutouts and figures for an image or a folder of images"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint(p)
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx",
                   help="run an exported ONNX model with onnxruntime instead of a checkpoint")
    p.add_argument("--image", required=True, metavar="FILE_OR_DIR", help="an image, or a folder of images")
    guide = p.add_mutually_exclusive_group()
    guide.add_argument("--trimap", default=None, metavar="FILE_OR_DIR",
                       help="trimap (0 background, 128 unknown, 255 foreground), or a folder of them named "
                            "like the images (matched by file stem)")
    guide.add_argument("--mask", default=None, metavar="FILE_OR_DIR",
                       help="a coarse binary or soft mask, or a folder of them; for trimap models it becomes "
                            "a trimap with an unknown band along its edge (see --mask-band)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created when missing)")
    p.add_argument("--figure", action="store_true",
                   help="also write NAME_figure.png (image | alpha | masked image)")
    p.add_argument("--alpha-16bit", action="store_true",
                   help="write NAME_alpha.png as 16-bit instead of 8-bit")
    p.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE, metavar="N",
                   help="images longer than N px on a side run in overlapping tiles (bounds the memory)")
    p.add_argument("--mask-band", type=float, default=None, metavar="PX",
                   help="half-width of the unknown band made from --mask (default: 1%% of the longer side, "
                        "at least 5 px)")
    add_device(p)


def _error(message: str) -> int:
    print(f"deepmatting predict: error: {message}", file=sys.stderr)
    return 2


def _reason(e: Exception, path: Path) -> str:
    """The message of ``e`` without a leading ``path: `` (the caller names the file itself)."""
    msg = str(e)
    prefix = f"{path}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _images_in(folder: Path) -> list[Path]:
    from ..data import is_image_file

    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def match_inputs(image: Path, guide: Path | None) -> tuple[list[tuple[Path, Path | None, str | None]], bool]:
    """Pair each image with its trimap/mask: ``([(image, guide or None, problem or None)], folder_mode)``.

    Raises
    ------
    ValueError
        Missing paths, a folder of images with a single guide file, or a folder without images.
    """
    if not image.exists():
        raise ValueError(f"--image {image}: no such file or folder")
    if guide is not None and not guide.exists():
        raise ValueError(f"{guide}: no such file or folder")
    if image.is_file():
        if guide is None or guide.is_file():
            return [(image, guide, None)], False
        return _pair([image], guide), False
    images = _images_in(image)
    if not images:
        raise ValueError(f"--image {image}: the folder holds no images (.png, .jpg, ...)")
    if guide is not None and guide.is_file():
        raise ValueError(f"--image {image} is a folder but {guide} is a file: pass a folder of trimaps/masks "
                         "named like the images")
    return _pair(images, guide), True


def _pair(images: list[Path], folder: Path | None) -> list[tuple[Path, Path | None, str | None]]:
    by_stem: dict[str, list[Path]] = {}
    for p in _images_in(folder) if folder is not None else []:
        by_stem.setdefault(p.stem, []).append(p)
    seen: dict[str, Path] = {}
    jobs = []
    for img in images:
        problem = None
        guides = by_stem.get(img.stem, [])
        if img.stem in seen:
            problem = f"skipped: {seen[img.stem].name} has the same name stem and would get the same outputs"
        elif folder is not None and not guides:
            problem = f"skipped: no file named {img.stem}.* in {folder}"
        elif len(guides) > 1:
            problem = f"skipped: several files match it in {folder} ({', '.join(g.name for g in guides)})"
        seen.setdefault(img.stem, img)
        jobs.append((img, guides[0] if len(guides) == 1 else None, problem))
    return jobs


def save_alpha(path: str | os.PathLike, alpha: np.ndarray, bits: int = 8) -> None:
    """Write an ``HxW`` float alpha in [0,1] as an 8- or 16-bit grayscale PNG."""
    from PIL import Image

    a = np.clip(alpha, 0, 1)
    if bits == 16:
        Image.fromarray(np.round(a * 65535).astype(np.uint16)).save(path)
    else:
        Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L").save(path)


def run(args: argparse.Namespace) -> int:
    from PIL import Image
    from tqdm import tqdm

    from ..checkpoint import CheckpointError
    from ..data import DatasetError, read_alpha, read_image, read_trimap
    from ..foreground import cutout, estimate_foreground
    from ..inference import load_backend, predict

    if args.tile_size < 32:
        return _error(f"--tile-size {args.tile_size} is too small (at least 32)")
    guide_arg = args.trimap if args.trimap is not None else args.mask
    try:
        jobs, folder_mode = match_inputs(Path(args.image), Path(guide_arg) if guide_arg else None)
        backend = load_backend(checkpoint=args.checkpoint, onnx=args.onnx, device=args.device)
    except (CheckpointError, ImportError, ValueError) as e:
        return _error(str(e))
    if backend.input == "mask" and args.mask is None:
        return _error("this model reads a coarse mask beside each image (it was trained with input='mask'): "
                      "pass --mask FILE_OR_DIR")
    if args.trimap is None and args.mask is None:
        return _error("a trimap or a coarse mask is needed beside each image: pass --trimap FILE_OR_DIR "
                      "(0 background, 128 unknown, 255 foreground) or --mask FILE_OR_DIR")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = done = 0
    for image_path, guide_path, problem in tqdm(jobs, desc="predict", unit="image", disable=not folder_mode,
                                                file=sys.stderr):
        name = image_path.name
        if problem is not None:
            tqdm.write(f"{name}: {problem}", file=sys.stderr)
            failed += 1
            continue
        try:
            image = read_image(image_path)
            try:
                guide = read_trimap(guide_path) if args.trimap is not None else read_alpha(guide_path)
            except DatasetError as e:
                kind = "trimap" if args.trimap is not None else "mask"
                raise DatasetError(f"its {kind} {guide_path}: {_reason(e, guide_path)}") from e
            trimap = guide if args.trimap is not None else None
            mask = guide if args.mask is not None else None
            alpha = predict(image, trimap, mask, backend=backend, tile_size=args.tile_size,
                            mask_band=args.mask_band)
            stem = image_path.stem
            save_alpha(out / f"{stem}_alpha.png", alpha, 16 if args.alpha_16bit else 8)
            fg = estimate_foreground(image, alpha)
            Image.fromarray(cutout(image, alpha, fg), mode="RGBA").save(out / f"{stem}_cutout.png")
            if args.figure:
                from ..visualize import side_by_side

                side_by_side(image, alpha, out / f"{stem}_figure.png", trimap=trimap, fg=fg)
        except (DatasetError, ValueError, OSError) as e:
            tqdm.write(f"{name}: {_reason(e, image_path)}", file=sys.stderr)
            failed += 1
            continue
        done += 1
    outputs = "alpha mattes, cutouts and figures" if args.figure else "alpha mattes and cutouts"
    print(f"wrote {outputs} for {done} of {len(jobs)} image{'s' if len(jobs) != 1 else ''} to {out}"
          + (f" ({failed} failed, see above)" if failed else ""))
    return 1 if failed else 0
