"""custscore.features: transaction log -> per-customer features (pure functions).

Data path (each step a new frame; inputs are never modified)::

    read_transactions / normalise_transactions   (io)        customer_id, ts, amount
      -> merge_periods                           (periods)   customer_id, date, amount (one row per day)
      -> purchase_runs                           (runs)      checked once, grouped by customer
      -> rfm_summary / window_purchases          (rfm)       BTYD frequency, recency, T, monetary
      -> activity_features                       (activity)  tenure, windows, gaps, trend

``cdnow`` loads the CDNOW demo logs shipped with the installed ``lifetimes`` package.
This package never imports ``custscore.training``, ``custscore.serving`` or ``lifetimes``.
"""
from custscore.features.activity import activity_features
from custscore.features.cdnow import load_cdnow_master, load_cdnow_sample
from custscore.features.io import TX_COLUMNS, normalise_transactions, read_transactions
from custscore.features.periods import merge_periods
from custscore.features.rfm import duration_columns, rfm_summary, window_purchases

__all__ = [
    "TX_COLUMNS",
    "activity_features",
    "duration_columns",
    "load_cdnow_master",
    "load_cdnow_sample",
    "merge_periods",
    "normalise_transactions",
    "read_transactions",
    "rfm_summary",
    "window_purchases",
]
