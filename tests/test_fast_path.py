"""The numpy fast path equals the pandas path: features, score rows and HTTP requests.

Truth is the pandas path itself, as users get it: ``customer_features(merge_periods(...))``
for the features and :meth:`CustomerScorer.score` for the rows (every column, 1e-9 relative,
text columns exactly). Data: the whole CDNOW sample at several dates and horizons,
constructed edge cases, and random logs (hypothesis).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custscore.config import ScoreConfig, ServeConfig
from custscore.errors import CustscoreError
from custscore.features.cdnow import load_cdnow_sample
from custscore.features.customers import customer_features
from custscore.features.io import normalise_transactions
from custscore.features.periods import merge_periods
from custscore.features.small_features import day_numbers, merge_days, small_customer_features
from custscore.serving.fast_path import fast_path_blocker, score_requests
from custscore.serving.http_schemas import score_request_model
from custscore.serving.model_holder import load_model
from custscore.training.small_scores import score_small
from custscore.training.tracking import use_tracking

URI = "models:/custscore-test@champion"


@pytest.fixture(scope="module")
def scorer(trained):
    use_tracking(trained["config"].tracking_uri)
    return load_model(URI).scorer


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return normalise_transactions(load_cdnow_sample())


def _fast_features(tx: pd.DataFrame, as_of: str, time_unit: str):
    """(customer ids, SmallFeatures) of a normalised frame through the fast path."""
    kept = tx[tx["ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    ids, codes = np.unique(kept["customer_id"].to_numpy(dtype=object), return_inverse=True)
    merged = merge_days(codes, day_numbers(kept["ts"].to_numpy()), kept["amount"].to_numpy())
    features = small_customer_features(merged, as_of, time_unit)
    return ids[features.customers], features


def _fast_scores(scorer, tx: pd.DataFrame, as_of: str, horizon_days=None) -> pd.DataFrame:
    ids, features = _fast_features(tx, as_of, scorer.time_unit)
    return score_small(scorer, ids, features.columns, as_of, horizon_days)


def _assert_frames_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = want[column].to_numpy(), got[column].to_numpy()
        if want[column].dtype.kind in "fiu":
            assert got[column].dtype.kind == want[column].dtype.kind, column
            a, b = a.astype(float), b.astype(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), column
            ok = np.isnan(a) | (np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(a)))
            assert ok.all(), (column, a[~ok][:3], b[~ok][:3])
        else:
            assert a.tolist() == b.tolist(), column


@pytest.mark.parametrize("as_of, time_unit", [("1997-09-30", "W"), ("1997-02-14", "D"), ("1998-06-30", "D")])
def test_features_equal_pandas_engine_on_cdnow(cdnow, as_of, time_unit):
    kept = cdnow[cdnow["ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    want = customer_features(merge_periods(kept), as_of, time_unit)
    ids, features = _fast_features(cdnow, as_of, time_unit)
    assert ids.tolist() == want.index.tolist()
    for column in want.columns:
        expected = want[column].to_numpy()
        if column in ("first_purchase", "last_purchase"):
            expected = day_numbers(expected)
        np.testing.assert_array_equal(features.columns[column], expected, err_msg=column)
        assert features.columns[column].dtype == expected.dtype, column


@pytest.mark.parametrize("as_of, horizon_days", [("1997-09-30", None), ("1997-03-15", 30), ("1998-06-30", 365)])
def test_scores_equal_customer_scorer_on_cdnow(scorer, cdnow, as_of, horizon_days):
    want = scorer.score(cdnow, as_of=as_of, horizon_days=horizon_days)
    _assert_frames_equal(_fast_scores(scorer, cdnow, as_of, horizon_days), want)


@pytest.mark.parametrize("baseline", ["baseline_bgnbd_p_no_purchase", "baseline_days_since_last_purchase"])
def test_shipped_baseline_scores_equal_customer_scorer(scorer, cdnow, baseline):
    """A scorer whose churn_probability is a calibrated baseline scores alike on both paths."""
    from custscore.training.churn import churn_features
    from custscore.training.churn_select import BaselineChurnModel
    customers = customer_features(merge_periods(cdnow[cdnow["ts"] < pd.Timestamp("1997-07-01")]), "1997-06-30", "W")
    X = churn_features(customers, scorer.purchase_model, 90, "W")
    y = (X["days_since_last_purchase"] > 60).astype(int)  # any labels: only the equality of the paths matters
    shipped = dataclasses.replace(scorer, churn=BaselineChurnModel(name=baseline).fit(X, y), churn_model=baseline)
    want = shipped.score(cdnow, as_of="1997-09-30")
    assert want["churn_probability"].nunique() > 10
    _assert_frames_equal(_fast_scores(shipped, cdnow, "1997-09-30"), want)


def _log(rows) -> pd.DataFrame:
    return normalise_transactions(pd.DataFrame(rows, columns=["customer_id", "date", "amount"]))


EDGE_LOG = [
    ("one-purchase", "2000-03-01", 10.0),
    ("same-day", "2000-01-03 09:00", 5.0), ("same-day", "2000-01-03 18:30", 7.5), ("same-day", "2000-02-10", 2.0),
    ("returns", "1999-11-02", 20.0), ("returns", "1999-11-02", -20.0),  # nets to 0: a purchase with spend 0
    ("returns", "1999-12-01", 8.0), ("returns", "1999-12-05", -3.0),  # return-only day: dropped
    ("returns", "2000-02-01", 4.0), ("returns", "2000-02-01", -1.0),
    ("zero-spend", "1999-06-01", 0.0), ("zero-spend", "1999-09-01", 0.0),
    ("on-as-of", "1999-03-01", 3.0), ("on-as-of", "2000-03-31 23:59", 6.0),
    ("month-ends", "2000-01-31", 1.0), ("month-ends", "2000-02-01", 1.0), ("month-ends", "2000-02-29", 1.0),
    ("month-ends", "2000-03-01", 1.0), ("month-ends", "1999-12-31", 1.0),
    ("young", "2000-03-20", 9.0), ("young", "2000-03-25", 11.0),
    ("old", "1968-07-01", 50.0), ("old", "1999-04-01", 60.0),
    *[("busy", f"2000-02-{d:02d}", float(d)) for d in range(1, 16)],  # tier A in February
    ("only-returns", "2000-01-05", -4.0),
    ("after-as-of", "2000-04-01", 5.0),
]


@pytest.mark.parametrize("as_of", ["2000-03-31", "2000-03-15", "2000-02-29", "2000-03-01"])
@pytest.mark.parametrize("time_unit", ["W", "D"])
def test_edge_cases_equal_customer_scorer(scorer, as_of, time_unit):
    """One purchase, same-day rows, returns and net-zero days, zero spend, purchases on
    as_of, month ends and the leap day, customers younger than the windows, pre-1970."""
    unit_scorer = dataclasses.replace(scorer, time_unit=time_unit)
    tx = _log(EDGE_LOG)
    want = unit_scorer.score(tx, as_of=as_of, horizon_days=45)
    got = _fast_scores(unit_scorer, tx, as_of, 45)
    _assert_frames_equal(got, want)
    assert "only-returns" not in got["customer_id"].tolist() and "after-as-of" not in got["customer_id"].tolist()


amounts = st.sampled_from([0.0, 0.25, 1.5, 4.0, 10.75, 99.5, -0.25, -4.0])
rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "00d"]), st.integers(0, 800), st.integers(0, 23), amounts),
                min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, as_of_day=st.integers(0, 820), horizon=st.sampled_from([None, 1, 30, 400]))
def test_random_logs_equal_customer_scorer(scorer, rows, as_of_day, horizon):
    """Random logs around a leap year (days from 1999-12-01, hours, returns): same rows."""
    start = pd.Timestamp("1999-12-01")
    tx = _log([(c, (start + pd.Timedelta(days=d, hours=h)).isoformat(), a) for c, d, h, a in rows])
    as_of = (start + pd.Timedelta(days=as_of_day)).date().isoformat()
    try:
        want = scorer.score(tx, as_of=as_of, horizon_days=horizon)
    except CustscoreError:  # nothing on or before as_of: the fast path has no row either
        assert len(_fast_features(tx, as_of, scorer.time_unit)[0]) == 0
        return
    _assert_frames_equal(_fast_scores(scorer, tx, as_of, horizon), want)


def test_requests_scored_together_equal_each_request_alone(scorer, cdnow):
    """Requests combined in one fast call: each gets the rows of its own pandas-path score."""
    request_model = score_request_model(ServeConfig())
    picked = [["00018", "00004"], ["00004"], ["00111", "00050", "00021"]]
    requests = []
    for ids in picked:
        customers = []
        for c in ids:
            rows = cdnow[(cdnow["customer_id"] == c) & (cdnow["ts"] <= "1997-09-30")]
            customers.append({"customer_id": c, "transactions": [
                {"date": ts.strftime("%Y-%m-%dT%H:%M:%S"), "amount": float(a)}
                for ts, a in zip(rows["ts"], rows["amount"])]})
        requests.append(request_model.model_validate({"as_of": "1997-09-30", "horizon_days": 60,
                                                      "customers": customers}))
    config = ScoreConfig(as_of="1997-09-30", horizon_days=60)
    columns, bounds = score_requests(scorer, requests, config, "custscore-test/7")
    got = pd.DataFrame(columns)
    assert bounds == [0, 2, 3, 6]
    for request, start, end in zip(requests, bounds[:-1], bounds[1:]):
        want = scorer.score(request.transactions_frame(), as_of="1997-09-30", horizon_days=60)
        want["model_version"] = "custscore-test/7"
        _assert_frames_equal(got.iloc[start:end].reset_index(drop=True), want)


def test_fast_path_refuses_a_model_it_cannot_serve(scorer):
    assert fast_path_blocker(scorer) is None
    assert "segment thresholds" in fast_path_blocker(dataclasses.replace(scorer, segment_thresholds=None))
    with pytest.raises(CustscoreError, match="fast path cannot score"):
        _fast_scores(dataclasses.replace(scorer, segment_thresholds=None), _log(EDGE_LOG), "2000-03-31")


def test_a_log_near_1677_equals_the_pandas_path_and_hand_counts():
    """Day numbers near the low end of datetime64[ns] (numpy's datetime64[D] cast overflowed there)."""
    tx = _log([("a", "1677-09-22 09:00", 5.0), ("a", "1677-10-02 23:30", 7.0),
                                      ("b", "1677-09-22 00:00", 3.0), ("b", "1677-09-22 18:00", 1.0)])
    as_of = "1677-10-31"
    want = customer_features(merge_periods(tx), as_of, "D")
    ids, features = _fast_features(tx, as_of, "D")
    assert ids.tolist() == want.index.tolist() == ["a", "b"]
    for column in want.columns:
        got = features.columns[column]
        if column in ("first_purchase", "last_purchase"):
            got = (got * 86_400 * 10**9).view("datetime64[ns]")
        np.testing.assert_array_equal(got, want[column].to_numpy(), err_msg=column)
    # hand counts: a bought on 1677-09-22 and 1677-10-02, b twice on 1677-09-22 (one day)
    assert features.columns["frequency"].tolist() == [1, 0]
    assert features.columns["recency_days"].tolist() == [10.0, 0.0]
    assert features.columns["T_days"].tolist() == [39.0, 39.0]
    assert features.columns["monetary_value"].tolist() == [7.0, 0.0]
    assert day_numbers(np.array(["1677-09-22T00:00"], dtype="datetime64[ns]")).tolist() == [-106751]
