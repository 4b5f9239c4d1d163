"""A frame as CSV text with Arrow compute: the bytes ``DataFrame.to_csv`` writes, about 10x faster.

``to_csv(index=False)`` formats every cell in Python (~30 s of CPU per million score rows,
45 columns). Here each column becomes a text array at once and the rows are joined by
:func:`pyarrow.compute.binary_join_element_wise`; the bytes are those pandas writes with
``quoting=csv.QUOTE_MINIMAL`` and ``lineterminator="\\n"`` (tested byte for byte):

- ``float64``: Python's ``repr`` (``0.1``, ``1.0``, ``-0.0``, ``1e-05``, ``inf``), missing
  (NaN) empty. Arrow's cast gives the same shortest digits, in plain notation for
  ``1e-4 <= |x| < 1e10``, where only a whole number differs (``1`` for ``1.0``): those get
  ``.0``. Other values (tiny, huge, infinite) are formatted by numpy's ``astype(str)``, as
  pandas does itself;
- integers as digits; ``bool`` as ``True`` / ``False``;
- text (``str`` dtype, or ``object`` holding only ``str``): missing empty, a cell holding
  ``,``, ``"`` or a newline quoted with ``"`` doubled (the csv module's ``QUOTE_MINIMAL``).

Columns are formatted on all cores (:func:`custscore.threads.map_in_threads`: Arrow compute
releases the interpreter lock).

A frame this does not cover byte for byte (another dtype, one column, non-text column names,
a carriage return in a text cell) is not written: :func:`write_csv` returns False and the
caller writes it with pandas.
"""
from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custscore.threads import map_in_threads

#: Rows formatted and written at a time (bounds the text held: ~0.6 KB per score row).
BATCH_ROWS = 100_000
#: ``|x|`` in ``[PLAIN_LOW, PLAIN_HIGH)``: Arrow and Python both print plain digits (module doc).
PLAIN_LOW, PLAIN_HIGH = 1e-4, 1e10

_TEXT = pa.large_string()


def supported(frame: pd.DataFrame) -> bool:
    """Whether :func:`write_csv` writes ``frame`` byte for byte as pandas would (module doc)."""
    if os.linesep != "\n" or frame.shape[1] < 2 or isinstance(frame.columns, pd.MultiIndex):
        return False  # one column: the csv module quotes an empty cell there
    if not all(isinstance(name, str) for name in frame.columns):
        return False
    return all(_kind(frame[name]) is not None for name in frame.columns)


def _kind(series: pd.Series) -> "str | None":
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype == np.float64:
            return "float"
        if dtype.kind in "iu":
            return "int"
        if dtype == np.bool_:
            return "bool"
        if dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
            return "text" if not _has_cr(series) else None
        return None
    if isinstance(dtype, pd.StringDtype):
        return "text" if not _has_cr(series) else None
    return None


def _has_cr(series: pd.Series) -> bool:
    return bool(series.str.contains("\r", regex=False).fillna(False).any())


def write_csv(frame: pd.DataFrame, handle: BinaryIO, header: bool = True) -> bool:
    """Write ``frame`` (no index) as UTF-8 CSV to the binary ``handle``, as pandas' ``to_csv``
    would; False (nothing written) when it is not :func:`supported`."""
    if not supported(frame):
        return False
    if header:
        handle.write(frame.head(0).to_csv(index=False, lineterminator="\n").encode("utf-8"))
    for start in range(0, len(frame), BATCH_ROWS):
        handle.write(csv_lines(frame.iloc[start:start + BATCH_ROWS]))
    return True


def csv_lines(frame: pd.DataFrame) -> memoryview:
    """The rows of a :func:`supported` ``frame`` as CSV bytes (each line ending in ``\\n``, no header).

    >>> bytes(csv_lines(pd.DataFrame({"a": [1.0, float("nan")], "b": ["x,y", None]})))
    b'1.0,"x,y"\\n,\\n'
    """
    if len(frame) == 0:
        return memoryview(b"")
    columns = [frame[name] for name in frame.columns]
    cells = map_in_threads(column_text, columns, work=len(frame) * len(columns))
    cells[-1] = pc.binary_join_element_wise(cells[-1], pa.scalar("\n", _TEXT), pa.scalar("", _TEXT))
    lines = pc.binary_join_element_wise(*cells, pa.scalar(",", _TEXT))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64, count=len(lines) + 1, offset=8 * lines.offset)
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]


def column_text(series: pd.Series) -> pa.Array:
    """The CSV cells of one column (large_string, no nulls), as pandas writes them (module doc)."""
    kind = _kind(series)
    if kind == "float":
        return float_text(series.to_numpy())
    if kind == "int":
        return pc.cast(pa.array(series.to_numpy()), _TEXT)
    if kind == "bool":
        return pc.if_else(pa.array(series.to_numpy()), pa.scalar("True", _TEXT), pa.scalar("False", _TEXT))
    if kind == "text":
        text = pa.array(series.array if isinstance(series.dtype, pd.StringDtype) else series.to_numpy(),
                        type=_TEXT, from_pandas=True)
        return quoted(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
    raise TypeError(f"column {series.name!r}: dtype {series.dtype} is not written here (see supported())")


def float_text(values: np.ndarray) -> pa.Array:
    """Python's ``repr`` of each float64 (``(n,)``), NaN as empty text.

    >>> float_text(np.array([1.0, 0.1, -0.0, 1e-05, 1e16, np.inf, np.nan])).to_pylist()
    ['1.0', '0.1', '-0.0', '1e-05', '1e+16', 'inf', '']
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        plain = ((magnitude >= PLAIN_LOW) & (magnitude < PLAIN_HIGH)) | (values == 0)
        whole = plain & (values == np.trunc(values))
    text = pc.cast(pa.array(values), _TEXT)
    text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, pa.scalar(".0", _TEXT), pa.scalar("", _TEXT)),
                      text)
    missing = np.isnan(values)
    other = ~plain & ~missing
    if other.any():  # tiny, huge, infinite: numpy's str, as pandas formats floats itself
        text = pc.replace_with_mask(text, pa.array(other), pa.array(values[other].astype(str), type=_TEXT))
    if missing.any():
        text = pc.replace_with_mask(text, pa.array(missing), pa.scalar("", _TEXT))
    return text


def quoted(text: pa.Array) -> pa.Array:
    """Text cells as the csv module writes them (``QUOTE_MINIMAL``): missing empty, a cell with
    ``,``, ``"`` or ``\\n`` in ``"`` with ``"`` doubled.

    >>> quoted(pa.array(["a", 'say "hi" twice', "x,y", None])).to_pylist()
    ['a', '"say ""hi"" twice"', '"x,y"', '']
    """
    text = pc.fill_null(text.cast(_TEXT), pa.scalar("", _TEXT))
    needs = pc.match_substring_regex(text, '[,"\n]')
    if not pc.any(needs).as_py():
        return text
    wrapped = pc.binary_join_element_wise(pa.scalar('"', _TEXT), pc.replace_substring(text, '"', '""'),
                                          pa.scalar('"', _TEXT), pa.scalar("", _TEXT))
    return pc.if_else(needs, wrapped, text)
