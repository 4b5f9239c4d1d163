"""Training: transactions -> fitted :class:`CustomerScorer` (+ holdout evaluation).

Pure of MLflow: :mod:`custscore.training.tracking` logs what this returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from custscore.config import CHURN_STACK_MIN_HORIZON_DAYS, TrainConfig
from custscore.errors import CustscoreError, FitError
from custscore.features.customers import FeatureEngine
from custscore.features.rfm import duration_columns
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.calibration import calibration_window
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


def reference_windows(config: TrainConfig, cutoff: pd.Timestamp) -> list[tuple[pd.Timestamp, int]]:
    """Churn training windows ending at ``cutoff``: (reference date, label horizon in days).

    The first is the full-horizon window (reference = cutoff - horizon). Stacked windows
    (``config.churn_windows``) add one of 2/3 of the horizon, also ending at the cutoff:
    its customers are closer in age to the ones scored at the cutoff.
    """
    horizon = config.horizon_days
    stacked = config.churn_windows == "stacked" or (config.churn_windows == "auto"
                                                    and horizon >= CHURN_STACK_MIN_HORIZON_DAYS)
    horizons = [horizon] + ([2 * horizon // 3] if stacked and 2 * horizon // 3 > 0 else [])
    return [(cutoff - pd.Timedelta(days=h), h) for h in horizons]


def churn_examples(engine: FeatureEngine, config: TrainConfig,
                   cutoff: pd.Timestamp) -> list[tuple[pd.DataFrame, pd.Series]]:
    """Churn features and labels of every window of :func:`reference_windows` (full horizon first).

    In each window the features come from purchases up to the reference date (BG/NBD
    refitted there) and the label from (reference date, reference date + its horizon],
    which ends on or before ``cutoff``.
    """
    out = []
    for reference, horizon in reference_windows(config, cutoff):
        customers = engine.customer_features(reference, config.time_unit)
        bgnbd = fit_bgnbd(customers, config.time_unit, config, f"reference date {reference.date()}")
        X = churn_features(customers, bgnbd, horizon, config.time_unit)
        out.append((X, churn_labels(engine, X.index, reference, horizon)))
    return out


def fit_churn(engine: FeatureEngine, config: TrainConfig, first_day: pd.Timestamp) -> ChurnClassifier:
    """The churn classifier at ``config.cutoff``, calibrated as ``config.churn_calibration`` says."""
    windows = churn_examples(engine, config, config.cutoff)
    latest_X, latest_y = windows[0]  # the latest full-horizon window
    method = config.churn_calibration
    if calibration_window(method) == "earlier":
        # fit one horizon earlier, calibrate on the latest full-horizon window
        earlier = config.reference_date
        if earlier - pd.Timedelta(days=config.horizon_days) <= first_day:
            raise CustscoreError(
                f"churn_calibration {method}: cutoff minus twice the horizon "
                f"({(earlier - pd.Timedelta(days=config.horizon_days)).date()}) is not after the first transaction "
                f"({first_day.date()}); use churn_calibration sigmoid-latest or none")
        windows = churn_examples(engine, config, earlier)
    # One window: its frames as they are (a concat would copy millions of rows).
    X = pd.concat([w[0] for w in windows]) if len(windows) > 1 else windows[0][0]
    y = pd.concat([w[1] for w in windows]) if len(windows) > 1 else windows[0][1]
    if method == "none":
        return ChurnClassifier().fit(X, y)
    return ChurnClassifier(calibration=method).fit(X, y, latest_X, latest_y)


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

    # Churn examples: features <= each reference date, labels in (reference, cutoff].
    churn = fit_churn(engine, config, first_day)

    scorer = CustomerScorer(bgnbd=bgnbd, gamma_gamma=gamma_gamma, churn=churn, time_unit=config.time_unit,
                            horizon_days=config.horizon_days, discount_rate=config.discount_rate, cutoff=cutoff,
                            amount_decimals=config.columns.amount_decimals)
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
