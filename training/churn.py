"""Churn: leakage-free labels, the feature frame, and the classifier.

Churn means *no purchase in the ``horizon_days`` after a date*. Training examples are
built at a reference date (cutoff minus horizon): features from purchases on or before
the reference date, label from the window (reference date, reference date + horizon].
The same :func:`churn_features` builds the frame at scoring time, so training and
serving cannot drift apart.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from custscore.config import DAYS_PER_UNIT, DAYS_PER_YEAR
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine
from custscore.features.rfm import duration_columns
from custscore.training.calibration import ProbabilityCalibrator

#: Columns the classifier sees, in this order (training and scoring share the list).
CHURN_FEATURES: tuple[str, ...] = (
    "frequency",
    "recency_days",
    "T_days",
    "monetary_value",
    "days_since_last_purchase",
    "n_purchases_30d",
    "n_purchases_90d",
    "n_purchases_365d",
    "spend_90d",
    "spend_365d",
    "ipt_mean_days",
    "trend_90d",
    "purchase_rate_per_year",
    "p_alive",
    "expected_purchases_horizon",
    "p_no_purchase_horizon",
)


def churn_labels(engine: FeatureEngine, known: pd.Index, reference_date: pd.Timestamp,
                 horizon_days: int) -> pd.Series:
    """1 if a customer in ``known`` makes no purchase in (reference, reference + horizon].

    ``known`` are the customers seen on or before ``reference_date`` (the index of the
    feature frame at that date). Returns an int Series indexed like ``known``.
    """
    end = reference_date + pd.Timedelta(days=horizon_days)
    active = engine.window_purchases(reference_date, end).index
    return pd.Series((~known.isin(active)).astype(int), index=known, name="churned")


def churn_features(customers: pd.DataFrame, bgnbd, horizon_days: int, time_unit: str) -> pd.DataFrame:
    """The classifier's input frame (columns :data:`CHURN_FEATURES`, durations in days).

    ``customers`` comes from :func:`~custscore.features.customers.customer_features` in
    ``time_unit``; ``bgnbd`` is a fitted BG/NBD in the same unit: at training time the one
    fitted at the reference date, at scoring time the one fitted at the cutoff. Its
    P(alive) and expected purchases over the horizon become features. No NaN: a customer
    with fewer than two purchases gets ``ipt_mean_days`` = days since the first purchase.
    """
    recency_col, t_col = duration_columns(time_unit)
    days = DAYS_PER_UNIT[time_unit]
    x = customers["frequency"].to_numpy()
    t_x = customers[recency_col].to_numpy()
    T = customers[t_col].to_numpy()
    out = pd.DataFrame(index=customers.index)
    out["frequency"] = x.astype(float)
    out["recency_days"] = t_x * days
    out["T_days"] = T * days
    out["monetary_value"] = customers["monetary_value"].astype(float)
    for col in ("days_since_last_purchase", "n_purchases_30d", "n_purchases_90d", "n_purchases_365d",
                "spend_90d", "spend_365d", "trend_90d"):
        out[col] = customers[col].astype(float)
    out["ipt_mean_days"] = customers["ipt_mean_days"].fillna(out["T_days"])
    # repeat purchases per year of tenure: comparable between young and old customers
    out["purchase_rate_per_year"] = out["frequency"] / np.maximum(out["T_days"], 1.0) * DAYS_PER_YEAR
    out["p_alive"] = bgnbd.p_alive(x, t_x, T)
    out["expected_purchases_horizon"] = bgnbd.expected_purchases(horizon_days / days, x, t_x, T)
    out["p_no_purchase_horizon"] = p_no_purchase(bgnbd, horizon_days / days, x, T, out["p_alive"].to_numpy())
    return out[list(CHURN_FEATURES)]


def p_no_purchase(bgnbd, t: float, frequency: np.ndarray, T: np.ndarray, p_alive: np.ndarray) -> np.ndarray:
    """BG/NBD probability of no purchase in the next ``t`` (model time units), shape (n,).

    A dead customer never buys; an alive one stays alive without purchases (BG/NBD drops
    out only right after a purchase) and buys as Poisson(lambda) with posterior
    lambda ~ Gamma(r + x, alpha + T) (Fader, Hardie and Lee 2005, section 3), so
    ``P = (1 - P(alive)) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)``.
    """
    r, alpha = bgnbd.params_["r"], bgnbd.params_["alpha"]
    T = np.asarray(T, dtype=float)
    stay_silent = ((alpha + T) / (alpha + T + t)) ** (r + np.asarray(frequency, dtype=float))
    return (1.0 - p_alive) + p_alive * stay_silent


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class ChurnClassifier:
    """Logistic regression on log-scaled RFM, activity and BG/NBD features.

    Parameters
    ----------
    C : inverse L2 regularisation strength of the logistic regression.
    calibration : ``none``, ``sigmoid`` or ``isotonic``
        (:mod:`custscore.training.calibration`); anything but ``none`` needs a later
        validation window passed to :meth:`fit` as ``X_val``, ``y_val``.

    ``predict_proba(X)`` returns P(churn) of shape ``(n_customers,)``.
    """

    def __init__(self, *, C: float = 1.0, calibration: str = "none") -> None:
        self.C = C
        self.calibration = calibration

    def fit(self, X: pd.DataFrame, y: pd.Series, X_val: pd.DataFrame | None = None,
            y_val: pd.Series | None = None) -> "ChurnClassifier":
        """Fit on ``X``, ``y``; calibrate on the later window ``X_val``, ``y_val`` if given."""
        missing = [c for c in CHURN_FEATURES if c not in X.columns]
        if missing:
            raise ValueError(f"churn features missing: {missing}")
        y = np.asarray(y)
        if len(np.unique(y)) < 2:
            raise CustscoreError(
                "cannot train the churn classifier: every customer at the reference date has the same "
                f"label ({'churned' if y.size and y[0] == 1 else 'active'}); choose another cutoff or horizon"
            )
        self.pipeline_ = make_pipeline(
            FunctionTransformer(_signed_log1p),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=2000),
        )
        self.pipeline_.fit(X[list(CHURN_FEATURES)].to_numpy(dtype=float), y)
        self.n_train_ = int(y.size)
        self.churn_rate_train_ = float(y.mean())
        if self.calibration != "none" and X_val is None:
            raise ValueError(f"calibration {self.calibration!r} needs a validation window (X_val, y_val)")
        self.calibrator_ = ProbabilityCalibrator(method=self.calibration)
        if X_val is not None:
            self.calibrator_.fit(self._raw_proba(X_val), np.asarray(y_val))
        #: What was done, for the MLflow params (``none`` or ``METHOD`` on N validation rows).
        self.calibration_ = (self.calibration if self.calibration == "none"
                             else f"{self.calibration} on {self.calibrator_.n_validation_} later-window examples")
        return self

    def _raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.predict_proba(X[list(CHURN_FEATURES)].to_numpy(dtype=float))[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(no purchase within the horizon), shape (n_customers,)."""
        if len(X) == 0:
            return np.zeros(0)
        raw = self._raw_proba(X)
        calibrator = getattr(self, "calibrator_", None)  # scorers saved before calibration existed
        return raw if calibrator is None else calibrator.transform(raw)
