"""A training run's folder: one run at a time, and never an earlier run replaced without being asked.

:func:`claim_run_folder` is what :func:`deepmatting.train.train` holds for the whole run:

- a folder that already holds a run (any of :data:`RUN_FILES`: ``last.pt``, ``best.pt``, ``metrics.jsonl``,
  ``config.json``, ``curves.png``) is
  refused unless the run continues it (``resume``) or replaces it (``overwrite``: its run files are removed
  first; caches such as the prior pool stay);
- an exclusive ``fcntl`` lock on ``OUT/.lock`` (the holder's pid written inside) keeps a second process out
  while the first runs; the kernel releases it when the process ends, however it ends;
- a run refused before it wrote anything (bad data, a damaged checkpoint to resume from) leaves the folder
  as it found it: the lock file is removed, and the folder too when the claim created it.
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

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    while True:
        lock = open(path, "a+")  # noqa: SIM115 - held for the whole run, closed in finally
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise RunFolderError(f"{out} is in use by a training run that is still going (pid {holder}); "
                                 "wait for it, or choose another --out") from None
        if _same_file(path, lock):
            break
        lock.close()  # a refused run removed that lock file while this process opened it: take a new one
    try:
        check_run_folder(out, resume, overwrite)
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield
    except BaseException:
        _leave_no_trace(out, created)
        raise
    finally:
        lock.close()  # releases the lock


def _same_file(path: Path, lock) -> bool:
    """Whether ``path`` still names the file ``lock`` has open (a refused run may have removed it)."""
    try:
        return os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
    except FileNotFoundError:
        return False


def _leave_no_trace(out: Path, created: bool) -> None:
    """After a run failed: when ``out`` holds nothing but the lock (still held), remove the lock file, and
    ``out`` itself when the claim created it. Best effort: the run's own error is what the user needs."""
    with contextlib.suppress(OSError):
        if {p.name for p in out.iterdir()} == {LOCK_NAME}:
            (out / LOCK_NAME).unlink()
            if created:
                out.rmdir()  # fails, harmlessly, when another run has just created its lock in it
