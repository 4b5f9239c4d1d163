"""Realised accuracy of scores written at an earlier date: what happened after ``as_of``.

Pure of files and MLflow. A score table (``custscore score`` output, one row per customer
known at ``as_of``) is joined with the log's purchases in the window
(as_of, as_of + window_days]: churn = no purchase in the window, purchases and spend
counted there. The backtest (:mod:`custscore.training.backtest`) builds its per-origin
rows with the same :func:`outcome_frame`, so a backtest origin and ``custscore
evaluate`` of scores written at that date measure the same thing.

``window_days`` is normally the scores' horizon. When it is shorter (``--partial``: the
log does not yet cover the horizon; or an explicit ``--horizon-days``), predicted
purchases, predicted spend and CLV are scaled by ``window_days / horizon_days`` (a
constant purchase rate over the horizon; BG/NBD's expected rate declines slowly, so this
slightly over-predicts) and the churn probability, which is for the whole horizon, is
compared with "no purchase in the shorter window" (higher actual churn than predicted):
:func:`window_warnings` says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from custscore.features.customers import FeatureEngine
from custscore.features.lookup import reindex_fill
from custscore.training.churn import churn_labels
from custscore.training.churn_select import BASELINES
from custscore.training.evaluate import CLASSIFIER_SCORE, MODEL, purchase_metrics
from custscore.training.metrics import brier, expected_calibration_error, reliability_table, roc_auc
from custscore.training.plots import reliability_plot, roc_plot

if TYPE_CHECKING:  # figures are drawn in training.plots; `score` and `serve` never import matplotlib
    from matplotlib.figure import Figure

#: Segment columns of a score table that realised accuracy and drift break results down by.
SEGMENT_BREAKDOWN: tuple[str, ...] = ("value_class", "pyramid_tier", "lifecycle_stage", "activity_tier")
#: Columns of the per-decile and per-segment tables besides the group key.
GROUP_COLUMNS: tuple[str, ...] = ("customers", "predicted_purchases", "actual_purchases", "predicted_revenue",
                                  "actual_revenue", "clv", "churn_rate_predicted", "churn_rate_actual")


#: Score-table column holding each churn feature a baseline reads (``p_no_purchase_horizon``
#: is not written to score tables, so that baseline is judged only where a scorer is at hand).
SCORE_TABLE_FEATURES: dict[str, str] = {"expected_purchases_horizon": "expected_purchases", "p_alive": "p_alive",
                                        "days_since_last_purchase": "days_since_last_purchase",
                                        "n_purchases_90d": "n_purchases_90d"}


def score_table_candidates(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """What shipped (``churn_probability``) and the baselines a score table can give, higher = more churn."""
    out = {MODEL: scores[MODEL].to_numpy(dtype=float)}
    for name, (feature, sign) in BASELINES.items():
        if feature in SCORE_TABLE_FEATURES:
            out[name] = sign * scores[SCORE_TABLE_FEATURES[feature]].to_numpy(dtype=float)
    return out


def outcome_frame(scores: pd.DataFrame, engine: FeatureEngine, as_of: pd.Timestamp, window_days: int,
                  candidates: Mapping[str, np.ndarray], scale: float = 1.0) -> pd.DataFrame:
    """Per scored customer: churn scores, predictions (times ``scale``) and what happened next.

    ``engine`` must cover (as_of, as_of + window_days]. ``candidates`` are the churn scores
    on the rows of ``scores`` (:func:`~custscore.training.evaluate.churn_candidates` with a
    scorer at hand, else :func:`score_table_candidates`). Columns: ``customer_id, churned``,
    one column per candidate,
    ``frequency``, ``predicted_purchases``, ``actual_purchases``, ``predicted_revenue``,
    ``actual_revenue``, ``clv``. Revenue is in the log's amount units.
    """
    ids = pd.Index(scores["customer_id"])
    end = as_of + pd.Timedelta(days=window_days)
    future = engine.window_purchases(as_of, end)
    out = pd.DataFrame({"customer_id": ids.to_numpy(),
                        "churned": churn_labels(engine, ids, as_of, window_days).to_numpy()})
    for name, score in candidates.items():
        out[name] = score
    expected = scores["expected_purchases"].to_numpy(dtype=float)
    out["frequency"] = scores["frequency"].to_numpy()
    out["predicted_purchases"] = scale * expected
    out["actual_purchases"] = reindex_fill(future["n_purchases"], ids).astype(float)
    out["predicted_revenue"] = scale * expected * scores["expected_avg_spend"].to_numpy(dtype=float)
    out["actual_revenue"] = reindex_fill(future["spend"], ids, 0.0).astype(float)
    out["clv"] = scale * scores["clv"].to_numpy(dtype=float)
    return out


def window_warnings(window_days: int, horizon_days: int, partial: bool) -> list[str]:
    """The ``warning:`` texts (without the prefix) when the window is not the scores' horizon."""
    if window_days == horizon_days:
        return []
    why = "the log covers only" if partial else "--horizon-days asks for"
    return [f"{why} {window_days} of the scores' {horizon_days} horizon days: predicted purchases, spend and clv "
            f"are scaled by {window_days}/{horizon_days} and churn means no purchase in those {window_days} "
            f"days, while churn_probability is for {horizon_days}"]


@dataclass
class RealisedReport:
    """Metrics (flat, MLflow-ready), tables and figures of one evaluation."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def churn_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """AUC of the model and each baseline, Brier and ECE of the model, churn rates."""
    y = rows["churned"].to_numpy()
    p = rows[MODEL].to_numpy()
    m = {"churn_rate_actual": float(y.mean()), "churn_rate_predicted": float(p.mean())}
    if 0 < y.sum() < y.size:
        m.update({f"auc_{name}": roc_auc(y, rows[name].to_numpy()) for name in candidate_columns(rows)})
    m[f"brier_{MODEL}"] = brier(y, p)
    m[f"ece_{MODEL}"] = expected_calibration_error(y, p)
    return m


def value_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """Purchases (total, error %, MAE), revenue predicted vs actual, CLV vs realised revenue."""
    m = purchase_metrics(rows["predicted_purchases"].to_numpy(), rows["actual_purchases"].to_numpy(), "purchases")
    revenue_p, revenue_a = float(rows["predicted_revenue"].sum()), float(rows["actual_revenue"].sum())
    from scipy.stats import spearmanr  # the only use of scipy.stats (slow to import)

    m.update({"revenue_predicted": revenue_p, "revenue_actual": revenue_a,
              "revenue_error_pct": 100.0 * (revenue_p - revenue_a) / max(abs(revenue_a), 1.0),
              "clv_total": float(rows["clv"].sum()),
              "clv_revenue_spearman": float(spearmanr(rows["clv"], rows["actual_revenue"]).statistic)})
    return m


def deciles(values: np.ndarray) -> np.ndarray:
    """Decile 1..10 of each value, 1 = the highest tenth; ties split by position, equal sizes.

    >>> deciles(np.arange(20.0)).tolist()[:3], deciles(np.arange(20.0)).tolist()[-2:]
    ([10, 10, 9], [1, 1])
    """
    order = np.argsort(-np.asarray(values, dtype=float), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return (rank * 10 // max(len(order), 1) + 1).astype(int)


def grouped_table(rows: pd.DataFrame, key: pd.Series | np.ndarray, name: str) -> pd.DataFrame:
    """Totals of predictions and outcomes per group (:data:`GROUP_COLUMNS`), churn rates as means."""
    frame = rows.assign(**{name: np.asarray(key)})
    out = frame.groupby(name, sort=True).agg(
        customers=("churned", "size"), predicted_purchases=("predicted_purchases", "sum"),
        actual_purchases=("actual_purchases", "sum"), predicted_revenue=("predicted_revenue", "sum"),
        actual_revenue=("actual_revenue", "sum"), clv=("clv", "sum"),
        churn_rate_predicted=(MODEL, "mean"), churn_rate_actual=("churned", "mean")).reset_index()
    return out[[name, *GROUP_COLUMNS]]


def realised_report(rows: pd.DataFrame, scores: pd.DataFrame, window_days: int) -> RealisedReport:
    """Everything ``custscore evaluate`` reports about outcome ``rows`` of ``scores``.

    Tables: ``by_clv_decile`` (decile of clv, 1 = highest), ``by_<segment>`` for each
    :data:`SEGMENT_BREAKDOWN` column in ``scores``, ``reliability`` (ten equal-width bins).
    """
    report = RealisedReport()
    report.metrics = {"customers": float(len(rows)), "window_days": float(window_days),
                      **churn_metrics(rows), **value_metrics(rows)}
    report.tables["by_clv_decile"] = grouped_table(rows, deciles(rows["clv"].to_numpy()), "clv_decile")
    for column in SEGMENT_BREAKDOWN:
        if column in scores.columns:
            report.tables[f"by_{column}"] = grouped_table(rows, scores[column].astype(str).to_numpy(), column)
    y = rows["churned"].to_numpy()
    report.tables["reliability"] = reliability_table(y, rows[MODEL].to_numpy())
    report.figures["reliability.png"] = reliability_plot(y, {MODEL: rows[MODEL].to_numpy()}, window_days)
    if "auc_" + MODEL in report.metrics:
        candidates = {name: rows[name].to_numpy() for name in candidate_columns(rows)}
        aucs = {name: report.metrics[f"auc_{name}"] for name in candidates}
        report.figures["roc.png"] = roc_plot(y, candidates, window_days, aucs)
    return report


def candidate_columns(rows: pd.DataFrame) -> list[str]:
    """The churn-score columns of outcome rows (what shipped, the classifier, the baselines);
    the classifier's only when every row has it (pooled origins that could not all fit it)."""
    return [c for c in rows.columns if (c in (MODEL, CLASSIFIER_SCORE) or c.startswith("baseline_"))
            and rows[c].notna().all()]
