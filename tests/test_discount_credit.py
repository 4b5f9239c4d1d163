"""Optional discount and arrears columns: reading, per-day rule, features, engines, class-I causes.

Every expected value is worked out by hand from the tiny logs below; the CDNOW test plants
the columns on chosen customers, so the causes they must get are known in advance.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from custscore.cli import main
from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.customers import PandasEngine, customer_features
from custscore.features.discount_credit import discount_credit_features
from custscore.features.duckdb_engine import DuckDBEngine
from custscore.features.io import normalise_transactions, read_transactions
from custscore.features.periods import merge_periods
from custscore.serving.report import ACTION_COLUMNS, INTERVAL_COLUMNS, write_report
from custscore.training.segments import CLASS_I_CAUSES, SegmentConfig, SegmentThresholds, assign_segments
from test_duckdb_engine import TINY_CHUNKS, assert_same_engines
from test_report import _number, _printed

COLUMNS = ColumnMap(discount="disc", arrears="overdue")

# as_of 2020-06-30 unless said otherwise.
# p: 3 purchase days, each with a discounted row            -> discount_share 1
#    (2020-02-01: a 2.5 discount on one of two rows counts; arrears max of the day = 40)
# q: 4 purchase days, 1 on discount (the flag on a *return* row does not count) -> 0.25;
#    latest purchase day 2020-06-20 has overdue 0 -> arrears 0 (earlier 15 is settled)
# r: 2 purchase days, flags as text true/FALSE; latest day (2020-06-29) overdue 12.5
#    2020-07-05 is after as_of: ignored at 2020-06-30 (share 0.5, arrears 12.5)
# s: a return-only day (-5, discounted) is no purchase: 1 purchase day, not on discount
LOG = """customer_id,date,amount,disc,overdue
p,2020-01-01,10,1,0
p,2020-02-01 09:00,20,0,40
p,2020-02-01 18:00,5,2.5,0
p,2020-03-01,8,1,30
q,2020-01-10,10,0,15
q,2020-02-10 10:00,10,0,0
q,2020-02-10 11:00,-3,1,0
q,2020-04-10,10,3,0
q,2020-06-20,10,0,0
r,2020-06-01,10,true,0
r,2020-06-29,10,FALSE,12.5
r,2020-07-05,10,1,0
s,2020-03-03,7,0,0
s,2020-03-04,-5,1,9
"""


@pytest.fixture()
def log(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    return path


def test_reads_amounts_flags_and_text_flags(log):
    tx = read_transactions(log, COLUMNS)
    assert list(tx.columns) == ["customer_id", "ts", "amount", "discount", "arrears"]
    assert tx.loc[tx["customer_id"] == "r", "discount"].tolist() == [1.0, 0.0, 1.0]
    assert tx.loc[tx["customer_id"] == "p", "discount"].tolist() == [1.0, 0.0, 2.5, 1.0]
    # booleans (e.g. a Parquet bool column) are flags too
    raw = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2020-01-01", "2020-01-02"], "amount": [1, 2],
                        "disc": [True, False], "overdue": [0, 3]})
    assert normalise_transactions(raw, COLUMNS)["discount"].tolist() == [1.0, 0.0]
    # only the named optional columns are read
    assert list(read_transactions(log, ColumnMap(arrears="overdue")).columns) == ["customer_id", "ts", "amount",
                                                                                   "arrears"]


@pytest.mark.parametrize("column, values, message", [
    ("disc", ["1", "10%"], "row 2: column 'disc': discount is not a finite number >= 0: '10%'"),
    ("disc", ["1", "-2"], "row 2: column 'disc': discount is not a finite number >= 0: -2"),
    ("disc", ["", "1"], "row 1: column 'disc': missing discount"),
    ("overdue", ["-1", "0"], "row 1: column 'overdue': arrears is not a finite number >= 0: -1"),
    ("overdue", ["3", "inf"], "row 2: column 'overdue': arrears is not a finite number >= 0: inf"),
    ("overdue", ["true", "0"], "row 1: column 'overdue': arrears is not a finite number >= 0: 'true'"),
])
def test_bad_values_name_row_column_and_value_in_both_engines(tmp_path, column, values, message):
    rows = {"disc": ["0", "0"], "overdue": ["0", "0"], column: values}
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,date,amount,disc,overdue\n" + "".join(
        f"a,2020-01-0{i + 1},5,{rows['disc'][i]},{rows['overdue'][i]}\n" for i in range(2)))
    with pytest.raises(CustscoreError) as pandas_error:
        read_transactions(path, COLUMNS)
    assert str(pandas_error.value) == f"{path}: {message}"
    with pytest.raises(CustscoreError) as duck_error:
        DuckDBEngine(path, COLUMNS)
    assert str(duck_error.value) == str(pandas_error.value)


def test_named_column_missing_from_the_file(log):
    with pytest.raises(CustscoreError, match=r"missing column\(s\) \['discount'\]"):
        read_transactions(log, ColumnMap(discount="discount"))
    with pytest.raises(CustscoreError, match=r"missing column\(s\) \['credit'\]"):
        DuckDBEngine(log, ColumnMap(arrears="credit"))
    with pytest.raises(CustscoreError, match="must differ"):
        ColumnMap(discount="amount")


def test_per_day_rule_hand_computed(log):
    merged = merge_periods(read_transactions(log, COLUMNS))
    day = merged.set_index(["customer_id", merged["date"].dt.strftime("%Y-%m-%d")])
    assert day.loc[("p", "2020-02-01"), ["amount", "discounted", "arrears"]].tolist() == [25.0, 1, 40.0]
    assert day.loc[("q", "2020-02-10"), ["amount", "discounted"]].tolist() == [7.0, 0]  # the return's flag
    assert ("s", "2020-03-04") not in day.index  # return-only day
    assert merged["discounted"].dtype == "int64" and merged["arrears"].dtype == "float64"


def test_features_hand_computed(log):
    purchases = merge_periods(read_transactions(log, COLUMNS))
    before = purchases.copy()
    got = customer_features(purchases, "2020-06-30")[["discount_share", "arrears"]].to_dict("index")
    assert got == {"p": {"discount_share": 1.0, "arrears": 30.0}, "q": {"discount_share": 0.25, "arrears": 0.0},
                   "r": {"discount_share": 0.5, "arrears": 12.5}, "s": {"discount_share": 0.0, "arrears": 0.0}}
    later = discount_credit_features(purchases, "2020-07-31")
    assert later.loc["r"].tolist() == [2 / 3, 0.0]
    pd.testing.assert_frame_equal(purchases, before)  # input not modified


#: customer_features' columns before the optional ones existed (docs/outputs.md "Score columns" + months).
BASE_FEATURES = ["frequency", "recency_days", "T_days", "monetary_value", "first_purchase", "last_purchase",
                 "tenure_days", "days_since_last_purchase", "n_purchases_30d", "spend_30d", "n_purchases_90d",
                 "spend_90d", "n_purchases_365d", "spend_365d", "ipt_mean_days", "ipt_std_days", "trend_90d",
                 "n_purchases_last_month", "n_purchases_month_before"]


def test_without_the_columns_the_features_are_exactly_as_before(log):
    plain = PandasEngine(read_transactions(log)).customer_features("2020-06-30", "D")
    assert list(plain.columns) == BASE_FEATURES
    assert list(PandasEngine(read_transactions(log)).purchases.columns) == ["customer_id", "date", "amount"]
    full = PandasEngine(read_transactions(log, COLUMNS)).customer_features("2020-06-30", "D")
    assert list(full.columns) == BASE_FEATURES + ["discount_share", "arrears"]
    pd.testing.assert_frame_equal(full[BASE_FEATURES], plain, check_exact=True)
    only_arrears = PandasEngine(read_transactions(log, ColumnMap(arrears="overdue"))).customer_features(
        "2020-06-30", "D")
    assert list(only_arrears.columns) == BASE_FEATURES + ["arrears"]
    duck = DuckDBEngine(log)
    assert list(duck.customer_features("2020-06-30", "D").columns) == BASE_FEATURES
    duck.close()


def test_duckdb_engine_equals_pandas_engine(log, tmp_path):
    assert_same_engines(log, ["2020-03-01", "2020-06-30", "2020-07-31"], COLUMNS)
    assert_same_engines(log, ["2020-06-30"], ColumnMap(discount="disc"), settings=TINY_CHUNKS)
    # typed Parquet: bool flags and integer arrears
    raw = pd.read_csv(log, dtype={"customer_id": str})
    raw["disc"] = raw["disc"].astype(str).str.lower().isin(["1", "2.5", "3", "true"])
    raw["overdue"] = raw["overdue"].round().astype("int64")
    path = tmp_path / "typed.parquet"
    raw.to_parquet(path)
    engine = assert_same_engines(path, ["2020-06-30", "2020-07-31"], COLUMNS)
    assert engine.customer_features("2020-06-30", "D").loc["p", "arrears"] == 30.0


# --- class-I causes ------------------------------------------------------------------------

THRESHOLDS = SegmentThresholds(current_spend_high=100.0, clv_high=50.0, clv_key=200.0, clv_potential=50.0)


def _customers(**columns) -> pd.DataFrame:
    """Class-I customers (low spend, low clv) of a year's tenure, steady: cause 'unknown' by default."""
    n = len(next(iter(columns.values())))
    defaults = dict(spend_365d=10.0, n_purchases_90d=1, spend_90d=5.0, n_purchases_365d=3, tenure_days=400.0,
                    days_since_last_purchase=10.0, trend_90d=0.0, n_purchases_last_month=1,
                    n_purchases_month_before=1, churn_probability=0.1, clv=10.0)
    frame = pd.DataFrame({k: np.full(n, v) for k, v in defaults.items()})
    return frame.assign(**columns)


def test_price_sensitive_and_poor_credit_by_hand():
    frame = _customers(
        discount_share=[1.0, 0.75, 0.0, 1.0, 1.0, 0.9, 0.0],
        arrears=[0.0, 0.0, 50.0, 50.0, 0.0, 0.0, 0.0],
        trend_90d=[0.0, 0.0, 0.0, 0.0, -0.5, 0.0, -0.5],
        spend_365d=[10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        clv=[10.0, 10.0, 10.0, 10.0, 10.0, 80.0, 10.0],
    )
    out = assign_segments(frame, SegmentConfig(), THRESHOLDS)
    # only on discount -> price-sensitive; 0.75 is not above 0.75; in arrears -> poor credit (before
    # price-sensitive); price-sensitive before decline; class II never gets a cause; decline as before
    assert out["class_i_cause"].tolist() == ["price-sensitive", "unknown", "poor credit", "poor credit",
                                             "price-sensitive", "", "decline"]
    assert out["retention_policy"].tolist()[:3] == ["act quickly or let go",
                                                    "let go / end the relationship, unless a cause applies",
                                                    "end the relationship"]
    assert out.loc[6, "retention_policy"] == "weigh the cost of winning back against the value"
    # thresholds are parameters
    loose = assign_segments(frame, SegmentConfig(price_sensitive_share=0.5, poor_credit_arrears=60.0), THRESHOLDS)
    assert loose["class_i_cause"].tolist()[:4] == ["price-sensitive", "price-sensitive", "unknown", "price-sensitive"]


def test_causes_3_and_4_are_never_asserted_without_their_column():
    rng = np.random.default_rng(1)
    n = 300
    arrears = np.where(rng.uniform(size=n) < 0.5, 0.0, rng.exponential(20.0, n))
    frame = _customers(discount_share=rng.uniform(size=n), arrears=arrears,
                       tenure_days=rng.uniform(0, 800, n), trend_90d=rng.uniform(-1, 1, n))
    config = SegmentConfig()
    full = assign_segments(frame, config, THRESHOLDS)
    assert {"price-sensitive", "poor credit"} <= set(full["class_i_cause"])
    bare = assign_segments(frame.drop(columns=["discount_share", "arrears"]), config, THRESHOLDS)
    assert not bare["class_i_cause"].isin(["price-sensitive", "poor credit"]).any()
    no_discount = assign_segments(frame.drop(columns=["discount_share"]), config, THRESHOLDS)
    assert "price-sensitive" not in set(no_discount["class_i_cause"])
    assert "poor credit" in set(no_discount["class_i_cause"])
    # without the columns the causes are the behavioural rule: decline, else young -> early relationship
    stage = bare["lifecycle_stage"].to_numpy()
    expected = np.where(stage == "decline", "decline",
                        np.where(frame["tenure_days"] < config.stability_days, "early relationship", "unknown"))
    assert bare["class_i_cause"].tolist() == expected.tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"price_sensitive_share": 1.0}, "price_sensitive_share"),
    ({"poor_credit_arrears": -1.0}, "poor_credit_arrears"),
    ({"poor_credit_arrears": float("inf")}, "poor_credit_arrears"),
])
def test_bad_cause_thresholds_name_the_setting(kwargs, message):
    with pytest.raises(CustscoreError, match=message):
        SegmentConfig(**kwargs)


# --- end to end on CDNOW -------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted(cdnow_sample_csv, tmp_path_factory):
    """CDNOW with a discount flag on every row of ids ending in 1 and arrears 100 on ids ending in 2."""
    log = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    log["disc"] = log["customer_id"].str.endswith("1").astype(int)
    log["overdue"] = np.where(log["customer_id"].str.endswith("2"), 100.0, 0.0)
    path = tmp_path_factory.mktemp("planted") / "cdnow_planted.csv"
    log.to_csv(path, index=False)
    return path


def _score(trained, log, out, *extra) -> pd.DataFrame:
    code = main(["score", "--model", trained["logged"].model_uri, "--transactions", str(log), "--as-of",
                 "1997-09-30", "--output", str(out), "--tracking-uri", trained["config"].tracking_uri, *extra])
    assert code == 0
    return pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)


def test_cli_report_and_actions_show_the_planted_causes(trained, planted, tmp_path):
    plain = _score(trained, planted, tmp_path / "plain.csv")
    scores = _score(trained, planted, tmp_path / "scores.csv", "--discount-col", "disc", "--arrears-col", "overdue")
    duck = _score(trained, planted, tmp_path / "duck.csv", "--discount-col", "disc", "--arrears-col", "overdue",
                  "--engine", "duckdb")
    pd.testing.assert_frame_equal(duck, scores)
    class_i = scores["value_class"] == "I"
    credit, discount = scores["customer_id"].str.endswith("2"), scores["customer_id"].str.endswith("1")
    assert (class_i & credit).sum() > 0 and (class_i & discount).sum() > 0
    assert ((scores["class_i_cause"] == "poor credit") == (class_i & credit)).all()
    assert ((scores["class_i_cause"] == "price-sensitive") == (class_i & discount)).all()
    # without the options nothing planted is read; the scores themselves do not depend on the columns
    assert not plain["class_i_cause"].isin(["price-sensitive", "poor credit"]).any()
    same = [c for c in plain.columns if c not in ("class_i_cause", "retention_policy")]
    pd.testing.assert_frame_equal(scores[same], plain[same])
    other = ~(class_i & (credit | discount))
    assert scores.loc[other, "class_i_cause"].tolist() == plain.loc[other, "class_i_cause"].tolist()

    sidecar = json.loads((tmp_path / "scores.csv.segments.json").read_text())
    assert sidecar["optional_columns"] == {"discount": "disc", "arrears": "overdue"}
    assert sidecar["churn_model"] == "classifier" or sidecar["churn_model"].startswith("baseline_")
    assert sidecar["config"]["price_sensitive_share"] == 0.75 and sidecar["config"]["poor_credit_arrears"] == 0.0
    assert json.loads((tmp_path / "plain.csv.segments.json").read_text())["optional_columns"] == \
        {"discount": None, "arrears": None}
    # the sidecar passed back reproduces the run; a threshold override changes the rule
    again = _score(trained, planted, tmp_path / "again.csv", "--discount-col", "disc", "--arrears-col", "overdue",
                   "--segments", str(tmp_path / "scores.csv.segments.json"))
    pd.testing.assert_frame_equal(again, scores)
    (tmp_path / "strict.json").write_text(json.dumps({"poor_credit_arrears": 100}))
    strict = _score(trained, planted, tmp_path / "strict.csv", "--discount-col", "disc", "--arrears-col", "overdue",
                    "--segments", str(tmp_path / "strict.json"))
    assert "poor credit" not in set(strict["class_i_cause"])  # 100 is not above 100

    page, actions_path, n_actions = write_report(tmp_path / "scores.csv", tmp_path / "report.html")
    actions = pd.read_csv(actions_path, dtype={"customer_id": str}, keep_default_na=False)
    # the action columns, then the value and purchase ranges the score file carries
    ranges = [c for c in INTERVAL_COLUMNS if c in scores.columns]
    assert ranges == list(INTERVAL_COLUMNS)
    assert list(actions.columns) == list(ACTION_COLUMNS) + ranges and len(actions) == n_actions
    acting = scores[scores["alert"] | scores["partial_churn"] | scores["class_i_cause"].isin(
        ["poor credit", "price-sensitive"])]
    assert sorted(actions["customer_id"]) == sorted(acting["customer_id"])
    by_id = actions.set_index("customer_id")
    for cause in ("poor credit", "price-sensitive"):
        ids = scores.loc[scores["class_i_cause"] == cause, "customer_id"]
        assert all(f"class I: {cause}" in by_id.loc[i, "reason"] for i in ids)
        assert (by_id.loc[ids, "retention_policy"] == CLASS_I_CAUSES[cause]).all()
    table = _printed(page.read_text(), "class-i-causes")
    counts = scores.loc[class_i, "class_i_cause"].value_counts()
    assert table["cause"].tolist() == ["poor credit", "price-sensitive", "decline", "early relationship", "unknown"]
    assert [int(_number(c)) for c in table["customers"]] == [int(counts.get(c, 0)) for c in table["cause"]]
    assert table["policy"].tolist()[:2] == ["end the relationship", "act quickly or let go"]

    # without the columns the report says why causes 3 and 4 are absent
    plain_page, _, _ = write_report(tmp_path / "plain.csv", tmp_path / "plain.html")
    assert "not asserted: no discount column read" in plain_page.read_text()
    assert "not asserted: no arrears column read" in plain_page.read_text()

