"""Account-team segments: value matrix I-IV, pyramid, activity tiers and alerts, lifecycle.

Every rule is a row-wise function of one customer's features and scores plus fixed
numbers, so a customer gets the same segment whether it is scored alone, over HTTP, in a
5M-customer batch or chunk by chunk. The numbers are of two kinds:

- :class:`SegmentConfig`: rule parameters with documented defaults (windows, tier bounds,
  alert threshold, lifecycle bounds, margin rate, the shares used to fit the cuts);
- :class:`SegmentThresholds`: the value cut points, learned once at training time from
  the calibration population by :func:`fit_thresholds` (quantiles) and stored in the
  scorer. Either can be overridden explicitly (:func:`apply_overrides`).

Value cuts are in revenue (the log's amount units: spend over the value window, and
``clv``); the margin rate only turns revenue into contribution in the reported
``current_value`` and ``future_value``, so a constant margin never changes a class.

Class-I causes "price-sensitive" and "poor credit" need the optional features
``discount_share`` and ``arrears`` (:mod:`custscore.features.discount_credit`); without
them they are never asserted.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from custscore.training.columns import frame_of
from custscore.errors import CustscoreError
from custscore.training.texts import TextArray, coded, format_distinct, join_texts, scatter_texts, shown_numbers, take_texts
from custscore.features.discount_credit import DISCOUNT_CREDIT_COLUMNS, DISCOUNT_SHARE
from custscore.features.io import check_columns
from custscore.features.months import MONTH_COLUMNS
from custscore.features.periods import ARREARS

#: Columns added after SCORE_COLUMNS, in order.
SEGMENT_COLUMNS: tuple[str, ...] = (
    "current_value",
    "future_value",
    "value_class",
    "value_class_name",
    "resource_policy",
    "retention_policy",
    "class_i_cause",
    "pyramid_tier",
    "activity_tier",
    "previous_activity_tier",
    "alert",
    "alert_reason",
    "lifecycle_stage",
    "partial_churn",
)

#: Value matrix (domain notes): class -> (name, resources, retention policy).
VALUE_CLASSES: Mapping[str, tuple[str, str, str]] = {
    "IV": ("platinum", "top priority", "retain and deepen the relationship, one-to-one plans"),
    "III": ("gold", "heavy", "keep the relationship at a high level, never lose it"),
    "II": ("iron", "moderate", "rebuild the relationship, grow share of wallet"),
    "I": ("lead", "none by default", "let go / end the relationship, unless a cause applies"),
}
#: Class-I causes (domain notes) -> retention policy, in order of precedence: the first
#: that applies is the cause. The data-backed causes come first: a credit risk or a
#: discount habit decides the action whatever the stage, and the stage (decline, young
#: tenure) stays visible in ``lifecycle_stage`` and ``tenure_days``. A class-I customer
#: with no cause ("unknown") keeps the class-I policy.
CLASS_I_CAUSES: Mapping[str, str] = {
    "poor credit": "end the relationship",
    "price-sensitive": "act quickly or let go",
    "decline": "weigh the cost of winning back against the value",
    "early relationship": "keep investing moderately",
}
PYRAMID_TIERS: tuple[str, ...] = ("key", "potential", "regular")
ACTIVITY_TIERS: tuple[str, ...] = ("A", "B", "C", "D", "none")
LIFECYCLE_STAGES: tuple[str, ...] = ("exploration", "formation", "stability", "decline")
#: How activity tiers and lifecycle stages are bounded (SegmentConfig.cadence).
CADENCES: tuple[str, ...] = ("learnt", "textbook")
#: Gap quantiles learnt at training (SegmentThresholds.gap_days): the share of repeat
#: buyers whose mean gap between purchase days is at most each.
GAP_QUANTILES: tuple[float, ...] = (0.50, 0.75, 0.90)
#: With learnt cadence the previous activity tier is the tier this many days before as_of.
PREVIOUS_TIER_DAYS = 30
#: Rank of each activity tier; a drop is a move to a lower rank.
_TIER_RANK = {"A": 3, "B": 2, "C": 1, "D": 0, "none": -1}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_share(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < float(value) < 1.0


@dataclass(frozen=True)
class SegmentConfig:
    """Rule parameters of the segments; every default is defined here once.

    Durations in days; purchases are purchase days (one per customer and day).

    - ``value_window_days``: current value = spend over ``(as_of - w, as_of]`` (a window
      of the feature frame: 30, 90 or 365);
    - ``margin_rate``: contribution per unit of revenue, in (0, 1]; 1 reports revenue;
    - ``high_current_share``: share of the calibration customers fitted as high current
      value (classes III+IV, ~20 % in the 80/20 rule);
    - ``high_potential_share``: share fitted as high growth potential (by ``clv``);
    - ``key_share``, ``potential_share``: pyramid, top 5 % by ``clv`` and the next 15 %;
    - ``tier_a_min``, ``tier_b_min``: purchases in the last calendar month for tier A
      (more than 10, i.e. >= 11) and B (6-10); C is 1 to ``tier_b_min - 1``; D bought the
      month before but not last month;
    - ``alert_churn_probability``: a customer with high growth potential whose churn
      probability is at least this raises an alert;
    - ``partial_churn_drop``: fraction (0, 1] by which purchases or spend in the recent
      window must fall below the baseline rate to flag partial churn;
    - ``partial_churn_recent_days``, ``partial_churn_baseline_days``: recent window and the
      longer window whose earlier part is the baseline;
    - ``trend_days``: the purchase-rate trend feature used (``trend_{trend_days}d``);
    - ``trend_band``: trend >= band is rising, <= -band is falling;
    - ``exploration_days``: below this tenure every customer is in exploration;
    - ``stability_days``: from this tenure a non-declining customer is in stability;
    - ``lapse_days``: this long without a purchase counts as decline;
    - ``price_sensitive_share``: a class-I customer whose ``discount_share`` (share of
      purchase days on discount) is strictly above this is price-sensitive, in [0, 1);
    - ``poor_credit_arrears``: a class-I customer whose latest ``arrears`` is strictly
      above this has poor credit (in the arrears column's unit: amount or days; the
      default 0 means any arrears), >= 0;
    - ``cadence``: ``learnt`` (default) scales activity tiers and lifecycle stages to the
      log's own purchase gaps stored in :class:`SegmentThresholds` (:func:`cadence_bounds`);
      ``textbook`` uses the monthly tier bounds and the fixed stage days above;
    - ``lapse_gap_multiple``: with ``learnt``, a customer silent for this many times the
      gap 90 % of the repeat buyers stay under has lapsed (> 1).
    """

    value_window_days: int = 365
    margin_rate: float = 1.0
    high_current_share: float = 0.20
    high_potential_share: float = 0.20
    key_share: float = 0.05
    potential_share: float = 0.15
    tier_a_min: int = 11
    tier_b_min: int = 6
    alert_churn_probability: float = 0.5
    partial_churn_drop: float = 0.5
    partial_churn_recent_days: int = 90
    partial_churn_baseline_days: int = 365
    trend_days: int = 90
    trend_band: float = 0.2
    exploration_days: int = 90
    stability_days: int = 365
    lapse_days: int = 180
    price_sensitive_share: float = 0.75
    poor_credit_arrears: float = 0.0
    cadence: str = "learnt"
    lapse_gap_multiple: float = 1.5

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise CustscoreError(f"segments cadence: must be one of {list(CADENCES)}, got {self.cadence!r}")
        multiple = self.lapse_gap_multiple
        if not (isinstance(multiple, (int, float)) and not isinstance(multiple, bool) and 1.0 < multiple < 100.0):
            raise CustscoreError(f"segments lapse_gap_multiple: must be in (1, 100), got {multiple!r}")
        for name in ("value_window_days", "tier_a_min", "tier_b_min", "partial_churn_recent_days",
                     "partial_churn_baseline_days", "trend_days", "exploration_days", "stability_days",
                     "lapse_days"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise CustscoreError(f"segments {name}: must be a whole number > 0, got {value!r}")
        for name in ("high_current_share", "high_potential_share", "key_share", "potential_share",
                     "alert_churn_probability", "trend_band"):
            if not _is_share(getattr(self, name)):
                raise CustscoreError(f"segments {name}: must be in (0, 1), got {getattr(self, name)!r}")
        for name in ("margin_rate", "partial_churn_drop"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= 1.0):
                raise CustscoreError(f"segments {name}: must be in (0, 1], got {value!r}")
        share = self.price_sensitive_share
        if not (isinstance(share, (int, float)) and not isinstance(share, bool) and 0.0 <= share < 1.0):
            raise CustscoreError(f"segments price_sensitive_share: must be in [0, 1), got {share!r}")
        limit = self.poor_credit_arrears
        if not (isinstance(limit, (int, float)) and not isinstance(limit, bool) and 0.0 <= limit < float("inf")):
            raise CustscoreError(f"segments poor_credit_arrears: must be a finite number >= 0, got {limit!r}")
        if self.key_share + self.potential_share >= 1.0:
            raise CustscoreError(f"segments key_share + potential_share: must be < 1, got "
                                 f"{self.key_share} + {self.potential_share}")
        if not 1 < self.tier_b_min < self.tier_a_min:
            raise CustscoreError(f"segments tier bounds: need 1 < tier_b_min < tier_a_min, got "
                                 f"{self.tier_b_min} and {self.tier_a_min}")
        if self.partial_churn_recent_days >= self.partial_churn_baseline_days:
            raise CustscoreError("segments partial_churn_recent_days: must be < partial_churn_baseline_days, got "
                                 f"{self.partial_churn_recent_days} >= {self.partial_churn_baseline_days}")
        if self.exploration_days >= self.stability_days:
            raise CustscoreError(f"segments exploration_days: must be < stability_days, got "
                                 f"{self.exploration_days} >= {self.stability_days}")

    @property
    def spend_column(self) -> str:
        """Feature column holding the revenue behind current value."""
        return f"spend_{self.value_window_days}d"

    @property
    def trend_column(self) -> str:
        return f"trend_{self.trend_days}d"


@dataclass(frozen=True)
class SegmentThresholds:
    """Value cut points, in revenue (amount units); "high" means strictly above the cut.

    - ``current_spend_high``: spend over the value window above which current value is high;
    - ``clv_high``: ``clv`` above which growth potential is high;
    - ``clv_key``, ``clv_potential``: ``clv`` above which a customer is a key / potential
      customer of the pyramid (``clv_key >= clv_potential``);
    - ``gap_days``: the log's purchase cadence, the :data:`GAP_QUANTILES` of the repeat
      buyers' mean gap between purchase days (days, increasing), or None when the
      calibration had no repeat buyer (then the textbook bounds apply).
    """

    current_spend_high: float
    clv_high: float
    clv_key: float
    clv_potential: float
    gap_days: Optional[tuple[float, ...]] = None

    def __post_init__(self) -> None:
        gaps = self.gap_days
        if gaps is not None:
            ok = (isinstance(gaps, (tuple, list)) and len(gaps) == len(GAP_QUANTILES)
                  and all(isinstance(g, (int, float, np.integer, np.floating)) and not isinstance(g, bool)
                          and np.isfinite(g) and g > 0 for g in gaps) and list(gaps) == sorted(gaps))
            if not ok:
                raise CustscoreError(f"segments gap_days: must be {len(GAP_QUANTILES)} increasing day counts > 0, "
                                     f"got {gaps!r}")
            object.__setattr__(self, "gap_days", tuple(float(g) for g in gaps))
        for f in fields(self):
            if f.name == "gap_days":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(value):
                raise CustscoreError(f"segments {f.name}: must be a finite number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        if self.clv_key < self.clv_potential:
            raise CustscoreError(f"segments clv_key: must be >= clv_potential, got {self.clv_key} < "
                                 f"{self.clv_potential}")


def fit_thresholds(population: pd.DataFrame, config: SegmentConfig,
                   ipt_mean_days: Optional[np.ndarray] = None) -> SegmentThresholds:
    """Cut points from a population's spend and ``clv`` quantiles (the calibration customers).

    ``ipt_mean_days`` (the customers' mean gap between purchase days, NaN without a
    repeat purchase) gives ``gap_days``: its :data:`GAP_QUANTILES` over the repeat buyers;
    None or no repeat buyer leaves ``gap_days`` None.

    ``current_spend_high`` is the ``1 - high_current_share`` quantile of
    ``config.spend_column``; ``clv_high``, ``clv_key`` and ``clv_potential`` are the
    ``1 - high_potential_share``, ``1 - key_share`` and ``1 - key_share - potential_share``
    quantiles of ``clv`` (linear interpolation). On a population without ties the share
    strictly above each cut is then the configured share (up to one customer).
    """
    _require(population, (config.spend_column, "clv"))
    if len(population) == 0:
        raise CustscoreError("segments: cannot fit thresholds on an empty population")
    spend = population[config.spend_column].to_numpy(dtype=float)
    clv = population["clv"].to_numpy(dtype=float)
    return SegmentThresholds(
        current_spend_high=float(np.quantile(spend, 1.0 - config.high_current_share)),
        clv_high=float(np.quantile(clv, 1.0 - config.high_potential_share)),
        clv_key=float(np.quantile(clv, 1.0 - config.key_share)),
        clv_potential=float(np.quantile(clv, 1.0 - config.key_share - config.potential_share)),
        gap_days=fit_gap_days(ipt_mean_days),
    )


def fit_gap_days(ipt_mean_days: Optional[np.ndarray]) -> Optional[tuple[float, ...]]:
    """The :data:`GAP_QUANTILES` of the finite mean gaps (days), None when there is none.

    >>> fit_gap_days(np.array([10.0, 20.0, np.nan, 30.0, 40.0, 50.0]))
    (30.0, 40.0, 46.0)
    """
    if ipt_mean_days is None:
        return None
    gaps = np.asarray(ipt_mean_days, dtype=float)
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    return tuple(float(q) for q in np.quantile(gaps, GAP_QUANTILES)) if len(gaps) else None


@dataclass(frozen=True)
class CadenceBounds:
    """Learnt bounds in days (:func:`cadence_bounds`)."""

    tier_a_days: float
    tier_b_days: float
    tier_c_days: float
    lapse_days: float
    exploration_days: float
    stability_days: float


def cadence_bounds(config: SegmentConfig, thresholds: Optional["SegmentThresholds"]) -> Optional[CadenceBounds]:
    """The learnt bounds, or None when the textbook rules apply (``cadence`` textbook, or no ``gap_days``).

    With gaps ``g50 <= g75 <= g90`` (days): activity tier A = last purchase at most
    ``g50`` days ago, B at most ``g75``, C at most ``g90``, D at most the lapse
    ``lapse_gap_multiple * g90``, ``none`` beyond; exploration below ``g50`` days of
    tenure, stability from ``2 * g90``.

    >>> b = cadence_bounds(SegmentConfig(), SegmentThresholds(1.0, 1.0, 1.0, 1.0, gap_days=(48.0, 89.0, 152.0)))
    >>> b.tier_c_days, b.lapse_days, b.stability_days
    (152.0, 228.0, 304.0)
    """
    gaps = getattr(thresholds, "gap_days", None)
    if getattr(config, "cadence", "textbook") != "learnt" or gaps is None:
        return None
    g50, g75, g90 = gaps
    return CadenceBounds(tier_a_days=g50, tier_b_days=g75, tier_c_days=g90,
                         lapse_days=config.lapse_gap_multiple * g90, exploration_days=g50, stability_days=2.0 * g90)


def required_columns(config: SegmentConfig, thresholds: Optional[SegmentThresholds] = None) -> tuple[str, ...]:
    """Feature and score columns :func:`assign_segments` reads.

    ``frequency`` only with learnt cadence (unless ``thresholds`` are given and have no
    ``gap_days``, so the textbook rules apply).

    The last ones, :data:`~custscore.features.discount_credit.DISCOUNT_CREDIT_COLUMNS`
    (``discount_share``, ``arrears``), are optional: read when present, never required.
    """
    recent, baseline = config.partial_churn_recent_days, config.partial_churn_baseline_days
    return tuple(dict.fromkeys((
        config.spend_column, f"n_purchases_{recent}d", f"spend_{recent}d", f"n_purchases_{baseline}d",
        f"spend_{baseline}d", "tenure_days", "days_since_last_purchase", config.trend_column,
        *MONTH_COLUMNS, "churn_probability", "clv", *(("frequency",) if _may_learn(config, thresholds) else ()),
        *DISCOUNT_CREDIT_COLUMNS,
    )))


def _may_learn(config: SegmentConfig, thresholds: Optional[SegmentThresholds]) -> bool:
    return config.cadence == "learnt" and (thresholds is None or thresholds.gap_days is not None)


def _require(frame: pd.DataFrame, columns) -> None:
    check_columns(frame.columns, columns, "segments", unique=False)


def first_index(conditions: list) -> np.ndarray:
    """Per row, the position of the first true condition (1-D, one length), ``len(conditions)`` when none.

    >>> first_index([np.array([True, False, False]), np.array([True, True, False])]).tolist()
    [0, 1, 2]
    """
    n = len(conditions[0])
    return np.vstack([*conditions, np.ones(n, dtype=bool)]).argmax(axis=0)


def first_match(conditions: list, choices: list, default: Any) -> np.ndarray:
    """``np.select`` for scalar choices: per row, the choice of the first true condition, else ``default``.

    Same values and dtype as ``np.select(conditions, choices, default)`` for 1-D
    conditions of one length, at a third of its fixed cost (it matters for the few rows
    of an HTTP request; for millions of rows both are memory-bound).

    >>> first_match([np.array([True, False, False]), np.array([True, True, False])], ["a", "b"], "c").tolist()
    ['a', 'b', 'c']
    """
    return np.array([*choices, default])[first_index(conditions)]


#: Activity tier codes (positions in :data:`ACTIVITY_TIERS`) and their ranks (:data:`_TIER_RANK`).
_A, _B, _C, _D, _NONE = range(len(ACTIVITY_TIERS))
_RANK_OF_CODE = np.array([_TIER_RANK[t] for t in ACTIVITY_TIERS])
#: Stage codes: positions in :data:`LIFECYCLE_STAGES`.
_EXPLORATION, _FORMATION, _STABILITY, _DECLINE = (LIFECYCLE_STAGES.index(s) for s in
                                                  ("exploration", "formation", "stability", "decline"))
#: Class-I cause codes: positions in ``_CAUSES`` ("" for the other classes, then the causes, then unknown).
_CAUSES: tuple[str, ...] = ("", *CLASS_I_CAUSES, "unknown")


def activity_tier(purchases_month: np.ndarray, config: SegmentConfig) -> np.ndarray:
    """Tier A/B/C by purchases in one calendar month, ``none`` for 0 (no D: it needs two months).

    >>> activity_tier(np.array([12, 11, 10, 6, 5, 1, 0]), SegmentConfig()).tolist()
    ['A', 'A', 'B', 'B', 'C', 'C', 'none']
    """
    return np.array(ACTIVITY_TIERS)[_tier_codes(purchases_month, config)]


def _tier_codes(purchases_month: np.ndarray, config: SegmentConfig) -> np.ndarray:
    n = np.asarray(purchases_month)
    return first_match([n >= config.tier_a_min, n >= config.tier_b_min, n >= 1], [_A, _B, _C], _NONE)


def activity_tiers(last_month: np.ndarray, month_before: np.ndarray,
                   config: SegmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tier, previous tier, dropped) from purchases in the last month and the month before.

    ``tier`` is A/B/C by the last month, D when the customer bought the month before but
    not last month, ``none`` when neither; ``previous`` is A/B/C/none by the month before;
    ``dropped`` is True when ``tier`` ranks below ``previous`` (A->B, B->C, any -> D).
    """
    tier, previous, dropped = _monthly_tier_codes(last_month, month_before, config)
    return np.array(ACTIVITY_TIERS)[tier], np.array(ACTIVITY_TIERS)[previous], dropped


def _monthly_tier_codes(last_month: np.ndarray, month_before: np.ndarray,
                        config: SegmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`activity_tiers` as tier codes."""
    last_month = np.asarray(last_month)
    month_before = np.asarray(month_before)
    tier = np.where((last_month == 0) & (month_before > 0), _D, _tier_codes(last_month, config))
    previous = _tier_codes(month_before, config)
    dropped = (previous != _NONE) & (_RANK_OF_CODE[tier] < _RANK_OF_CODE[previous])
    return tier, previous, dropped


def _numbers(columns: Mapping[str, Any], name: str) -> np.ndarray:
    """Column ``name`` of a frame or a mapping of arrays, as floats."""
    return np.asarray(columns[name], dtype=float)


def lifecycle_stage(tenure_days: np.ndarray, trend: np.ndarray, days_since_last_purchase: np.ndarray,
                    config: SegmentConfig, bounds: Optional[CadenceBounds] = None,
                    frequency: Optional[np.ndarray] = None) -> np.ndarray:
    """Relationship stage from tenure (days) and the purchase-rate trend in [-1, 1].

    Rules, in order (defaults in brackets):

    1. tenure < ``exploration_days`` [90] -> exploration (the trend window is not yet
       observed: every young customer looks "rising");
    2. trend <= -``trend_band`` [-0.2] or no purchase for ``lapse_days`` [180] -> decline;
    3. tenure < ``stability_days`` [365]: trend >= ``trend_band`` -> formation, else
       exploration (young and not yet growing);
    4. otherwise (established, not declining) -> stability.

    >>> lifecycle_stage(np.array([30, 200, 200, 200, 400, 400]), np.array([1, 0.5, 0, -0.5, 0.5, 0]),
    ...                 np.array([0, 5, 5, 5, 5, 200]), SegmentConfig()).tolist()
    ['exploration', 'formation', 'exploration', 'decline', 'stability', 'decline']

    With learnt ``bounds`` (:func:`cadence_bounds`) their ``exploration_days``,
    ``lapse_days`` and ``stability_days`` replace the config's, and after rule 2 a customer
    with one purchase only (``frequency`` 0) is in exploration (trust not yet built):

    >>> b = CadenceBounds(10.0, 20.0, 40.0, 60.0, 10.0, 80.0)
    >>> lifecycle_stage(np.array([5, 50, 50, 50, 50, 90]), np.array([1, 0, -0.5, 0.5, 0, 0]),
    ...                 np.array([0, 70, 5, 5, 30, 5]), SegmentConfig(), b, np.array([0, 3, 3, 3, 0, 3])).tolist()
    ['exploration', 'decline', 'decline', 'formation', 'exploration', 'stability']
    """
    return np.array(LIFECYCLE_STAGES)[_stage_codes(tenure_days, trend, days_since_last_purchase, config, bounds,
                                                   frequency)]


def _stage_codes(tenure_days: np.ndarray, trend: np.ndarray, days_since_last_purchase: np.ndarray,
                 config: SegmentConfig, bounds: Optional[CadenceBounds] = None,
                 frequency: Optional[np.ndarray] = None) -> np.ndarray:
    """:func:`lifecycle_stage` as stage codes (positions in :data:`LIFECYCLE_STAGES`)."""
    tenure = np.asarray(tenure_days, dtype=float)
    trend = np.asarray(trend, dtype=float)
    idle = np.asarray(days_since_last_purchase, dtype=float)
    days = config if bounds is None else bounds
    young = tenure < days.stability_days
    single = np.zeros(len(tenure), dtype=bool) if bounds is None else np.asarray(frequency) == 0
    return first_match(
        [tenure < days.exploration_days,
         (trend <= -config.trend_band) | (idle >= days.lapse_days),
         single,
         young & (trend >= config.trend_band),
         young],
        [_EXPLORATION, _DECLINE, _EXPLORATION, _FORMATION, _EXPLORATION],
        _STABILITY)


def learnt_activity_tiers(days_since_last_purchase: np.ndarray,
                          bounds: CadenceBounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tier, previous tier, dropped) by days since the last purchase against the learnt bounds.

    Tier A/B/C/D/none as in :func:`cadence_bounds`; the previous tier is the tier
    :data:`PREVIOUS_TIER_DAYS` days before (the same tier for a purchase since then);
    ``dropped`` when the tier ranks below the previous one and is not ``none`` (a lapse
    past D is decline in the lifecycle, not an early warning).

    >>> b = CadenceBounds(10.0, 20.0, 40.0, 60.0, 10.0, 80.0)
    >>> [t.tolist() for t in learnt_activity_tiers(np.array([5, 35, 45, 65, 95]), b)]
    [['A', 'C', 'D', 'none', 'none'], ['A', 'A', 'B', 'C', 'none'], [False, True, True, False, False]]
    """
    tier, previous, dropped = _learnt_tier_codes(days_since_last_purchase, bounds)
    return np.array(ACTIVITY_TIERS)[tier], np.array(ACTIVITY_TIERS)[previous], dropped


def _learnt_tier_codes(days_since_last_purchase: np.ndarray,
                       bounds: CadenceBounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`learnt_activity_tiers` as tier codes."""
    idle = np.asarray(days_since_last_purchase, dtype=float)

    def tier_at(days: np.ndarray) -> np.ndarray:
        return first_match([days <= bounds.tier_a_days, days <= bounds.tier_b_days, days <= bounds.tier_c_days,
                            days <= bounds.lapse_days], [_A, _B, _C, _D], _NONE)

    tier = tier_at(idle)
    before = idle - PREVIOUS_TIER_DAYS
    previous = np.where(before >= 0, tier_at(before), tier)
    dropped = (tier != _NONE) & (_RANK_OF_CODE[tier] < _RANK_OF_CODE[previous])
    return tier, previous, dropped


def partial_churn(frame: Mapping[str, Any], config: SegmentConfig) -> np.ndarray:
    """True when purchases or spend in the recent window fell by more than ``partial_churn_drop``.

    Recent window R = ``partial_churn_recent_days``, baseline = the rest of the window B =
    ``partial_churn_baseline_days`` before it (ages R to B-1 days), cut to the days the
    customer existed: ``baseline_days = clip(min(B, tenure_days + 1) - R, 0, B - R)``.
    The expected recent count is ``baseline_count * R / baseline_days`` (same for spend);
    the drop is ``1 - recent / expected``. Only customers still active (a purchase in
    the recent window) and with a baseline (``expected > 0``) can be flagged.
    """
    recent, baseline = config.partial_churn_recent_days, config.partial_churn_baseline_days
    tenure = _numbers(frame, "tenure_days")
    baseline_days = np.clip(np.minimum(baseline, tenure + 1.0) - recent, 0.0, baseline - recent)
    active = _numbers(frame, f"n_purchases_{recent}d") > 0
    flagged = np.zeros(len(tenure), dtype=bool)
    for what in ("n_purchases", "spend"):
        now = _numbers(frame, f"{what}_{recent}d")
        before = _numbers(frame, f"{what}_{baseline}d") - now
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.where(baseline_days > 0, before * recent / baseline_days, 0.0)
            drop = np.where(expected > 0, 1.0 - now / expected, 0.0)
        flagged |= drop > config.partial_churn_drop
    return active & flagged


def class_i_cause(frame: Mapping[str, Any], is_i: np.ndarray, stage: np.ndarray,
                  config: SegmentConfig, stability_days: Optional[float] = None) -> np.ndarray:
    """The cause of each class-I row ("" for other classes), first of :data:`CLASS_I_CAUSES` that applies.

    poor credit: ``arrears`` > ``poor_credit_arrears``; price-sensitive: ``discount_share``
    > ``price_sensitive_share`` (each only when ``frame`` has the column); decline: stage
    decline; early relationship: tenure < ``stability_days`` (the config's unless given,
    e.g. the learnt one); else ``unknown``.

    >>> f = pd.DataFrame({"tenure_days": [30.0, 30, 400, 400], "arrears": [5.0, 0, 0, 0],
    ...                   "discount_share": [1.0, 1.0, 0.5, 0.5]})
    >>> class_i_cause(f, np.array([True, True, True, False]), np.array(["decline"] * 4), SegmentConfig()).tolist()
    ['poor credit', 'price-sensitive', 'decline', '']
    """
    return np.array(_CAUSES)[_cause_codes(frame, is_i, np.asarray(stage) == "decline", config, stability_days)]


def _cause_codes(frame: Mapping[str, Any], is_i: np.ndarray, declining: np.ndarray, config: SegmentConfig,
                 stability_days: Optional[float] = None) -> np.ndarray:
    """:func:`class_i_cause` as cause codes (positions in ``_CAUSES``), given who is in decline."""
    never = np.zeros(len(is_i), dtype=bool)
    poor_credit = _numbers(frame, ARREARS) > config.poor_credit_arrears if ARREARS in frame else never
    price_sensitive = (_numbers(frame, DISCOUNT_SHARE) > config.price_sensitive_share
                       if DISCOUNT_SHARE in frame else never)
    applies = [poor_credit, price_sensitive, declining,
               _numbers(frame, "tenure_days") < (config.stability_days if stability_days is None else stability_days)]
    return first_match([~is_i, *applies], list(range(len(_CAUSES) - 1)), len(_CAUSES) - 1)


def assign_segments(frame: pd.DataFrame, config: SegmentConfig, thresholds: SegmentThresholds) -> pd.DataFrame:
    """The :data:`SEGMENT_COLUMNS` of each row of ``frame`` (same order, fresh RangeIndex).

    ``frame`` holds the :func:`required_columns` (a score table joined with the
    calendar-month counts; ``discount_share`` and ``arrears`` optional). Row-wise: no
    statistic of the batch is used. See :func:`segment_arrays`.
    """
    _require(frame, [c for c in required_columns(config, thresholds) if c not in DISCOUNT_CREDIT_COLUMNS])
    return frame_of(segment_arrays(frame, config, thresholds))[list(SEGMENT_COLUMNS)]


def segment_arrays(columns: Mapping[str, Any], config: SegmentConfig,
                   thresholds: SegmentThresholds) -> dict[str, np.ndarray]:
    """:func:`assign_segments` on a mapping of column name -> array (or a frame): one array per segment column.

    The arrays version, for callers that score a handful of customers and build their own
    output (a frame costs more than the rules for a few rows). A class-I customer with a
    cause gets the cause's retention policy (:data:`CLASS_I_CAUSES`).
    """
    spend = _numbers(columns, config.spend_column)
    clv = _numbers(columns, "clv")
    churn = _numbers(columns, "churn_probability")
    tenure = _numbers(columns, "tenure_days")

    high_current = spend > thresholds.current_spend_high
    high_potential = clv > thresholds.clv_high
    class_index = first_match([high_current & high_potential, high_current, high_potential], [3, 2, 1], 0)
    classes = ["I", "II", "III", "IV"]  # indexed by class_index
    names, resources, retention_by_class = ([VALUE_CLASSES[c][k] for c in classes] for k in range(3))

    bounds = cadence_bounds(config, thresholds)
    idle, trend = _numbers(columns, "days_since_last_purchase"), _numbers(columns, config.trend_column)
    if bounds is None:
        stage = _stage_codes(tenure, trend, idle, config)
        tier, previous, dropped = _monthly_tier_codes(np.asarray(columns[MONTH_COLUMNS[0]]),
                                                      np.asarray(columns[MONTH_COLUMNS[1]]), config)
    else:
        stage = _stage_codes(tenure, trend, idle, config, bounds, np.asarray(columns["frequency"]))
        tier, previous, dropped = _learnt_tier_codes(idle, bounds)
    cause = _cause_codes(columns, class_index == 0, stage == _DECLINE, config,
                         None if bounds is None else bounds.stability_days)
    # the retention policy: the class's, or the cause's (codes 1..4 of _CAUSES) listed after them
    has_cause = (cause > 0) & (cause <= len(CLASS_I_CAUSES))
    retention = np.where(has_cause, len(classes) - 1 + cause, class_index)

    at_risk = high_potential & (churn >= config.alert_churn_probability)
    pyramid = first_match([clv > thresholds.clv_key, clv > thresholds.clv_potential], [0, 1], 2)
    return {
        "current_value": spend * config.margin_rate,
        "future_value": clv * config.margin_rate,
        "value_class": take_texts(classes, class_index),
        "value_class_name": take_texts(names, class_index),
        "resource_policy": take_texts(resources, class_index),
        "retention_policy": take_texts([*retention_by_class, *CLASS_I_CAUSES.values()], retention),
        "class_i_cause": take_texts(_CAUSES, cause),
        "pyramid_tier": take_texts(PYRAMID_TIERS, pyramid),
        "activity_tier": take_texts(ACTIVITY_TIERS, tier),
        "previous_activity_tier": take_texts(ACTIVITY_TIERS, previous),
        "alert": dropped | at_risk,
        "alert_reason": _alert_reasons(tier, previous, dropped, at_risk, churn),
        "lifecycle_stage": take_texts(LIFECYCLE_STAGES, stage),
        "partial_churn": partial_churn(columns, config),
    }


def _alert_reasons(tier: np.ndarray, previous: np.ndarray, dropped: np.ndarray, at_risk: np.ndarray,
                   churn: np.ndarray) -> TextArray:
    """Per row: ``tier B->C`` for a drop, ``churn risk 0.63 with high future value`` for a
    risk, both joined by ``; ``, "" for neither (tiers as codes)."""
    parts = []
    for rows, drop, risk in ((np.flatnonzero(dropped & at_risk), True, True),
                             (np.flatnonzero(dropped & ~at_risk), True, False),
                             (np.flatnonzero(~dropped & at_risk), False, True)):
        if not len(rows):
            continue
        pieces: list[Any] = []
        if drop:
            pieces += ["tier ", coded(ACTIVITY_TIERS, previous[rows]), "->", coded(ACTIVITY_TIERS, tier[rows])]
        if risk:
            pieces += ["; " if drop else "", "churn risk ",
                       format_distinct(shown_numbers(churn[rows], 2), "{:.2f}".format), " with high future value"]
        parts.append((rows, join_texts(pieces, len(rows))))
    return scatter_texts(len(tier), parts).column()


def segment_settings(config: SegmentConfig, thresholds: SegmentThresholds) -> dict[str, dict[str, Any]]:
    """The settings as plain JSON-able dicts: ``{"config": {...}, "thresholds": {...}}``."""
    return {"config": asdict(config), "thresholds": asdict(thresholds)}


def apply_overrides(config: SegmentConfig, thresholds: SegmentThresholds,
                    overrides: Mapping[str, Any]) -> tuple[SegmentConfig, SegmentThresholds]:
    """Replace any config field or threshold by name (flat, or nested as in a sidecar JSON).

    Unknown names raise :class:`CustscoreError`; the result is validated like any config.
    """
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("config", "thresholds") and isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    config_names = {f.name for f in fields(SegmentConfig)}
    threshold_names = {f.name for f in fields(SegmentThresholds)}
    unknown = sorted(set(flat) - config_names - threshold_names)
    if unknown:
        raise CustscoreError(f"segments: unknown setting(s) {unknown}; known: "
                             f"{sorted(config_names | threshold_names)}")
    config = replace(config, **{k: v for k, v in flat.items() if k in config_names})
    thresholds = replace(thresholds, **{k: v for k, v in flat.items() if k in threshold_names})
    return config, thresholds
