"""Exact day netting: amounts as whole minor units of a declared precision.

Whether a customer's day is a purchase, a zero-spend purchase or a return-only day must
not depend on the order of its rows or on float rounding (``0.3 - 0.1 - 0.2`` is
``-5.6e-17`` in float64, ``0.1 + 0.2 - 0.3`` is ``+2.8e-17``). So every engine nets a
day the same way, through the pieces of this module:

1. each row becomes ``units = rint(amount * 10**d)`` as int64 (:func:`amount_units`;
   ``d`` = ``ColumnMap.amount_decimals``, CLI ``--amount-decimals``, default 4; ties go
   to the even unit);
2. a day's units are summed in int64, which is exact and order-free;
3. the day is a purchase when its units are >= 0 (0 = a zero-spend purchase), else a
   return-only day, and its amount is ``units / 10**d`` as float64 (:func:`units_amount`).

Refused (one-line :class:`~custscore.errors.CustscoreError`): a row whose ``|amount| *
10**d`` exceeds ``2**53`` (units no longer exact), and a log whose ``|units|`` add up to
more than ``2**62`` (a day sum could then overflow int64; the check is a float sum, so the
margin is wide). The numpy functions serve pandas, arrow and the numpy fast path; the
``*_sql`` functions are the same rules in DuckDB SQL, and the Spark engine builds them
from :func:`unit_scale` and :data:`MAX_ROW_UNITS` (pyspark is imported only there); all
tested equal, ties included.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from custscore.errors import CustscoreError
from custscore.features.row_keys import row_label

#: Largest ``|amount| * 10**d`` of one row: whole numbers up to it are exact in float64.
MAX_ROW_UNITS = 2**53
#: Largest total of ``|units|`` over a log (int64 holds 2**63 - 1; float-sum margin).
MAX_TOTAL_UNITS = 2**62
#: The CLI option that sets the precision (named in every error).
OPTION = "--amount-decimals"


def unit_scale(decimals: int) -> float:
    """``10**decimals`` as an (exact) float64."""
    return float(10**decimals)


def amount_units(amounts: np.ndarray, decimals: int) -> np.ndarray:
    """``rint(amount * 10**decimals)`` as int64 (ties to even); bounds not checked (:func:`checked_units`)."""
    return np.rint(np.asarray(amounts, dtype=np.float64) * unit_scale(decimals)).astype(np.int64)


def too_large(amounts: np.ndarray, decimals: int) -> np.ndarray:
    """Rows whose units would exceed :data:`MAX_ROW_UNITS` (bool array)."""
    return np.abs(np.asarray(amounts, dtype=np.float64) * unit_scale(decimals)) > MAX_ROW_UNITS


def row_error(source: str, row: int | str, column: str, value: Any, decimals: int) -> CustscoreError:
    """The one-line error for an amount too large for ``decimals``."""
    return CustscoreError(f"{source}: row {row}: column {column!r}: amount {value!r} is too large for "
                          f"{OPTION} {decimals} (|amount| x 10**{decimals} must be <= 2**53); "
                          f"pass a smaller {OPTION}")


def total_error(source: str, decimals: int) -> CustscoreError:
    """The one-line error for a log whose units could overflow int64."""
    return CustscoreError(f"{source}: the amounts add up to more than 2**62 units of 10**-{decimals} "
                          f"(int64 day sums could overflow); pass a smaller {OPTION}")


def checked_units(amounts: np.ndarray, decimals: int, source: str = "transactions", column: str = "amount",
                  rows: Optional[np.ndarray] = None) -> np.ndarray:
    """:func:`amount_units` after refusing rows over :data:`MAX_ROW_UNITS` and totals over :data:`MAX_TOTAL_UNITS`.

    ``rows`` name the rows in the error: 1-based numbers (default 1..n) or
    :class:`~custscore.features.row_keys.KeyedRows`.

    >>> checked_units(np.array([0.3, -0.1, -0.2, 29.33]), 4).tolist()
    [3000, -1000, -2000, 293300]
    """
    amounts = np.asarray(amounts, dtype=np.float64)
    big = too_large(amounts, decimals)
    if big.any():
        first = int(np.argmax(big))
        row = row_label(rows[first]) if rows is not None else first + 1
        raise row_error(source, row, column, float(amounts[first]), decimals)
    units = amount_units(amounts, decimals)
    if np.abs(units).sum(dtype=np.float64) > MAX_TOTAL_UNITS:
        raise total_error(source, decimals)
    return units


def day_units(units: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Exact int64 sums of ``units`` over the days starting at ``starts`` (rows grouped by day, in order)."""
    if not len(starts):
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(np.asarray(units, dtype=np.int64), starts)


def units_amount(units: np.ndarray, decimals: int) -> np.ndarray:
    """Day amounts as float64: ``units / 10**decimals`` (correctly rounded, so equal in every engine)."""
    return np.asarray(units, dtype=np.int64).astype(np.float64) / unit_scale(decimals)


# ---------------------------------------------------------------------- SQL (DuckDB)
def units_sql(amount: str, decimals: int, exact: bool = True) -> str:
    """DuckDB SQL of :func:`amount_units` (``round_even`` = numpy's ``rint``) for a DOUBLE expression.

    With ``exact=False`` an amount out of BIGINT's range (or not finite) gives NULL instead of
    failing the statement (for SQL that refuses such rows itself, :func:`too_large_sql`)."""
    cast = "CAST" if exact else "try_cast"
    return f"{cast}(round_even(({amount}) * {unit_scale(decimals)!r}, 0) AS BIGINT)"


def too_large_sql(amount: str, decimals: int) -> str:
    """DuckDB SQL of :func:`too_large` (TRUE for a row to refuse)."""
    return f"abs(({amount}) * {unit_scale(decimals)!r}) > {float(MAX_ROW_UNITS)!r}"


def units_amount_sql(units: str, decimals: int) -> str:
    """DuckDB SQL of :func:`units_amount` for a BIGINT (or HUGEINT) expression."""
    return f"CAST({units} AS DOUBLE) / {unit_scale(decimals)!r}"
