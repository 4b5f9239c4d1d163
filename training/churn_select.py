"""Which churn score ships as ``churn_probability``: the classifier or a calibrated baseline.

The choice is made out of time: at reference date ``R = cutoff - horizon`` every
candidate scores the customers known at ``R`` (the classifier fitted on windows that end
at ``R``, the baselines from the BG/NBD fitted at ``R``), and the labels are the window
``(R, cutoff]``, so nothing after the cutoff is used and the classifier never sees the
labels it is judged on. Rule (:func:`choose_churn_model`, README "Churn model"): the
classifier ships unless the best baseline's validation AUC is ahead of it by more than
:data:`~custscore.config.CHURN_SELECT_MARGIN` or ahead beyond the noise (the lower end of
the 95 % paired-bootstrap interval of baseline - classifier above 0); otherwise a baseline
ships, Platt-calibrated on the same window: :data:`DEFAULT_BASELINE` unless another is
ahead of it by more than the margin and beyond the noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from custscore.config import CHURN_SELECT_MARGIN
from custscore.training.calibration import ProbabilityCalibrator
from custscore.training.churn import CHURN_FEATURES, transform_features
from custscore.training.metrics import bootstrap_table, roc_auc

#: The classifier's name in :attr:`CustomerScorer.churn_model` and the selection tables.
CLASSIFIER = "classifier"
#: Baselines: name -> (churn feature column, sign making higher = more churn).
BASELINES: dict[str, tuple[str, float]] = {
    "baseline_bgnbd_p_no_purchase": ("p_no_purchase_horizon", 1.0),
    "baseline_bgnbd_expected_purchases": ("expected_purchases_horizon", -1.0),
    "baseline_bgnbd_p_alive": ("p_alive", -1.0),
    "baseline_days_since_last_purchase": ("days_since_last_purchase", 1.0),
    "baseline_n_purchases_90d": ("n_purchases_90d", -1.0),
}
#: The baseline that ships unless another one is ahead beyond the noise: BG/NBD's own
#: probability of no purchase in the horizon, the quantity ``churn_probability`` estimates.
DEFAULT_BASELINE = "baseline_bgnbd_p_no_purchase"
#: Below this best validation AUC the window cannot rank churners: the default baseline
#: ships as BG/NBD gives it (no calibration learned from a window that tells nothing).
MIN_VALIDATION_AUC = 0.55
#: Paired bootstrap resamples of the validation window.
SELECT_BOOTSTRAP = 200


def _column(X: pd.DataFrame | np.ndarray, name: str) -> np.ndarray:
    if isinstance(X, np.ndarray):
        return X[:, CHURN_FEATURES.index(name)].astype(float)
    return X[name].to_numpy(dtype=float)


def baseline_scores(X: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
    """Every baseline of :data:`BASELINES` from a churn feature frame, higher = more churn."""
    return {name: sign * _column(X, col) for name, (col, sign) in BASELINES.items()}


class BaselineChurnModel:
    """A baseline score made a churn probability: Platt scaling of its transformed value.

    Parameters
    ----------
    name : a key of :data:`BASELINES`.

    The baseline's feature goes through the classifier's own transform (clipped logit of a
    probability, signed ``log1p`` of days and counts, see
    :func:`~custscore.training.churn.transform_features`) times its sign, and a logistic
    map ``expit(slope * z + intercept)`` is fitted on a labelled window: strictly monotone,
    so the probability ranks customers exactly as the baseline does. ``predict_proba`` takes
    a frame or an array with :data:`CHURN_FEATURES` columns, like the classifier.
    """

    def __init__(self, *, name: str) -> None:
        self.name = name

    def _z(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        col, sign = BASELINES[self.name]
        return sign * transform_features(_column(X, col)[:, None], [col])[:, 0]

    def fit(self, X: pd.DataFrame, y: pd.Series, calibrate: bool = True) -> "BaselineChurnModel":
        """Calibrate on features ``X`` at a reference date and labels ``y`` of the window after it.

        ``calibrate=False``, or a window where the fitted slope is not positive (it would
        reverse the baseline's ranking), keeps the identity map: for
        :data:`DEFAULT_BASELINE` that is BG/NBD's own probability.
        """
        if self.name not in BASELINES:
            raise ValueError(f"unknown churn baseline {self.name!r}")
        self.features_ = list(CHURN_FEATURES)
        #: mean of every transformed churn feature on this window (training.reasons' population)
        self.population_mean_ = transform_features(X[self.features_].to_numpy(dtype=float), self.features_).mean(axis=0)
        self.calibrator_ = ProbabilityCalibrator(method="sigmoid", scale="log-odds").fit(self._z(X), np.asarray(y))
        self.calibration_ = f"sigmoid on {self.calibrator_.n_validation_} examples"
        if not calibrate or self.calibrator_.slope_ <= 0.0:
            self.calibrator_.slope_, self.calibrator_.intercept_ = 1.0, 0.0
            self.calibration_ = "none (the validation window cannot rank churners)"
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(no purchase within the horizon), shape (n_customers,)."""
        if len(X) == 0:
            return np.zeros(0)
        return self.calibrator_.transform(self._z(X))


@dataclass
class ChurnSelection:
    """What ships (``model``: :data:`CLASSIFIER` or a baseline name) and why.

    ``validation_auc`` per candidate on the window ending at the cutoff; ``diff`` =
    best baseline - classifier with its 95 % paired-bootstrap interval (NaN when the
    classifier could not be validated).
    """

    model: str
    reason: str
    validation_auc: dict[str, float] = field(default_factory=dict)
    best_baseline: str = ""
    diff: float = float("nan")
    diff_low: float = float("nan")
    diff_high: float = float("nan")
    validation_examples: int = 0
    #: False when the best validation AUC is below MIN_VALIDATION_AUC (nothing learned from it)
    informative: bool = True

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: ``churn_validation_auc_NAME`` and the difference with its interval."""
        out = {f"churn_validation_auc_{name}": auc for name, auc in self.validation_auc.items()}
        out.update({"churn_validation_best_baseline_minus_classifier": self.diff,
                    "churn_validation_best_baseline_minus_classifier_low": self.diff_low,
                    "churn_validation_best_baseline_minus_classifier_high": self.diff_high,
                    "churn_validation_examples": float(self.validation_examples)})
        return out


def _paired_auc(y: np.ndarray, scores: Mapping[str, np.ndarray], reference: str, seed: int,
                n_boot: int) -> dict[str, tuple[float, float, float]]:
    """AUC(name) - AUC(reference) with its 95 % paired-bootstrap interval, per other name."""
    table = bootstrap_table(y, scores, reference=reference, n_boot=n_boot, seed=seed)
    rows = table[(table["metric"] == "auc") & (table["score"] != reference)]
    return {r.score: (float(r.diff), float(r.diff_low), float(r.diff_high)) for r in rows.itertuples()}


def choose_churn_model(y: np.ndarray, scores: Mapping[str, np.ndarray], *, seed: int = 0,
                       n_boot: int = SELECT_BOOTSTRAP, margin: float = CHURN_SELECT_MARGIN,
                       classifier_missing: str = "") -> ChurnSelection:
    """Apply the shipping rule to validation ``scores`` (higher = more churn) of labels ``y``.

    ``scores`` holds the baselines and, when it could be validated, :data:`CLASSIFIER`;
    ``classifier_missing`` says why it could not. A challenger is *ahead* of another when
    its AUC is higher by more than ``margin`` or when the lower end of the interval of the
    paired difference is above 0. A window whose best AUC is below :data:`MIN_VALIDATION_AUC`
    ships :data:`DEFAULT_BASELINE` uncalibrated. Otherwise the baseline that ships is :data:`DEFAULT_BASELINE`
    unless the best baseline is ahead of it by more than ``margin`` *and* beyond the noise
    (a window that cannot rank churners keeps the BG/NBD answer to the question churn
    asks); the classifier ships unless the best baseline is ahead of it.
    """
    y = np.asarray(y)
    baselines = {k: v for k, v in scores.items() if k != CLASSIFIER}
    aucs = {name: roc_auc(y, s) for name, s in scores.items()}
    best = max(baselines, key=lambda k: aucs[k])
    n = int(y.size)
    if max(aucs.values()) < MIN_VALIDATION_AUC:
        return ChurnSelection(model=DEFAULT_BASELINE, best_baseline=best, validation_auc=aucs, validation_examples=n,
                              informative=False,
                              reason=f"the validation window cannot rank churners (best AUC {max(aucs.values()):.3f} "
                                     f"on {n} customers); shipping {DEFAULT_BASELINE} uncalibrated")
    baseline, why_baseline = DEFAULT_BASELINE, f"{DEFAULT_BASELINE} (the default baseline)"
    if best != DEFAULT_BASELINE:
        d, low, high = _paired_auc(y, baselines, DEFAULT_BASELINE, seed, n_boot)[best]
        if d > margin and low > 0.0:
            baseline, why_baseline = best, f"{best} (ahead of {DEFAULT_BASELINE} by {d:+.3f} [{low:+.3f}, {high:+.3f}])"
        else:
            why_baseline += f", {best} not ahead beyond the noise ({d:+.3f} [{low:+.3f}, {high:+.3f}])"
    if CLASSIFIER not in scores:
        return ChurnSelection(model=baseline, best_baseline=best, validation_auc=aucs, validation_examples=n,
                              reason=f"classifier not validated ({classifier_missing}); shipping {why_baseline}")
    diff, low, high = _paired_auc(y, {CLASSIFIER: scores[CLASSIFIER], best: baselines[best]}, CLASSIFIER, seed,
                                  n_boot)[best]
    ahead = diff > margin or low > 0.0
    text = (f"validation AUC classifier {aucs[CLASSIFIER]:.3f}, best baseline {best} {aucs[best]:.3f}, "
            f"difference {diff:+.3f} [{low:+.3f}, {high:+.3f}]")
    reason = (f"{text}: the baseline is ahead by more than {margin} or beyond the noise; shipping {why_baseline}"
              if ahead else f"{text}: the classifier is not worse beyond the noise")
    return ChurnSelection(model=baseline if ahead else CLASSIFIER, reason=reason, validation_auc=aucs,
                          best_baseline=best, diff=diff, diff_low=low, diff_high=high, validation_examples=n)


def candidate_scores(X: pd.DataFrame, shipped: np.ndarray,
                     classifier: Optional[object] = None) -> dict[str, np.ndarray]:
    """Churn scores compared in holdouts and backtests: ``churn_probability`` (what shipped),
    ``churn_classifier`` (when fitted) and every baseline, on the customers of ``X``."""
    out = {"churn_probability": np.asarray(shipped, dtype=float)}
    if classifier is not None:
        out["churn_classifier"] = classifier.predict_proba(X)
    out.update(baseline_scores(X))
    return out
