"""Atomic files: write to a temporary file beside the target, fsync, then rename.

A crash or kill mid-write leaves the previous file (or none), never a truncated one; at
worst a hidden ``.NAME.*.tmp`` file stays behind. Shared by training (backtest reports)
and serving (scores, reports), so it lives in the base package.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_temp_beside(target: Path) -> tuple[BinaryIO, str]:
    """A binary handle on a new hidden temporary file in ``target``'s folder, and its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    return os.fdopen(fd, "wb"), tmp


def publish(handle: BinaryIO, tmp: str, target: Path) -> Path:
    """Flush, fsync and close ``handle``, then rename ``tmp`` onto ``target``.

    The file gets the permissions a plain ``open()`` would give (0666 minus the umask),
    not ``mkstemp``'s owner-only 0600: reports are meant to be shared.
    """
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)
    return target


def discard(handle: BinaryIO, tmp: str) -> None:
    """Close and remove a temporary file after a failure."""
    try:
        handle.close()
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(target: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary file, then publish it as ``target``."""
    target = Path(target)
    handle, tmp = open_temp_beside(target)
    try:
        write(handle)
        return publish(handle, tmp, target)
    except BaseException:
        discard(handle, tmp)
        raise
