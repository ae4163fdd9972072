"""One run at a time per output folder: a second `tif unlearn` / `tif finetune` given the same
``--out`` while the first is running is refused instead of interleaving its writes.

The lock is ``flock`` on a file in the system's temporary folder named after the resolved
``--out`` path (not beside ``--out``: a refused or failed run must leave the folders it was
given untouched). The kernel drops the lock when its process dies, so a killed run never leaves
a stale lock. Only one process of a distributed run (rank 0) takes it. Runs on different
machines writing to one network folder are not covered.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import TifError

LOCK_DIR_ENV = "TIF_LOCK_DIR"  # where lock files live (default: <tmp>/tif-unlearn-locks)


def lock_path(out: str | os.PathLike[str]) -> Path:
    folder = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "tif-unlearn-locks")
    key = os.path.realpath(os.path.abspath(os.fspath(out)))
    return folder / (
        hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".lock"
    )


def _acquire(path: Path, out: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise TifError(
                f"another tif run (pid {holder}) is writing to --out {out}; wait for it to "
                f"finish or choose another --out (lock {path})"
            ) from None
        same = path.exists() and os.stat(path).st_ino == os.fstat(fd).st_ino
        if same:  # else the previous holder removed the file between our open and flock
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
            return fd
        os.close(fd)


@contextlib.contextmanager
def output_lock(out: str) -> Iterator[None]:
    """Hold the lock of ``out`` for the duration of the block (rank 0 of a distributed run)."""
    if not out or int(os.environ.get("RANK", "0")) != 0:  # distributed.rank(), without torch
        yield
        return
    path = lock_path(out)
    try:
        fd = _acquire(path, out)
    except OSError as err:
        raise TifError(f"could not lock --out {out} ({path}): {err}") from err
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)  # releases the lock
