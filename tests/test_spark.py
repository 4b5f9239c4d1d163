"""The Spark engine (local[2]) reproduces the pandas engine's features, training and scores on CDNOW.

Skipped when pyspark (the ``[spark]`` extra) or Java is missing. One SparkSession and
one SparkEngine serve the whole module (starting the JVM takes 10-20 s).
"""
from __future__ import annotations

import json

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custscore.config import ScoreConfig, TrainConfig
from custscore.errors import CustscoreError
from custscore.features.customers import PandasEngine
from custscore.features.io import read_transactions

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
if shutil.which("java") is None:
    pytest.skip("Java is not installed (Spark needs Java 17+)", allow_module_level=True)

from conftest import same_error_as_pandas  # noqa: E402
from custscore.cli import main  # noqa: E402
from custscore.features.spark_engine import SparkEngine, spark_session  # noqa: E402
from custscore.training.bgnbd import BetaGeoModel  # noqa: E402
from custscore.training.pipeline import train_scorer  # noqa: E402

# One worker runs this module (--dist loadgroup in pyproject.toml): one JVM, not one per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]
TOL = dict(check_exact=False, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def spark():
    session = spark_session()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def engines(spark, cdnow_sample_csv):
    spark_engine = SparkEngine(cdnow_sample_csv, spark=spark)
    yield spark_engine, PandasEngine(read_transactions(cdnow_sample_csv))
    spark_engine.close()


@pytest.mark.parametrize("as_of, unit", [("1997-03-31", "D"), ("1997-09-30", "W"), ("1998-06-30", "D")])
def test_customer_features_equal_pandas_engine(engines, as_of, unit):
    spark_engine, pandas_engine = engines
    pd.testing.assert_frame_equal(spark_engine.customer_features(as_of, unit),
                                  pandas_engine.customer_features(as_of, unit), **TOL)


def test_window_purchases_date_range_and_examples_equal(engines):
    spark_engine, pandas_engine = engines
    assert spark_engine.date_range() == pandas_engine.date_range()
    for start, end in [("1997-01-01", "1997-09-30"), ("1997-09-30", "1998-06-30")]:
        pd.testing.assert_frame_equal(spark_engine.window_purchases(start, end),
                                      pandas_engine.window_purchases(start, end), **TOL)
    pd.testing.assert_frame_equal(spark_engine.example_transactions(3), pandas_engine.example_transactions(3))


def test_typed_parquet_equals_pandas_engine(spark, tmp_path):
    # Integer ids, timestamps with times of day, a return day and a same-day pair: Spark SQL's own path.
    path = tmp_path / "typed.parquet"
    pd.DataFrame({"customer_id": [7, 7, 7, 7, 12, 12],
                  "date": pd.to_datetime(["2020-01-01 09:00", "2020-01-01 18:00", "2020-02-03", "2020-02-10",
                                          "2020-01-05", "2020-03-01 23:59"], format="ISO8601"),
                  "amount": [1.5, 2.25, -4.0, 10.0, 3.0, 0.0]}).to_parquet(path)
    spark_engine, pandas_engine = SparkEngine(path, spark=spark), PandasEngine(read_transactions(path))
    got = spark_engine.customer_features("2020-03-01", "D")
    pd.testing.assert_frame_equal(got, pandas_engine.customer_features("2020-03-01", "D"), **TOL)
    assert got.loc["7", ["frequency", "monetary_value"]].tolist() == [1, 10.0]  # 02-03 is a return-only day


def test_btyd_statistics_fit_equals_fit_on_every_customer(engines):
    spark_engine, pandas_engine = engines
    stats = spark_engine.btyd_statistics("1997-09-30", "W")
    rfm = pandas_engine.customer_features("1997-09-30", "W")
    assert stats["n_customers"].sum() == len(rfm) == 2357
    assert len(stats) == len(rfm[["frequency", "recency_weeks", "T_weeks"]].drop_duplicates())
    weighted = BetaGeoModel().fit(stats["frequency"], stats["recency_weeks"], stats["T_weeks"],
                                  weights=stats["n_customers"])
    # Published CDNOW values (Fader, Hardie and Lee 2005): r 0.243, alpha 4.414, a 0.793, b 2.426.
    np.testing.assert_allclose([weighted.params_[k] for k in ("r", "alpha", "a", "b")],
                               [0.243, 4.414, 0.793, 2.426], rtol=5e-3)
    assert weighted.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


def test_train_on_spark_equals_train_on_pandas(engines):
    spark_engine, pandas_engine = engines
    config = TrainConfig(cutoff="1997-09-30", holdout_end="1998-06-30", horizon_days=90, time_unit="W")
    on_spark, on_pandas = train_scorer(spark_engine, config), train_scorer(pandas_engine, config)
    for key, value in on_pandas.scorer.purchase_model.params_.items():
        assert on_spark.scorer.purchase_model.params_[key] == pytest.approx(value, rel=1e-9)
    for key, value in on_pandas.metrics.items():
        assert on_spark.metrics[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key


def test_score_cli_spark_equals_local_engine(spark, trained, cdnow_sample_csv, tmp_path):
    uri, tracking = trained["logged"].model_uri, trained["config"].tracking_uri
    outputs = {}
    for engine in ("pandas", "spark"):
        outputs[engine] = tmp_path / f"scores_{engine}.parquet"
        assert main(["score", "--model", uri, "--transactions", str(cdnow_sample_csv), "--as-of", "1997-09-30",
                     "--output", str(outputs[engine]), "--engine", engine, "--tracking-uri", tracking]) == 0
    local, on_spark = pd.read_parquet(outputs["pandas"]), pd.read_parquet(outputs["spark"])
    assert len(local) == 2357
    pd.testing.assert_frame_equal(on_spark, local, check_dtype=False, **TOL)
    sidecars = {e: json.loads((tmp_path / f"scores_{e}.parquet.segments.json").read_text()) for e in outputs}
    assert "data_sha256" in sidecars["pandas"] and "data_sha256" not in sidecars["spark"]  # a folder has no checksum
    sidecars["pandas"].pop("data_sha256")
    assert sidecars["spark"] == sidecars["pandas"]


def test_score_spark_refuses_csv_output_in_one_line(trained, cdnow_sample_csv, tmp_path, capsys):
    code = main(["score", "--model", trained["logged"].model_uri, "--transactions", str(cdnow_sample_csv),
                 "--as-of", "1997-09-30", "--output", str(tmp_path / "s.csv"), "--engine", "spark",
                 "--tracking-uri", trained["config"].tracking_uri])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"custscore score: error: --output {tmp_path / 's.csv'}: --engine spark "
                                 "writes Parquet; use a name ending in .parquet"]


def _same_error_as_pandas(spark, path: Path) -> str:
    """The Spark engine's error on ``path``, asserted equal to the pandas engine's."""
    return same_error_as_pandas(lambda log: SparkEngine(log, spark=spark), path)


def test_bad_row_gives_the_pandas_engine_message(spark, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,date,amount\n1,2020-01-01,5\n2,2020-01-02,12 EUR\n3,2020-01-03,x\n")
    assert "row 2: column 'amount': amount is not a finite number: '12 EUR'" in _same_error_as_pandas(spark, path)


def test_missing_column_names_the_option_as_the_pandas_engine(spark, tmp_path):
    path = tmp_path / "total.csv"
    path.write_text("customer_id,date,total\n1,2020-01-01,5\n")
    assert _same_error_as_pandas(spark, path).endswith("; did you mean --amount-col total?")
    path = tmp_path / "typed.parquet"  # no name matches: the only number column is the amount
    pd.DataFrame({"customer_id": ["1"], "date": pd.to_datetime(["2020-01-01"]), "note": ["a"],
                  "x": [1.5]}).to_parquet(path)
    assert _same_error_as_pandas(spark, path).endswith("; did you mean --amount-col x?")


def test_only_the_spark_modules_import_pyspark():
    # mlflow itself imports pyspark when it is installed, so check custscore's own code:
    # the feature engines load without it, and no other module names it in an import.
    code = ("import sys, custscore.features.engines, custscore.features.duckdb_engine, custscore.config; "
            "sys.exit('pyspark' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    root = Path(__file__).resolve().parents[1]
    importing = sorted(p.relative_to(root).as_posix() for folder in ("custscore", "features", "training", "serving")
                       for p in (root / folder).glob("*.py")
                       if re.search(r"^\s*(from|import) pyspark", p.read_text(), re.MULTILINE))
    assert importing == ["features/spark_engine.py"]


def test_score_config_accepts_spark_engine():
    assert ScoreConfig(as_of="1997-09-30", engine="spark").engine == "spark"


def test_optional_discount_and_arrears_columns_equal_pandas_engine(spark, tmp_path):
    # The hand-computed log of tests/test_discount_credit.py: CSV (Python parser, text flags)
    # and typed Parquet (Spark SQL path); without the options no column is added.
    from custscore.config import ColumnMap
    from test_discount_credit import BASE_FEATURES, COLUMNS, LOG

    csv = tmp_path / "log.csv"
    csv.write_text(LOG)
    raw = pd.read_csv(csv, dtype={"customer_id": str})
    raw["date"] = pd.to_datetime(raw["date"], format="ISO8601")
    raw["disc"] = raw["disc"].astype(str).str.lower().map({"1": 1.0, "2.5": 2.5, "3": 3.0, "0": 0.0,
                                                            "true": 1.0, "false": 0.0})
    typed = tmp_path / "log.parquet"
    raw.to_parquet(typed)
    for path in (csv, typed):
        spark_engine = SparkEngine(path, COLUMNS, spark=spark)
        pandas_engine = PandasEngine(read_transactions(path, COLUMNS))
        for as_of in ("2020-06-30", "2020-07-31"):
            got = spark_engine.customer_features(as_of, "D")
            pd.testing.assert_frame_equal(got, pandas_engine.customer_features(as_of, "D"), **TOL)
        assert got.loc["q", ["discount_share", "arrears"]].tolist() == [0.25, 0.0]
        spark_engine.close()
    plain = SparkEngine(csv, spark=spark)
    assert list(plain.customer_features("2020-06-30", "D").columns) == BASE_FEATURES
    plain.close()
    bad = tmp_path / "bad.parquet"
    raw.assign(overdue=raw["overdue"] - 20).to_parquet(bad)
    with pytest.raises(CustscoreError) as expected:
        read_transactions(bad, COLUMNS)
    with pytest.raises(CustscoreError) as got_error:
        SparkEngine(bad, ColumnMap(discount="disc", arrears="overdue"), spark=spark)
    assert str(got_error.value) == str(expected.value)
    assert "column 'overdue': arrears is not a finite number >= 0: -20.0" in str(expected.value)


@pytest.mark.parametrize("first_day", [[0.3, -0.1, -0.2], [0.1, 0.2, -0.3]])
def test_toy_day_nets_exactly_in_either_order(spark, tmp_path, first_day):
    # features.netting: 0.3 - 0.1 - 0.2 is -5.6e-17 in float64, yet the day nets to 0 and counts
    ts = [pd.Timestamp("2020-01-01 09:00") + pd.Timedelta(hours=i) for i in range(3)]
    log = pd.DataFrame({"customer_id": "c1", "date": ts + [pd.Timestamp("2020-02-01 12:00")],
                        "amount": first_day + [5.0]})
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"log.{suffix}"
        if suffix == "csv":
            log.assign(date=log["date"].astype(str)).to_csv(path, index=False)
        else:
            log.to_parquet(path, index=False)
        engine = SparkEngine(path, spark=spark)
        try:
            row = engine.customer_features("2020-03-01", "D").loc["c1"]
        finally:
            engine.close()
        assert (row["frequency"], row["recency_days"], row["T_days"], row["monetary_value"]) == (1, 31.0, 60.0, 5.0)


def test_day_amounts_equal_the_pandas_engine_bit_for_bit_ties_included(spark, tmp_path):
    from custscore.features.periods import merge_periods

    rng = np.random.default_rng(5)
    n = 3000
    amounts = np.concatenate([rng.integers(-10**6, 10**6, n // 2) / 100, (rng.integers(-10**4, 10**4, n // 2) + 0.5)])
    log = pd.DataFrame({"customer_id": [f"c{i}" for i in rng.integers(0, 200, n)],
                        "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 30 * 1440, n), unit="min"),
                        "amount": amounts})
    path = tmp_path / "log.parquet"
    log.to_parquet(path, index=False)
    from custscore.config import ColumnMap

    for decimals in (0, 4):
        columns = ColumnMap(amount_decimals=decimals)
        engine = SparkEngine(path, columns, spark=spark)
        try:
            got = engine.purchases.orderBy("customer_id", "date").toPandas()
        finally:
            engine.close()
        expected = merge_periods(read_transactions(path, columns), amount_decimals=decimals)
        assert got["customer_id"].tolist() == expected["customer_id"].tolist()
        assert np.array_equal(got["amount"].to_numpy().view(np.int64), expected["amount"].to_numpy().view(np.int64))


def test_log_without_amounts_gives_the_btyd_counts_of_the_log_with_amounts(spark, tmp_path, cdnow_sample_csv):
    from custscore.config import ColumnMap

    log = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    path = tmp_path / "no_amounts.csv"
    log.drop(columns="amount").to_csv(path, index=False)
    engine = SparkEngine(path, ColumnMap(amount=None), spark=spark)
    try:
        got = engine.customer_features("1997-09-30", "D")
    finally:
        engine.close()
    expected = PandasEngine(read_transactions(cdnow_sample_csv)).customer_features("1997-09-30", "D")
    columns = ["frequency", "recency_days", "T_days"]
    pd.testing.assert_frame_equal(got[columns], expected[columns], check_exact=True)
    assert (got["monetary_value"] == 0.0).all()


@pytest.mark.parametrize("ids", [[{"a": 1}, {"a": 2}], [[1], [2]]])
def test_struct_or_list_ids_are_refused_as_in_features_io(spark, tmp_path, ids):
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"customer_id": ids, "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                  "amount": [1.0, 2.0]}).to_parquet(path)
    with pytest.raises(CustscoreError) as got:
        SparkEngine(path, spark=spark)
    assert "column 'customer_id': customer id must be text or a whole number, not a struct or list" in str(got.value)
    assert len(str(got.value).splitlines()) == 1


def _spreadsheet_csv(path: Path, text: str) -> Path:
    path.write_bytes(("\ufeff" + text).replace("\n", "\r\n").encode("utf-8"))  # BOM + CRLF, as Excel writes
    return path


def test_bom_in_the_header_is_skipped_as_in_features_io(spark, tmp_path):
    path = _spreadsheet_csv(tmp_path / "bom.csv", "customer_id,date,amount\n1,2020-01-01,5\n1,2020-01-11,7.5\n"
                                                  "2,2020-01-05,3\n")
    engine = SparkEngine(path, spark=spark)
    try:
        got = engine.customer_features("2020-01-31", "D")
    finally:
        engine.close()
    pd.testing.assert_frame_equal(got, PandasEngine(read_transactions(path)).customer_features("2020-01-31", "D"),
                                  **TOL)
    assert got.index.tolist() == ["1", "2"] and got["frequency"].tolist() == [1, 0]
    assert got.loc["1", "monetary_value"] == 7.5  # hand count: the repeat purchase


def test_decimal_comma_csv_reads_with_the_options_and_names_them_without(spark, tmp_path):
    from custscore.config import ColumnMap

    path = _spreadsheet_csv(tmp_path / "excel.csv", "customer_id;date;amount\n1;2020-01-01;29,33\n"
                                                    "1;2020-01-01;0,67\n1;2020-01-20;10,5\n2;2020-01-05;3\n")
    columns = ColumnMap(csv_sep=";", decimal=",")
    engine = SparkEngine(path, columns, spark=spark)
    try:
        got = engine.purchases.orderBy("customer_id", "date").toPandas()
    finally:
        engine.close()
    assert got["amount"].tolist() == [30.0, 10.5, 3.0]  # hand sums: 29.33 + 0.67 on 2020-01-01
    assert "looks like a decimal comma: pass --decimal ','" in _same_error_as_pandas(spark, path)
