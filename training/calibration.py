"""Probability calibration of a churn score on a time window of labelled examples.

Methods (:data:`CALIBRATION_METHODS`, defined in :mod:`custscore.config`):

- ``none``: the classifier's probabilities as they are;
- ``sigmoid``, ``isotonic``: the classifier is fitted one horizon earlier and Platt
  scaling (logistic regression on the logit) or a monotone step function maps its
  probabilities to the churn observed on the latest full-horizon window, so the
  calibration learns how the base rate moved over time;
- ``sigmoid-latest``: the classifier is fitted on the usual windows and Platt scaling
  on the latest full-horizon window (reference date = cutoff - horizon). It undoes the
  shrinkage of the L2-regularised probabilities and needs no extra history.

:func:`calibration_window` tells the caller which window to fit on.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from custscore.config import CHURN_CALIBRATION_METHODS
from custscore.errors import CustscoreError

CALIBRATION_METHODS = CHURN_CALIBRATION_METHODS
#: What :class:`ProbabilityCalibrator` fits for each method.
_FITTED = {"none": "none", "sigmoid": "sigmoid", "isotonic": "isotonic", "sigmoid-latest": "sigmoid"}
#: Probabilities are clipped to [PROBABILITY_EPS, 1 - PROBABILITY_EPS] before taking the logit.
PROBABILITY_EPS = 1e-6


def clipped_logit(p: np.ndarray) -> np.ndarray:
    """``ln(p / (1 - p))`` of ``p`` clipped to [PROBABILITY_EPS, 1 - PROBABILITY_EPS]: bounded by +-13.8."""
    p = np.clip(np.asarray(p, dtype=float), PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    return np.log(p / (1.0 - p))


def calibration_window(method: str) -> str:
    """``none``, ``earlier`` (classifier fitted one horizon before the cutoff) or ``latest``."""
    return {"none": "none", "sigmoid-latest": "latest"}.get(method, "earlier")


def fitting_method(method: str) -> str:
    """The mapping :class:`ProbabilityCalibrator` fits for ``method`` (``sigmoid-latest`` -> ``sigmoid``)."""
    if method not in _FITTED:
        raise CustscoreError(f"churn_calibration: must be one of {list(CALIBRATION_METHODS)}, got {method!r}")
    return _FITTED[method]


class ProbabilityCalibrator:
    """Map raw churn probabilities (or scores on the log-odds scale) to calibrated ones.

    Parameters
    ----------
    method : ``none``, ``sigmoid`` or ``isotonic`` (see :func:`fitting_method`).
    scale : ``probability`` (inputs in [0, 1]; Platt works on their clipped logit) or
        ``log-odds`` (inputs already on the real line, e.g. a transformed baseline score).

    Fitted state is plain numbers and arrays: ``slope_``, ``intercept_`` (Platt map
    ``expit(slope_ * z + intercept_)``) or ``thresholds_x_``, ``thresholds_y_`` (isotonic
    step function, linear between thresholds and clipped outside, as scikit-learn's).

    >>> cal = ProbabilityCalibrator(method="sigmoid").fit(np.array([0.2, 0.2, 0.8, 0.8]), np.array([0, 1, 1, 1]))
    >>> bool(cal.transform(np.array([0.2]))[0] > 0.2)
    True
    """

    def __init__(self, *, method: str = "sigmoid", scale: str = "probability") -> None:
        self.method = method
        self.scale = scale

    def _z(self, p: np.ndarray) -> np.ndarray:
        return clipped_logit(p) if getattr(self, "scale", "probability") == "probability" else np.asarray(p, dtype=float)

    def fit(self, p: np.ndarray, y: np.ndarray) -> "ProbabilityCalibrator":
        if self.method not in ("none", "sigmoid", "isotonic"):
            raise CustscoreError(f"calibration method: must be none, sigmoid or isotonic, got {self.method!r}")
        from sklearn.isotonic import IsotonicRegression  # fitting only: scoring needs no scikit-learn
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        # the fitted maps are kept as plain numbers and arrays (the model file is data only)
        if self.method == "sigmoid":
            platt = LogisticRegression(C=1e6, max_iter=1000).fit(self._z(p)[:, None], y)
            self.slope_, self.intercept_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        elif self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(np.asarray(p, dtype=float), y)
            self.thresholds_x_ = np.asarray(iso.X_thresholds_, dtype=float)
            self.thresholds_y_ = np.asarray(iso.y_thresholds_, dtype=float)
        self.n_validation_ = int(y.size)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape like ``p``."""
        if self.method == "sigmoid":
            return expit(self.slope_ * self._z(p) + self.intercept_)
        if self.method == "isotonic":
            return np.interp(np.asarray(p, dtype=float), self.thresholds_x_, self.thresholds_y_)
        return np.asarray(p, dtype=float)
