"""``deepmatting predict``: alpha mattes, cutouts, figures (and derived trimaps) for images or folders.

A thin layer over :func:`deepmatting.predict` and :func:`deepmatting.cutout`. Folders are matched by file
stem (``images/cat.jpg`` with ``trimaps/cat.png``, :func:`deepmatting.data.pair_inputs`); a file that
cannot be read is reported by name on stderr and the rest are still processed; the exit status is 1 when
any image failed, 2 when nothing could start (bad options, no model, an output folder that cannot be made).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .options import add_device, add_model_source, bounded_number, report_errors

HELP = "predict alpha mattes, RGBA cutouts and figures for an image or a folder of images"

#: What ``--outputs`` may name, and the files each writes (NAME is the image's file stem).
OUTPUTS = {
    "alpha": "NAME_alpha.png (8-bit, or 16-bit with --alpha-16bit)",
    "cutout": "NAME_cutout.png (RGBA), or NAME_cutout.jpg on --background",
    "figure": "NAME_figure.png (the image with the trimap outline, the alpha, the cutout)",
    "trimap": "NAME_trimap.png (the trimap used: with --mask, the one derived from the mask)",
}


#: The smallest ``--tile-size``: a tile must hold a model's receptive field several times over.
MIN_TILE_SIZE = 32


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.trimap import MAX_WIDTH
    from ..inference import DEFAULT_TILE_SIZE

    add_model_source(p, "run")
    p.add_argument("--image", required=True, metavar="FILE_OR_DIR", help="an image, or a folder of images")
    guide = p.add_mutually_exclusive_group()
    guide.add_argument("--trimap", default=None, metavar="FILE_OR_DIR",
                       help="trimap (0 background, 128 unknown, 255 foreground), or a folder of them named "
                            "like the images (matched by file stem)")
    guide.add_argument("--mask", default=None, metavar="FILE_OR_DIR",
                       help="a coarse binary or soft mask (from any segmenter), or a folder of them; it "
                            "becomes a trimap with an unknown band along its edge (see --mask-band)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created when missing)")
    p.add_argument("--outputs", default="alpha,cutout", metavar="LIST",
                   help="comma-separated files to write per image: "
                        + "; ".join(f"{k}: {v}" for k, v in OUTPUTS.items()))
    p.add_argument("--figure", action="store_true", help="also write the figure (same as adding 'figure')")
    p.add_argument("--background", default=None, metavar="COLOR",
                   help="lay the cutout over this colour (a name such as white, or #rrggbb) and write a JPEG "
                        "instead of a transparent PNG")
    p.add_argument("--alpha-16bit", action="store_true", help="write the alpha as a 16-bit PNG")
    p.add_argument("--tile-size", type=bounded_number(int, low=MIN_TILE_SIZE), default=DEFAULT_TILE_SIZE,
                   metavar="N", help="images longer than N px on a side run in overlapping tiles (bounds the "
                                     f"memory; at least {MIN_TILE_SIZE})")
    p.add_argument("--max-megapixels", type=bounded_number(float, low=1e-6), default=50.0,
                   help="larger images are refused by name (raise it for bigger photos; at least 1e-6: one "
                        "pixel)")
    p.add_argument("--mask-band", type=bounded_number(float, low=0, high=MAX_WIDTH), default=None,
                   metavar="PX", help="half-width of the unknown band made from --mask, 0 to "
                                      f"{MAX_WIDTH} (default: 2%% of the subject's size, at least 5 px)")
    add_device(p)


def chosen_outputs(args: argparse.Namespace) -> list[str]:
    """The outputs ``--outputs`` (plus ``--figure``) asks for, checked."""
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    unknown = sorted(set(outputs) - set(OUTPUTS))
    if unknown or not outputs:
        raise ValueError(f"--outputs {args.outputs!r}: choose from {', '.join(OUTPUTS)}")
    if args.figure and "figure" not in outputs:
        outputs.append("figure")
    return outputs


def _reason(e: Exception, path: Path) -> str:
    """The message of ``e`` without a leading ``path: `` (the caller names the file itself)."""
    msg = str(e)
    prefix = f"{path}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _make_output_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot create the output folder ({e.strerror or e})") from None


def output_names(stem: str, outputs: list[str], background: str | None) -> dict[str, str]:
    """The file each of ``outputs`` is written to for an image of file stem ``stem`` (the one naming rule
    for writing and for the over-an-input check)."""
    suffix = {"alpha": "_alpha.png", "trimap": "_trimap.png", "figure": "_figure.png",
              "cutout": "_cutout.jpg" if background is not None else "_cutout.png"}
    return {o: stem + suffix[o] for o in outputs}


def _refuse_output_over_input(out: Path, image_arg: Path, guide_arg: Path | None, jobs, outputs: list[str],
                              background: str | None) -> None:
    """A ``ValueError`` when ``--out`` is an input folder (a second run would take the first run's outputs
    as inputs) or an output file would replace an input file. Links are followed as far as they lead
    (``os.path.realpath``: a link loop is compared as it is, not an error)."""
    target = os.path.realpath(out)
    for flag, given in (("--image", image_arg), ("--trimap/--mask", guide_arg)):
        if given is not None and given.is_dir() and os.path.realpath(given) == target:
            raise ValueError(f"--out {out} is the {flag} folder: the outputs would be mixed with the inputs "
                             "(and read as inputs by the next run); choose another --out")
    inputs = {os.path.realpath(p) for job in jobs if job[2] is None for p in job[:2] if p is not None}
    for image_path, _, problem in jobs:
        for name in output_names(image_path.stem, outputs, background).values():
            if problem is None and os.path.realpath(os.path.join(target, name)) in inputs:
                raise ValueError(f"--out {out}: writing {name} would replace an input file; choose another "
                                 "--out")


#: The error when a model that reads a trimap or a mask gets neither.
NO_GUIDE = ("a trimap or a coarse mask is needed beside each image: pass --trimap FILE_OR_DIR (0 background, "
            "128 unknown, 255 foreground) or --mask FILE_OR_DIR (a segmenter's mask, e.g. from `rembg i -om "
            "photo.jpg mask.png`, or an RGBA cutout: its alpha is read); only a model trained with "
            "`deepmatting train --input image` mattes the image alone")


def _write_outputs(out: Path, names: dict[str, str], image, alpha, trimap, args: argparse.Namespace) -> None:
    """Write the outputs ``names`` (:func:`output_names`) of one image: all of them, or none.

    The figure is drawn first, in memory (it is small), so a figure that cannot be drawn leaves nothing;
    a write that fails removes the outputs written before it, and its error says which. The foreground
    colours are estimated by each output where it needs them: at display size for the figure; near the
    edge, in tiles, for the cutout (no full-size copy is kept).
    """
    from PIL import Image

    from ..atomic import atomic_write
    from ..data import write_alpha
    from ..data.io import PNG_COMPRESS_LEVEL, save_image
    from ..foreground import composite_on, cutout

    figure = _figure_png(image, alpha, trimap) if "figure" in names else None
    written: list[Path] = []
    try:
        for output, name in names.items():
            path = out / name
            if output == "alpha":
                write_alpha(path, alpha, 16 if args.alpha_16bit else 8)
            elif output == "trimap":
                if trimap is None:  # a mask or image-only model: no trimap was used
                    continue
                save_image(path, Image.fromarray(trimap, mode="L"))
            elif output == "cutout" and args.background is not None:
                save_image(path, Image.fromarray(composite_on(image, alpha, args.background)), quality=95)
            elif output == "cutout":
                save_image(path, Image.fromarray(cutout(image, alpha), mode="RGBA"),
                           compress_level=PNG_COMPRESS_LEVEL)
            elif output == "figure":
                atomic_write(path, lambda f: f.write(figure))  # noqa: B023 - called at once
            written.append(path)
    except (OSError, ValueError) as e:
        for path in written:
            path.unlink(missing_ok=True)
        if written:
            removed = ", ".join(p.name for p in written)
            raise OSError(f"{e} (so its outputs written before were removed: {removed}; an image gets all "
                          "its outputs or none)") from e
        raise


def _read_pair(image_path: Path, guide_path: Path | None, args: argparse.Namespace, limit: int):
    """The image and its trimap or mask (``--trimap``/``--mask``; None without a guide, for image-only
    models), each refused over ``limit`` pixels."""
    from PIL import Image

    from ..data import DatasetError, read_alpha, read_image, read_trimap

    with warnings.catch_warnings():
        # the limit is checked from each file's header before decoding; Pillow's own warning about large
        # images (above 89 MP) would only repeat it, or contradict a raised --max-megapixels
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = read_image(image_path, limit)
        if guide_path is None:
            return image, None
        try:
            read = read_trimap if args.trimap is not None else read_alpha
            guide = read(guide_path, limit)
        except DatasetError as e:
            kind = "trimap" if args.trimap is not None else "mask"
            raise DatasetError(f"its {kind} {guide_path}: {_reason(e, guide_path)}") from e
    return image, guide


def _figure_png(image, alpha, trimap) -> bytes:
    """The side-by-side figure (:func:`deepmatting.visualize.side_by_side`) as PNG bytes."""
    import io

    from ..visualize import side_by_side

    buffer = io.BytesIO()
    side_by_side(image, alpha, buffer, trimap=trimap)
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    return report_errors("predict", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from ..backends import describe_backend, load_backend
    from ..data import DatasetError, pair_inputs
    from ..foreground import composite_on
    from ..inference import mask_to_trimap, predict

    no_guide = args.trimap is None and args.mask is None
    if no_guide and args.checkpoint is None and args.onnx is None:  # every shipped model reads a trimap
        raise ValueError(NO_GUIDE)
    outputs = chosen_outputs(args)
    if args.background is not None:
        composite_on(np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32), args.background)  # check
    guide_arg = None if no_guide else Path(args.trimap if args.trimap is not None else args.mask)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        jobs, folder_mode = pair_inputs(Path(args.image), guide_arg)
    for note in notes:  # what a folder holds besides images: said in one line each, not as a warning
        print(f"note: {note.message}", file=sys.stderr)
    out = Path(args.out)
    _refuse_output_over_input(out, Path(args.image), guide_arg, jobs, outputs, args.background)
    backend = load_backend(args.checkpoint, onnx=args.onnx, quality=args.quality, device=args.device)
    if backend.input == "image" and not no_guide:
        print(f"note: this model reads the image alone (it was trained with --input image): "
              f"{'--trimap' if args.trimap is not None else '--mask'} is ignored", file=sys.stderr)
        guide_arg = None
        with warnings.catch_warnings():  # paired again without the guides (their notes were printed above)
            warnings.simplefilter("ignore")
            jobs, folder_mode = pair_inputs(Path(args.image), None)
    elif backend.input != "image" and no_guide:
        raise ValueError(NO_GUIDE)
    if backend.input == "mask" and args.mask is None:
        raise ValueError("this model reads a coarse mask beside each image (it was trained with "
                         "input='mask'): pass --mask FILE_OR_DIR")
    _make_output_folder(out)
    print(f"model: {describe_backend(backend)}", file=sys.stderr)
    limit = round(args.max_megapixels * 1e6)

    failed = done = 0
    for image_path, guide_path, problem in tqdm(jobs, desc="predict", unit="image", disable=not folder_mode,
                                                file=sys.stderr):
        name = image_path.name
        if problem is not None:
            tqdm.write(f"{name}: {problem}", file=sys.stderr)
            failed += 1
            continue
        try:
            image, guide = _read_pair(image_path, guide_path, args, limit)
            trimap = mask = None
            if guide is not None:
                trimap = guide if args.trimap is not None else None
                if args.mask is not None and backend.input == "trimap":
                    trimap = mask_to_trimap(guide, args.mask_band)  # what predict derives: shown and saved
                mask = guide if trimap is None else None
            alpha = predict(image, trimap, mask, backend=backend, tile_size=args.tile_size)
            _write_outputs(out, output_names(image_path.stem, outputs, args.background), image, alpha, trimap,
                           args)
        except (DatasetError, ValueError, OSError) as e:
            tqdm.write(f"{name}: {_reason(e, image_path)}", file=sys.stderr)
            failed += 1
            continue
        done += 1
    written = " and ".join([", ".join(outputs[:-1]), outputs[-1]] if len(outputs) > 1 else outputs)
    print(f"wrote {written} for {done} of {len(jobs)} image{'s' if len(jobs) != 1 else ''} to {out}"
          + (f" ({failed} failed, see above)" if failed else ""))
    return 1 if failed else 0
