"""Image files in folders: listing them by name, and pairing images with trimaps or masks by file stem."""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path

from .errors import DatasetError
from .io import IMAGE_EXTENSIONS, is_image_file

_MAX_LISTED = 10  # names listed in an error message before "... and N more"


def short_list(paths: Iterable[Path | str], limit: int = _MAX_LISTED) -> str:
    """File names for a message: sorted, the first ``limit``, then "... and N more"."""
    names = sorted(p.name if isinstance(p, Path) else str(p) for p in paths)
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def list_images(folder: str | os.PathLike, what: str = "images") -> dict[str, Path]:
    """The image files of ``folder`` by file stem, sorted; other files are ignored with a warning.

    Sub-folders are skipped silently. Files whose extension is not in :data:`IMAGE_EXTENSIONS`, and hidden
    files (``.DS_Store``, ``._photo.jpg``), are listed in one ``UserWarning``.

    Raises
    ------
    DatasetError
        When the folder is missing or two files share a stem (``cat.png`` and ``cat.jpg``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: {what} folder does not exist")
    found: dict[str, Path] = {}
    ignored, clashes = [], []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            continue
        if not is_image_file(path):
            ignored.append(path)
        elif path.stem in found:
            clashes.append(f"{found[path.stem].name} / {path.name}")
        else:
            found[path.stem] = path
    if ignored:
        warnings.warn(f"{folder}: ignoring {len(ignored)} non-image or hidden file(s): {short_list(ignored)} "
                      f"(images must end in {', '.join(sorted(IMAGE_EXTENSIONS))})", UserWarning,
                      stacklevel=3)
    if clashes:
        raise DatasetError(f"{folder}: several files share a name (files are matched by name without the "
                           f"extension): {', '.join(clashes)}; keep one of each")
    return found


def match_stems(a: dict[str, Path], b: dict[str, Path], a_dir: Path, b_dir: Path, a_what: str,
                b_what: str) -> list[str]:
    """Problems with pairing two folders by file stem; ``a_what``/``b_what`` are singular nouns."""
    problems = []
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if only_a:
        problems.append(f"{len(only_a)} {a_what}(s) without a {b_what} in {b_dir}: "
                        f"{short_list(a[k] for k in only_a)} (add a {b_what} with the same name, or remove "
                        "them)")
    if only_b:
        problems.append(f"{len(only_b)} {b_what}(s) without a matching {a_what} in {a_dir}: "
                        f"{short_list(b[k] for k in only_b)} (check the names, or remove them)")
    return problems


def _entry_problem(path: Path) -> str | None:
    """Why a folder entry cannot be read as a file (a broken or looping link, a folder), or None."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if path.is_symlink():
            if e.errno == errno.ELOOP:
                return "a symbolic link loop"
            return f"a broken symbolic link (to {os.readlink(path)})"
        return f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(mode):
        return "a folder"
    return None if stat.S_ISREG(mode) else "not a regular file"


def _images_in(folder: Path) -> tuple[list[Path], dict[Path, str]]:
    """The image files of ``folder`` (sorted), and its image-named entries that cannot be read, with why.

    Everything else the folder holds (other files, hidden files, folders) is listed in one ``UserWarning``,
    so that nothing is left out without a word.
    """
    images, unreadable, ignored = [], {}, []
    for p in sorted(folder.iterdir()):
        problem = _entry_problem(p)
        if problem == "a folder":
            ignored.append(f"{p.name}/")
        elif not is_image_file(p):
            ignored.append(p.name)
        elif problem is None:
            images.append(p)
        else:
            unreadable[p] = problem
    if ignored:
        what = "entry that is not an image file" if len(ignored) == 1 else "entries that are not image files"
        warnings.warn(f"{folder}: left out {len(ignored)} {what}: {short_list(ignored)} (images end in "
                      f"{', '.join(sorted(IMAGE_EXTENSIONS))})", UserWarning, stacklevel=3)
    return images, unreadable


def pair_inputs(image: Path, guide: Path | None) -> tuple[list[tuple[Path, Path | None, str | None]], bool]:
    """Pair an image (or a folder of images) with its trimap/mask (or a folder of them, matched by stem).

    Returns ``([(image, guide or None, problem or None), ...], folder_mode)``: a pair whose problem is set
    (no match, several matches, a clashing stem) is to be skipped and reported, the others processed.

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
        return _pair_by_stem([image], guide), False
    images, unreadable = _images_in(image)
    if not images and not unreadable:
        raise ValueError(f"--image {image}: the folder holds no images (.png, .jpg, ...)")
    if guide is not None and guide.is_file():
        raise ValueError(f"--image {image} is a folder but {guide} is a file: pass a folder of trimaps/masks "
                         "named like the images")
    jobs = _pair_by_stem(images, guide) + [(p, None, f"skipped: {why}") for p, why in unreadable.items()]
    return sorted(jobs, key=lambda job: job[0].name), True


def _pair_by_stem(images: list[Path], folder: Path | None) -> list[tuple[Path, Path | None, str | None]]:
    by_stem: dict[str, list[Path]] = {}
    guides, unreadable = _images_in(folder) if folder is not None else ([], {})
    for p in [*guides, *unreadable]:
        by_stem.setdefault(p.stem, []).append(p)
    seen: dict[str, Path] = {}
    jobs = []
    for img in images:
        problem = None
        guides = by_stem.get(img.stem, [])
        if len(guides) == 1 and guides[0] in unreadable:
            problem = f"skipped: its match {guides[0]} is {unreadable[guides[0]]}"
        elif img.stem in seen:
            problem = f"skipped: {seen[img.stem].name} has the same name stem and would get the same outputs"
        elif folder is not None and not guides:
            problem = f"skipped: no file named {img.stem}.* in {folder}"
        elif len(guides) > 1:
            problem = f"skipped: several files match it in {folder} ({', '.join(g.name for g in guides)})"
        seen.setdefault(img.stem, img)
        jobs.append((img, guides[0] if len(guides) == 1 else None, problem))
    return jobs
