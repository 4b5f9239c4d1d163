"""Time-based holdout evaluation of a fitted scorer.

The scorer is applied at the cutoff using only calibration data; what happened after
the cutoff is the truth. Purchases are compared over the whole holdout
(cutoff, holdout_end]; churn over (cutoff, cutoff + horizon_days] when the holdout
covers the full horizon.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from custscore.config import DAYS_PER_UNIT
from custscore.features.customers import FeatureEngine
from custscore.features.lookup import reindex_fill
from custscore.training.covariates import for_customers
from custscore.training.churn import ChurnClassifier, churn_features, churn_labels
from custscore.training.churn_select import candidate_scores
from custscore.training.metrics import brier, expected_calibration_error, roc_points
from custscore.training.plots import calibration_purchases_plot, purchases_by_frequency, roc_plot
from custscore.training.scorer import CustomerScorer

if TYPE_CHECKING:  # figures are drawn in training.plots; `score` and `serve` never import matplotlib
    from matplotlib.figure import Figure

#: The score columns :func:`evaluate_holdout` reads (a caller may keep only these of a big frame).
HOLDOUT_SCORE_COLUMNS = ("customer_id", "frequency", "recency", "T", "churn_probability")
#: Name of the shipped churn score (``churn_probability``) next to the classifier and the baselines.
MODEL = "churn_probability"
#: Name of the classifier's score (fitted at the cutoff, shipped or not).
CLASSIFIER_SCORE = "churn_classifier"


def churn_candidates(scorer: CustomerScorer, customers: pd.DataFrame, scores: pd.DataFrame,
                     classifier: Optional[ChurnClassifier] = None,
                     horizon_days: Optional[int] = None) -> dict[str, np.ndarray]:
    """What shipped, the classifier and the baselines on the customers of ``scores``, higher = more churn.

    ``customers`` are the features ``scores`` were computed from (same rows and order).
    """
    horizon = scorer.horizon_days if horizon_days is None else int(horizon_days)
    X = churn_features(customers, scorer.purchase_model, horizon, scorer.time_unit)
    return candidate_scores(X, scores["churn_probability"].to_numpy(dtype=float), classifier)


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
                     holdout_end: pd.Timestamp, scores: Optional[pd.DataFrame] = None,
                     classifier: Optional[ChurnClassifier] = None,
                     customers: Optional[pd.DataFrame] = None) -> HoldoutReport:
    """Compare the scorer's predictions at ``cutoff`` with the holdout (cutoff, holdout_end].

    ``engine`` covers both periods; ``scores`` are the scorer's scores of ``customers``
    (the features at ``cutoff``) when the caller already has them (segment columns are
    not needed); ``classifier`` is scored next to what shipped when given.
    """
    report = HoldoutReport()
    if customers is None:
        customers = engine.customer_features(cutoff, scorer.time_unit)
    if scores is None:
        scores = scorer.score_customers(customers, cutoff, with_segments=False)
    ids = pd.Index(scores["customer_id"])  # as it is (Arrow-backed text): no object array of millions of ids
    holdout_days = int((holdout_end - cutoff).days)
    x, t_x, T = (scores[c].to_numpy() for c in ("frequency", "recency", "T"))
    days = DAYS_PER_UNIT[scorer.time_unit]

    actual = reindex_fill(engine.window_purchases(cutoff, holdout_end)["n_purchases"], ids)
    in_order = customers if customers.index.equals(ids) else customers.reindex(ids)  # no copy when aligned
    predicted = for_customers(scorer.purchase_model, in_order).expected_purchases(holdout_days / days, x, t_x, T)
    m = report.metrics
    m["holdout_days"] = holdout_days
    m["holdout_customers"] = len(ids)
    m.update(purchase_metrics(predicted, actual, "holdout_purchases"))

    calib = purchases_by_frequency(x, predicted, actual)
    report.tables["holdout_purchases_by_frequency"] = calib
    report.figures["calibration_purchases.png"] = calibration_purchases_plot(calib, holdout_days)

    horizon = scorer.horizon_days
    if holdout_days >= horizon:
        churned = churn_labels(engine, ids, cutoff, horizon).to_numpy()
        m["churn_rate_actual"] = float(churned.mean())
        m["churn_rate_predicted"] = float(scores["churn_probability"].mean())
        if 0 < churned.sum() < churned.size:
            candidates = churn_candidates(scorer, customers, scores, classifier)
            curves = {name: roc_points(churned, score) for name, score in candidates.items()}  # one sort each
            aucs = {name: curve[2] for name, curve in curves.items()}
            m.update({f"auc_{name}": auc for name, auc in aucs.items()})
            for name in (MODEL, CLASSIFIER_SCORE):
                if name in candidates:
                    m[f"brier_{name}"] = brier(churned, candidates[name])
                    m[f"ece_{name}"] = expected_calibration_error(churned, candidates[name])
            report.figures["roc_churn.png"] = roc_plot(churned, candidates, horizon, curves=curves)
    return report
