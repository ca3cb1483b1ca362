"""A training run's folder: one run at a time, and never an earlier run replaced without being asked.

:func:`claim_run_folder` is what :func:`deepmatting.train.train` holds for the whole run:

- a folder that already holds a run (any of :data:`RUN_FILES`: ``last.pt``, ``best.pt``, ``metrics.jsonl``,
  ``config.json``, ``curves.png``) is
  refused unless the run continues it (``resume``) or replaces it (``overwrite``: its run files are removed
  first; caches such as the prior pool stay);
- an exclusive ``fcntl`` lock on ``OUT/.lock`` (the holder's pid written inside) keeps a second process out
  while the first runs; the kernel releases it when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: The files that make a folder a training run's (what a new run would replace or append to).
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.json", "curves.png")
LOCK_NAME = ".lock"


class RunFolderError(RuntimeError):
    """The run folder is taken: it holds an earlier run, or another process is training into it."""


def existing_run_files(out: Path) -> list[str]:
    """The names in :data:`RUN_FILES` present in ``out`` (empty for a missing folder)."""
    return [name for name in RUN_FILES if (out / name).exists()]


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse (``RunFolderError``) a folder holding a run that this run would neither continue nor
    replace; with ``overwrite``, remove that run's files."""
    if resume and overwrite:
        raise RunFolderError("--resume continues the run in the folder and --overwrite replaces it: "
                             "give one of them")
    found = existing_run_files(out)
    if not found or resume:
        return
    if not overwrite:
        raise RunFolderError(
            f"{out} already holds a training run ({', '.join(found)}): continue it with --resume, "
            "choose another --out, or replace it with --overwrite")
    for name in found:
        (out / name).unlink()


@contextlib.contextmanager
def claim_run_folder(out: Path, resume: bool = False, overwrite: bool = False) -> Iterator[None]:
    """Hold ``out`` for one training run: checked as :func:`check_run_folder` says, and locked.

    Raises ``RunFolderError`` when another live process holds the lock (its pid in the message) or the
    folder holds a run this one would silently replace.
    """
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / LOCK_NAME, "a+")  # noqa: SIM115 - held for the whole run, closed in finally
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise RunFolderError(f"{out} is in use by a training run that is still going (pid {holder}); "
                                 "wait for it, or choose another --out") from None
        check_run_folder(out, resume, overwrite)
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield
    finally:
        lock.close()  # releases the lock
