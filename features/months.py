"""Purchases per calendar month at a scoring date, for the activity tiers (A/B/C/D).

Input is the output of :func:`custscore.features.periods.merge_periods` (one purchase per
customer and day), so a "purchase" here is a purchase day, as everywhere in custscore.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from custscore.config import parse_date
from custscore.features.days import day_number_of
from custscore.features.runs import PurchaseRuns, purchase_runs

#: Columns produced by :func:`calendar_month_counts`, in order.
MONTH_COLUMNS: tuple[str, ...] = ("n_purchases_last_month", "n_purchases_month_before")


def last_complete_month(as_of: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of the last complete calendar month on or before ``as_of``.

    When ``as_of`` is the last day of its month, that month is complete and is the one
    returned; otherwise it is the month before ``as_of``'s month.

    >>> [d.date().isoformat() for d in last_complete_month("1997-09-30")]
    ['1997-09-01', '1997-09-30']
    >>> [d.date().isoformat() for d in last_complete_month("1997-10-15")]
    ['1997-09-01', '1997-09-30']
    >>> [d.date().isoformat() for d in last_complete_month("2000-03-01")]
    ['2000-02-01', '2000-02-29']
    """
    # in seconds: the month before a 1677 as_of may start before datetime64[ns] can (1677-09-22)
    as_of = parse_date(as_of, "as_of").as_unit("s")
    end = as_of if (as_of + pd.Timedelta(days=1)).day == 1 else as_of.replace(day=1) - pd.Timedelta(days=1)
    return end.replace(day=1), end


def calendar_month_counts(purchases: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Purchase days per customer in the last complete calendar month and the month before.

    "Last month" is the last *complete* calendar month on or before ``as_of``
    (:func:`last_complete_month`): scoring on 1997-09-30 counts September 1997, scoring
    on 1997-10-15 also counts September (October is not over, and a half month would
    make every customer look like dropping a tier). "Month before" is the calendar
    month preceding it (August 1997 in both examples). Purchases after ``as_of`` are
    ignored. Any feature engine must produce the same columns:

    - ``n_purchases_last_month`` (int64): purchase days with
      ``first day of last month <= date <= last day of last month``;
    - ``n_purchases_month_before`` (int64): the same for the month before.

    Index ``customer_id`` (sorted): every customer with a purchase on or before
    ``as_of``, zeros included. The input is not modified.

    >>> p = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                   "date": pd.to_datetime(["1997-08-03", "1997-09-01", "1997-09-30", "1997-10-02"]),
    ...                   "amount": [1.0, 2.0, 3.0, 4.0]})
    >>> calendar_month_counts(p, "1997-10-15").to_dict("index")
    {'a': {'n_purchases_last_month': 2, 'n_purchases_month_before': 1}, 'b': {'n_purchases_last_month': 0, 'n_purchases_month_before': 0}}
    """
    runs = purchase_runs(purchases, "calendar_month_counts", parse_date(as_of, "as_of"))
    return pd.DataFrame(month_count_arrays(runs), index=runs.index)


def month_count_arrays(runs: PurchaseRuns) -> dict[str, np.ndarray]:
    """:func:`calendar_month_counts`' columns (name -> int64 array) of checked purchase runs
    at ``as_of = runs.until``."""
    start, end = last_complete_month(runs.until)
    before_start = (start - pd.Timedelta(days=1)).replace(day=1)
    first, last, before = day_number_of(start), day_number_of(end), day_number_of(before_start)
    # the days rise within a customer: a month's purchases are those from its first day on
    # minus those after its last day
    since_first = runs.count_rows(runs.day >= first)
    return {
        MONTH_COLUMNS[0]: since_first - runs.count_rows(runs.day > last),
        MONTH_COLUMNS[1]: runs.count_rows(runs.day >= before) - since_first,
    }
