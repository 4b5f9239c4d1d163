"""Atomic output: write to a temporary file in the target folder, then rename.

A crash or kill mid-write leaves the previous file (or none), never a truncated one.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from custscore.atomic import write_atomic
from custscore.errors import CustscoreError

#: Output formats by file suffix.
SUFFIXES = (".csv", ".parquet")


def check_output_path(path: str | os.PathLike) -> Path:
    """Validate an output path before any work is done: known suffix, existing folder."""
    target = Path(path)
    if target.suffix.lower() not in SUFFIXES:
        raise CustscoreError(f"--output {target}: unsupported suffix {target.suffix or '(none)'!r}; "
                             f"use one of {', '.join(SUFFIXES)}")
    if not target.parent.resolve().is_dir():
        raise CustscoreError(f"--output {target}: folder {target.parent} does not exist")
    return target


def write_table_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV or Parquet (by suffix) to ``path`` atomically."""
    target = check_output_path(path)
    if target.suffix.lower() == ".csv":
        return write_atomic(target, lambda handle: frame.to_csv(handle, index=False))
    return write_atomic(target, lambda handle: frame.to_parquet(handle, index=False))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, whatever its suffix (HTML, JSON)."""
    target = Path(path)
    if not target.parent.resolve().is_dir():
        raise CustscoreError(f"--output {target}: folder {target.parent} does not exist")
    return write_atomic(target, lambda handle: handle.write(text.encode("utf-8")))
