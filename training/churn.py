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
from scipy.special import expit

from custscore.config import DAYS_PER_UNIT, DAYS_PER_YEAR
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine
from custscore.features.lookup import index_positions
from custscore.features.rfm import duration_columns
from custscore.training.covariates import for_customers
from custscore.training.purchase_models import PurchaseModel
from custscore.training.calibration import ProbabilityCalibrator, clipped_logit, fitting_method
from custscore.training.sampling import sample_positions

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
    # added with stacked reference windows (docs/models.md, "Churn model"): the label horizon of the
    # example and rates over the customer's own purchase rhythm
    "horizon_days",
    "days_since_last_over_tenure",
    "days_since_last_over_ipt",
    "horizon_over_ipt",
)
#: Features made of amounts: constant 0 for a log without amounts, so never fitted then.
SPEND_FEATURES: tuple[str, ...] = ("monetary_value", "spend_90d", "spend_365d")


def churn_labels(engine: FeatureEngine, known: pd.Index, reference_date: pd.Timestamp,
                 horizon_days: int) -> pd.Series:
    """1 if a customer in ``known`` makes no purchase in (reference, reference + horizon].

    ``known`` are the customers seen on or before ``reference_date`` (the index of the
    feature frame at that date). Returns an int Series indexed like ``known``.
    """
    end = reference_date + pd.Timedelta(days=horizon_days)
    active = engine.window_purchases(reference_date, end).index
    bought = index_positions(active, known) >= 0
    return pd.Series((~bought).astype(int), index=known, name="churned")


def churn_features(customers: pd.DataFrame, purchase_model: PurchaseModel, horizon_days: int,
                   time_unit: str) -> pd.DataFrame:
    """The classifier's input frame (columns :data:`CHURN_FEATURES`, durations in days).

    ``customers`` comes from :func:`~custscore.features.customers.customer_features` in
    ``time_unit``; ``purchase_model`` is fitted in the same unit: at training time the one
    fitted at the reference date, at scoring time the one fitted at the cutoff. Its
    P(alive) and expected purchases over the horizon become features. No NaN: a customer
    with fewer than two purchases gets ``ipt_mean_days`` = days since the first purchase.
    ``horizon_days`` is a feature too: stacked training windows carry different horizons.
    A model fitted with covariates uses the ones ``customers`` carries (:func:`for_customers`).
    """
    purchase_model = for_customers(purchase_model, customers)
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
    out["p_alive"] = purchase_model.p_alive(x, t_x, T)
    out["expected_purchases_horizon"] = purchase_model.expected_purchases(horizon_days / days, x, t_x, T)
    out["p_no_purchase_horizon"] = purchase_model.p_no_purchase(horizon_days / days, x, t_x, T)
    # the example's label horizon (stacked windows have several) and tenure-free ratios, all in days / days
    out["horizon_days"] = float(horizon_days)
    out["days_since_last_over_tenure"] = out["days_since_last_purchase"] / np.maximum(out["T_days"], 1.0)
    out["days_since_last_over_ipt"] = out["days_since_last_purchase"] / np.maximum(out["ipt_mean_days"], 1.0)
    out["horizon_over_ipt"] = horizon_days / np.maximum(out["ipt_mean_days"], 1.0)
    return out[list(CHURN_FEATURES)]


#: Rows per block in :meth:`ChurnClassifier.predict_proba` and :func:`feature_correlation` (bounds their
#: temporaries to a few MB).
_BLOCK_ROWS = 1 << 16
#: Features that are probabilities: they enter as clipped logits (bounded by +-13.8), not
#: as signed_log1p of a value squeezed against 1 (docs/models.md, "Churn model").
PROBABILITY_FEATURES: frozenset[str] = frozenset({"p_alive", "p_no_purchase_horizon"})
#: A transformed feature whose standard deviation is at most this times max(|mean|, 1)
#: is float noise at fit time: it is dropped instead of being divided by that spread.
NOISE_RTOL = 1e-8


def _signed_log1p(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``sign(x) log1p(|x|)`` with one temporary the size of ``x`` (a million-row frame is 160 MB), or
    none when ``out`` is ``x`` (the sign of ``x`` is kept through ``log1p`` of its magnitude)."""
    sign = np.signbit(x) if out is x else None  # a bool per value: 1/8 of a float copy
    out = np.abs(x, out=out)
    np.log1p(out, out=out)
    return np.negative(out, out=out, where=sign) if sign is not None else np.copysign(out, x, out=out)


def transform_features(A: np.ndarray, names: list[str], in_place: bool = False) -> np.ndarray:
    """The classifier's input transform, column by column: clipped logit for
    :data:`PROBABILITY_FEATURES`, signed ``log1p`` for counts, days and money. Shape of ``A``.

    ``in_place``: the result overwrites ``A`` (a float array the caller owns and no longer needs),
    equal to the new array it would be otherwise; saves a copy of a million-row matrix (160 MB)."""
    logits = {j: clipped_logit(A[:, j]) for j, name in enumerate(names) if name in PROBABILITY_FEATURES}
    out = _signed_log1p(A, out=A if in_place else None)
    for j, z in logits.items():
        out[:, j] = z
    return out


def feature_matrix(X: pd.DataFrame, names: list[str]) -> np.ndarray:
    """A new float array of the columns ``names`` of ``X`` (never a view of it: callers transform it in
    place), built without first copying ``X[names]`` as a frame."""
    if list(X.columns) == list(names):
        return X.to_numpy(dtype=float, copy=True)
    out = np.empty((len(X), len(names)))
    for j, name in enumerate(names):
        out[:, j] = X[name].to_numpy(dtype=float)
    return out


def feature_correlation(Z: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns of ``Z`` (shape (k, k)); 0 for a constant column, 1 on the diagonal.

    >>> feature_correlation(np.array([[1.0, 2.0, 5.0], [2.0, 4.0, 5.0], [3.0, 7.0, 5.0]])).round(3).tolist()
    [[1.0, 0.993, 0.0], [0.993, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    Z = np.asarray(Z, dtype=float)
    mean = Z.mean(axis=0)
    cross = np.zeros((Z.shape[1], Z.shape[1]))
    for start in range(0, len(Z), _BLOCK_ROWS):  # centred in blocks: no copy of a million rows
        centred = Z[start:start + _BLOCK_ROWS] - mean
        cross += centred.T @ centred
    norm = np.sqrt(np.diag(cross))
    with np.errstate(invalid="ignore", divide="ignore"):
        R = cross / np.outer(norm, norm)
    R = np.where(np.isfinite(R), R, 0.0)
    np.fill_diagonal(R, 1.0)
    return np.clip(R, -1.0, 1.0)


def noise_level_columns(Z: np.ndarray) -> np.ndarray:
    """Boolean mask of columns of ``Z`` whose spread is float noise relative to their magnitude."""
    mean = Z.mean(axis=0)
    return Z.std(axis=0) <= NOISE_RTOL * np.maximum(np.abs(mean), 1.0)


class ChurnClassifier:
    """Logistic regression on log-scaled RFM and activity features and logits of BG/NBD probabilities.

    Parameters
    ----------
    C : inverse L2 regularisation strength of the logistic regression (on standardised
        features); 0.01 ranked and calibrated best on the CDNOW backtests (docs/research.md).
    calibration : one of :data:`~custscore.training.calibration.CALIBRATION_METHODS`;
        anything but ``none`` needs a validation window passed to :meth:`fit` as
        ``X_val``, ``y_val`` (the caller picks the window, see
        :func:`~custscore.training.calibration.calibration_window`).
    max_train_examples : the logistic regression is fitted on at most this many training
        examples, drawn at random with ``seed`` (keeps a 5M-customer fit to seconds).

    ``predict_proba(X)`` returns P(churn) of shape ``(n_customers,)``; ``X`` is a frame
    with :data:`CHURN_FEATURES` or an array with those columns in that order.

    Fitted state is plain data: ``features_`` (input columns, :data:`CHURN_FEATURES`),
    ``used_features_`` and ``dropped_features_`` (constant or float-noise columns at fit
    time, given no weight), ``weights_`` (one per used feature, on the transformed scale)
    and ``bias_``, ``population_mean_`` and ``feature_correlation_`` (mean and correlation
    matrix of the used transformed features over the training examples, for
    :mod:`custscore.training.reasons`), ``calibrator_`` (a
    :class:`ProbabilityCalibrator`).
    """

    def __init__(self, *, C: float = 0.01, calibration: str = "none", max_train_examples: int = 500_000,
                 seed: int = 0, exclude: tuple[str, ...] = ()) -> None:
        self.C = C
        self.exclude = exclude
        self.calibration = calibration
        self.max_train_examples = max_train_examples
        self.seed = seed

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
        self.features_ = [c for c in CHURN_FEATURES if c not in self.exclude]
        keep = sample_positions(y.size, self.max_train_examples, self.seed)
        if keep is not None:  # draw the examples before building their matrix (rows first: no copy of all of X)
            A, y = feature_matrix(X.iloc[keep], self.features_), y[keep]
        else:
            A = feature_matrix(X, self.features_)
        bad = [name for name, ok in zip(self.features_, np.isfinite(A).all(axis=0)) if not ok]
        if bad:  # a bug upstream (churn_features promises finite values), never a silent fill
            raise ValueError(f"churn features not finite: {bad}")
        Z = transform_features(A, self.features_, in_place=True)
        noise = noise_level_columns(Z)
        self.dropped_features_ = [name for name, drop in zip(self.features_, noise) if drop]
        self.used_features_ = [name for name, drop in zip(self.features_, noise) if not drop]
        self._used_columns_ = np.flatnonzero(~noise)
        Z = Z[:, self._used_columns_]
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        from sklearn.linear_model import LogisticRegression  # fitting only: scoring needs no scikit-learn

        logistic = LogisticRegression(C=self.C, max_iter=2000).fit((Z - mean) / scale, y)
        # folded into one linear map of the transformed features: scoring one customer is a
        # dot product, and the fitted state is two arrays
        self.weights_ = logistic.coef_[0] / scale
        self.bias_ = float(logistic.intercept_[0] - self.weights_ @ mean)
        #: mean of the used transformed features over the training examples: the population
        #: the reasons compare a customer with (training.reasons)
        self.population_mean_ = mean
        #: correlation of the used transformed features over the same examples: reasons that
        #: move together are listed once (training.reasons)
        self.feature_correlation_ = feature_correlation(Z)
        self.n_train_ = int(y.size)
        self.churn_rate_train_ = float(y.mean())
        if self.calibration != "none" and X_val is None:
            raise ValueError(f"calibration {self.calibration!r} needs a validation window (X_val, y_val)")
        self.calibrator_ = ProbabilityCalibrator(method=fitting_method(self.calibration))
        if X_val is not None:
            self.calibrator_.fit(self._raw_proba(X_val), np.asarray(y_val))
        #: What was done, for the MLflow params (``none`` or ``METHOD`` on N validation rows).
        self.calibration_ = (self.calibration if self.calibration == "none"
                             else f"{self.calibration} on {self.calibrator_.n_validation_} examples")
        return self

    def _raw_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if not isinstance(X, np.ndarray) and list(X.columns) != self.features_:
            X = X[self.features_]  # churn_features() frames already hold exactly these columns
        if len(X) > _BLOCK_ROWS:  # rows in blocks: the temporaries of millions of rows stay small
            out = np.empty(len(X))
            for start in range(0, len(X), _BLOCK_ROWS):
                rows = slice(start, start + _BLOCK_ROWS)
                out[rows] = self._raw_proba(X[rows] if isinstance(X, np.ndarray) else X.iloc[rows])
            return out
        A = np.asarray(X, dtype=float) if isinstance(X, np.ndarray) else X.to_numpy(dtype=float)
        used = self._used_columns_
        Z = transform_features(A[:, used], [self.features_[j] for j in used], in_place=True)  # A[:, used] is a copy
        return expit(Z @ self.weights_ + self.bias_)

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(no purchase within the horizon), shape (n_customers,)."""
        if len(X) == 0:
            return np.zeros(0)
        return self.calibrator_.transform(self._raw_proba(X))
