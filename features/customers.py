"""All per-customer features at one date, as one frame: the contract every engine meets.

:func:`customer_features` is the pandas engine. A large-log engine (DuckDB, Spark) must
return the same columns, index and values for the same purchases; the models downstream
only ever see this frame.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from custscore.features.activity import activity_features
from custscore.features.rfm import rfm_summary


def customer_features(purchases: pd.DataFrame, as_of: Any, time_unit: str = "D") -> pd.DataFrame:
    """RFM summary (durations in ``time_unit``) joined with the activity features (days).

    ``purchases`` is per-period (output of ``merge_periods``); purchases after ``as_of``
    (inclusive day) are ignored. Index ``customer_id``: every customer whose first
    purchase is on or before ``as_of``, sorted.
    """
    rfm = rfm_summary(purchases, as_of, time_unit)
    activity = activity_features(purchases, as_of)
    return rfm.join(activity, how="left")
