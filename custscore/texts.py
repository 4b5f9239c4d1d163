"""Text columns of many rows without a Python string per row.

Score tables repeat a few texts over millions of rows (segment names, policies, the
constant ``as_of`` / ``model_version``, reason words). Built as object arrays, pandas then
converts them to its ``str`` dtype (Arrow-backed) one Python object per cell. Here the
distinct texts are made once and *taken* by row codes in Arrow, and pieces are joined
element-wise in Arrow; the pandas column is the same (dtype ``str``, same values) as one
built from the object array.

A few rows (:data:`SMALL_ROWS`, an HTTP request) stay object arrays of ``str``: there the
Arrow hand-over costs more than the Python strings. Either kind is a :data:`TextArray`;
pandas makes the same ``str`` column of both. Shared by training and serving, so it lives
in the base package.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Up to this many rows a text column is an object array (cheaper than Arrow for a few rows).
SMALL_ROWS = 32

#: No rows: a numpy text array (pandas makes a ``str`` column of it, not an object one).
_EMPTY = np.array([], dtype=str)

#: A text column: an object array of ``str`` (up to :data:`SMALL_ROWS` rows) or a pandas ``str`` array.
TextArray = Union[np.ndarray, pd.api.extensions.ExtensionArray]


def take_texts(words: Sequence[str], codes: np.ndarray) -> TextArray:
    """``words[codes]``: per row, the distinct text its code (an integer, shape ``(n,)``) points at.

    >>> list(take_texts(["A", "B", "none"], np.array([2, 0, 0, 1])))
    ['none', 'A', 'A', 'B']
    >>> take_texts(["A", "B"], np.zeros(40, dtype=int)).dtype
    <StringDtype(na_value=nan)>
    """
    codes = np.asarray(codes)
    if len(codes) == 0:
        return _EMPTY.copy()
    if len(codes) <= SMALL_ROWS:
        out = np.empty(len(words), dtype=object)
        out[:] = list(words)
        return out[codes]
    return _pandas(pa.array(list(words), type=pa.large_string()).take(pa.array(codes)))


def repeat_text(text: str, n: int) -> TextArray:
    """``text`` in each of ``n`` rows.

    >>> list(repeat_text("D", 3))
    ['D', 'D', 'D']
    """
    return take_texts([text], np.zeros(n, dtype=np.int8))


def join_texts(pieces: Sequence[Union[str, TextArray]], n: int) -> TextArray:
    """The row-wise concatenation of ``pieces`` over ``n`` rows.

    Each piece is a ``str`` (the same in every row) or a text column of ``n`` rows.

    >>> list(join_texts(["no purchase for ", np.array(["3 days", "1 day"], dtype=object), "."], 2))
    ['no purchase for 3 days.', 'no purchase for 1 day.']
    """
    if n == 0:
        return _EMPTY.copy()
    if n <= SMALL_ROWS:
        columns = [[piece] * n if isinstance(piece, str) else list(piece) for piece in pieces]
        out = np.empty(n, dtype=object)
        out[:] = ["".join(row) for row in zip(*columns)] if columns else [""] * n
        return out
    arrays = [piece if isinstance(piece, str) else to_arrow(piece) for piece in pieces]
    if not any(isinstance(a, pa.Array) for a in arrays):
        return repeat_text("".join(arrays), n)
    if len(arrays) == 1:
        return _pandas(arrays[0])
    large = [pa.scalar(a, pa.large_string()) if isinstance(a, str) else a for a in arrays]
    return _pandas(pc.binary_join_element_wise(*large, pa.scalar("", pa.large_string())))


def scatter_texts(n: int, parts: Iterable[tuple[np.ndarray, TextArray]], fill: str = "") -> TextArray:
    """A column of ``n`` rows: each part's texts at its rows (positions), ``fill`` elsewhere.

    >>> list(scatter_texts(4, [(np.array([3, 0]), np.array(["d", "a"], dtype=object))], "-"))
    ['a', '-', '-', 'd']
    """
    parts = [(np.asarray(rows), texts) for rows, texts in parts if len(rows)]
    if n == 0:
        return _EMPTY.copy()
    if n <= SMALL_ROWS:
        out = np.full(n, fill, dtype=object)
        for rows, texts in parts:
            out[rows] = np.asarray(texts, dtype=object)
        return out
    rows = np.concatenate([r for r, _ in parts] + [np.zeros(0, dtype=np.int64)]).astype(np.int64)
    where = np.full(n, len(rows), dtype=np.int64)  # the fill, after the parts' texts
    where[rows] = np.arange(len(rows))
    texts = pa.concat_arrays([to_arrow(t) for _, t in parts] + [pa.array([fill], type=pa.large_string())])
    return _pandas(texts.take(pa.array(where)))


def format_distinct(values: np.ndarray, words: Callable[[float], str]) -> TextArray:
    """``words(v)`` for each value of ``values`` (floats, shape ``(n,)``), called once per
    distinct value (by its bits: -0.0 and 0.0 are two values).

    >>> list(format_distinct(np.array([0.5, 0.5, -0.0]), "{:.1f}".format))
    ['0.5', '0.5', '-0.0']
    """
    values = np.ascontiguousarray(values, dtype=float)
    if len(values) <= SMALL_ROWS:
        return take_texts([words(v) for v in values.tolist()], np.arange(len(values)))
    codes, bits = pd.factorize(values.view(np.int64))
    return take_texts([words(v) for v in bits.view(np.float64).tolist()], codes)


def shown_numbers(values: np.ndarray, decimals: int) -> np.ndarray:
    """Per value, a number that prints as the value does with ``decimals`` decimals (``{:.Nf}``),
    so that values printing the same share one number (for :func:`format_distinct`).

    Whole numbers are ``np.rint`` (round half to even, as Python's format). With decimals,
    ``rint(v * 10**d) / 10**d`` prints as ``v`` does unless ``v * 10**d`` lies within rounding
    error of a half (or is huge, or not finite): those keep their own value.

    >>> shown_numbers(np.array([0.5, 1.5, 2.4]), 0).tolist(), shown_numbers(np.array([0.123, 1.005]), 2).tolist()
    ([0.0, 2.0, 2.0], [0.12, 1.005])
    """
    values = np.asarray(values, dtype=float)
    if decimals == 0:
        return np.rint(values)
    scale = 10.0 ** decimals
    with np.errstate(invalid="ignore", over="ignore"):
        p = values * scale
        k = np.rint(p)
        safe = (np.isfinite(p) & (np.abs(p) < 2.0 ** 50)
                & (np.abs(np.abs(p - k) - 0.5) > 1e-9 * np.maximum(1.0, np.abs(p))))
    return np.where(safe, k / scale, values)


def to_arrow(texts: Any) -> pa.Array:
    """A text column (Arrow array, pandas text array or object array of ``str``) as an Arrow ``large_string`` array."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    elif not isinstance(texts, pa.Array):
        texts = pa.array(texts if hasattr(texts, "__arrow_array__") else np.asarray(texts, dtype=object))
    return texts if texts.type == pa.large_string() else texts.cast(pa.large_string())


def _pandas(texts: pa.Array) -> pd.api.extensions.ExtensionArray:
    """An Arrow text array as a pandas ``str`` column (the texts are not copied)."""
    return pd.array(texts, dtype="str")
