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

from custscore.config import DAYS_PER_UNIT
from custscore.features.customers import FeatureEngine
from custscore.features.lookup import reindex_fill
from custscore.training.churn import churn_labels
from custscore.training.metrics import brier, roc_auc
from custscore.training.plots import calibration_purchases_plot, purchases_by_frequency, roc_plot
from custscore.training.scorer import CustomerScorer

#: Name of the model's churn score next to the baselines.
MODEL = "churn_classifier"


def churn_candidates(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """The model's churn probability and the baselines, each oriented higher = more churn.

    ``scores`` is a score table (:data:`~custscore.training.scorer.SCORE_COLUMNS`).
    """
    return {
        MODEL: scores["churn_probability"].to_numpy(dtype=float),
        "baseline_bgnbd_expected_purchases": -scores["expected_purchases"].to_numpy(dtype=float),
        "baseline_bgnbd_p_alive": 1.0 - scores["p_alive"].to_numpy(dtype=float),
        "baseline_days_since_last_purchase": scores["days_since_last_purchase"].to_numpy(dtype=float),
        "baseline_n_purchases_90d": -scores["n_purchases_90d"].to_numpy(dtype=float),
    }


def purchase_metrics(predicted: np.ndarray, actual: np.ndarray, prefix: str) -> dict[str, float]:
    """Total predicted and actual purchases, their error in % and the per-customer MAE."""
    total_p, total_a = float(np.sum(predicted)), float(np.sum(actual))
    return {f"{prefix}_actual": total_a, f"{prefix}_predicted": total_p,
            f"{prefix}_error_pct": 100.0 * (total_p - total_a) / max(total_a, 1.0),
            f"{prefix}_mae": float(np.mean(np.abs(np.asarray(predicted) - np.asarray(actual))))}


@dataclass
class HoldoutReport:
    """Metrics (flat, MLflow-ready), tables and matplotlib figures of one holdout."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def evaluate_holdout(scorer: CustomerScorer, engine: FeatureEngine, cutoff: pd.Timestamp,
                     holdout_end: pd.Timestamp, scores: Optional[pd.DataFrame] = None) -> HoldoutReport:
    """Compare the scorer's predictions at ``cutoff`` with the holdout (cutoff, holdout_end].

    ``engine`` covers both periods; ``scores`` are the scorer's scores at ``cutoff`` when
    the caller already has them (segment columns are not needed).
    """
    report = HoldoutReport()
    if scores is None:
        scores = scorer.score_customers(engine.customer_features(cutoff, scorer.time_unit), cutoff,
                                        with_segments=False)
    ids = scores["customer_id"].to_numpy()
    holdout_days = int((holdout_end - cutoff).days)
    x, t_x, T = (scores[c].to_numpy() for c in ("frequency", "recency", "T"))
    days = DAYS_PER_UNIT[scorer.time_unit]

    actual = reindex_fill(engine.window_purchases(cutoff, holdout_end)["n_purchases"], ids)
    predicted = scorer.bgnbd.expected_purchases(holdout_days / days, x, t_x, T)
    m = report.metrics
    m["holdout_days"] = holdout_days
    m["holdout_customers"] = len(ids)
    m.update(purchase_metrics(predicted, actual, "holdout_purchases"))

    calib = purchases_by_frequency(x, predicted, actual)
    report.tables["holdout_purchases_by_frequency"] = calib
    report.figures["calibration_purchases.png"] = calibration_purchases_plot(calib, holdout_days)

    horizon = scorer.horizon_days
    if holdout_days >= horizon:
        churned = churn_labels(engine, pd.Index(ids), cutoff, horizon).to_numpy()
        m["churn_rate_actual"] = float(churned.mean())
        m["churn_rate_predicted"] = float(scores["churn_probability"].mean())
        if 0 < churned.sum() < churned.size:
            candidates = churn_candidates(scores)
            aucs = {name: roc_auc(churned, score) for name, score in candidates.items()}
            m.update({f"auc_{name}": auc for name, auc in aucs.items()})
            m["brier_churn_classifier"] = brier(churned, candidates[MODEL])
            report.figures["roc_churn.png"] = roc_plot(churned, candidates, horizon, aucs)
    return report
