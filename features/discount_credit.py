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
from custscore.features.rfm import _checked_purchases, _customer_runs

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
    extra = tuple(c for c in (DISCOUNTED, ARREARS) if c in purchases.columns)
    if not extra:
        return pd.DataFrame(index=pd.Index([], name="customer_id"))
    as_of = parse_date(as_of, "as_of")
    frame = _checked_purchases(purchases, "discount_credit_features", extra)
    frame = frame[frame["date"] <= as_of]
    index, starts, codes = _customer_runs(frame)
    count = np.bincount(codes, minlength=len(index))
    columns: dict[str, np.ndarray] = {}
    if DISCOUNTED in extra:
        on_discount = frame[DISCOUNTED].to_numpy(dtype="float64")
        columns[DISCOUNT_SHARE] = np.bincount(codes, weights=on_discount, minlength=len(index)) / count
    if ARREARS in extra:
        columns[ARREARS] = frame[ARREARS].to_numpy(dtype="float64")[starts + count - 1]
    return pd.DataFrame(columns, index=index)
