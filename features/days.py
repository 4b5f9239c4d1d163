"""Whole day numbers (days since 1970-01-01) of dates: the one integer day scale of the features.

Day numbers come from the nanoseconds pandas and numpy store, by floor division, so every
``datetime64[ns]`` value works, 1677-09-22 to 2262-04-11 included. (numpy's
``astype("datetime64[D]")`` overflows near 1677: ``1677-09-22T00:00`` became day +106751.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from custscore.config import NS_PER_DAY


def day_numbers(ts) -> np.ndarray:
    """Whole days since 1970-01-01 of ``datetime64`` values, time of day dropped (floored), int64.

    >>> day_numbers(np.array(["1970-01-02T23:59", "1969-12-31T12:00"], dtype="datetime64[ns]")).tolist()
    [1, -1]
    >>> day_numbers(np.array(["1677-09-22T00:00", "2262-04-11T23:00"], dtype="datetime64[ns]")).tolist()
    [-106751, 106751]
    """
    return np.asarray(ts).astype("datetime64[ns]", copy=False).view("int64") // NS_PER_DAY


#: Ticks per day of each Timestamp unit (``Timestamp.asm8`` counts ticks of ``Timestamp.unit``).
_PER_DAY = {"s": 86_400, "ms": 86_400 * 10**3, "us": 86_400 * 10**6, "ns": NS_PER_DAY}


def day_number_of(ts: pd.Timestamp) -> int:
    """Whole days since 1970-01-01 of one naive Timestamp of any unit, time of day dropped.

    >>> day_number_of(pd.Timestamp("1997-09-30 23:59")), day_number_of(pd.Timestamp("1677-09-22"))
    (10134, -106751)
    >>> day_number_of(pd.Timestamp("1677-08-01").as_unit("s"))
    -106803
    """
    return int(ts.asm8.view("i8")) // _PER_DAY[ts.unit]


def day_dates(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 -> ``datetime64[ns]`` (midnight).

    >>> day_dates(np.array([0, 10134])).tolist() == [0, 10134 * NS_PER_DAY]
    True
    """
    return (np.asarray(days).astype(np.int64) * NS_PER_DAY).view("datetime64[ns]")
