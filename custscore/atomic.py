"""Atomic files: write to a temporary file beside the target, fsync, then rename.

A crash or kill mid-write leaves the previous file (or none), never a truncated one; at
worst a hidden ``.NAME.*.tmp`` file stays behind (an exception, KeyboardInterrupt or the
CLI's SIGTERM handler removes it). Shared by training (backtest reports) and serving
(scores, reports), so it lives in the base package.

**Permissions.** A new file gets what a plain ``open()`` would give (0666 minus the
umask), not ``mkstemp``'s owner-only 0600; a file that is replaced keeps its permission
bits (a 0600 scores file stays 0600).

**Several files published together** (:func:`publish_together`; scores and their
metadata sidecar): every file is first written in full to its own temporary file and
fsynced; only then are they renamed onto their targets, in the order given, and the
caller puts the data file last. The last rename is the commit point:

- an error while writing any temporary file: no target changes (all temporaries go);
- an error in a rename: the targets renamed so far are rolled back to their previous
  content (kept as a hard link, or a copy, until the end), so the previous pair stays;
- a crash (SIGKILL, power loss) between two renames: the metadata is new and the data
  still the previous one, never new data beside old metadata. The metadata records the
  data file's SHA-256, so a reader notices that case (``custscore.serving.sidecar``
  warns); hidden ``.NAME.*.tmp`` / ``.NAME.*.old`` files may stay behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Sequence

#: One file ready to publish: the open handle on its temporary file, that file's path, the target.
Pending = tuple[BinaryIO, str, Path]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_temp_beside(target: Path) -> tuple[BinaryIO, str]:
    """A binary handle on a new hidden temporary file in ``target``'s folder, and its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    return os.fdopen(fd, "wb"), tmp


def target_mode(target: Path) -> int:
    """Permission bits for a new version of ``target``: its current ones, else 0666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def finish(handle: BinaryIO, tmp: str, target: Path) -> None:
    """Flush, fsync and close ``handle`` and give ``tmp`` the mode of :func:`target_mode`."""
    if not handle.closed:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
    os.chmod(tmp, target_mode(target))


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def publish(handle: BinaryIO, tmp: str, target: Path) -> Path:
    """Finish ``handle`` (:func:`finish`), then rename ``tmp`` onto ``target``."""
    return publish_together([(handle, tmp, target)])[0]


def publish_together(files: Sequence[Pending]) -> list[Path]:
    """Finish every file, then rename each onto its target in order; put the data file last.

    Both or neither: see the module docstring for the order and the crash window. On an
    error every temporary file is removed and targets already renamed get their previous
    content back.
    """
    try:
        for handle, tmp, target in files:
            finish(handle, tmp, target)
    except BaseException:
        for handle, tmp, _ in files:
            discard(handle, tmp)
        raise
    backups: list[Optional[str]] = []
    done = 0
    try:
        for _, tmp, target in files:
            backups.append(_backup(target) if len(files) > 1 else None)
            os.replace(tmp, target)
            done += 1
    except BaseException:
        for (_, tmp, target), backup in zip(files[:done], backups):
            if backup is not None:
                os.replace(backup, target)
            elif len(files) > 1:
                _unlink(target)
        for handle, tmp, _ in files[done:]:
            discard(handle, tmp)
        for backup in backups[done:]:
            _unlink(backup)
        raise
    for backup in backups:
        _unlink(backup)
    return [target for _, _, target in files]


def _backup(target: Path) -> Optional[str]:
    """A hidden hard link (or copy) of the current ``target``, or None when there is none."""
    if not os.path.isfile(target):
        return None
    fd, backup = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
    os.close(fd)
    os.unlink(backup)
    try:
        os.link(target, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(target, backup)
    return backup


def _unlink(path: Optional[str | os.PathLike]) -> None:
    if path is not None and os.path.lexists(path):
        os.unlink(path)


def discard(handle: BinaryIO, tmp: str) -> None:
    """Close and remove a temporary file after a failure."""
    try:
        handle.close()
    finally:
        _unlink(tmp)


def write_atomic(target: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary file, then publish it as ``target``."""
    return write_atomic_together([(target, write)])[0]


def write_atomic_together(writes: Sequence[tuple[str | os.PathLike, Callable[[BinaryIO], object]]],
                          last: Optional[Pending] = None) -> list[Path]:
    """Write each ``(target, write)`` to a temporary file, then :func:`publish_together` them in order.

    ``last`` is a file already written (the data file), published after them.
    """
    pending: list[Pending] = []
    try:
        for target, write in writes:
            target = Path(target)
            handle, tmp = open_temp_beside(target)
            pending.append((handle, tmp, target))
            write(handle)
    except BaseException:
        for handle, tmp, _ in pending:
            discard(handle, tmp)
        raise
    return publish_together(pending + ([last] if last is not None else []))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: same resolved path, or one inode (a symlink or hard link)."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_writable_folder(folder: Path) -> Optional[str]:
    """None when a file can be created in ``folder`` (tried: a temp file made and removed), else why not."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".custscore-probe.", suffix=".tmp", dir=folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(probe)
    return None
