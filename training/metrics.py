"""Classification metrics for churn scores, with customer-bootstrap confidence intervals.

Pure functions of ``y`` (1 = churned) and a score (higher = more likely to churn). Every
metric takes optional non-negative ``weight`` per row: the bootstrap draws how many times
each customer appears (multinomial counts) and passes them as weights, which is exactly
resampling customers with replacement without copying the arrays. Ties in a score are
handled as random tie-breaking would be on average (AUC counts a tie as 1/2; the top
decile takes the same share of every tied group at its boundary).
"""
from __future__ import annotations

from typing import Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

#: Probabilities are clipped to [EPS, 1 - EPS] in the log loss.
EPS = 1e-15

Metric = Callable[..., float]


def _prepare(y, score, weight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    weight = np.ones_like(y) if weight is None else np.asarray(weight, dtype=float)
    if not (y.shape == score.shape == weight.shape) or y.ndim != 1:
        raise ValueError(f"y, score and weight must be 1-d of equal length, got {y.shape}, {score.shape}, "
                         f"{weight.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be 0 or 1")
    return y, score, weight


def _grouped(y, score, weight) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per distinct score, in increasing score order."""
    _, inverse = np.unique(score, return_inverse=True)
    return _group_counts(y, inverse, weight)


def _group_counts(y: np.ndarray, inverse: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.bincount(inverse, weights=weight * y)
    neg = np.bincount(inverse, weights=weight * (1.0 - y))
    return pos, neg


def _auc_from_groups(pos: np.ndarray, neg: np.ndarray) -> float:
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives with a strictly lower score
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def _pr_auc_from_groups(pos: np.ndarray, neg: np.ndarray) -> float:
    pos, neg = pos[::-1], neg[::-1]  # thresholds from the highest score down
    n_pos = pos.sum()
    if n_pos == 0:
        return float("nan")
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    precision = np.divide(tp, np.maximum(tp + fp, 1e-300))
    return float((pos / n_pos * precision).sum())


def _top_from_groups(pos: np.ndarray, neg: np.ndarray, fraction: float) -> tuple[float, float]:
    """(capture, lift) of the top ``fraction`` by score; tied groups at the edge shared pro rata."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    pos, neg = pos[::-1], neg[::-1]  # highest score first
    size = pos + neg
    n_pos, total = pos.sum(), size.sum()
    if n_pos == 0 or total == 0:
        return float("nan"), float("nan")
    before = np.cumsum(size) - size
    taken = np.clip(fraction * total - before, 0.0, size)  # weight taken from each tied group
    hit = float((np.divide(taken, np.maximum(size, 1e-300)) * pos).sum())
    capture = hit / n_pos
    return capture, capture / fraction


def roc_auc(y, score, weight=None) -> float:
    """Area under the ROC curve: P(score of a churner > score of a non-churner), ties 1/2.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    return _auc_from_groups(*_grouped(*_prepare(y, score, weight)))


def roc_points(y, score, weight=None) -> tuple[np.ndarray, np.ndarray, float]:
    """The ROC curve ``(false positive rate, true positive rate)``, each distinct score a threshold
    (highest first), from (0, 0) to (1, 1), and its area (:func:`roc_auc`): one sort of the score.

    >>> fpr, tpr, auc = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist(), auc
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], 0.75)
    """
    pos, neg = _grouped(*_prepare(y, score, weight))
    tp = np.concatenate([[0.0], np.cumsum(pos[::-1])])
    fp = np.concatenate([[0.0], np.cumsum(neg[::-1])])
    return fp / max(fp[-1], 1e-300), tp / max(tp[-1], 1e-300), _auc_from_groups(pos, neg)


def _placements(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values ``(V10 of each positive, V01 of each negative)``, ties 1/2.

    ``V10_i`` = share of negatives scored below positive i; ``V01_j`` = share of positives
    scored above negative j (DeLong, DeLong and Clarke-Pearson 1988, eq. 3, through midranks
    as in Sun and Xu 2014, "Fast implementation of DeLong's algorithm"); both average to the AUC.
    """
    from scipy.stats import rankdata

    positive = y == 1.0
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    every = rankdata(score)
    v10 = (every[positive] - rankdata(score[positive])) / n_neg
    v01 = 1.0 - (every[~positive] - rankdata(score[~positive])) / n_pos
    return v10, v01


def delong_problem(y, scores: Mapping[str, np.ndarray]) -> Optional[str]:
    """Why :func:`paired_auc_delong` cannot give a variance for these labels and scores, or None.

    >>> delong_problem([0, 1, 1], {"a": [0.1, 0.2, 0.3]})
    "DeLong's interval needs at least 2 churners and 2 non-churners"
    """
    y = np.asarray(y, dtype=float)
    if min(int(np.sum(y == 1.0)), int(np.sum(y == 0.0))) < 2:
        return "DeLong's interval needs at least 2 churners and 2 non-churners"
    if not all(np.isfinite(np.asarray(score, dtype=float)).all() for score in scores.values()):
        return "DeLong's interval needs finite scores"
    return None


def paired_auc_delong(y, scores: Mapping[str, np.ndarray], reference: str,
                      level: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """``AUC(name) - AUC(reference)`` with its normal interval from DeLong's covariance, per other name.

    DeLong, DeLong and Clarke-Pearson (1988), "Comparing the Areas under Two or More
    Correlated Receiver Operating Characteristic Curves", Biometrics 44(3): the variance of
    the paired difference is ``var(V10_a - V10_b) / m + var(V01_a - V01_b) / n`` over the m
    positives and n negatives. O(N log N) once, where a bootstrap evaluates every resample.
    Needs finite scores and at least 2 positives and 2 negatives (else ``ValueError``).

    >>> d, low, high = paired_auc_delong([0, 0, 1, 1], {"a": [0.1, 0.4, 0.35, 0.8], "b": [0.1, 0.2, 0.3, 0.4]}, "b")["a"]
    >>> round(d, 2)
    -0.25
    """
    from scipy.stats import norm

    y = np.asarray(y, dtype=float)
    problem = delong_problem(y, scores)
    if problem is not None:
        raise ValueError(problem)
    parts = {name: _placements(*_prepare(y, score, None)[:2]) for name, score in scores.items()}
    ref10, ref01 = parts[reference]
    z = float(norm.ppf(0.5 + level / 2.0))
    out = {}
    for name, (v10, v01) in parts.items():
        if name == reference:
            continue
        d10, d01 = v10 - ref10, v01 - ref01
        diff = float(d10.mean())
        se = float(np.sqrt(d10.var(ddof=1) / d10.size + d01.var(ddof=1) / d01.size))
        out[name] = (diff, diff - z * se, diff + z * se)
    return out


def pr_auc(y, score, weight=None) -> float:
    """Average precision: sum over thresholds of (recall step) x precision.

    Thresholds are the distinct scores, highest first (scikit-learn's definition).

    >>> round(pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    return _pr_auc_from_groups(*_grouped(*_prepare(y, score, weight)))


def top_capture(y, score, weight=None, fraction: float = 0.1) -> float:
    """Share of all churners found in the top ``fraction`` by score (the gains curve there).

    >>> top_capture([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], fraction=0.2)
    0.5
    """
    return float(_top_from_groups(*_grouped(*_prepare(y, score, weight)), fraction)[0])


def top_lift(y, score, weight=None, fraction: float = 0.1) -> float:
    """Churn rate in the top ``fraction`` by score divided by the overall churn rate.

    >>> top_lift([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], fraction=0.2)
    2.5
    """
    return float(_top_from_groups(*_grouped(*_prepare(y, score, weight)), fraction)[1])


def brier(y, p, weight=None) -> float:
    """Mean squared difference between the probability and the outcome.

    >>> round(brier([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    y, p, weight = _prepare(y, p, weight)
    return float(np.average((p - y) ** 2, weights=weight))


def log_loss(y, p, weight=None) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped to [EPS, 1 - EPS]."""
    y, p, weight = _prepare(y, p, weight)
    p = np.clip(p, EPS, 1.0 - EPS)
    return float(np.average(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)), weights=weight))


def expected_calibration_error(y, p, weight=None, n_bins: int = 10) -> float:
    """ECE: share-weighted mean |observed rate - mean probability| over equal-width bins.

    Bins are [0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1]; empty bins are skipped.

    >>> round(expected_calibration_error([0, 1, 1, 1], [0.1, 0.15, 0.9, 0.8], n_bins=2), 4)
    0.2625
    """
    y, p, weight = _prepare(y, p, weight)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    w = np.bincount(bins, weights=weight, minlength=n_bins)
    gap = np.bincount(bins, weights=weight * (y - p), minlength=n_bins)
    total = w.sum()
    return float(np.abs(gap).sum() / total) if total > 0 else float("nan")


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width bin: customers, mean probability, observed churn rate (the diagram)."""
    y, p, _ = _prepare(y, p, None)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y})
    out = frame.groupby("bin").agg(customers=("y", "size"), mean_probability=("p", "mean"),
                                   observed_rate=("y", "mean")).reset_index()
    out["bin_low"] = out["bin"] / n_bins
    return out.drop(columns="bin")


def gains_curve(y, score, n_points: int = 101) -> pd.DataFrame:
    """Cumulative share of churners captured against the share of customers targeted."""
    fractions = np.linspace(0.0, 1.0, n_points)
    captured = [0.0] + [top_capture(y, score, fraction=f) for f in fractions[1:]]
    return pd.DataFrame({"share_targeted": fractions, "share_captured": captured})


def _lift_top10(pos: np.ndarray, neg: np.ndarray) -> float:
    return _top_from_groups(pos, neg, 0.1)[1]


def _capture_top10(pos: np.ndarray, neg: np.ndarray) -> float:
    return _top_from_groups(pos, neg, 0.1)[0]


#: Ranking metrics (any score, higher = more churn) as functions of the per-distinct-score
#: positive and negative weights, so a bootstrap resample costs two ``bincount`` calls.
RANKING_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": _auc_from_groups, "pr_auc": _pr_auc_from_groups,
    "lift_top10": _lift_top10, "capture_top10": _capture_top10,
}
#: Metrics of a probability of churn, ``f(y, p, weight)``.
PROBABILITY_METRICS: dict[str, Metric] = {"brier": brier, "log_loss": log_loss,
                                          "ece": expected_calibration_error}


def bootstrap_weights(n_rows: int, n_boot: int, seed: int,
                      groups: Optional[np.ndarray] = None) -> Iterator[np.ndarray]:
    """``n_boot`` resampling counts of shape ``(n_rows,)``: customers drawn with replacement.

    With ``groups`` (a customer key per row, e.g. the same customer at several origins),
    whole customers are drawn and every row of a customer gets its count. A generator:
    the counts are never all held in memory.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, n_groups = None, n_rows
    else:
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        n_groups = int(codes.max()) + 1 if len(codes) else 0
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups).astype(float)
        yield counts if codes is None else counts[codes]


def bootstrap_table(y, scores: Mapping[str, np.ndarray], *, probabilities: tuple[str, ...] = (),
                    reference: Optional[str] = None, n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95, groups: Optional[np.ndarray] = None,
                    ranking: Sequence[str] = tuple(RANKING_METRICS)) -> pd.DataFrame:
    """Point estimate and percentile interval of every metric of every score.

    ``scores`` maps a name to a churn score (higher = more likely to churn); the
    :data:`RANKING_METRICS` named in ``ranking`` (default all) are computed for all, the
    :data:`PROBABILITY_METRICS` only for the names in ``probabilities``. All scores are evaluated on the same resamples of
    customers (``groups``: see :func:`bootstrap_weights`), so with ``reference`` the
    table also gives the paired difference ``score - reference`` and its interval: the
    test of whether one score beats another by more than the noise.
    Columns: ``score, metric, estimate, ci_low, ci_high`` (+ ``diff, diff_low, diff_high``).
    """
    y = np.asarray(y, dtype=float)
    prepared = {name: _prepare(y, score, None)[1] for name, score in scores.items()}
    inverse = {name: np.unique(score, return_inverse=True)[1] for name, score in prepared.items()}

    def evaluate(weight: np.ndarray) -> dict[tuple[str, str], float]:
        out = {}
        for name, score in prepared.items():
            pos, neg = _group_counts(y, inverse[name], weight)
            out.update({(name, m): RANKING_METRICS[m](pos, neg) for m in ranking})
            if name in probabilities:
                out.update({(name, m): f(y, score, weight) for m, f in PROBABILITY_METRICS.items()})
        return out

    point = evaluate(np.ones_like(y))
    replicates = [evaluate(w) for w in bootstrap_weights(len(y), n_boot, seed, groups)]
    boot = {key: np.array([r[key] for r in replicates]) for key in point}
    tail = 100.0 * (1.0 - level) / 2.0
    rows = []
    for (name, metric_name), estimate in point.items():
        row = {"score": name, "metric": metric_name, "estimate": estimate}
        row["ci_low"], row["ci_high"] = _interval(boot[name, metric_name], tail)
        if reference is not None:
            ref = (reference, metric_name)
            nan2 = (float("nan"), float("nan"))
            row["diff"] = estimate - point[ref] if ref in point else float("nan")
            row["diff_low"], row["diff_high"] = (_interval(boot[name, metric_name] - boot[ref], tail)
                                                 if ref in point else nan2)
        rows.append(row)
    return pd.DataFrame(rows)


def _interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)
