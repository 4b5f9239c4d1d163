"""Reasons per customer: the drivers that raise this customer's churn risk most, in words.

Method (docs/outputs.md, "Reasons"). Every churn model scores the transformed churn features
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

Correlated drivers are one driver. Several features say nearly the same thing (on the
CDNOW sample's training examples at 1997-06-30, after the transform, ``frequency`` and
``n_purchases_365d`` correlate at 0.996, ``p_no_purchase_horizon`` and
``expected_purchases_horizon`` at 0.93). At fit time each model stores
``feature_correlation_``, the Pearson correlation of its transformed features over the
same population; going down a customer's drivers (in the order above), a driver whose
``|correlation|`` with one already listed for that customer is at least
:data:`MAX_REASON_CORRELATION` (0.9) is skipped and the next driver takes its place. The
rule is pairwise (no chains: two drivers each correlated with a third but not with each
other can both be listed). A model saved before this existed lists its drivers without
grouping.

Each reason quotes the customer's own numbers and, where it helps, the typical customer
of the population (the mean mapped back through the inverse transform). Each number is
formatted once per distinct value shown (:func:`~custscore.training.texts.shown_numbers`), the texts are taken and joined
in Arrow (:mod:`custscore.training.texts`), and :func:`churn_reasons` works on blocks of rows.
"""
from __future__ import annotations

import functools
import string
from typing import Any, Mapping, NamedTuple, Optional

import numpy as np

from custscore.training.texts import CodedTexts, TextArray, coded, format_distinct, join_texts, scatter_texts, shown_numbers
from custscore.training.churn import CHURN_FEATURES, PROBABILITY_FEATURES, transform_features
from custscore.training.churn_select import BASELINES

#: Text columns added to the score table (empty text when fewer reasons).
REASON_COLUMNS: tuple[str, ...] = ("reason_1", "reason_2", "reason_3")
N_REASONS = len(REASON_COLUMNS)
#: Features never given as a reason: the same for every customer of a scoring run.
NOT_REASONS: frozenset[str] = frozenset({"horizon_days"})
#: Two drivers whose transformed features correlate at least this much (in absolute value,
#: over the model's training population) are one driver: only the larger is listed.
MAX_REASON_CORRELATION = 0.9
#: Facts listed after a shipped baseline's own driver: feature -> sign (higher = more churn).
ACTIVITY_FACTS: Mapping[str, float] = {"days_since_last_over_ipt": 1.0, "n_purchases_90d": -1.0,
                                       "n_purchases_365d": -1.0}


def typical_value(mean_z: float, name: str) -> float:
    """The feature value whose transform is ``mean_z`` (inverse of :func:`transform_features`)."""
    if name in PROBABILITY_FEATURES:
        return float(1.0 / (1.0 + np.exp(-mean_z)))
    return float(np.sign(mean_z) * np.expm1(abs(mean_z)))


class Drivers(NamedTuple):
    """The candidate drivers of a model for some customers (see :func:`driver_contributions`)."""

    names: list[str]
    contributions: np.ndarray  # (n, k)
    mean: np.ndarray  # (k,) population means (transformed)
    ranked: bool  # largest first (classifier) or in column order (baseline)
    correlation: Optional[np.ndarray]  # (k, k) over the population, None for older models


def driver_contributions(model, A: np.ndarray) -> Drivers:
    """The drivers of ``model``: feature names, contributions, population means, ranked, correlation.

    ``A`` holds the :data:`CHURN_FEATURES` columns in that order. For a classifier the
    contributions are ``weights_ * (z - population_mean_)`` and ``ranked`` is True (the
    largest first); for a baseline they are ``sign * (z - population_mean_)`` of its
    driver and the :data:`ACTIVITY_FACTS`, kept in that order (``ranked`` False). A model
    fitted before reasons existed (no ``population_mean_``) gives no drivers; one fitted
    before ``feature_correlation_`` existed gives no correlation (no grouping).
    """
    A = np.asarray(A, dtype=float)
    mean = getattr(model, "population_mean_", None)
    stored = getattr(model, "feature_correlation_", None)
    if mean is None:
        return Drivers([], np.zeros((len(A), 0)), np.zeros(0), True, None)
    if hasattr(model, "weights_"):
        names = list(model.used_features_)
        columns = [CHURN_FEATURES.index(n) for n in names]
        C = model.weights_ * (transform_features(A[:, columns], names) - mean)
        keep = [j for j, n in enumerate(names) if n not in NOT_REASONS]
        R = None if stored is None else np.asarray(stored)[np.ix_(keep, keep)]
        return Drivers([names[j] for j in keep], C[:, keep], np.asarray(mean)[keep], True, R)
    driver, sign = BASELINES[model.name]
    signs = {driver: sign, **{k: v for k, v in ACTIVITY_FACTS.items() if k != driver}}
    names = list(signs)
    columns = [CHURN_FEATURES.index(n) for n in names]
    full_mean = np.asarray(mean)[columns]
    C = np.array([signs[n] for n in names]) * (transform_features(A[:, columns], names) - full_mean)
    R = None if stored is None else np.asarray(stored)[np.ix_(columns, columns)]
    return Drivers(names, C, full_mean, False, R)


def top_drivers(contributions: np.ndarray, k: int = N_REASONS, ranked: bool = True,
                correlation: Optional[np.ndarray] = None,
                max_correlation: float = MAX_REASON_CORRELATION) -> np.ndarray:
    """Column positions of the first ``k`` positive contributions per row; -1 pads. Shape ``(n, k)``.

    ``ranked``: largest first (ties keep the column order); otherwise in column order.
    With ``correlation`` (between the columns, over the population), a column whose
    ``|correlation|`` with a column already picked for that row is ``>= max_correlation``
    is skipped: one driver is not listed twice under two names.

    >>> top_drivers(np.array([[0.5, -1.0, 2.0, 0.1], [-1.0, -2.0, 0.0, 0.0]]), 3).tolist()
    [[2, 0, 3], [-1, -1, -1]]
    >>> top_drivers(np.array([[0.5, -1.0, 2.0, 0.1]]), 2, ranked=False).tolist()
    [[0, 2]]
    >>> R = np.array([[1, 0, .95, 0], [0, 1, 0, 0], [.95, 0, 1, 0], [0, 0, 0, 1]])
    >>> top_drivers(np.array([[0.5, -1.0, 2.0, 0.1]]), 3, correlation=R).tolist()
    [[2, 3, -1]]
    """
    n, m = contributions.shape
    order = np.broadcast_to(np.arange(m), (n, m))
    if ranked:
        order = np.argsort(-contributions, axis=1, kind="stable")
    open_ = np.take_along_axis(contributions, order, axis=1) > 0  # still listable, in ``order``
    out = np.full((n, k), -1, dtype=np.int64)
    rows = np.arange(n)
    close = None if correlation is None else np.abs(np.asarray(correlation)) >= max_correlation
    for slot in range(min(k, m)):
        first = np.argmax(open_, axis=1)
        has = open_[rows, first]
        pick = order[rows, first]
        out[has, slot] = pick[has]
        open_[rows, first] = False
        if close is not None:
            open_ &= ~(close[pick[:, None], order] & has[:, None])
    return out


#: Number specs of the reason templates: spec -> (multiplier, decimals, unit). The number
#: shown is ``multiplier * value`` with ``decimals`` decimals (thousands separated for days,
#: purchases and money); a unit is pluralised unless the number rounds to 1.
_NUMBERS: Mapping[str, tuple[float, int, Optional[str]]] = {
    "days": (1.0, 0, "day"), "purchases": (1.0, 0, "purchase"), "money": (1.0, 2, None),
    "pct": (100.0, 0, None), "x": (1.0, 1, None), "d2": (1.0, 2, None)}
_SEPARATED = frozenset({"days", "purchases", "money"})


def _number_words(number: float, spec: str) -> str:
    """The words of an already multiplied number for a :data:`_NUMBERS` spec.

    >>> _number_words(1.4, "days"), _number_words(2.5, "purchases"), _number_words(1234.5, "money")
    ('1 day', '2 purchases', '1,234.50')
    """
    _, decimals, unit = _NUMBERS[spec]
    text = format(number, f"{',' if spec in _SEPARATED else ''}.{decimals}f")
    if spec == "pct":
        return f"{text} %"
    return text if unit is None else f"{text} {unit}" + ("" if round(number) == 1 else "s")


def _words(value: Any, spec: str) -> str:
    """One value in the words of template spec ``spec`` (``days``, ``purchases``, ``money``,
    ``pct``, ``x`` one decimal, ``d2`` two decimals; Python's format spec otherwise)."""
    if spec in _NUMBERS:
        multiplier = _NUMBERS[spec][0]
        return _number_words(value if multiplier == 1 else multiplier * value, spec)
    return format(value, spec)


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


#: Rows of ``A`` handled at once by :func:`churn_reasons` (bounds the temporaries: ~20 columns).
REASON_BLOCK_ROWS = 262_144


@functools.lru_cache(maxsize=None)
def _parts(template: str) -> tuple[tuple[str, Optional[str], str], ...]:
    """``(literal, field, spec)`` pieces of a template (field None after the last one)."""
    return tuple((literal, field, spec or "") for literal, field, spec, _ in string.Formatter().parse(template))


def _words_of(values: np.ndarray, spec: str) -> CodedTexts:
    """``values`` (floats, shape ``(n,)``) in the words of ``spec``, each text made once per
    distinct number shown (:func:`~custscore.training.texts.shown_numbers`; any other spec: per value)."""
    if spec not in _NUMBERS:
        return format_distinct(values, lambda v: format(v, spec))
    multiplier, decimals, _ = _NUMBERS[spec]
    shown = shown_numbers(values if multiplier == 1 else multiplier * values, decimals)
    return format_distinct(shown, lambda v: _number_words(v, spec))


def _fill(template: str, fields: Mapping[str, Any], n: int) -> CodedTexts:
    """``template`` filled for ``n`` customers; ``fields`` maps each field to an array of
    numbers, :class:`~custscore.training.texts.CodedTexts` or a number (the same for everyone: formatted once)."""
    pieces: list[Any] = []
    for literal, field, spec in _parts(template):
        if literal:
            pieces.append(literal)
        if field is not None:
            value = fields[field]
            if isinstance(value, CodedTexts):
                pieces.append(value)
            elif np.ndim(value):
                pieces.append(_words_of(np.asarray(value, dtype=float), spec))
            else:
                pieces.append(_words(value, spec))
    return join_texts(pieces, n)


def reason_texts(name: str, features: Mapping[str, np.ndarray], typical: float) -> TextArray:
    """The words for driver ``name`` of many customers (a text column, :mod:`custscore.training.texts`).

    ``features`` maps churn feature names to equally long arrays; ``typical`` is the
    population's value of ``name``.
    """
    return _reason_coded(name, features, typical).column()


def _reason_coded(name: str, features: Mapping[str, np.ndarray], typical: float) -> CodedTexts:
    """:func:`reason_texts` as :class:`~custscore.training.texts.CodedTexts`."""
    value = np.asarray(features[name], dtype=float)
    n = len(value)
    template = _TEMPLATES.get(name, f"{name.replace('_', ' ')} {{{name}:g}}")
    zero = (np.asarray(features[_ZERO_OF[name]], dtype=float) == 0) if name in _ZERO_OF else np.zeros(n, bool)
    parts = []
    for rows, text in ((np.flatnonzero(~zero), template), (np.flatnonzero(zero), _TEMPLATES.get(f"{name}/zero"))):
        if not len(rows):
            continue
        needed = {field for _, field, _ in _parts(text) if field is not None}
        fields: dict[str, Any] = {"typical": typical}
        for field in needed - {"typical", "only", "purchases", "gap"}:
            fields[field] = np.asarray(features[field], dtype=float)[rows]
        if "only" in needed:
            fields["only"] = coded(["", "only "], value[rows] < typical)
        if "purchases" in needed:
            fields["purchases"] = np.asarray(features["frequency"], dtype=float)[rows] + 1
        if "gap" in needed:
            fields["gap"] = np.maximum(np.asarray(features["ipt_mean_days"], dtype=float)[rows], 1.0)
        parts.append((rows, _fill(text, fields, len(rows))))
    return parts[0][1] if len(parts) == 1 else scatter_texts(n, parts)


def reason_text(name: str, features: Mapping[str, float], typical: float) -> str:
    """The words for driver ``name`` of one customer (``features``: churn features by name)."""
    return str(reason_texts(name, {k: np.array([v], dtype=float) for k, v in features.items()}, typical)[0])


class _Columns(Mapping[str, np.ndarray]):
    """The churn feature columns of ``A`` (rows ``rows``) by name, sliced when asked for."""

    def __init__(self, A: np.ndarray, rows: np.ndarray) -> None:
        self.A, self.rows = A, rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.A[self.rows, CHURN_FEATURES.index(name)]

    def __iter__(self):
        return iter(CHURN_FEATURES)

    def __len__(self) -> int:
        return len(CHURN_FEATURES)


def churn_reasons(model, A: np.ndarray, k: int = N_REASONS) -> dict[str, TextArray]:
    """``{reason_1: texts, ..., reason_k: texts}`` (text columns, :mod:`custscore.training.texts`; "" when
    fewer) for ``model`` on ``A``.

    ``A`` holds the :data:`CHURN_FEATURES` columns in that order, one row per customer;
    it is handled in blocks of :data:`REASON_BLOCK_ROWS` rows.
    """
    A = np.asarray(A, dtype=float)
    parts: list[list[tuple[np.ndarray, CodedTexts]]] = [[] for _ in range(k)]
    for start in range(0, len(A), REASON_BLOCK_ROWS):
        block = A[start:start + REASON_BLOCK_ROWS]
        names, C, mean, ranked, R = driver_contributions(model, block)
        if not names:
            break
        picks = top_drivers(C, k, ranked, R)
        for s in range(k):
            for j in np.unique(picks[:, s][picks[:, s] >= 0]):
                rows = np.flatnonzero(picks[:, s] == j)
                parts[s].append((start + rows, _reason_coded(names[j], _Columns(block, rows),
                                                             typical_value(mean[j], names[j]))))
    return {f"reason_{s + 1}": scatter_texts(len(A), parts[s]).column() for s in range(k)}
