"""Text columns of many rows without a Python string per row.

Score tables repeat a few texts over millions of rows (segment names, policies, the
constant ``as_of`` / ``model_version``, reason words). Built as object arrays, pandas then
converts them to its ``str`` dtype (Arrow-backed) one Python object per cell. Here a text
column is kept as :class:`CodedTexts` (per row, a code into a short array of distinct
texts) while it is built: pieces are joined once per distinct combination of their codes,
parts of rows are put together by their codes, and the column is made once, by an Arrow
``take`` (:meth:`CodedTexts.column`). The pandas column is the same (dtype ``str``, same
values) as one built from the object array.

A few rows (:data:`SMALL_ROWS`, an HTTP request) stay Python lists and object arrays of
``str``: there the Arrow hand-over costs more than the Python strings. Either kind of
column is a :data:`TextArray`; pandas makes the same ``str`` column of both. Shared by
training and serving, so it lives in the base package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Up to this many rows a text column is an object array (cheaper than Arrow for a few rows).
SMALL_ROWS = 32

#: A text column: an object array of ``str`` (up to :data:`SMALL_ROWS` rows) or a pandas ``str`` array.
TextArray = Union[np.ndarray, pd.api.extensions.ExtensionArray]

#: No rows: a numpy text array (pandas makes a ``str`` column of it, not an object one).
_EMPTY = np.array([], dtype=str)


@dataclass(frozen=True)
class CodedTexts:
    """The texts of ``len(codes)`` rows: row ``i`` reads ``words[codes[i]]``.

    ``words`` is a list of ``str`` (few rows) or an Arrow text array; they need not be unique.
    """

    codes: np.ndarray
    words: Union[list, pa.Array]

    def __len__(self) -> int:
        return len(self.codes)

    def column(self) -> TextArray:
        """The texts as a column (an object array for a few rows, else a pandas ``str`` array)."""
        n = len(self.codes)
        if n == 0:
            return _EMPTY.copy()
        if n <= SMALL_ROWS:
            words = self.words if isinstance(self.words, list) else self.words.to_pylist()
            out = np.empty(n, dtype=object)
            out[:] = [words[c] for c in self.codes.tolist()]
            return out
        return pd.array(_arrow(self.words).take(pa.array(self.codes)), dtype="str")


def _arrow(words: Union[list, pa.Array]) -> pa.Array:
    if isinstance(words, pa.Array):
        return words if words.type == pa.large_string() else words.cast(pa.large_string())
    return pa.array(words, type=pa.large_string())


def coded(words: Sequence[str], codes: np.ndarray) -> CodedTexts:
    """:class:`CodedTexts` of the distinct ``words`` and the rows' ``codes`` (integers, shape ``(n,)``)."""
    codes = np.asarray(codes, dtype=np.int64)
    return CodedTexts(codes, list(words) if len(codes) <= SMALL_ROWS else _arrow(list(words)))


def take_texts(words: Sequence[str], codes: np.ndarray) -> TextArray:
    """``words[codes]``: per row, the distinct text its code (an integer, shape ``(n,)``) points at.

    >>> list(take_texts(["A", "B", "none"], np.array([2, 0, 0, 1])))
    ['none', 'A', 'A', 'B']
    >>> take_texts(["A", "B"], np.zeros(40, dtype=int)).dtype
    <StringDtype(na_value=nan)>
    """
    return coded(words, codes).column()


def repeat_text(text: str, n: int) -> TextArray:
    """``text`` in each of ``n`` rows.

    >>> list(repeat_text("D", 3))
    ['D', 'D', 'D']
    """
    return take_texts([text], np.zeros(n, dtype=np.int8))


def format_distinct(values: np.ndarray, words: Callable[[float], str]) -> CodedTexts:
    """``words(v)`` for each value of ``values`` (floats, shape ``(n,)``), called once per
    distinct value (by its bits: -0.0 and 0.0 are two values).

    >>> format_distinct(np.array([0.5, 0.5, -0.0]), "{:.1f}".format).column().tolist()
    ['0.5', '0.5', '-0.0']
    """
    values = np.ascontiguousarray(values, dtype=float)
    if len(values) <= SMALL_ROWS:
        return coded([words(v) for v in values.tolist()], np.arange(len(values)))
    codes, bits = pd.factorize(values.view(np.int64))
    return coded([words(v) for v in bits.view(np.float64).tolist()], codes)


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


def join_texts(pieces: Sequence[Union[str, CodedTexts]], n: int) -> CodedTexts:
    """The row-wise concatenation of ``pieces`` over ``n`` rows, joined once per distinct
    combination of the pieces' codes.

    Each piece is a ``str`` (the same in every row) or :class:`CodedTexts` of ``n`` rows.

    >>> join_texts(["no purchase for ", coded(["3 days", "1 day"], [1, 0]), "."], 2).column().tolist()
    ['no purchase for 1 day.', 'no purchase for 3 days.']
    """
    if n <= SMALL_ROWS:
        rows = [[p] * n if isinstance(p, str) else list(p.column()) for p in pieces]
        return coded(["".join(r) for r in zip(*rows)] if rows else [""] * n, np.arange(n))
    texts = [p for p in pieces if not isinstance(p, str)]
    if not texts:
        return coded(["".join(pieces)], np.zeros(n, dtype=np.int64))
    codes = texts[0].codes
    for piece in texts[1:]:  # codes of the distinct combinations, at most n
        codes, _ = pd.factorize(codes * np.int64(len(piece.words)) + piece.codes)
    first = np.zeros(codes.max() + 1, dtype=np.int64)  # a code no row has reads row 0 (never taken)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # each combination's first row (the last write wins)
    arrays = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else _arrow(p.words).take(pa.array(p.codes[first]))
              for p in pieces]
    words = arrays[0] if len(arrays) == 1 else pc.binary_join_element_wise(*arrays, pa.scalar("", pa.large_string()))
    return CodedTexts(codes.astype(np.int64), words)


def scatter_texts(n: int, parts: Iterable[tuple[np.ndarray, CodedTexts]], fill: str = "") -> CodedTexts:
    """The texts of ``n`` rows: each part's texts at its rows (positions), ``fill`` elsewhere.

    >>> scatter_texts(4, [(np.array([3, 0]), coded(["d", "a"], [0, 1]))], "-").column().tolist()
    ['a', '-', '-', 'd']
    """
    parts = [(np.asarray(rows), texts) for rows, texts in parts if len(rows)]
    codes = np.zeros(n, dtype=np.int64)  # 0: the fill
    offset = 1
    for rows, texts in parts:
        codes[rows] = texts.codes + offset
        offset += len(texts.words)
    if n <= SMALL_ROWS and all(isinstance(t.words, list) for _, t in parts):
        return CodedTexts(codes, [fill, *(w for _, t in parts for w in t.words)])
    return CodedTexts(codes, pa.concat_arrays([_arrow([fill]), *(_arrow(t.words) for _, t in parts)]))
