"""Which churn score ships as ``churn_probability``: the classifier or a calibrated baseline.

The choice is made out of time: at reference date ``R = cutoff - horizon`` every
candidate scores the customers known at ``R`` (the classifier fitted on windows that end
at ``R``, the baselines from the BG/NBD fitted at ``R``), and the labels are the window
``(R, cutoff]``, so nothing after the cutoff is used and the classifier never sees the
labels it is judged on. Rule (:func:`choose_churn_model`, docs/models.md "Churn model"): the
classifier ships unless the best baseline's validation AUC is ahead of it by more than
:data:`~custscore.config.CHURN_SELECT_MARGIN` or ahead beyond the noise (the lower end of
the 95 % paired-bootstrap interval of baseline - classifier above 0); otherwise a baseline
ships, Platt-calibrated on the same window: :data:`DEFAULT_BASELINE` unless another is
ahead of it by more than the margin and beyond the noise.

**Short history** (:func:`validation_horizon`). Validating the classifier at the full
horizon ``H`` needs ``2 H`` of history before the cutoff (its own training window ends at
``R`` and starts at ``R - H``; ``3 H`` with the ``sigmoid``/``isotonic`` calibrations) plus
:data:`VALIDATION_MIN_HISTORY_DAYS`. With less, the rule runs on the longest shorter horizon
``h`` that fits (never below :data:`VALIDATION_MIN_SHARE` x ``H``): the same classifier recipe
(windows, calibration) with horizon ``h`` is fitted as of ``cutoff - h``, and it and the
baselines (BG/NBD refitted at ``cutoff - h``, horizon ``h``) are compared on the labels
``(cutoff - h, cutoff]``. Still nothing after the cutoff. The caveat is honest and logged:
a ranking that wins at ``h`` days is taken to win at ``H`` days (metric
``churn_validation_horizon_days``, a ``warning:`` line). The shipped model itself is fitted
as before, at the cutoff with horizon ``H``; a shipped baseline is calibrated on the full
horizon window ``(cutoff - H, cutoff]``.

**No multiple-comparison correction, on purpose.** The classifier is compared with the
*best* of five baselines picked on the same window. Picking the maximum of five noisy AUCs
over-states the best baseline (winner's curse), so the comparison is biased against the
classifier, never for it: the error it can make is to ship a baseline when the classifier
is as good, which costs little (the baseline is calibrated and is itself the best on that
window). Measured in a null world (20,000 customers, classifier and five baselines equally
good, 200 resamples, 40 worlds each): a baseline shipped in 17/40 worlds when the scores'
noises were independent and in 5/40 when they shared 90 % of it (as BG/NBD baselines and
the classifier do). A Bonferroni-style widening would make "ahead beyond the noise" harder
to reach for the baseline, i.e. correct that bias in the classifier's favour; the rule was
not changed, since on CDNOW the classifier clears it at every origin (docs/lifecycle.md "Backtest")
and a tie that ships a baseline loses nothing measurable. The one step biased towards
switching, a non-default baseline replacing :data:`DEFAULT_BASELINE`, requires both the
margin and the bootstrap interval to clear, which bounds it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from custscore.config import CHURN_SELECT_MARGIN
from custscore.training.calibration import ProbabilityCalibrator
from custscore.training.churn import CHURN_FEATURES, feature_correlation, feature_matrix, transform_features
from custscore.training.metrics import bootstrap_table, delong_problem, paired_auc_delong, roc_auc

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
#: From this many validation customers on, the paired AUC interval is DeLong's normal one
#: (tests/test_churn_select.py: within a few % of the bootstrap's there).
DELONG_FROM = 50_000
#: Days of purchases before the earliest reference date of the classifier being validated
#: (a BG/NBD fitted on the first few days of a log sees almost no repeat purchases).
VALIDATION_MIN_HISTORY_DAYS = 30
#: The shortest validation horizon used, as a share of the horizon: below it the classifier
#: is not validated and a baseline ships.
VALIDATION_MIN_SHARE = 0.5


def validation_horizon(horizon_days: int, history_days: int, horizons_before: int = 1) -> int:
    """Days of the validation window ending at the cutoff; 0 when the classifier cannot be validated.

    ``history_days`` = cutoff - first transaction day; ``horizons_before`` = horizons of
    history the classifier fitted as of ``cutoff - h`` needs before that date (1; 2 when
    it is calibrated on a window one horizon earlier). The answer is the longest
    ``h <= horizon_days`` with ``(1 + horizons_before) h + VALIDATION_MIN_HISTORY_DAYS <=
    history_days``, or 0 when that is below ``VALIDATION_MIN_SHARE * horizon_days``.
    """
    h = min(horizon_days, (history_days - VALIDATION_MIN_HISTORY_DAYS) // (1 + horizons_before))
    return int(h) if h >= shortest_validation_horizon(horizon_days) else 0


def shortest_validation_horizon(horizon_days: int) -> int:
    """The shortest validation window :func:`validation_horizon` uses, in days."""
    return max(1, math.ceil(VALIDATION_MIN_SHARE * horizon_days))


def validation_history_days(horizon_days: int, horizons_before: int = 1) -> int:
    """Days of history before the cutoff that validating the classifier needs at all."""
    return (1 + horizons_before) * shortest_validation_horizon(horizon_days) + VALIDATION_MIN_HISTORY_DAYS


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
        #: mean and correlation of every transformed churn feature on this window (training.reasons' population)
        Z = transform_features(feature_matrix(X, self.features_), self.features_, in_place=True)
        self.population_mean_ = Z.mean(axis=0)
        self.feature_correlation_ = feature_correlation(Z)
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
    classifier could not be validated); ``validation_horizon_days`` = that window's label
    horizon (shorter than the model's horizon when history is short, :func:`validation_horizon`).
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
    validation_horizon_days: int = 0

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: ``churn_validation_auc_NAME`` and the difference with its interval."""
        out = {f"churn_validation_auc_{name}": auc for name, auc in self.validation_auc.items()}
        out.update({"churn_validation_best_baseline_minus_classifier": self.diff,
                    "churn_validation_best_baseline_minus_classifier_low": self.diff_low,
                    "churn_validation_best_baseline_minus_classifier_high": self.diff_high,
                    "churn_validation_examples": float(self.validation_examples),
                    "churn_validation_horizon_days": float(self.validation_horizon_days)})
        return out


def _paired_auc(y: np.ndarray, scores: Mapping[str, np.ndarray], reference: str, seed: int,
                n_boot: int) -> dict[str, tuple[float, float, float]]:
    """AUC(name) - AUC(reference) with its 95 % interval, per other name: paired bootstrap, or
    DeLong's from :data:`DELONG_FROM` customers on (the same interval there, and seconds
    instead of a minute for millions of customers)."""
    if len(y) >= DELONG_FROM and delong_problem(y, scores) is None:
        return paired_auc_delong(y, scores, reference)
    table = bootstrap_table(y, scores, reference=reference, n_boot=n_boot, seed=seed, ranking=("auc",))
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
