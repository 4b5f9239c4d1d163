"""Output files: checks before any work, atomic writes, CSV safe to open in a spreadsheet.

A crash or kill mid-write leaves the previous file (or none), never a truncated one
(:mod:`custscore.atomic`). :func:`check_output_path` and :func:`check_not_inputs` run
before any scoring work, so a bad ``--output`` fails in a second, not after the scoring.

CSV written here is safe to open in a spreadsheet (:mod:`custscore.spreadsheet`, OWASP
CSV injection); Parquet keeps the raw values.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

import pandas as pd

from custscore.atomic import check_writable_folder, same_file, write_atomic
from custscore.errors import CustscoreError
from custscore.spreadsheet import to_csv

#: Output formats by file suffix.
SUFFIXES = (".csv", ".parquet")


def check_output_folder(target: Path, option: str = "--output", folder_ok: bool = False) -> Path:
    """``target`` may be written: its folder exists and is writable, and it is not a folder itself.

    Writability is tried by creating and removing a temporary file in the folder.
    ``folder_ok``: the output is itself a folder (a Spark Parquet dataset) that may be replaced.
    """
    folder = target.parent
    if not folder.resolve().is_dir():
        raise CustscoreError(f"{option} {target}: folder {folder} does not exist")
    if target.is_dir() and not folder_ok:
        raise CustscoreError(f"{option} {target}: is a folder; give a file name")
    why = check_writable_folder(folder)
    if why is not None:
        raise CustscoreError(f"{option} {target}: cannot write to folder {folder} ({why})")
    return target


def check_output_path(path: str | os.PathLike, option: str = "--output", folder_ok: bool = False,
                      inputs: Mapping[str, Optional[str | os.PathLike]] = {}) -> Path:
    """Validate a table output path before any work is done: known suffix, writable folder,
    none of ``inputs`` (option name -> path, see :func:`check_not_inputs`)."""
    target = Path(path)
    check_not_inputs({option: target}, inputs)
    if target.suffix.lower() not in SUFFIXES:
        raise CustscoreError(f"{option} {target}: unsupported suffix {target.suffix or '(none)'!r}; "
                             f"use one of {', '.join(SUFFIXES)}")
    return check_output_folder(target, option, folder_ok)


def check_not_inputs(outputs: Mapping[str, Optional[str | os.PathLike]],
                     inputs: Mapping[str, Optional[str | os.PathLike]]) -> None:
    """Refuse an output that is one of the inputs (same path, a symlink or a hard link to it).

    ``outputs`` and ``inputs`` map an option name (``--output``) to a path (None: not given).
    Two outputs that are one file are refused too.
    """
    given_outputs = [(k, v) for k, v in outputs.items() if isinstance(v, (str, os.PathLike))]
    others = [(k, v) for k, v in inputs.items() if isinstance(v, (str, os.PathLike))]  # not a database log
    for i, (out_name, out_path) in enumerate(given_outputs):
        for in_name, in_path in others + given_outputs[i + 1:]:
            if same_file(out_path, in_path):
                raise CustscoreError(f"{out_name} {out_path} is the same file as {in_name} {in_path}; "
                                     "refusing to overwrite it: choose another output path")


def frame_to_csv(frame: pd.DataFrame, handle, header: bool = True) -> None:
    """Write ``frame`` as CSV (no index) to a binary ``handle``, formulas neutralised
    (:func:`custscore.spreadsheet.to_csv`)."""
    to_csv(frame, handle, header=header)


def write_table_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV (formulas neutralised) or Parquet (by suffix) to ``path`` atomically."""
    target = check_output_path(path)
    if target.suffix.lower() == ".csv":
        return write_atomic(target, lambda handle: frame_to_csv(frame, handle))
    return write_atomic(target, lambda handle: frame.to_parquet(handle, index=False))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, whatever its suffix (HTML, JSON)."""
    target = check_output_folder(Path(path))
    return write_atomic(target, lambda handle: handle.write(text.encode("utf-8")))
