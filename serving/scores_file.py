"""A scores file of ``custscore score`` as the report and the look-up page read it.

Also the rules both apply to it: who needs action (the customers of ``actions.csv``),
the value at risk, and the horizon and discount rate in words. No plotting library is
imported here (``custscore serve`` reads score files too).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from custscore.errors import CustscoreError
from custscore.features.io import _one_line
from custscore.spreadsheet import restore_text_columns
from custscore.training.reasons import REASON_COLUMNS

#: Class-I causes whose policy is an action now (domain notes: "act quickly or let go",
#: "end the relationship"); such customers are in actions.csv. Each needs its log column.
ACTION_CAUSES: Mapping[str, str] = {"poor credit": "arrears", "price-sensitive": "discount"}
#: Score columns the report reads.
REPORT_COLUMNS: tuple[str, ...] = (
    "customer_id", "churn_probability", "clv", "current_value", "future_value", "value_class", "value_class_name",
    "retention_policy", "class_i_cause", "pyramid_tier", "activity_tier", "previous_activity_tier", "alert",
    "alert_reason", "lifecycle_stage", "partial_churn", *REASON_COLUMNS,
)


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """A scores file written by ``custscore score`` (CSV or Parquet), ids as text.

    CSV text cells get back their raw values (:func:`custscore.spreadsheet.restore_formulas`).
    """
    path = Path(path)
    if not path.is_file():
        raise CustscoreError(f"--scores {path}: file not found")
    try:
        if path.suffix.lower() == ".parquet":
            scores = pd.read_parquet(path)
            scores["customer_id"] = scores["customer_id"].astype(str)
        else:
            scores = restore_text_columns(pd.read_csv(path, dtype={"customer_id": str}))
    except (OSError, ValueError, UnicodeError, EOFError, pd.errors.ParserError) as exc:
        raise CustscoreError(f"--scores {path}: cannot read file ({_one_line(exc)})") from exc
    except Exception as exc:  # pyarrow's errors
        if type(exc).__module__.startswith("pyarrow"):
            raise CustscoreError(f"--scores {path}: cannot read file ({_one_line(exc)})") from exc
        raise
    missing = [c for c in REPORT_COLUMNS if c not in scores.columns]
    if missing:
        raise CustscoreError(f"--scores {path}: missing column(s) {missing}; score it again with this version")
    for col in ("alert", "partial_churn"):
        if scores[col].dtype != bool:
            scores[col] = scores[col].astype(str).str.lower().eq("true")
    for col in ("alert_reason", "class_i_cause", *REASON_COLUMNS):
        if col in scores:
            scores[col] = scores[col].fillna("")
    return scores


def needs_action(scores: pd.DataFrame) -> pd.Series:
    """True for a customer with an alert, partial churn or an :data:`ACTION_CAUSES` class-I cause."""
    return scores["alert"] | scores["partial_churn"] | scores["class_i_cause"].isin(list(ACTION_CAUSES))


def value_at_risk(scores: pd.DataFrame) -> pd.Series:
    """``churn_probability * future_value`` (money, or purchases for a log without amounts)."""
    return scores["churn_probability"] * scores["future_value"]


def horizon_words(settings: Mapping[str, Any]) -> tuple[str, str]:
    """('next 90 days', 'discounted at 10 % a year') from the sidecar."""
    horizon = settings.get("horizon_days")
    rate = settings.get("discount_rate")
    days = f"next {int(horizon)} days" if isinstance(horizon, (int, float)) else "horizon"
    discount = (f"discounted at {100 * float(rate):g} % a year" if isinstance(rate, (int, float))
                else "discount rate not recorded")
    return days, discount
