"""CSV for people: cells a spreadsheet would run as a formula are neutralised (OWASP CSV injection).

Spreadsheets read a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (``=cmd|' /C calc'!A0``). CSV files custscore writes (scores,
actions, RFM summaries, backtest tables) are opened by account teams, so in text columns
only such a cell gets a leading ``'``; a cell already starting with ``'`` gets one too, so
the escape is reversible (:func:`restore_formulas`, used when custscore reads its own CSV
back). Numeric columns, negative numbers included, are left alone. A text cell holding a
carriage return inside is quoted (the csv module leaves a lone CR unquoted, and a
spreadsheet would start a new row there): such a table is written with every text cell
quoted. Shared by training and serving, so it lives in the base package.
"""
from __future__ import annotations

import csv
import io
from typing import BinaryIO, Optional

import pandas as pd

from custscore.csv_text import contains_char, starts_with_any, write_csv

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: The escape put in front of them (and in front of a cell starting with itself).
ESCAPE = "'"


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) and not pd.api.types.is_bool_dtype(series)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with text cells starting with :data:`FORMULA_PREFIXES` or ``'`` prefixed by ``'``.

    Only text columns change; the input frame is not modified.

    >>> neutralise_formulas(pd.DataFrame({"id": ["=1+1", "a", "'x"], "n": [-1, 2, 3]})).to_dict("list")
    {'id': ["'=1+1", 'a', "''x"], 'n': [-1, 2, 3]}
    """
    out = frame
    for column in frame.columns:
        series = frame[column]
        if not _is_text(series):
            continue
        risky = starts_with_any(series, (*FORMULA_PREFIXES, ESCAPE))
        if risky.any():
            if out is frame:
                out = frame.copy()
            out[column] = series.where(~risky, ESCAPE + series.astype(str))
    return out


def restore_formulas(series: pd.Series) -> pd.Series:
    """Undo :func:`neutralise_formulas` on one text column read back from a CSV written here."""
    escaped = series.str.startswith(ESCAPE).fillna(False).astype(bool)
    return series.where(~escaped, series.str.slice(1)) if escaped.any() else series


def restore_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`restore_formulas` on every text column of ``frame`` (in place; returned)."""
    for column in frame.columns:
        if _is_text(frame[column]):
            frame[column] = restore_formulas(frame[column])
    return frame


def to_csv(frame: pd.DataFrame, handle: Optional[BinaryIO] = None, header: bool = True) -> Optional[bytes]:
    """Write ``frame`` as UTF-8 CSV without the index, formulas neutralised, to ``handle``
    (a binary file), or return the bytes when ``handle`` is None.

    Written by :func:`custscore.csv_text.write_csv` (Arrow compute) where it gives pandas'
    bytes, else by ``DataFrame.to_csv``."""
    if handle is None:
        buffer = io.BytesIO()
        to_csv(frame, buffer, header)
        return buffer.getvalue()
    safe = neutralise_formulas(frame)
    has_cr = any(_is_text(safe[c]) and contains_char(safe[c], "\r") for c in safe.columns)
    if not has_cr and write_csv(safe, handle, header):  # the same bytes as pandas, a fifth of the CPU
        return None
    safe.to_csv(handle, index=False, header=header, quoting=csv.QUOTE_NONNUMERIC if has_cr else csv.QUOTE_MINIMAL)
    return None


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV bytes (:func:`to_csv`)."""
    return to_csv(frame)
