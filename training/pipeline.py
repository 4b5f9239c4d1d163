"""Training: transactions -> fitted :class:`CustomerScorer` (+ holdout evaluation).

Pure of MLflow: :mod:`custscore.training.tracking` logs what this returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from custscore.config import TrainConfig
from custscore.errors import CustscoreError, FitError
from custscore.features.customers import FeatureEngine
from custscore.features.rfm import duration_columns
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.churn import ChurnClassifier, churn_features, churn_labels
from custscore.training.evaluate import HoldoutReport, evaluate_holdout
from custscore.training.gamma_gamma import GammaGammaModel
from custscore.training.scorer import CustomerScorer
from custscore.training.segments import fit_thresholds


@dataclass
class TrainResult:
    """A fitted scorer with what is worth logging about its fit."""

    scorer: CustomerScorer
    metrics: dict[str, float]
    n_customers: int
    holdout: Optional[HoldoutReport] = None
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)


def fit_bgnbd(rfm: pd.DataFrame, time_unit: str, config: TrainConfig, when: str) -> BetaGeoModel:
    """Fit BG/NBD on an RFM summary; ``when`` names the date in error messages."""
    recency_col, t_col = duration_columns(time_unit)
    model = BetaGeoModel(penalizer=config.penalizer, seed=config.seed)
    try:
        return model.fit(rfm["frequency"].to_numpy(), rfm[recency_col].to_numpy(), rfm[t_col].to_numpy())
    except FitError as exc:
        raise FitError(f"BG/NBD at {when} ({len(rfm)} customers, "
                       f"{int((rfm['frequency'] > 0).sum())} with repeat purchases): {exc}") from exc


def churn_examples(engine: FeatureEngine, config: TrainConfig,
                   reference: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
    """Churn features at ``reference`` (BG/NBD refitted there) and labels over the next horizon."""
    customers = engine.customer_features(reference, config.time_unit)
    bgnbd = fit_bgnbd(customers, config.time_unit, config, f"reference date {reference.date()}")
    X = churn_features(customers, bgnbd, config.horizon_days, config.time_unit)
    return X, churn_labels(engine, X.index, reference, config.horizon_days)


def train_scorer(engine: FeatureEngine, config: TrainConfig) -> TrainResult:
    """Fit BG/NBD, Gamma-Gamma and the churn classifier on the log up to the cutoff.

    ``engine`` answers feature questions about the log (see
    :mod:`custscore.features.customers`). Where the log extends past the cutoff, the
    scorer is evaluated on that holdout (up to ``config.holdout_end`` or the last day).
    """
    first_day, last_day = engine.date_range()
    cutoff = config.cutoff
    if cutoff < first_day:
        raise CustscoreError(f"cutoff {cutoff.date()} is before the first transaction ({first_day.date()})")
    if cutoff > last_day:
        # Days after the log ends would look like days without purchases: churn labels and
        # T would be silently wrong.
        raise CustscoreError(f"cutoff {cutoff.date()} is after the last transaction ({last_day.date()}): the log "
                             f"does not cover those days; use --cutoff {last_day.date()} or earlier")
    reference = config.reference_date
    if reference < first_day:
        raise CustscoreError(
            f"cutoff minus horizon ({reference.date()}) is before the first transaction ({first_day.date()}): "
            "no history to learn churn from; use a later cutoff or a shorter --horizon-days")

    calibration = engine.customer_features(cutoff, config.time_unit)
    bgnbd = fit_bgnbd(calibration, config.time_unit, config, f"cutoff {cutoff.date()}")

    repeat = calibration[(calibration["frequency"] > 0) & (calibration["monetary_value"] > 0)]
    gamma_gamma = GammaGammaModel(penalizer=config.penalizer, seed=config.seed)
    try:
        gamma_gamma.fit(repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy())
    except FitError as exc:
        raise FitError(f"Gamma-Gamma at cutoff {cutoff.date()} ({len(repeat)} customers with positive "
                       f"repeat spend): {exc}") from exc

    # Churn examples at the reference date: features <= reference, labels in (reference, cutoff].
    X, y = churn_examples(engine, config, reference)
    if config.churn_calibration == "none":
        churn = ChurnClassifier().fit(X, y)
    else:
        # Time-based calibration: fit one window earlier, calibrate on the latest window.
        earlier = reference - pd.Timedelta(days=config.horizon_days)
        if earlier <= first_day:
            raise CustscoreError(
                f"churn_calibration {config.churn_calibration}: cutoff minus twice the horizon ({earlier.date()}) "
                f"is not after the first transaction ({first_day.date()}); use churn_calibration none")
        churn = ChurnClassifier(calibration=config.churn_calibration).fit(*churn_examples(engine, config, earlier),
                                                                          X, y)

    scorer = CustomerScorer(bgnbd=bgnbd, gamma_gamma=gamma_gamma, churn=churn, time_unit=config.time_unit,
                            horizon_days=config.horizon_days, discount_rate=config.discount_rate, cutoff=cutoff)
    # Segment cut points: fixed numbers learned once from the calibration customers (segments.py).
    calibration_scores = scorer.score_customers(calibration, cutoff, with_segments=False)
    scorer.segment_thresholds = fit_thresholds(calibration_scores, scorer.segment_config)
    metrics = {
        "bgnbd_log_likelihood": bgnbd.log_likelihood_,
        "gamma_gamma_log_likelihood": gamma_gamma.log_likelihood_,
        "gamma_gamma_customers": float(len(repeat)),
        "frequency_monetary_corr": _safe_corr(repeat["frequency"], repeat["monetary_value"]),
        "repeat_customer_share": float((calibration["frequency"] > 0).mean()),
        "churn_train_examples": float(churn.n_train_),
        "churn_train_rate": churn.churn_rate_train_,
        "churn_validation_examples": float(getattr(churn.calibrator_, "n_validation_", 0)),
    }
    holdout_end = min(config.holdout_end, last_day) if config.holdout_end is not None else last_day
    holdout = None
    if holdout_end > cutoff:
        holdout = evaluate_holdout(scorer, engine, cutoff, holdout_end, calibration_scores)
        metrics.update(holdout.metrics)
    return TrainResult(scorer=scorer, metrics=metrics, n_customers=len(calibration), holdout=holdout,
                       calibration=calibration)


def _safe_corr(a: pd.Series, b: pd.Series) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a.to_numpy(dtype=float), b.to_numpy(dtype=float))[0, 1])
