"""The shared check and grouping of per-day purchases (features.runs), against hand-worked logs
and a plain pandas group-by written here, for every kind of customer id column."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.features.activity import activity_features
from custscore.features.customers import customer_features
from custscore.features.discount_credit import discount_credit_features
from custscore.features.months import calendar_month_counts
from custscore.features.rfm import rfm_summary, window_purchases
from custscore.features.runs import _SMALL_COLUMN, purchase_runs

# b's rows come first and a's are out of order: the frame must be sorted (a copy)
TOY = pd.DataFrame({
    "customer_id": ["b", "a", "b", "a", "a", "c"],
    "date": pd.to_datetime(["2020-01-02", "2020-01-05", "2020-01-09", "2020-01-01", "2020-01-03", "2020-01-20"]),
    "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
})


def test_runs_of_an_unsorted_log_by_hand():
    before = TOY.copy()
    runs = purchase_runs(TOY, "test", pd.Timestamp("2020-01-09"))
    pd.testing.assert_frame_equal(TOY, before)  # the input is not modified
    # sorted: a 01-01, a 01-03, a 01-05, b 01-02, b 01-09; c (01-20) is after the date
    assert runs.index.tolist() == ["a", "b"] and runs.index.name == "customer_id"
    assert runs.starts.tolist() == [0, 3] and runs.count.tolist() == [3, 2] and runs.last_row.tolist() == [2, 4]
    assert runs.codes.tolist() == [0, 0, 0, 1, 1]
    assert runs.amount.tolist() == [4.0, 5.0, 2.0, 1.0, 3.0]
    assert runs.day.tolist() == [18262, 18264, 18266, 18263, 18270]  # 2020-01-01 is day 18262


def test_a_date_range_inside_each_customer():
    # (01-02, 01-09]: a keeps 01-03 and 01-05 (its first row is left out), b keeps 01-09
    runs = purchase_runs(TOY, "test", pd.Timestamp("2020-01-09"), after=pd.Timestamp("2020-01-02"))
    assert runs.index.tolist() == ["a", "b"]
    assert runs.starts.tolist() == [0, 2] and runs.count.tolist() == [2, 1]
    assert runs.amount.tolist() == [5.0, 2.0, 3.0]
    assert window_purchases(TOY, "2020-01-02", "2020-01-09").to_dict("index") == {
        "a": {"n_purchases": 2, "spend": 7.0}, "b": {"n_purchases": 1, "spend": 3.0}}


def _log(n_customers: int, ids: str, seed: int = 3) -> pd.DataFrame:
    """One row per customer and day (1-12 days in 2021-2022), sorted by customer then date."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        days = np.sort(rng.choice(730, size=int(rng.integers(1, 13)), replace=False))
        rows += [(c, pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(d)), float(rng.integers(1, 10**6)) / 100)
                 for d in days]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    frame["date"] = frame["date"].astype("datetime64[ns]")
    names = {  # each sorts as its codes do
        "int": lambda c: c,
        "str": lambda c: f"{c:06d}",
        "object": lambda c: f"{c:06d}",
        # code point order, not locale order: "Z" < "a" < "é"
        "unicode": lambda c: f"{'Zaé'[c * 3 // n_customers]}{c:06d}",
    }
    frame["customer_id"] = frame["customer_id"].map(names[ids])
    if ids in ("str", "unicode"):
        frame["customer_id"] = frame["customer_id"].astype("str")
    elif ids == "object":
        frame["customer_id"] = frame["customer_id"].astype(object)
    return frame


def _by_groupby(purchases: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """Columns of customer_features by a plain pandas group-by (days), ``as_of`` the last day of a month."""
    as_of = pd.Timestamp(as_of)
    p = purchases[purchases["date"] <= as_of].sort_values(["customer_id", "date"])
    age = (as_of - p["date"]).dt.days
    month = p["date"].dt.to_period("M")
    g = p.assign(age=age, gap=p.groupby("customer_id")["date"].diff().dt.days).groupby("customer_id", sort=True)
    out = pd.DataFrame({
        "frequency": g.size() - 1,
        "recency_days": (g["date"].max() - g["date"].min()).dt.days.astype(float),
        "T_days": g["age"].max().astype(float),
        "days_since_last_purchase": g["age"].min().astype(float),
        "n_purchases_30d": (age < 30).groupby(p["customer_id"]).sum(),
        "n_purchases_365d": (age < 365).groupby(p["customer_id"]).sum(),
        "spend_90d": p.assign(s=p["amount"].where(age < 90, 0.0)).groupby("customer_id")["s"].sum(),
        "ipt_mean_days": g["gap"].mean(),
        "ipt_std_days": g["gap"].std(ddof=0).where(g["gap"].count() >= 2),  # NaN below 3 purchases
        "n_purchases_last_month": (month == as_of.to_period("M")).groupby(p["customer_id"]).sum(),
        "n_purchases_month_before": (month == as_of.to_period("M") - 1).groupby(p["customer_id"]).sum(),
    })
    return out


@pytest.mark.parametrize("ids", ["int", "str", "object", "unicode"])
@pytest.mark.parametrize("order", ["sorted", "shuffled", "customers in reverse"])
def test_features_equal_a_plain_groupby_for_every_id_column(ids, order):
    purchases = _log(2500, ids)
    assert len(purchases) > _SMALL_COLUMN  # the columns' own engines, not Python objects
    if order == "shuffled":
        purchases = purchases.sample(frac=1.0, random_state=1)
    elif order == "customers in reverse":  # each customer's days rise, the ids do not
        purchases = purchases.sort_values(["customer_id", "date"], ascending=[False, True])
    got = customer_features(purchases, "2022-06-30", "D")
    expected = _by_groupby(purchases, "2022-06-30")
    assert got.index.equals(expected.index)
    for column in expected.columns:
        if got[column].dtype.kind == "f" and column.startswith(("spend", "ipt")):  # sums in another order
            np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-12)
        else:
            assert (got[column].to_numpy() == expected[column].to_numpy()).all(), column


@pytest.mark.parametrize("ids", ["int", "str", "object"])
def test_a_second_row_on_a_day_is_refused_even_after_the_date(ids):
    purchases = _log(2500, ids)
    last = purchases.iloc[[-1]]
    doubled = pd.concat([purchases, last], ignore_index=True)  # still sorted (equal dates)
    for frame in (doubled, doubled.sample(frac=1.0, random_state=2)):
        with pytest.raises(CustscoreError, match="^rfm_summary: purchases must have one row per customer and day"):
            customer_features(frame, "2021-01-31", "D")  # the doubled day is in 2022
        with pytest.raises(CustscoreError, match="^calendar_month_counts: "):
            calendar_month_counts(frame, "2021-01-31")


def test_customer_features_is_the_four_feature_families_side_by_side():
    purchases = _log(300, "str")
    rng = np.random.default_rng(5)
    purchases["discounted"] = rng.integers(0, 2, len(purchases))
    purchases["arrears"] = rng.choice([0.0, 12.5, 40.0], len(purchases))
    for as_of in ("2021-03-31", "2022-12-31", "2020-06-30"):  # the last: before every purchase
        joined = (rfm_summary(purchases, as_of, "W").join(activity_features(purchases, as_of))
                  .join(calendar_month_counts(purchases, as_of)).join(discount_credit_features(purchases, as_of)))
        pd.testing.assert_frame_equal(customer_features(purchases, as_of, "W"), joined, check_exact=True)


def test_window_sums_over_chosen_rows_are_the_same_bits():
    purchases = _log(500, "int")
    runs = purchase_runs(purchases, "test", pd.Timestamp("2022-12-31"))
    values = np.random.default_rng(0).choice([0.1, 0.2, 0.3, -0.0, 1e-3, 33.33], len(runs.codes))
    for rows in (runs.day > runs.day.max() - 90, np.zeros(len(runs.codes), dtype=bool)):
        got, expected = runs.sums_where(rows, values), runs.sums(values * rows)
        assert got.dtype == expected.dtype == np.float64
        assert np.array_equal(got.view(np.int64), expected.view(np.int64))


def test_integer_ids_beyond_float_precision_stay_two_customers():
    # 2**53 and 2**53 + 1 are one float64: comparing the ids as floats would merge them
    n = _SMALL_COLUMN // 2 + 1
    purchases = pd.DataFrame({
        "customer_id": np.repeat(np.array([2**53, 2**53 + 1], dtype=np.int64), n),
        "date": np.tile(pd.date_range("2000-01-01", periods=n).to_numpy(dtype="datetime64[ns]"), 2),
        "amount": 1.0,
    })
    out = rfm_summary(purchases, "2040-01-01")
    assert out.index.tolist() == [2**53, 2**53 + 1] and out["frequency"].tolist() == [n - 1, n - 1]
