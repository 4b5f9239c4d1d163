"""A frame as CSV text with Arrow compute: the bytes ``DataFrame.to_csv`` writes, in a fifth of the CPU.

``to_csv(index=False)`` formats every cell in Python: 28.12 s of CPU for a million score rows
(45 columns), against 6.11 s here (benchmarks/ORDERS_RESULTS.md run 23). Here each column
becomes a text array at once and the rows are joined by
:func:`pyarrow.compute.binary_join_element_wise`; the bytes are those pandas writes with
``quoting=csv.QUOTE_MINIMAL`` and ``lineterminator="\\n"`` (tested byte for byte):

- ``float64``: Python's ``repr`` (``0.1``, ``1.0``, ``-0.0``, ``1e-05``, ``inf``), missing
  (NaN) empty. Arrow's cast gives the same shortest digits, in plain notation for
  ``1e-4 <= |x| < 1e10``; a whole number there is written as an integer and ``.0``. Other
  values (tiny, huge, infinite, ``-0.0``) are formatted by numpy's ``astype(str)``, as pandas
  does itself;
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
from typing import BinaryIO, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custscore.threads import map_in_threads

#: Rows formatted and written at a time: bounds the text held (~0.6 KB per score row, a few
#: copies while formatting). With 100,000 `score`'s CSV output at 10M rows peaked at 1.50 GB,
#: above the log's open (1.39 GB); with 32,768 at 1.46 GB, the open's (benchmarks/ORDERS_RESULTS.md run 23).
BATCH_ROWS = 32_768
#: ``|x|`` in ``[PLAIN_LOW, PLAIN_HIGH)``: Arrow and Python both print plain digits (module doc).
PLAIN_LOW, PLAIN_HIGH = 1e-4, 1e10

_TEXT = pa.large_string()
#: The bytes that make the csv module quote a cell (``QUOTE_MINIMAL``): ``,``, ``"``, ``\n``.
_QUOTED_BYTES = np.zeros(256, dtype=bool)
_QUOTED_BYTES[[ord(","), ord('"'), ord("\n")]] = True


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
    return contains_char(series, "\r")


def arrow_chunks(series: pd.Series) -> "list[pa.Array] | None":
    """The Arrow arrays of a pandas Arrow ``str`` column, without a copy; None for another dtype."""
    if not isinstance(series.dtype, pd.StringDtype) or series.dtype.storage != "pyarrow":
        return None
    text = pa.array(series.array)
    return text.chunks if isinstance(text, pa.ChunkedArray) else [text]


def _utf8_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's row offsets into its UTF-8 bytes (``(n + 1,)``) and those bytes."""
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(text.buffers()[1], dtype=width, count=len(text) + 1, offset=text.offset * width().itemsize)
    data = text.buffers()[2]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8))


def contains_char(series: pd.Series, char: str) -> bool:
    """Whether a text cell of ``series`` holds the ASCII ``char`` (``series.str.contains(char)``).

    For an Arrow ``str`` column the bytes are scanned at once; a hit is confirmed by pandas
    (bytes of a missing cell do not count).

    >>> contains_char(pd.Series(["a", "b\\rc", None], dtype="str"), "\\r"), contains_char(pd.Series(["a"]), ",")
    (True, False)
    """
    chunks = arrow_chunks(series)
    if chunks is not None and not any((data[offsets[0]:offsets[-1]] == ord(char)).any()
                                      for offsets, data in map(_utf8_bytes, chunks)):
        return False
    return bool(series.str.contains(char, regex=False).fillna(False).any())


def starts_with_any(series: pd.Series, chars: Sequence[str]) -> np.ndarray:
    """Per row, whether the cell starts with one of the ASCII ``chars`` (missing: False).

    For an Arrow ``str`` column, from each cell's first UTF-8 byte (an ASCII byte is never part
    of another character), else ``series.str.startswith``.

    >>> starts_with_any(pd.Series(["=1", "ok", "", None, "'x", "é="], dtype="str"), "='").tolist()
    [True, False, False, False, True, False]
    """
    chunks = arrow_chunks(series)
    if chunks is None or not all(len(c) == 1 and ord(c) < 128 for c in chars):
        return series.str.startswith(tuple(chars)).fillna(False).to_numpy(dtype=bool)
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return np.concatenate([np.zeros(0, dtype=bool), *(_first_byte_in(text, table) for text in chunks)])


def _first_byte_in(text: pa.Array, table: np.ndarray) -> np.ndarray:
    offsets, data = _utf8_bytes(text)
    starts = offsets[:-1]
    if len(data) == 0:
        return np.zeros(len(text), dtype=bool)
    hit = (offsets[1:] > starts) & table[data[np.minimum(starts, len(data) - 1)]]
    if text.null_count:
        hit &= text.is_valid().to_numpy(zero_copy_only=False)
    return hit


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
    pieces = [memoryview(data)[offsets[0]:offsets[-1]]
              for offsets, data in map(_utf8_bytes, lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines])]
    return pieces[0] if len(pieces) == 1 else memoryview(b"".join(pieces))


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
        return quoted(pa.array(series.array if isinstance(series.dtype, pd.StringDtype) else series.to_numpy(),
                               type=_TEXT, from_pandas=True))
    raise TypeError(f"column {series.name!r}: dtype {series.dtype} is not written here (see supported())")


def float_text(values: np.ndarray) -> pa.Array:
    """Python's ``repr`` of each float64 (``(n,)``), NaN as empty text.

    >>> float_text(np.array([1.0, 0.1, -0.0, 1e-05, 1e16, np.inf, np.nan])).to_pylist()
    ['1.0', '0.1', '-0.0', '1e-05', '1e+16', 'inf', '']
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        plain = ((magnitude >= PLAIN_LOW) & (magnitude < PLAIN_HIGH)) | ((values == 0) & ~np.signbit(values))
        whole = plain & (values == np.trunc(values))
    fraction = plain & ~whole
    if whole.sum() >= fraction.sum():  # whole numbers as integers (8x faster to format) + ".0"
        text = _whole_text(np.where(whole, values, 0.0))
        if fraction.any():
            text = pc.replace_with_mask(text, pa.array(fraction), pc.cast(pa.array(values[fraction]), _TEXT))
    else:
        text = pc.cast(pa.array(values), _TEXT)
        if whole.any():
            text = pc.replace_with_mask(text, pa.array(whole), _whole_text(values[whole]))
    missing = np.isnan(values)
    other = ~plain & ~missing
    if other.any():  # tiny, huge, infinite, -0.0: numpy's str, as pandas formats floats itself
        text = pc.replace_with_mask(text, pa.array(other), pa.array(values[other].astype(str), type=_TEXT))
    if missing.any():
        text = pc.replace_with_mask(text, pa.array(missing), pa.scalar("", _TEXT))
    return text


def _whole_text(values: np.ndarray) -> pa.Array:
    """``"<digits>.0"`` of whole floats below ``PLAIN_HIGH`` in magnitude (not -0.0)."""
    digits = pc.cast(pa.array(values.astype(np.int64)), _TEXT)
    return pc.binary_join_element_wise(digits, pa.scalar(".0", _TEXT), pa.scalar("", _TEXT))


def quoted(text: pa.Array) -> pa.Array:
    """Text cells as the csv module writes them (``QUOTE_MINIMAL``): missing empty, a cell with
    ``,``, ``"`` or ``\\n`` in ``"`` with ``"`` doubled.

    >>> quoted(pa.array(["a", 'say "hi" twice', "x,y", None])).to_pylist()
    ['a', '"say ""hi"" twice"', '"x,y"', '']
    """
    text = pc.fill_null(text.cast(_TEXT), pa.scalar("", _TEXT))
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    if not any(_QUOTED_BYTES[data[offsets[0]:offsets[-1]]].any() for offsets, data in map(_utf8_bytes, chunks)):
        return text  # no cell to quote: one pass over the bytes instead of a regex per cell
    needs = pc.match_substring_regex(text, '[,"\n]')
    wrapped = pc.binary_join_element_wise(pa.scalar('"', _TEXT), pc.replace_substring(text, '"', '""'),
                                          pa.scalar('"', _TEXT), pa.scalar("", _TEXT))
    return pc.if_else(needs, wrapped, text)
