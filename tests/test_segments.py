"""Segments on hand-built customer bases whose answers are known by hand."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.features.customers import customer_features
from custscore.features.months import calendar_month_counts, last_complete_month
from custscore.training.scorer import SCORE_COLUMNS
from custscore.training.segments import (SEGMENT_COLUMNS, SegmentConfig, SegmentThresholds, activity_tiers,
                                         apply_overrides, assign_segments, fit_thresholds, lifecycle_stage,
                                         partial_churn, required_columns, segment_arrays)

#: Today's (textbook) rules: monthly tier bounds and fixed stage days.
CONFIG = SegmentConfig(cadence="textbook")
THRESHOLDS = SegmentThresholds(current_spend_high=100.0, clv_high=50.0, clv_key=200.0, clv_potential=50.0)


def _purchases(history: dict[str, list[str]], amount: float = 10.0) -> pd.DataFrame:
    rows = [(c, pd.Timestamp(d), amount) for c, days in history.items() for d in days]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame.sort_values(["customer_id", "date"]).reset_index(drop=True)


def _days(as_of: str, *ages: int) -> list[str]:
    """Dates ``ages`` days before ``as_of``."""
    return [(pd.Timestamp(as_of) - pd.Timedelta(days=a)).date().isoformat() for a in ages]


# --- calendar months ---------------------------------------------------------------------

def test_last_complete_month_rule():
    # as_of on a month end: that month is complete; otherwise the month before.
    assert last_complete_month("1997-09-30") == (pd.Timestamp("1997-09-01"), pd.Timestamp("1997-09-30"))
    assert last_complete_month("1997-10-01") == (pd.Timestamp("1997-09-01"), pd.Timestamp("1997-09-30"))
    assert last_complete_month("1997-10-30") == (pd.Timestamp("1997-09-01"), pd.Timestamp("1997-09-30"))
    assert last_complete_month("1997-10-31") == (pd.Timestamp("1997-10-01"), pd.Timestamp("1997-10-31"))
    assert last_complete_month("1998-01-10") == (pd.Timestamp("1997-12-01"), pd.Timestamp("1997-12-31"))
    assert last_complete_month("2024-02-29") == (pd.Timestamp("2024-02-01"), pd.Timestamp("2024-02-29"))


def test_calendar_month_counts_hand_computed():
    purchases = _purchases({
        "a": ["1997-07-31", "1997-08-01", "1997-08-31", "1997-09-01", "1997-09-15", "1997-09-30"],
        "b": ["1997-08-10"],
        "c": ["1997-06-01"],
        "d": ["1997-10-05"],  # after as_of: absent
    })
    before = purchases.copy()
    out = calendar_month_counts(purchases, "1997-10-04")  # last month = September, before = August
    pd.testing.assert_frame_equal(purchases, before)
    assert out.index.tolist() == ["a", "b", "c"]
    assert out.to_dict("index") == {
        "a": {"n_purchases_last_month": 3, "n_purchases_month_before": 2},
        "b": {"n_purchases_last_month": 0, "n_purchases_month_before": 1},
        "c": {"n_purchases_last_month": 0, "n_purchases_month_before": 0},
    }
    assert out.dtypes.tolist() == ["int64", "int64"]
    # Scoring on the last day of a month counts that month.
    at_end = calendar_month_counts(purchases, "1997-08-31")
    assert at_end.loc["a"].tolist() == [2, 1] and at_end.loc["b"].tolist() == [1, 0]


def test_customer_features_carry_month_counts():
    purchases = _purchases({"a": ["1997-08-02", "1997-09-03"]})
    out = customer_features(purchases, "1997-09-30")
    assert out.loc["a", ["n_purchases_last_month", "n_purchases_month_before"]].tolist() == [1, 1]


# --- activity tiers and alerts -----------------------------------------------------------

def test_activity_tiers_and_drops():
    #                  A->B  A->A  B->C  C->D  B->A  none->C  none  C->C  boundary 11/10
    last = np.array([8, 12, 3, 0, 11, 2, 0, 1, 10])
    before = np.array([15, 11, 6, 4, 10, 0, 0, 5, 11])
    tier, previous, dropped = activity_tiers(last, before, CONFIG)
    assert tier.tolist() == ["B", "A", "C", "D", "A", "C", "none", "C", "B"]
    assert previous.tolist() == ["A", "A", "B", "C", "B", "none", "none", "C", "A"]
    assert dropped.tolist() == [True, False, True, True, False, False, False, False, True]


def test_b2b_tier_bounds_are_parameters():
    b2b = SegmentConfig(tier_a_min=4, tier_b_min=2)
    tier, _, _ = activity_tiers(np.array([4, 3, 2, 1]), np.array([0, 0, 0, 0]), b2b)
    assert tier.tolist() == ["A", "B", "B", "C"]


def _base(**columns) -> pd.DataFrame:
    """A one-row-per-customer frame with neutral defaults, overridden by ``columns``."""
    n = len(next(iter(columns.values())))
    defaults = dict(spend_365d=10.0, n_purchases_90d=1, spend_90d=5.0, n_purchases_365d=3,
                    tenure_days=400.0, days_since_last_purchase=10.0, trend_90d=0.0,
                    n_purchases_last_month=1, n_purchases_month_before=1, churn_probability=0.1, clv=10.0)
    frame = pd.DataFrame({k: np.full(n, v) for k, v in defaults.items()})
    for k, v in columns.items():
        frame[k] = v
    return frame


def test_alerts_from_tier_drop_and_churn_risk_with_high_value():
    frame = _base(
        n_purchases_last_month=[8, 12, 12, 12, 0],
        n_purchases_month_before=[15, 12, 12, 12, 3],
        churn_probability=[0.1, 0.6, 0.6, 0.4, 0.9],
        clv=[10.0, 80.0, 20.0, 80.0, 80.0],
    )
    out = assign_segments(frame, CONFIG, THRESHOLDS)
    assert out["alert"].tolist() == [True, True, False, False, True]
    assert out["alert_reason"].tolist() == [
        "tier A->B",
        "churn risk 0.60 with high future value",
        "",  # risky but clv 20 is not high
        "",  # high value, churn 0.4 below 0.5
        "tier C->D; churn risk 0.90 with high future value",
    ]


# --- lifecycle ---------------------------------------------------------------------------

def test_lifecycle_on_constructed_histories():
    as_of = "2021-06-30"
    history = {
        # first purchase 20 days ago: exploration whatever the trend
        "new": _days(as_of, 20, 5),
        # tenure 200 days, 1 purchase in the previous 90 days, 3 in the last 90: rising -> formation
        "forming": _days(as_of, 200, 120, 60, 30, 5),
        # tenure 200 days, one purchase in each 90-day window: flat and young -> exploration
        "young_flat": _days(as_of, 200, 150, 60),
        # a purchase every 30 days for two years: flat, established -> stability
        "steady": _days(as_of, *range(720, -1, -30)),
        # 4 purchases 90-180 days ago, 1 in the last 90: trend (1-4)/5 = -0.6 -> decline
        "declining": _days(as_of, 700, 170, 150, 130, 100, 20),
        # established, last purchase 200 days ago: lapsed -> decline
        "lapsed": _days(as_of, 600, 400, 200),
    }
    features = customer_features(_purchases(history), as_of)
    assert features.loc["forming", "trend_90d"] == pytest.approx(0.5)  # (3 - 1) / 4
    assert features.loc["declining", "trend_90d"] == pytest.approx(-0.6)
    stage = pd.Series(lifecycle_stage(features["tenure_days"], features["trend_90d"],
                                      features["days_since_last_purchase"], CONFIG), index=features.index)
    assert stage.to_dict() == {"declining": "decline", "forming": "formation", "lapsed": "decline",
                               "new": "exploration", "steady": "stability", "young_flat": "exploration"}


# --- partial churn -----------------------------------------------------------------------

def test_partial_churn_hand_computed():
    # Baseline = ages 90..364 (275 days). Customer 0: 11 purchases, 110 spent there,
    # 1 purchase of 10 recently: expected 11*90/275 = 3.6, drop 1 - 1/3.6 = 0.72 > 0.5.
    # Customer 1: 5 in the baseline -> expected 1.64, 1 recent: drop 0.39, no.
    # Customer 2: same counts as 1 but recent spend 2 vs expected 50*90/275 = 16.4: spend drop.
    # Customer 3: like 0 but nothing recent: a lapse, not partial churn.
    # Customer 4: tenure 179 days: baseline = ages 90..179 (90 days), 4 there, 1 recent: drop 0.75.
    # Customer 5: tenure 60 days: no baseline, never flagged.
    frame = _base(
        n_purchases_90d=[1, 1, 1, 0, 1, 1], spend_90d=[10.0, 10.0, 2.0, 0.0, 10.0, 10.0],
        n_purchases_365d=[12, 6, 6, 11, 5, 3], spend_365d=[120.0, 60.0, 52.0, 110.0, 50.0, 30.0],
        tenure_days=[400.0, 400.0, 400.0, 400.0, 179.0, 60.0],
    )
    assert partial_churn(frame, CONFIG).tolist() == [True, False, True, False, True, False]
    # At an 80 % drop only customer 2's spend (1 - 2/16.4 = 0.88) still qualifies.
    assert partial_churn(frame, SegmentConfig(partial_churn_drop=0.8)).tolist() == [False, False, True] + [False] * 3


# --- value matrix, causes, pyramid -------------------------------------------------------

def test_value_matrix_pyramid_and_class_i_cause():
    frame = _base(
        spend_365d=[150.0, 150.0, 20.0, 20.0, 20.0, 20.0, 100.0],
        clv=[300.0, 30.0, 60.0, 10.0, 10.0, 10.0, 50.0],
        tenure_days=[400.0, 400.0, 400.0, 200.0, 400.0, 400.0, 400.0],
        trend_90d=[0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0],
    )
    out = assign_segments(frame, CONFIG, THRESHOLDS)
    assert out["value_class"].tolist() == ["IV", "III", "II", "I", "I", "I", "I"]  # cuts are strict
    assert out["value_class_name"].tolist() == ["platinum", "gold", "iron", "lead", "lead", "lead", "lead"]
    assert out["resource_policy"].tolist()[:4] == ["top priority", "heavy", "moderate", "none by default"]
    assert out["class_i_cause"].tolist() == ["", "", "", "early relationship", "decline", "unknown", "unknown"]
    assert out["pyramid_tier"].tolist() == ["key", "regular", "potential", "regular", "regular", "regular",
                                            "regular"]
    assert list(out.columns) == list(SEGMENT_COLUMNS)


def test_margin_scales_values_but_not_classes():
    frame = _base(spend_365d=[150.0, 20.0], clv=[300.0, 10.0])
    full = assign_segments(frame, CONFIG, THRESHOLDS)
    margin = assign_segments(frame, SegmentConfig(margin_rate=0.3), THRESHOLDS)
    assert margin["current_value"].tolist() == pytest.approx([45.0, 6.0])
    assert margin["future_value"].tolist() == pytest.approx([90.0, 3.0])
    assert margin["value_class"].tolist() == full["value_class"].tolist() == ["IV", "I"]


def test_fit_thresholds_gives_the_configured_shares():
    population = pd.DataFrame({"spend_365d": np.arange(1.0, 101.0), "clv": np.arange(1.0, 101.0) * 2})
    t = fit_thresholds(population, CONFIG)
    frame = _base(spend_365d=population["spend_365d"].to_numpy(), clv=population["clv"].to_numpy())
    out = assign_segments(frame, CONFIG, t)
    assert out["value_class"].isin(["III", "IV"]).sum() == 20
    assert (out["pyramid_tier"] == "key").sum() == 5
    assert (out["pyramid_tier"] == "potential").sum() == 15


def test_segments_are_row_wise_so_chunks_agree():
    rng = np.random.default_rng(0)
    n = 200
    frame = _base(spend_365d=rng.gamma(1.0, 80.0, n), clv=rng.gamma(1.0, 60.0, n),
                  churn_probability=rng.uniform(size=n), tenure_days=rng.uniform(0, 800, n),
                  trend_90d=rng.uniform(-1, 1, n), n_purchases_last_month=rng.integers(0, 15, n),
                  n_purchases_month_before=rng.integers(0, 15, n))
    whole = assign_segments(frame, CONFIG, THRESHOLDS)
    parts = pd.concat([assign_segments(frame.iloc[i:i + 37], CONFIG, THRESHOLDS) for i in range(0, n, 37)],
                      ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)


# --- settings ----------------------------------------------------------------------------

def test_overrides_flat_or_nested_and_unknown_names():
    config, thresholds = apply_overrides(CONFIG, THRESHOLDS, {"tier_a_min": 20, "thresholds": {"clv_high": 5}})
    assert config.tier_a_min == 20 and config.tier_b_min == CONFIG.tier_b_min
    assert thresholds.clv_high == 5.0 and thresholds.clv_key == THRESHOLDS.clv_key
    with pytest.raises(CustscoreError, match=r"unknown setting\(s\) \['tier_z'\]"):
        apply_overrides(CONFIG, THRESHOLDS, {"tier_z": 1})


@pytest.mark.parametrize("kwargs, message", [
    ({"tier_a_min": 5, "tier_b_min": 6}, "tier bounds"),
    ({"high_current_share": 1.2}, "high_current_share"),
    ({"key_share": 0.5, "potential_share": 0.5}, "key_share"),
    ({"margin_rate": 0.0}, "margin_rate"),
    ({"value_window_days": 1.5}, "value_window_days"),
    ({"exploration_days": 400}, "exploration_days"),
])
def test_bad_config_raises_naming_the_field(kwargs, message):
    with pytest.raises(CustscoreError, match=message):
        SegmentConfig(**kwargs)


def test_missing_feature_column_is_named():
    with pytest.raises(CustscoreError, match="n_purchases_last_month"):
        assign_segments(_base(clv=[1.0]).drop(columns="n_purchases_last_month"), CONFIG, THRESHOLDS)


# --- on CDNOW, through the trained model -------------------------------------------------

def test_cdnow_scores_carry_segments_with_fitted_shares(trained):
    result = trained["result"]
    scorer = result.scorer
    assert scorer.segment_thresholds is not None
    scores = scorer.score_customers(result.calibration, trained["config"].cutoff)
    assert list(scores.columns) == list(SCORE_COLUMNS) + list(SEGMENT_COLUMNS)
    # Thresholds fitted on these calibration customers: ~20 % high current value, 5 % key, 15 % potential.
    n = len(scores)
    assert scores["value_class"].isin(["III", "IV"]).sum() / n == pytest.approx(0.20, abs=0.005)
    assert (scores["pyramid_tier"] == "key").sum() / n == pytest.approx(0.05, abs=0.005)
    assert (scores["pyramid_tier"] == "potential").sum() / n == pytest.approx(0.15, abs=0.005)
    # CDNOW customers first bought in Jan-Mar 1997: at 1997-09-30 nobody has a year of tenure.
    assert "stability" not in set(scores["lifecycle_stage"])


def test_segment_arrays_takes_plain_arrays_like_a_frame() -> None:
    """The arrays entry point (used by the HTTP fast path) applies the same rules as the frame one."""
    rng = np.random.default_rng(5)
    config = SegmentConfig()
    columns = {c: rng.integers(0, 14, 40) if c.startswith("n_purchases") or c.startswith("purchases")
               else rng.uniform(0, 100, 40) for c in required_columns(config) if c not in ("discount_share", "arrears")}
    thresholds = SegmentThresholds(current_spend_high=50.0, clv_high=40.0, clv_key=90.0, clv_potential=60.0)
    arrays = segment_arrays(columns, config, thresholds)
    frame = assign_segments(pd.DataFrame(columns), config, thresholds)
    assert list(arrays) == list(frame.columns)
    for name, values in arrays.items():
        assert list(values) == frame[name].tolist(), name


# --- cadence learnt from the log (CDNOW master) ----------------------------------------------

@pytest.fixture(scope="module")
def master_scores():
    """CDNOW master trained at 1997-09-30 (90-day horizon) and scored at the cutoff, learnt cadence."""
    from custscore.config import TrainConfig
    from custscore.features.cdnow import load_cdnow_master
    from custscore.features.customers import PandasEngine
    from custscore.features.io import normalise_transactions
    from custscore.training.pipeline import train_scorer
    tx = normalise_transactions(load_cdnow_master())
    config = TrainConfig(cutoff="1997-09-30", horizon_days=90, time_unit="D")
    result = train_scorer(PandasEngine(tx), config)
    return tx, result, result.scorer.score_customers(result.calibration, config.cutoff)


def test_learnt_gaps_are_quantiles_of_the_repeat_buyers_mean_gaps(master_scores):
    tx, result, _ = master_scores
    days = tx.loc[tx["ts"] < pd.Timestamp("1997-10-01"), ["customer_id", "ts"]].assign(d=lambda f: f["ts"].dt.normalize())
    days = days.drop_duplicates(["customer_id", "d"]).sort_values(["customer_id", "d"])
    span = days.groupby("customer_id")["d"].agg(lambda d: (d.max() - d.min()).days / (len(d) - 1) if len(d) > 1
                                                 else np.nan).dropna()
    want = np.quantile(span.to_numpy(), [0.5, 0.75, 0.9])
    assert result.scorer.segment_thresholds.gap_days == pytest.approx(tuple(want), rel=1e-12)


def test_learnt_cadence_splits_cdnow_master_into_groups_of_actionable_size(master_scores):
    _, _, scores = master_scores
    assert len(scores) == 23570
    for column in ("lifecycle_stage", "activity_tier"):
        shares = scores[column].value_counts(normalize=True)
        assert shares.max() <= 0.50, (column, shares.to_dict())
        assert len(shares) >= 3, column


def test_textbook_cadence_reproduces_the_monthly_tables_on_cdnow_master(master_scores):
    _, result, _ = master_scores
    scorer = dataclasses.replace(result.scorer, segment_config=SegmentConfig(cadence="textbook"))
    scores = scorer.score_customers(result.calibration, result.scorer.cutoff)
    calibration = result.calibration
    tier, previous, _ = activity_tiers(calibration["n_purchases_last_month"].to_numpy(),
                                       calibration["n_purchases_month_before"].to_numpy(), SegmentConfig(cadence="textbook"))
    assert scores["activity_tier"].tolist() == tier.tolist()
    assert scores["previous_activity_tier"].tolist() == previous.tolist()
    # the numbers: 85 % of customers in decline and 87 % in tier "none" with the textbook bounds
    assert (scores["lifecycle_stage"] == "decline").mean() == pytest.approx(0.85, abs=0.01)
    assert (scores["activity_tier"] == "none").mean() == pytest.approx(0.87, abs=0.01)
