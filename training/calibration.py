"""Probability calibration of a churn score, fitted on a later (validation) time window.

The classifier is fitted on examples at an earlier reference date and this maps its
probabilities to the churn rates observed on the next, later window, so the calibration
learns how the base rate moved over time instead of re-learning the training fit.
Methods: ``none`` (identity), ``sigmoid`` (Platt: logistic regression on the logit),
``isotonic`` (monotone step function).
"""
from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from custscore.errors import CustscoreError

CALIBRATION_METHODS = ("none", "sigmoid", "isotonic")
#: Probabilities are clipped to [_EPS, 1 - _EPS] before taking the logit.
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


class ProbabilityCalibrator:
    """Map raw churn probabilities to calibrated ones.

    Parameters
    ----------
    method : one of :data:`CALIBRATION_METHODS`.

    >>> cal = ProbabilityCalibrator(method="sigmoid").fit(np.array([0.2, 0.2, 0.8, 0.8]), np.array([0, 1, 1, 1]))
    >>> bool(cal.transform(np.array([0.2]))[0] > 0.2)
    True
    """

    def __init__(self, *, method: str = "sigmoid") -> None:
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray) -> "ProbabilityCalibrator":
        if self.method not in CALIBRATION_METHODS:
            raise CustscoreError(f"churn_calibration: must be one of {list(CALIBRATION_METHODS)}, got {self.method!r}")
        y = np.asarray(y)
        if self.method == "sigmoid":
            self.model_ = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
        elif self.method == "isotonic":
            self.model_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(np.asarray(p), y)
        else:
            self.model_ = None
        self.n_validation_ = int(y.size)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape like ``p``."""
        if self.method == "sigmoid":
            return self.model_.predict_proba(_logit(p)[:, None])[:, 1]
        if self.method == "isotonic":
            return self.model_.predict(np.asarray(p, dtype=float))
        return np.asarray(p, dtype=float)
