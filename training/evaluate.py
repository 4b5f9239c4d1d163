"""Time-based holdout evaluation of a fitted scorer.

The scorer is applied at the cutoff using only calibration data; what happened after
the cutoff is the truth. Purchases are compared over the whole holdout
(cutoff, holdout_end]; churn over (cutoff, cutoff + horizon_days] when the holdout
covers the full horizon.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from custscore.config import DAYS_PER_UNIT
from custscore.features.customers import FeatureEngine
from custscore.training.scorer import CustomerScorer

#: Calibration-period frequencies at and above this are pooled in the calibration plot.
MAX_FREQUENCY_BIN = 7


@dataclass
class HoldoutReport:
    """Metrics (flat, MLflow-ready), tables and matplotlib figures of one holdout."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def evaluate_holdout(scorer: CustomerScorer, engine: FeatureEngine, cutoff: pd.Timestamp,
                     holdout_end: pd.Timestamp, customers: Optional[pd.DataFrame] = None) -> HoldoutReport:
    """Compare the scorer's predictions at ``cutoff`` with the holdout (cutoff, holdout_end].

    ``engine`` covers both periods; ``customers`` is its feature frame at ``cutoff`` when
    the caller already has it.
    """
    report = HoldoutReport()
    if customers is None:
        customers = engine.customer_features(cutoff, scorer.time_unit)
    scores = scorer.score_customers(customers, cutoff)
    ids = scores["customer_id"].to_numpy()
    holdout_days = int((holdout_end - cutoff).days)
    x, t_x, T = (scores[c].to_numpy() for c in ("frequency", "recency", "T"))
    days = DAYS_PER_UNIT[scorer.time_unit]

    actual = engine.window_purchases(cutoff, holdout_end)["n_purchases"].reindex(ids, fill_value=0).to_numpy()
    predicted = scorer.bgnbd.expected_purchases(holdout_days / days, x, t_x, T)
    m = report.metrics
    m["holdout_days"] = holdout_days
    m["holdout_customers"] = len(ids)
    m["holdout_purchases_actual"] = float(actual.sum())
    m["holdout_purchases_predicted"] = float(predicted.sum())
    m["holdout_purchases_error_pct"] = 100.0 * (predicted.sum() - actual.sum()) / max(actual.sum(), 1)
    m["holdout_purchases_mae"] = float(np.abs(predicted - actual).mean())

    bins = np.minimum(x, MAX_FREQUENCY_BIN)
    calib = (pd.DataFrame({"frequency_bin": bins, "predicted": predicted, "actual": actual})
             .groupby("frequency_bin").agg(customers=("actual", "size"), predicted=("predicted", "mean"),
                                           actual=("actual", "mean")).reset_index())
    report.tables["holdout_purchases_by_frequency"] = calib
    report.figures["calibration_purchases.png"] = _calibration_plot(calib, holdout_days)

    horizon = scorer.horizon_days
    if holdout_days >= horizon:
        horizon_end = cutoff + pd.Timedelta(days=horizon)
        active = engine.window_purchases(cutoff, horizon_end).index
        churned = (~pd.Index(ids).isin(active)).astype(int)
        m["churn_rate_actual"] = float(churned.mean())
        m["churn_rate_predicted"] = float(scores["churn_probability"].mean())
        if 0 < churned.sum() < churned.size:
            candidates = {
                "churn_classifier": scores["churn_probability"].to_numpy(),
                "baseline_bgnbd_expected_purchases": -scores["expected_purchases"].to_numpy(),
                "baseline_bgnbd_p_alive": 1.0 - scores["p_alive"].to_numpy(),
                "baseline_days_since_last_purchase": scores["days_since_last_purchase"].to_numpy(),
            }
            for name, score in candidates.items():
                m[f"auc_{name}"] = float(roc_auc_score(churned, score))
            m["brier_churn_classifier"] = float(brier_score_loss(churned, scores["churn_probability"]))
            report.figures["roc_churn.png"] = _roc_plot(churned, candidates, horizon)
    return report


def _calibration_plot(calib: pd.DataFrame, holdout_days: int) -> Figure:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    labels = [str(b) if b < MAX_FREQUENCY_BIN else f"{MAX_FREQUENCY_BIN}+" for b in calib["frequency_bin"]]
    ax.plot(labels, calib["actual"], "o-", label="actual")
    ax.plot(labels, calib["predicted"], "s--", label="BG/NBD predicted")
    ax.set_xlabel("repeat purchases in calibration period")
    ax.set_ylabel(f"mean purchases in {holdout_days}-day holdout")
    ax.legend()
    fig.tight_layout()
    return fig


def _roc_plot(churned: np.ndarray, candidates: dict[str, np.ndarray], horizon: int) -> Figure:
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, score in candidates.items():
        fpr, tpr, _ = roc_curve(churned, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(churned, score):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"churn within {horizon} days")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
