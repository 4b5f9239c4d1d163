"""Discount and credit features at a scoring date, from the optional log columns.

Input is the output of :func:`custscore.features.periods.merge_periods` (one purchase per
customer and day) carrying ``discounted`` and/or ``arrears`` (present only when the log's
``discount`` / ``arrears`` columns were named, :class:`custscore.config.ColumnMap`):

- ``discount_share`` (float64 in [0, 1]): share of the customer's purchase days up to
  ``as_of`` (whole history, inclusive) that were bought on discount (a day is on discount
  when one of its purchase rows has discount > 0);
- ``arrears`` (float64 >= 0, in the column's own unit: amount overdue or days in
  arrears): the value on the customer's latest purchase day on or before ``as_of``
  (the largest of that day's rows), i.e. the latest known arrears.

Without those columns there are no such features (an empty frame), so the customer
features of a log without them are exactly what they were before.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from custscore.config import parse_date
from custscore.features.periods import ARREARS, DISCOUNTED
from custscore.features.runs import PurchaseRuns, purchase_runs

#: Feature columns, in order (each present only with its input column).
DISCOUNT_SHARE = "discount_share"
DISCOUNT_CREDIT_COLUMNS: tuple[str, ...] = (DISCOUNT_SHARE, ARREARS)


def discount_credit_features(purchases: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """``discount_share`` and ``arrears`` per customer at ``as_of`` (see the module doc).

    Index ``customer_id`` (sorted; customers with a purchase on or before ``as_of``);
    a column only when its input column is in ``purchases``, and no column (nor row
    check) without either. The input is not modified.

    >>> p = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                   "date": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-02-01", "2020-01-03"]),
    ...                   "amount": [5.0, 10.0, 20.0, 7.0], "discounted": [1, 0, 1, 1],
    ...                   "arrears": [0.0, 30.0, 99.0, 12.5]})
    >>> discount_credit_features(p, "2020-01-31").to_dict("index")
    {'a': {'discount_share': 0.5, 'arrears': 30.0}, 'b': {'discount_share': 1.0, 'arrears': 12.5}}
    """
    extra = optional_columns(purchases)
    if not extra:
        return pd.DataFrame(index=pd.Index([], name="customer_id"))
    runs = purchase_runs(purchases, "discount_credit_features", parse_date(as_of, "as_of"), extra=extra)
    return pd.DataFrame(discount_credit_arrays(runs), index=runs.index)


def optional_columns(purchases: pd.DataFrame) -> tuple[str, ...]:
    """The optional per-day columns (``discounted``, ``arrears``) ``purchases`` carries, in order."""
    return tuple(c for c in (DISCOUNTED, ARREARS) if c in purchases.columns)


def discount_credit_arrays(runs: PurchaseRuns) -> dict[str, np.ndarray]:
    """:func:`discount_credit_features`' columns (name -> float64 array) of checked purchase
    runs carrying the optional columns in ``runs.extra`` (none without them)."""
    columns: dict[str, np.ndarray] = {}
    if DISCOUNTED in runs.extra:
        columns[DISCOUNT_SHARE] = runs.sums(runs.extra[DISCOUNTED]) / runs.count
    if ARREARS in runs.extra:
        columns[ARREARS] = runs.extra[ARREARS][runs.last_row]
    return columns
