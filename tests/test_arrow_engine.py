"""The arrow engine equals the pandas engine bit for bit, and hands every log it does not read to DuckDB."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custscore.config import ColumnMap, ScoreConfig
from custscore.errors import CustscoreError
from custscore.features import engines
from custscore.features.arrow_engine import ArrowEngine, ArrowSettings, open_arrow_engine
from custscore.features.customers import PandasEngine
from custscore.features.duckdb_engine import DuckDBEngine
from custscore.features.engines import choose_engine, open_engine, rfm_table
from custscore.features.io import read_transactions
from custscore.features.rfm import rfm_summary
from conftest import run_cli

SMALL_CHUNKS = ArrowSettings(rows_per_chunk=500)


def assert_bit_identical(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same index, columns, dtypes and values; floats compared by their bits (NaN included)."""
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert np.array_equal(got[column].to_numpy().view(np.int64), expected[column].to_numpy().view(np.int64)), column


def assert_same_as_pandas(path, dates, columns: ColumnMap = ColumnMap(), settings=SMALL_CHUNKS) -> ArrowEngine:
    arrow = open_arrow_engine(path, columns, settings)
    assert isinstance(arrow, ArrowEngine), "the arrow engine should read this log"
    reference = PandasEngine(read_transactions(path, columns))
    assert arrow.date_range() == reference.date_range()
    for as_of in dates:
        for unit in ("D", "W"):
            assert_bit_identical(arrow.rfm_summary(as_of, unit), rfm_summary(reference.purchases, as_of, unit))
            assert_bit_identical(arrow.customer_features(as_of, unit), reference.customer_features(as_of, unit))
    for start, end in zip(dates[:-1], dates[1:]):
        assert_bit_identical(arrow.window_purchases(start, end), reference.window_purchases(start, end))
    pd.testing.assert_frame_equal(arrow.example_transactions(3), reference.example_transactions(3))
    return arrow


def edge_log(seed: int = 7, n_customers: int = 400) -> pd.DataFrame:
    """Days of 1 to 6 rows, equal and distinct times of day, returns, net-zero and return-only
    days, -0.0 amounts and sums whose value depends on the order of addition (11.77 + 15.36 +
    9.97); rows shuffled."""
    rng = np.random.default_rng(seed)
    amounts = np.array([11.77, 15.36, 9.97, 0.1, 0.2, 0.3, 5.0, 1e-3, 33.33, -0.0, 0.0])
    rows = []
    for c in range(n_customers):
        for _ in range(int(rng.integers(1, 6))):
            day = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
            same_time = rng.random() < 0.5
            for _ in range(int(rng.integers(1, 7))):
                ts = day if same_time else day + pd.Timedelta(minutes=int(rng.integers(0, 1440)))
                amount = float(rng.choice(amounts)) * (-1.0 if rng.random() < 0.2 else 1.0)
                rows.append((f"{c:05d}", ts, amount))
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


DATES = ["2021-04-30", "2021-08-31", "2021-12-31"]


@pytest.mark.parametrize("order", ["shuffled", "sorted by customer and time", "sorted by time"])
def test_edge_log_is_bit_identical_to_pandas_engine(tmp_path, order):
    log = edge_log()
    if order == "sorted by customer and time":
        log = log.sort_values(["customer_id", "date"], kind="stable")
    elif order == "sorted by time":
        log = log.sort_values("date", kind="stable")
    path = tmp_path / "edge.parquet"
    log.to_parquet(path, index=False)
    assert_same_as_pandas(path, DATES)
    assert_same_as_pandas(path, DATES, settings=ArrowSettings())  # one chunk


def cdnow_parquet(folder, cdnow_sample_csv):
    """The CDNOW sample as Parquet with a timestamp column (text dates take the DuckDB engine)."""
    path = folder / "cdnow.parquet"
    pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str}, parse_dates=["date"]).to_parquet(path, index=False)
    return path


def test_cdnow_is_bit_identical_to_pandas_and_duckdb(tmp_path, cdnow_sample_csv):
    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    arrow = assert_same_as_pandas(path, ["1997-03-31", "1997-09-30", "1998-06-30"])
    duck = DuckDBEngine(path)
    try:
        assert_bit_identical(arrow.customer_features("1997-09-30", "W"), duck.customer_features("1997-09-30", "W"))
    finally:
        duck.close()


def test_hand_values_and_the_returns_policy(tmp_path):
    ts = pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-01 23:00", "2020-01-05",
                         "2020-02-01 10:00", "2020-02-01 11:00", "2020-02-10", "2020-03-01", "2020-01-02"],
                        format="ISO8601")
    log = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b", "b", "b", "b", "c"], "date": ts,
                        "amount": [11.77, 15.36, 9.97, 4.0, 1.0, -1.0, -4.0, 2.5, 7.0]})
    path = tmp_path / "hand.parquet"
    log.to_parquet(path, index=False)
    summary = open_arrow_engine(path).rfm_summary("2020-03-31", "D")
    # a: 3 rows on Jan 1 are one purchase, then Jan 5; b: Feb 1 nets to 0 (a purchase of 0),
    # Feb 10 is return-only (dropped), Mar 1; c: one purchase.
    assert summary["frequency"].to_dict() == {"a": 1, "b": 1, "c": 0}
    assert summary["recency_days"].to_dict() == {"a": 4.0, "b": 29.0, "c": 0.0}
    assert summary["T_days"].to_dict() == {"a": 90.0, "b": 59.0, "c": 89.0}
    assert summary["monetary_value"].to_dict() == {"a": 4.0, "b": 2.5, "c": 0.0}


def test_integer_ids_are_ordered_as_text_and_aware_times_by_utc_day(tmp_path):
    # Stored in a zone where 23:30 UTC is already the next day: the day must be the UTC one.
    ts = pd.to_datetime(["2020-01-01 23:30+00:00", "2020-01-02 00:30+02:00", "2020-01-03 12:00+00:00",
                         "2020-01-05 01:00-03:00"], utc=True, format="ISO8601").tz_convert("Europe/Berlin")
    log = pd.DataFrame({"customer_id": [10, 9, 10, 100], "date": ts, "amount": [1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / "ints.parquet"
    log.to_parquet(path, index=False)
    arrow = assert_same_as_pandas(path, ["2020-01-10"])
    summary = arrow.rfm_summary("2020-01-10")
    assert list(summary.index) == ["10", "100", "9"]
    assert summary.loc["10", "first_purchase"] == pd.Timestamp("2020-01-01")  # 2020-01-02 00:30 in Berlin


def test_date_column_and_large_strings(tmp_path):
    table = pa.table({"customer_id": pa.array(["x", "y", "x"], pa.large_string()),
                      "date": pa.array([pd.Timestamp("2020-01-01").date(), pd.Timestamp("2020-01-04").date(),
                                        pd.Timestamp("2020-02-01").date()], pa.date32()),
                      "amount": pa.array([1, 2, 3], pa.int32())})
    path = tmp_path / "dates.parquet"
    pq.write_table(table, path)
    assert_same_as_pandas(path, ["2020-01-20", "2020-03-01"])


def _write(tmp_path, name: str, **columns) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table(columns), path)
    return str(path)


@pytest.mark.parametrize("case", ["text dates", "missing amount", "nan amount", "blank id", "padded id",
                                  "float ids", "year 2300", "bool amounts"])
def test_logs_it_does_not_read_go_to_duckdb_with_its_message(tmp_path, case):
    good = {"customer_id": pa.array(["a", "b"]), "date": pa.array(pd.to_datetime(["2020-01-01", "2020-01-02"])),
            "amount": pa.array([1.0, 2.0])}
    changed = {
        "text dates": {"date": pa.array(["2020-01-01", "2020-01-02"])},
        "missing amount": {"amount": pa.array([1.0, None])},
        "nan amount": {"amount": pa.array([1.0, float("nan")])},
        "blank id": {"customer_id": pa.array(["a", ""])},
        "padded id": {"customer_id": pa.array(["a", " b"])},
        "float ids": {"customer_id": pa.array([1.0, 2.0])},
        "year 2300": {"date": pa.array([pd.Timestamp("2020-01-01").date(), pd.Timestamp("2300-01-01").date()],
                                       pa.date32())},
        "bool amounts": {"amount": pa.array([True, False])},
    }[case]
    path = _write(tmp_path, "log", **{**good, **changed})
    assert open_arrow_engine(path) is None
    try:
        expected = ("ok", PandasEngine(read_transactions(path)).customer_features("2020-01-10", "D"))
    except CustscoreError as exc:
        expected = ("error", str(exc))
    try:
        engine = open_engine(path, engine="arrow")
        assert isinstance(engine, DuckDBEngine)
        got = ("ok", engine.customer_features("2020-01-10", "D"))
    except CustscoreError as exc:
        got = ("error", str(exc))
    assert got[0] == expected[0]
    if got[0] == "error":  # the same file, row and column (DuckDB shows a date32 value as a Timestamp)
        assert got[1].split(": ")[:3] == expected[1].split(": ")[:3], (got[1], expected[1])
    else:
        pd.testing.assert_frame_equal(got[1], expected[1], check_exact=True)


def test_csv_and_optional_columns_take_another_engine(tmp_path, cdnow_sample_csv):
    assert open_arrow_engine(cdnow_sample_csv) is None
    path = _write(tmp_path, "disc", customer_id=pa.array(["a"]), date=pa.array(pd.to_datetime(["2020-01-01"])),
                  amount=pa.array([1.0]), disc=pa.array([0.0]))
    assert open_arrow_engine(path, ColumnMap(discount="disc")) is None
    assert isinstance(open_arrow_engine(path), ArrowEngine)


def test_auto_picks_arrow_for_large_parquet_that_fits(tmp_path, cdnow_sample_csv, monkeypatch):
    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    assert choose_engine(path) == "pandas"  # small file
    monkeypatch.setattr(engines, "AUTO_LARGE_BYTES", 0)
    assert choose_engine(path) == "arrow"
    assert choose_engine(cdnow_sample_csv) == "duckdb"
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 1_000)
    assert choose_engine(path) == "duckdb"  # would not fit


def test_auto_keeps_arrow_for_logs_grouped_by_customer_only(tmp_path, monkeypatch):
    """Row-group statistics tell a customer-sorted log from a time-ordered one (the arrow
    engine's fast case against the DuckDB engine's, benchmarks/ORDERS_RESULTS.md run 12)."""
    tx = pd.DataFrame({"who": [f"c{i:03d}" for i in range(300) for _ in range(2)],
                       "date": pd.to_datetime("2020-01-01") + pd.to_timedelta(np.tile([0, 5], 300), unit="D"),
                       "amount": 1.0})
    by_customer, by_time = tmp_path / "customer.parquet", tmp_path / "time.parquet"
    pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), by_customer, row_group_size=100)
    pq.write_table(pa.Table.from_pandas(tx.sort_values(["date", "who"]), preserve_index=False), by_time,
                   row_group_size=100)
    assert pq.ParquetFile(by_time).metadata.num_row_groups == 6
    monkeypatch.setattr(engines, "AUTO_LARGE_BYTES", 0)
    columns = ColumnMap(customer="who")
    assert choose_engine(by_customer, "auto", columns) == "arrow"
    assert choose_engine(by_time, "auto", columns) == "duckdb"
    assert choose_engine(by_time, "auto") == "arrow"  # no such column: cannot tell, the arrow engine reads any order
    assert choose_engine(by_time, "arrow", columns) == "arrow"  # asked for by name
    pd.testing.assert_frame_equal(rfm_table(open_engine(by_time, columns), "2020-03-01"),
                                  rfm_table(open_engine(by_customer, columns, "pandas"), "2020-03-01"))


def test_rfm_command_gives_one_table_whatever_the_engine(tmp_path, cdnow_sample_csv):
    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    outputs = {}
    for engine in ("pandas", "arrow", "duckdb"):
        out = tmp_path / f"rfm_{engine}.csv"
        result = run_cli("rfm", "--transactions", str(path), "--as-of", "1997-09-30", "--time-unit", "W",
                         "--output", str(out), "--engine", engine)
        assert result.returncode == 0, result.stderr
        outputs[engine] = out.read_bytes()
    assert outputs["pandas"] == outputs["arrow"] == outputs["duckdb"]
    table = pd.read_csv(tmp_path / "rfm_arrow.csv", dtype={"customer_id": str})
    assert list(table.columns) == ["customer_id", "frequency", "recency_weeks", "T_weeks", "monetary_value",
                                   "first_purchase", "last_purchase"]
    expected = rfm_table(PandasEngine(read_transactions(path)), "1997-09-30", "W")
    assert np.allclose(table["monetary_value"], expected["monetary_value"].to_numpy(), rtol=1e-15, atol=0)


def test_rfm_command_bad_input_is_one_line_and_status_2(tmp_path):
    path = _write(tmp_path, "bad", customer_id=pa.array(["a", "b"]), date=pa.array(pd.to_datetime(["2020-01-01"] * 2)),
                  amount=pa.array([1.0, float("inf")]))
    result = run_cli("rfm", "--transactions", path, "--as-of", "2020-01-10", "--output", str(tmp_path / "o.csv"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "row 2" in result.stderr and "amount" in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_scores_and_training_equal_the_pandas_engine(trained, tmp_path, cdnow_sample_csv):
    from custscore.serving.batch import score_engine
    from custscore.training.pipeline import train_scorer

    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    scorer, config = trained["result"].scorer, trained["config"]
    reference = PandasEngine(read_transactions(path))
    for name, engine in (("pandas", reference), ("arrow", open_arrow_engine(path, settings=SMALL_CHUNKS))):
        score_engine(scorer, engine, tmp_path / f"{name}.parquet", ScoreConfig(as_of="1997-09-30"))
    got, expected = pd.read_parquet(tmp_path / "arrow.parquet"), pd.read_parquet(tmp_path / "pandas.parquet")
    # Chunks change the classifier's batch size, whose BLAS product may differ in the last bit.
    pd.testing.assert_frame_equal(got.drop(columns="churn_probability"), expected.drop(columns="churn_probability"),
                                  check_exact=True)
    np.testing.assert_allclose(got["churn_probability"], expected["churn_probability"], rtol=1e-12, atol=0)
    fitted = train_scorer(open_arrow_engine(path), config).scorer
    assert fitted.purchase_model.params_ == trained["result"].scorer.purchase_model.params_
