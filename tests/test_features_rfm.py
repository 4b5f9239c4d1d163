"""Tests for merge_periods, rfm_summary and window_purchases, cross-checked with lifetimes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.features.cdnow import load_cdnow_master, load_cdnow_sample
from custscore.features.io import normalise_transactions
from custscore.features.periods import merge_periods
from custscore.features.rfm import duration_columns, rfm_summary, window_purchases

CUTOFF = "1997-09-30"


@pytest.fixture(scope="module")
def cdnow_raw() -> pd.DataFrame:
    return load_cdnow_sample()


@pytest.fixture(scope="module")
def cdnow_purchases(cdnow_raw) -> pd.DataFrame:
    return merge_periods(normalise_transactions(cdnow_raw))


def _tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    raw = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return normalise_transactions(raw)


def test_cdnow_loaders():
    sample = load_cdnow_sample()
    assert list(sample.columns) == ["customer_id", "date", "amount"]
    assert sample["customer_id"].nunique() == 2357 and len(sample) == 6919
    assert sample["customer_id"].iloc[0] == "00004"
    assert sample["date"].dtype == "datetime64[ns]" and sample["amount"].dtype == "float64"
    assert sample["date"].min() == pd.Timestamp("1997-01-01") and sample["date"].max() == pd.Timestamp("1998-06-30")
    master = load_cdnow_master()
    assert list(master.columns) == ["customer_id", "date", "amount"]
    assert master["customer_id"].nunique() == 23570
    assert master["customer_id"].iloc[0] == "00001"


@pytest.mark.filterwarnings("ignore:The 'mode.chained_assignment' option is deprecated")
def test_rfm_equals_lifetimes_on_cdnow_sample(cdnow_raw, cdnow_purchases):
    import lifetimes.utils

    expected = lifetimes.utils.summary_data_from_transaction_data(
        cdnow_raw.copy(), "customer_id", "date", monetary_value_col="amount",
        freq="D", observation_period_end=CUTOFF,
    ).sort_index()
    got = rfm_summary(cdnow_purchases, CUTOFF, time_unit="D")
    assert len(got) == 2357
    assert got.index.name == "customer_id"
    assert got.index.tolist() == expected.index.tolist()
    assert got["frequency"].dtype == "int64"
    np.testing.assert_array_equal(got["frequency"].to_numpy(), expected["frequency"].to_numpy())
    np.testing.assert_array_equal(got["recency_days"].to_numpy(), expected["recency"].to_numpy())
    np.testing.assert_array_equal(got["T_days"].to_numpy(), expected["T"].to_numpy())
    np.testing.assert_allclose(got["monetary_value"].to_numpy(), expected["monetary_value"].to_numpy(), rtol=1e-12)

    weeks = rfm_summary(cdnow_purchases, CUTOFF, time_unit="W")
    assert list(weeks.columns[:4]) == ["frequency", "recency_weeks", "T_weeks", "monetary_value"]
    np.testing.assert_allclose(weeks["recency_weeks"], got["recency_days"] / 7.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weeks["T_weeks"], got["T_days"] / 7.0, rtol=0, atol=1e-12)
    pd.testing.assert_series_equal(weeks["frequency"], got["frequency"])
    pd.testing.assert_series_equal(weeks["monetary_value"], got["monetary_value"])


def test_cdnow_holdout_repeat_purchases(cdnow_purchases):
    # domain.md: 1,882 repeat purchases observed in the holdout 1997-10-01..1998-06-30
    calib = rfm_summary(cdnow_purchases, CUTOFF)
    holdout = window_purchases(cdnow_purchases, CUTOFF, "1998-06-30")
    assert holdout.index.isin(calib.index).all()
    assert int(holdout["n_purchases"].sum()) == 1882


def test_rfm_merges_same_day_counts_cutoff_ignores_later():
    tx = _tx([
        ("00007", "2020-01-01 09:00", 10.0),
        ("00007", "2020-01-01 18:00", 5.0),   # same day: merged with the one above
        ("00007", "2020-01-05", 4.0),
        ("00007", "2020-01-10", 6.0),          # on the cutoff day: counts
        ("00007", "2020-01-11", 100.0),        # after the cutoff: ignored
        ("00042", "2020-01-03", 7.0),
        ("00099", "2020-01-12", 1.0),          # first purchase after cutoff: absent
    ])
    tx_before = tx.copy()
    purchases = merge_periods(tx)
    pd.testing.assert_frame_equal(tx, tx_before)
    assert purchases.loc[purchases["customer_id"] == "00007", "amount"].tolist() == [15.0, 4.0, 6.0, 100.0]
    assert purchases["date"].dtype == "datetime64[ns]"

    purchases_before = purchases.copy()
    out = rfm_summary(purchases, "2020-01-10")
    pd.testing.assert_frame_equal(purchases, purchases_before)
    assert out.index.tolist() == ["00007", "00042"]  # leading zeros kept, 00099 absent
    a = out.loc["00007"]
    assert a["frequency"] == 2
    assert a["recency_days"] == 9.0 and a["T_days"] == 9.0
    assert a["monetary_value"] == 5.0
    assert a["first_purchase"] == pd.Timestamp("2020-01-01") and a["last_purchase"] == pd.Timestamp("2020-01-10")
    b = out.loc["00042"]
    assert (b["frequency"], b["recency_days"], b["T_days"], b["monetary_value"]) == (0, 0.0, 7.0, 0.0)
    assert out["frequency"].dtype == "int64" and out["T_days"].dtype == "float64"


def test_window_purchases_bounds_and_purity():
    purchases = merge_periods(_tx([
        ("a", "2020-01-01", 1.0), ("a", "2020-01-02", 2.0), ("a", "2020-01-05", 4.0),
        ("b", "2020-01-06", 8.0), ("c", "2020-01-03", 16.0),
    ]))
    before = purchases.copy()
    out = window_purchases(purchases, "2020-01-01", "2020-01-05")
    pd.testing.assert_frame_equal(purchases, before)
    assert out.to_dict("index") == {"a": {"n_purchases": 2, "spend": 6.0}, "c": {"n_purchases": 1, "spend": 16.0}}
    assert out["n_purchases"].dtype == "int64" and out["spend"].dtype == "float64"
    assert out.index.name == "customer_id"


def test_errors_and_unit_names():
    assert duration_columns("D") == ("recency_days", "T_days")
    assert duration_columns("W") == ("recency_weeks", "T_weeks")
    tx = _tx([("a", "2020-01-01", 1.0)])
    with pytest.raises(CustscoreError, match="time_unit"):
        duration_columns("M")
    with pytest.raises(CustscoreError, match="period"):
        merge_periods(tx, period="W")
    with pytest.raises(CustscoreError, match="merge_periods"):
        rfm_summary(pd.DataFrame({"customer_id": ["a", "a"], "date": pd.to_datetime(["2020-01-01"] * 2),
                                  "amount": [1.0, 2.0]}), "2020-01-02")
    with pytest.raises(CustscoreError, match="cutoff"):
        rfm_summary(merge_periods(tx), "not a date")
