"""The customers of one score file for the look-up page: filter, sort, page, one customer.

Loaded once when ``custscore serve --scores FILE`` starts (a bad file is a one-line
error before the server binds). The table never goes to the browser whole: each query
answers one page of rows. Values keep the score file's full precision; the page rounds
them for people.

Risk levels (:data:`RISKS`): ``needs-action`` = the customers of ``actions.csv``
(:func:`~custscore.serving.report.needs_action`: an alert, partial churn or a class-I cause
to act on); ``high`` / ``low`` = churn probability at / below the sidecar's
``alert_churn_probability``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.io import read_transactions
from custscore.features.periods import merge_periods
from custscore.serving.scores_file import horizon_words as in_words, needs_action, read_scores, value_at_risk
from custscore.serving.sidecar import read_sidecar

#: Risk filter values and what they select (module doc).
RISKS: dict[str, str] = {
    "needs-action": "needs action (as in actions.csv)",
    "high": "churn probability at or above the alert threshold",
    "low": "churn probability below the alert threshold",
}
#: Sort keys of the table: value at risk, churn and CLV largest first (missing values last),
#: customer id in text order.
SORTS: tuple[str, ...] = ("value_at_risk", "churn_probability", "clv", "customer_id")
#: Optional CLV interval columns (another scoring option may add them); shown when present.
INTERVAL_COLUMNS: tuple[str, str] = ("clv_p10", "clv_p90")
#: Columns of a table row sent to the page.
ROW_COLUMNS: tuple[str, ...] = (
    "customer_id", "value_at_risk", "churn_probability", "p_alive", "expected_purchases", "clv", *INTERVAL_COLUMNS,
    "value_class", "value_class_name", "lifecycle_stage", "retention_policy", "reason_1",
)
#: Longest accepted search text (characters).
MAX_QUERY_CHARS = 200


def _json_value(value: Any) -> Any:
    """A JSON-ready Python scalar: NaN and NA as None, numpy scalars as Python ones."""
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, (str, int, bool, float)) else str(value)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as dicts of JSON-ready values (see :func:`_json_value`)."""
    columns = list(frame.columns)
    return [{c: _json_value(v) for c, v in zip(columns, row)} for row in frame.itertuples(index=False, name=None)]


@dataclass
class CustomerTable:
    """A score file (sorted by value at risk, largest first; ties by id), its sidecar and the
    log when given (normalised rows).

    ``purchases``: one row per customer and day of the log, the day's rows netted at
    ``amount_decimals`` decimals (:func:`~custscore.features.periods.merge_periods`, as
    scoring nets them); None without a log or before a precision is set.
    """

    scores: pd.DataFrame
    settings: dict[str, Any]
    scores_name: str
    log: Optional[pd.DataFrame] = None
    log_name: Optional[str] = None
    amount_decimals: Optional[int] = ColumnMap.amount_decimals

    def __post_init__(self) -> None:
        self._ids = self.scores["customer_id"].to_numpy(dtype=object)
        self._id_text = pa.array(self._ids, type=pa.string())
        self._id_lower = pc.utf8_lower(self._id_text)
        self._positions = pd.Index(self._ids)
        self._positions.get_indexer([""])  # hashed now, not on the first look-up
        # each sort's order of the rows, computed once (a query then costs O(rows), not a sort);
        # ties keep the value-at-risk order
        self._orders = {key: (np.arange(len(self.scores)) if key == "value_at_risk" else
                              pc.sort_indices(self._id_text).to_numpy() if key == "customer_id" else
                              np.argsort(-self.scores[key].to_numpy(dtype=float), kind="stable"))
                        for key in SORTS}
        self._alert_p = float((self.settings.get("config") or {}).get("alert_churn_probability", 0.5))
        self._needs = needs_action(self.scores).to_numpy()
        self.purchases: Optional[pd.DataFrame] = None
        if self.log is not None and self.amount_decimals is not None:
            days = merge_periods(self.log, "D", self.amount_decimals)
            self.purchases = days[["customer_id", "date", "amount"]].reset_index(drop=True)
            self._purchase_ids = self.purchases["customer_id"].to_numpy(dtype=object)

    def at_precision(self, amount_decimals: int) -> "CustomerTable":
        """This table with the log's days netted at ``amount_decimals`` (the model's, for scoring again)."""
        return replace(self, amount_decimals=amount_decimals)

    @property
    def has_interval(self) -> bool:
        return all(c in self.scores.columns for c in INTERVAL_COLUMNS)

    def meta(self) -> dict[str, Any]:
        """What the page shows above the table and offers in its filters."""
        s = self.scores
        classes = s[["value_class", "value_class_name"]].drop_duplicates().sort_values("value_class")
        horizon_words, discount_words = in_words(self.settings)
        return {
            "scores_file": self.scores_name, "log_file": self.log_name, "has_log": self.log is not None,
            "n_customers": int(len(s)), "as_of": str(self.settings.get("as_of", "")),
            "horizon_days": self.settings.get("horizon_days"), "horizon_words": horizon_words,
            "discount_words": discount_words, "model_version": self.settings.get("model_version"),
            "has_amounts": bool(self.settings.get("has_amounts", True)), "has_interval": self.has_interval,
            "alert_churn_probability": self._alert_p,
            "segments": [{"value": c, "label": f"{c} {n}"} for c, n in classes.itertuples(index=False)],
            "actions": sorted(a for a in s["retention_policy"].dropna().unique().tolist() if a),
            "risks": [{"value": k, "label": v} for k, v in RISKS.items()],
            "sorts": list(SORTS),
        }

    def mask(self, q: str = "", segment: str = "", action: str = "", risk: str = "") -> np.ndarray:
        """Rows matching every filter given: ``q`` a case-insensitive part of the customer id."""
        s = self.scores
        keep = np.ones(len(s), dtype=bool)
        if q:
            lower = pc.utf8_lower(pa.scalar(q, pa.string())).as_py()  # the same case folding as the ids'
            keep &= pc.match_substring(self._id_lower, lower).to_numpy(zero_copy_only=False)
        if segment:
            keep &= (s["value_class"] == segment).to_numpy()
        if action:
            keep &= (s["retention_policy"] == action).to_numpy()
        if risk == "needs-action":
            keep &= self._needs
        elif risk in ("high", "low"):
            high = (s["churn_probability"] >= self._alert_p).to_numpy()
            keep &= high if risk == "high" else ~high
        return keep

    def query(self, q: str = "", segment: str = "", action: str = "", risk: str = "", sort: str = "value_at_risk",
              page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """One page of the matching rows (:data:`ROW_COLUMNS`), sorted by ``sort`` (:data:`SORTS`)."""
        keep = self.mask(q, segment, action, risk)
        order = self._orders[sort]
        rows = order[keep[order]]
        total = len(rows)
        pages = max(1, -(-total // page_size))
        page = min(page, pages)
        chosen = rows[(page - 1) * page_size: page * page_size]
        columns = [c for c in ROW_COLUMNS if c in self.scores.columns]
        return {"total": total, "page": page, "pages": pages, "page_size": page_size,
                "rows": json_records(self.scores.iloc[chosen][columns])}

    def customer(self, customer_id: str) -> Optional[dict[str, Any]]:
        """Every score column of one customer and its purchases (None without a log); None if absent."""
        at = self._positions.get_indexer([customer_id])[0]
        if at < 0:
            return None
        answer: dict[str, Any] = {"score": json_records(self.scores.iloc[[at]])[0], "purchases": None}
        if self.purchases is not None:
            lo = np.searchsorted(self._purchase_ids, customer_id, side="left")
            hi = np.searchsorted(self._purchase_ids, customer_id, side="right")
            days = self.purchases.iloc[lo:hi]
            answer["purchases"] = [{"date": d.strftime("%Y-%m-%d"), "amount": float(a)}
                                   for d, a in zip(days["date"], days["amount"])]
        return answer


def load_customer_table(scores_path: str | os.PathLike, transactions_path: Optional[str | os.PathLike] = None,
                        columns: ColumnMap = ColumnMap(),
                        amount_decimals: Optional[int] = ColumnMap.amount_decimals) -> CustomerTable:
    """Read ``--scores`` (and its sidecar) and the optional ``--transactions`` log; bad files are one-line errors.

    The log's days are netted at ``amount_decimals`` (None: later, :meth:`CustomerTable.at_precision`).
    """
    scores = read_scores(scores_path)
    if scores.empty:
        raise CustscoreError(f"--scores {scores_path}: the scores file has no customers")
    if scores["customer_id"].duplicated().any():
        first = scores.loc[scores["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise CustscoreError(f"--scores {scores_path}: customer {first!r} appears more than once")
    settings = read_sidecar(scores_path)
    scores = scores.assign(value_at_risk=value_at_risk(scores))
    scores = scores.sort_values(["value_at_risk", "customer_id"], ascending=[False, True], kind="stable",
                                na_position="last").reset_index(drop=True)
    log = read_transactions(transactions_path, columns) if transactions_path is not None else None
    return CustomerTable(scores, settings, Path(scores_path).name, log,
                         Path(transactions_path).name if transactions_path is not None else None, amount_decimals)
