"""Reasons per customer: the drivers that raise this customer's churn risk most, in words.

Method (README, "Reasons"). Every churn model scores the transformed churn features
``z = transform_features(x)`` (:func:`~custscore.training.churn.transform_features`:
clipped logit of probabilities, signed ``log1p`` of days, counts and money). The
population is the model's training examples; ``population_mean_`` (a plain array, one
entry per scored column) is stored at fit time.

- Shipped :class:`~custscore.training.churn.ChurnClassifier` (a linear model of the
  log-odds): feature ``j`` contributes ``c_ij = weights_[j] * (z_ij - population_mean_[j])``
  to customer ``i``'s log-odds of churn relative to a customer at the population mean
  (the contributions add up exactly to ``logit(p_i) - logit(p_mean)`` before calibration,
  which is monotone). The reasons are the (up to) :data:`N_REASONS` largest *positive*
  contributions, largest first; ``horizon_days`` is left out (the same for every
  customer of a scoring run, it says nothing about the customer).
- Shipped :class:`~custscore.training.churn_select.BaselineChurnModel` (one feature):
  its single driver, then the :data:`ACTIVITY_FACTS`, each listed only when it is on the
  risky side of the population mean (``sign * (z_ij - mean_j) > 0``).

Each reason quotes the customer's own numbers and, where it helps, the typical customer
of the population (the mean mapped back through the inverse transform).
"""
from __future__ import annotations

import string
from typing import Any, Mapping

import numpy as np

from custscore.training.churn import CHURN_FEATURES, PROBABILITY_FEATURES, transform_features
from custscore.training.churn_select import BASELINES

#: Text columns added to the score table (empty text when fewer reasons).
REASON_COLUMNS: tuple[str, ...] = ("reason_1", "reason_2", "reason_3")
N_REASONS = len(REASON_COLUMNS)
#: Features never given as a reason: the same for every customer of a scoring run.
NOT_REASONS: frozenset[str] = frozenset({"horizon_days"})
#: Facts listed after a shipped baseline's own driver: feature -> sign (higher = more churn).
ACTIVITY_FACTS: Mapping[str, float] = {"days_since_last_over_ipt": 1.0, "n_purchases_90d": -1.0,
                                       "n_purchases_365d": -1.0}


def typical_value(mean_z: float, name: str) -> float:
    """The feature value whose transform is ``mean_z`` (inverse of :func:`transform_features`)."""
    if name in PROBABILITY_FEATURES:
        return float(1.0 / (1.0 + np.exp(-mean_z)))
    return float(np.sign(mean_z) * np.expm1(abs(mean_z)))


def driver_contributions(model, A: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, bool]:
    """(feature names, contributions shape (n, k), population means shape (k,), ranked) of ``model``.

    ``A`` holds the :data:`CHURN_FEATURES` columns in that order. For a classifier the
    contributions are ``weights_ * (z - population_mean_)`` and ``ranked`` is True (the
    largest first); for a baseline they are ``sign * (z - population_mean_)`` of its
    driver and the :data:`ACTIVITY_FACTS`, kept in that order (``ranked`` False). A model
    fitted before reasons existed (no ``population_mean_``) gives no drivers.
    """
    A = np.asarray(A, dtype=float)
    mean = getattr(model, "population_mean_", None)
    if mean is None:
        return [], np.zeros((len(A), 0)), np.zeros(0), True
    if hasattr(model, "weights_"):
        names = list(model.used_features_)
        columns = [CHURN_FEATURES.index(n) for n in names]
        C = model.weights_ * (transform_features(A[:, columns], names) - mean)
        keep = [j for j, n in enumerate(names) if n not in NOT_REASONS]
        return [names[j] for j in keep], C[:, keep], np.asarray(mean)[keep], True
    driver, sign = BASELINES[model.name]
    signs = {driver: sign, **{k: v for k, v in ACTIVITY_FACTS.items() if k != driver}}
    names = list(signs)
    columns = [CHURN_FEATURES.index(n) for n in names]
    full_mean = np.asarray(mean)[columns]
    C = np.array([signs[n] for n in names]) * (transform_features(A[:, columns], names) - full_mean)
    return names, C, full_mean, False


def top_drivers(contributions: np.ndarray, k: int = N_REASONS, ranked: bool = True) -> np.ndarray:
    """Column positions of the first ``k`` positive contributions per row; -1 pads. Shape ``(n, k)``.

    ``ranked``: largest first (ties keep the column order); otherwise in column order.

    >>> top_drivers(np.array([[0.5, -1.0, 2.0, 0.1], [-1.0, -2.0, 0.0, 0.0]]), 3).tolist()
    [[2, 0, 3], [-1, -1, -1]]
    >>> top_drivers(np.array([[0.5, -1.0, 2.0, 0.1]]), 2, ranked=False).tolist()
    [[0, 2]]
    """
    n, m = contributions.shape
    order = np.broadcast_to(np.arange(m), (n, m))
    if ranked:
        order = np.argsort(-contributions, axis=1, kind="stable")
    positive = np.take_along_axis(contributions, order, axis=1) > 0
    # positive ones first, each group in ``order``; then cut to k and pad with -1
    order = np.take_along_axis(order, np.argsort(~positive, axis=1, kind="stable"), axis=1)
    count = positive.sum(axis=1)
    out = np.where(np.arange(m) < count[:, None], order, -1)[:, :k]
    return np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1)


class _Words(string.Formatter):
    """Format specs of the reason templates: ``days``, ``purchases``, ``money``, ``pct``, ``x``
    (one decimal), ``d2`` (two decimals); a plain value otherwise."""

    def format_field(self, value: Any, spec: str) -> str:
        if spec in ("days", "purchases"):
            unit = "day" if spec == "days" else "purchase"
            return f"{value:,.0f} {unit}" + ("" if round(value) == 1 else "s")
        formats = {"money": "{:,.2f}", "pct": "{:.0f} %", "x": "{:.1f}", "d2": "{:.2f}"}
        if spec in formats:
            return formats[spec].format(100 * value if spec == "pct" else value)
        return super().format_field(value, spec)


_WORDS = _Words()
#: Driver -> template over the churn features by name, ``typical`` (the population's value)
#: and ``only`` ("only " when the customer's value is below the typical one). A key
#: ``NAME/zero`` is used instead when the feature ``zero_of[NAME]`` is 0.
_TEMPLATES: Mapping[str, str] = {
    "days_since_last_purchase": "no purchase for {days_since_last_purchase:days} (typical customer: {typical:days})",
    "days_since_last_over_ipt": "no purchase for {days_since_last_purchase:days}, {days_since_last_over_ipt:x}x "
                                "their usual gap of {gap:days}",
    "days_since_last_over_tenure": "no purchase for {days_since_last_purchase:days}, "
                                   "{days_since_last_over_tenure:pct} of their {T_days:days} as a customer",
    "frequency": "{only}{purchases:purchases} in their first {T_days:days}",
    "purchase_rate_per_year": "{only}{purchase_rate_per_year:x} repeat purchases a year (typical customer: {typical:x})",
    "recency_days": "last purchase {recency_days:days} after their first (typical customer: {typical:days})",
    "T_days": "customer for {T_days:days} (typical customer: {typical:days})",
    "ipt_mean_days": "usual gap between purchases {ipt_mean_days:days} (typical customer: {typical:days})",
    "ipt_mean_days/zero": "no repeat purchase in {T_days:days} (typical gap between purchases: {typical:days})",
    "horizon_over_ipt": "usual gap between purchases {ipt_mean_days:days}: {horizon_over_ipt:x} gaps fit in the "
                        "{horizon_days:days} ahead",
    "trend_90d": "purchase rate trend {trend_90d:d2} (last 90 days vs the 90 before; typical customer: {typical:d2})",
    "monetary_value": "mean spend per repeat purchase {monetary_value:money} (typical customer: {typical:money})",
    "p_alive": "purchase model: probability still active {p_alive:pct} (typical customer: {typical:pct})",
    "p_no_purchase_horizon": "purchase model: {p_no_purchase_horizon:pct} chance of no purchase in the next "
                             "{horizon_days:days} (typical customer: {typical:pct})",
    "expected_purchases_horizon": "{only}{expected_purchases_horizon:d2} purchases expected in the next "
                                  "{horizon_days:days} (typical customer: {typical:d2})",
    **{f"n_purchases_{w}d": f"{{only}}{{n_purchases_{w}d:purchases}} in the last {w} days "
                            "(typical customer: {typical:x})" for w in (30, 90, 365)},
    **{f"n_purchases_{w}d/zero": f"no purchase in the last {w} days (typical customer: {{typical:x}})"
       for w in (30, 90, 365)},
    **{f"spend_{w}d": f"{{only}}{{spend_{w}d:money}} spent in the last {w} days (typical customer: {{typical:money}})"
       for w in (90, 365)},
}
#: Which feature being 0 selects the ``/zero`` template.
_ZERO_OF: Mapping[str, str] = {"ipt_mean_days": "frequency",
                               **{f"n_purchases_{w}d": f"n_purchases_{w}d" for w in (30, 90, 365)}}


def reason_text(name: str, features: Mapping[str, float], typical: float) -> str:
    """The words for driver ``name`` of one customer (``features``: churn features by name)."""
    template = _TEMPLATES.get(name)
    if template is None:
        return f"{name.replace('_', ' ')} {features[name]:g}"
    if name in _ZERO_OF and features[_ZERO_OF[name]] == 0:
        template = _TEMPLATES[f"{name}/zero"]
    return _WORDS.format(template, **features, typical=typical, only="only " if features[name] < typical else "",
                         purchases=features["frequency"] + 1, gap=max(features["ipt_mean_days"], 1.0))


def churn_reasons(model, A: np.ndarray, k: int = N_REASONS) -> dict[str, np.ndarray]:
    """``{reason_1: texts, ..., reason_k: texts}`` (object arrays, "" when fewer) for ``model`` on ``A``.

    ``A`` holds the :data:`CHURN_FEATURES` columns in that order, one row per customer.
    """
    A = np.asarray(A, dtype=float)
    names, C, mean, ranked = driver_contributions(model, A)
    out = {f"reason_{s + 1}": np.full(len(A), "", dtype=object) for s in range(k)}
    if not names or not len(A):
        return out
    picks = top_drivers(C, k, ranked)
    rows = np.flatnonzero((picks >= 0).any(axis=1))
    for i in rows:
        features = dict(zip(CHURN_FEATURES, A[i].tolist()))
        for s, j in enumerate(picks[i]):
            if j >= 0:
                out[f"reason_{s + 1}"][i] = reason_text(names[j], features, typical_value(mean[j], names[j]))
    return out

