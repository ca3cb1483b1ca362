"""Writing a file atomically: a temporary file in the same folder, fsync, rename (one helper for every
writer: checkpoints, run logs, predicted PNGs, figures)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


class WriteError(OSError):
    """A file could not be written; the message says why (a full disk in words) and what is left."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file in the same folder, fsync, then rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, (OSError, RuntimeError)):  # torch.save wraps a failed write in a RuntimeError
            kept = "the previous file is intact" if path.exists() else "nothing was written"
            raise WriteError(f"cannot write {path}: {_write_failure(e, path.parent)}; {kept}") from e
        raise
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Fail now, not after a long computation, when :func:`atomic_write` could not write ``path``.

    ``path`` must not be a folder, and its folder must exist or be creatable and take a new file (a
    temporary file is made there and removed). Raises :class:`WriteError` naming ``path`` and why.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"cannot write {path}: it is a folder; give the name of the file to write")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise WriteError(f"cannot write {path}: {blocker} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e} (in {path.parent}); nothing was written "
                         "and nothing was run") from e
    return path


def _write_failure(error: BaseException, folder: Path) -> str:
    """Why a write failed, in words: a full disk is said as such (torch hides ENOSPC in its own error)."""
    chain = [error]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    full = any(getattr(e, "errno", None) == errno.ENOSPC for e in chain)
    if full or shutil.disk_usage(folder).free < 2**20:
        return f"no space left on the device of {folder}"
    return f"{type(error).__name__}: {error}"
