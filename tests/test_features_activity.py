"""Tests for activity_features on a hand-built history with hand-computed values."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.features.activity import activity_features

AS_OF = pd.Timestamp("2020-12-31")


def _purchases() -> pd.DataFrame:
    days_before = {
        # customer: list of (days before AS_OF, amount)
        "001": [(200, 10.0), (100, 20.0), (50, 30.0), (10, 40.0), (0, 50.0)],
        "002": [(150, 5.0), (95, 7.0)],
        "003": [(20, 3.0)],
        "004": [(-5, 99.0)],  # only after as_of: absent
    }
    rows = [(c, AS_OF - pd.Timedelta(days=d), a) for c, items in days_before.items() for d, a in items]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame.sort_values(["customer_id", "date"]).reset_index(drop=True)


def test_activity_features_hand_computed():
    purchases = _purchases()
    before = purchases.copy()
    out = activity_features(purchases, AS_OF, windows_days=(30, 90), trend_days=60)
    pd.testing.assert_frame_equal(purchases, before)

    assert out.index.name == "customer_id"
    assert out.index.tolist() == ["001", "002", "003"]
    assert list(out.columns) == [
        "tenure_days", "days_since_last_purchase",
        "n_purchases_30d", "spend_30d", "n_purchases_90d", "spend_90d",
        "ipt_mean_days", "ipt_std_days", "trend_60d",
    ]
    assert out["n_purchases_30d"].dtype == "int64" and out["spend_30d"].dtype == "float64"

    a = out.loc["001"]
    assert a["tenure_days"] == 200.0 and a["days_since_last_purchase"] == 0.0
    # (as_of-30, as_of]: ages 10 and 0; (as_of-90, as_of]: ages 50, 10, 0
    assert (a["n_purchases_30d"], a["spend_30d"]) == (2, 90.0)
    assert (a["n_purchases_90d"], a["spend_90d"]) == (3, 120.0)
    gaps = np.array([100.0, 50.0, 40.0, 10.0])
    assert a["ipt_mean_days"] == pytest.approx(gaps.mean())  # 50
    assert a["ipt_std_days"] == pytest.approx(gaps.std(ddof=0))  # sqrt(1050)
    # trend 60: n_last = ages < 60 -> 3 (50, 10, 0); n_prev = 60 <= age < 120 -> 1 (100)
    assert a["trend_60d"] == pytest.approx((3 - 1) / (3 + 1))

    b = out.loc["002"]
    assert b["tenure_days"] == 150.0 and b["days_since_last_purchase"] == 95.0
    assert (b["n_purchases_30d"], b["spend_30d"], b["n_purchases_90d"], b["spend_90d"]) == (0, 0.0, 0, 0.0)
    assert b["ipt_mean_days"] == 55.0
    assert np.isnan(b["ipt_std_days"])  # fewer than 3 purchases
    assert b["trend_60d"] == -1.0  # n_last 0, n_prev 1 (age 95)

    c = out.loc["003"]
    assert c["tenure_days"] == 20.0 and c["days_since_last_purchase"] == 20.0
    assert (c["n_purchases_30d"], c["spend_30d"], c["n_purchases_90d"]) == (1, 3.0, 1)
    assert np.isnan(c["ipt_mean_days"]) and np.isnan(c["ipt_std_days"])
    assert c["trend_60d"] == 1.0


def test_window_boundary_is_open_on_the_left():
    purchases = _purchases()
    out = activity_features(purchases, AS_OF, windows_days=(10, 11), trend_days=5)
    assert out.loc["001", "n_purchases_10d"] == 1  # age 10 is outside (as_of-10, as_of]
    assert out.loc["001", "n_purchases_11d"] == 2
    assert out.loc["003", "trend_5d"] == 0.0  # no purchase in either trend window


def test_as_of_inclusive_and_later_purchases_ignored():
    out = activity_features(_purchases(), AS_OF + pd.Timedelta(days=5), windows_days=(1,), trend_days=1)
    assert out.loc["004", "n_purchases_1d"] == 1 and out.loc["004", "days_since_last_purchase"] == 0.0
    earlier = activity_features(_purchases(), "2020-10-01")
    assert earlier.index.tolist() == ["001", "002"]


def test_activity_trend_in_range_on_cdnow():
    from custscore.features import load_cdnow_sample, merge_periods, normalise_transactions

    purchases = merge_periods(normalise_transactions(load_cdnow_sample()))
    out = activity_features(purchases, "1997-09-30")
    assert len(out) == 2357
    assert out["trend_90d"].between(-1.0, 1.0).all()
    assert (out["n_purchases_30d"] <= out["n_purchases_90d"]).all()
    assert (out["n_purchases_90d"] <= out["n_purchases_365d"]).all()


@pytest.mark.parametrize("kwargs", [{"windows_days": (0,)}, {"windows_days": (30, 30)}, {"trend_days": 2.5},
                                    {"windows_days": (True,)}])
def test_bad_options(kwargs):
    with pytest.raises(CustscoreError):
        activity_features(_purchases(), AS_OF, **kwargs)
