"""The DuckDB engine on Parquet logs, in memory and out of core, equals the pandas engine bit for bit.

These are the logs the removed arrow engine was proven on (issue #17): timestamp, aware and
date columns, integer and large-string ids, every row order, values the pandas engine
refuses; and ``--engine arrow`` is now refused with the remaining choices.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custscore.config import ColumnMap, ScoreConfig, TrainConfig
from custscore.errors import CustscoreError
from custscore.features import engines
from custscore.features.customers import PandasEngine
from custscore.features.duckdb_engine import DuckDBEngine, DuckDBSettings
from custscore.features.engines import choose_engine, open_engine, rfm_table
from custscore.features.io import read_transactions
from conftest import run_cli
from test_duckdb_engine import TINY_CHUNKS, assert_same_engines, both_modes, edge_log

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
    assert_same_engines(path, DATES)
    assert_same_engines(path, DATES, settings=DuckDBSettings())  # one chunk


def cdnow_parquet(folder, cdnow_sample_csv):
    """The CDNOW sample as Parquet with a timestamp column (test_duckdb_engine.py's has text dates)."""
    path = folder / "cdnow.parquet"
    pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str}, parse_dates=["date"]).to_parquet(path, index=False)
    return path


def test_cdnow_with_timestamps_is_bit_identical_to_pandas(tmp_path, cdnow_sample_csv):
    assert_same_engines(cdnow_parquet(tmp_path, cdnow_sample_csv), ["1997-03-31", "1997-09-30", "1998-06-30"])


def test_hand_values_and_the_returns_policy(tmp_path):
    ts = pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-01 23:00", "2020-01-05",
                         "2020-02-01 10:00", "2020-02-01 11:00", "2020-02-10", "2020-03-01", "2020-01-02"],
                        format="ISO8601")
    log = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b", "b", "b", "b", "c"], "date": ts,
                        "amount": [11.77, 15.36, 9.97, 4.0, 1.0, -1.0, -4.0, 2.5, 7.0]})
    path = tmp_path / "hand.parquet"
    log.to_parquet(path, index=False)
    for settings, in_memory in both_modes(TINY_CHUNKS):
        duck = DuckDBEngine(path, settings=settings)
        try:
            assert duck.in_memory is in_memory
            summary = duck.rfm_summary("2020-03-31", "D")
        finally:
            duck.close()
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
    summary = assert_same_engines(path, ["2020-01-10"]).rfm_summary(pd.Timestamp("2020-01-10"))
    assert list(summary.index) == ["10", "100", "9"]
    assert summary.loc["10", "first_purchase"] == pd.Timestamp("2020-01-01")  # 2020-01-02 00:30 in Berlin


def test_date_column_and_large_strings(tmp_path):
    table = pa.table({"customer_id": pa.array(["x", "y", "x"], pa.large_string()),
                      "date": pa.array([pd.Timestamp("2020-01-01").date(), pd.Timestamp("2020-01-04").date(),
                                        pd.Timestamp("2020-02-01").date()], pa.date32()),
                      "amount": pa.array([1, 2, 3], pa.int32())})
    path = tmp_path / "dates.parquet"
    pq.write_table(table, path)
    assert_same_engines(path, ["2020-01-20", "2020-03-01"])


def _write(tmp_path, name: str, **columns) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table(columns), path)
    return str(path)


@pytest.mark.parametrize("case", ["text dates", "missing amount", "nan amount", "blank id", "padded id",
                                  "float ids", "year 2300", "bool amounts"])
def test_unusual_values_read_or_refused_as_the_pandas_engine_does(tmp_path, case):
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
    try:
        expected = ("ok", PandasEngine(read_transactions(path)).customer_features("2020-01-10", "D"))
    except CustscoreError as exc:
        expected = ("error", str(exc))
    for settings, _ in both_modes(TINY_CHUNKS):
        try:
            duck = DuckDBEngine(path, settings=settings)
            got = ("ok", duck.customer_features("2020-01-10", "D"))
            duck.close()
        except CustscoreError as exc:
            got = ("error", str(exc))
        assert got[0] == expected[0]
        if got[0] == "error":  # the same file, row and column (DuckDB shows a date32 value as a Timestamp)
            assert got[1].split(": ")[:3] == expected[1].split(": ")[:3], (got[1], expected[1])
        else:
            pd.testing.assert_frame_equal(got[1], expected[1], check_exact=True)


def test_auto_picks_pandas_for_small_files_and_duckdb_for_large_ones(tmp_path, cdnow_sample_csv, monkeypatch):
    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    assert choose_engine(path) == choose_engine(cdnow_sample_csv) == "pandas"  # small files
    monkeypatch.setattr(engines, "AUTO_LARGE_BYTES", 0)
    assert choose_engine(path) == choose_engine(cdnow_sample_csv) == "duckdb"
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 1_000)
    assert choose_engine(path) == "duckdb"  # does not fit: the same engine, out of core
    opened = open_engine(path)
    assert isinstance(opened, DuckDBEngine) and not opened.in_memory


def test_the_arrow_engine_is_gone_and_asking_for_it_names_the_choices(tmp_path, cdnow_sample_csv):
    choices = "['auto', 'pandas', 'duckdb', 'spark']"
    for ask in (lambda: choose_engine(cdnow_sample_csv, "arrow"), lambda: open_engine(cdnow_sample_csv, engine="arrow"),
                lambda: TrainConfig(cutoff="1997-09-30", engine="arrow")):
        with pytest.raises(CustscoreError) as error:
            ask()
        assert str(error.value) == f"engine: must be one of {choices}, got 'arrow'"
    out = tmp_path / "o.csv"
    result = run_cli("rfm", "--transactions", str(cdnow_sample_csv), "--as-of", "1997-09-30", "--output", str(out),
                     "--engine", "arrow")
    assert result.returncode == 2 and "Traceback" not in result.stderr and not out.exists()
    assert result.stderr.splitlines()[-1] == ("custscore rfm: error: argument --engine: invalid choice: 'arrow' "
                                              "(choose from 'auto', 'pandas', 'duckdb', 'spark')")


def test_rfm_command_gives_one_table_whatever_the_engine(tmp_path, cdnow_sample_csv):
    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    outputs = {}
    for engine in ("pandas", "duckdb"):
        out = tmp_path / f"rfm_{engine}.csv"
        result = run_cli("rfm", "--transactions", str(path), "--as-of", "1997-09-30", "--time-unit", "W",
                         "--output", str(out), "--engine", engine)
        assert result.returncode == 0, result.stderr
        outputs[engine] = out.read_bytes()
    assert outputs["pandas"] == outputs["duckdb"]
    table = pd.read_csv(tmp_path / "rfm_duckdb.csv", dtype={"customer_id": str})
    assert list(table.columns) == ["customer_id", "frequency", "recency_weeks", "T_weeks", "monetary_value",
                                   "first_purchase", "last_purchase"]
    expected = rfm_table(PandasEngine(read_transactions(path)), "1997-09-30", "W")
    assert np.allclose(table["monetary_value"], expected["monetary_value"].to_numpy(), rtol=1e-15, atol=0)


@pytest.mark.parametrize("engine", ["auto", "duckdb"])
def test_rfm_command_bad_input_is_one_line_and_status_2(tmp_path, engine):
    path = _write(tmp_path, "bad", customer_id=pa.array(["a", "b"]), date=pa.array(pd.to_datetime(["2020-01-01"] * 2)),
                  amount=pa.array([1.0, float("inf")]))
    result = run_cli("rfm", "--transactions", path, "--as-of", "2020-01-10", "--output", str(tmp_path / "o.csv"),
                     "--engine", engine)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "row 2" in result.stderr and "amount" in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_scores_and_training_equal_the_pandas_engine(trained, tmp_path, cdnow_sample_csv):
    from custscore.serving.batch import score_engine
    from custscore.training.pipeline import train_scorer

    path = cdnow_parquet(tmp_path, cdnow_sample_csv)
    scorer, config = trained["result"].scorer, trained["config"]
    score_engine(scorer, PandasEngine(read_transactions(path)), tmp_path / "pandas.parquet",
                 ScoreConfig(as_of="1997-09-30"))
    expected = pd.read_parquet(tmp_path / "pandas.parquet")
    for settings, in_memory in both_modes(replace(TINY_CHUNKS, rows_per_chunk=500)):
        duck = DuckDBEngine(path, settings=settings)
        assert duck.in_memory is in_memory
        score_engine(scorer, duck, tmp_path / "duckdb.parquet", ScoreConfig(as_of="1997-09-30"))
        duck.close()
        got = pd.read_parquet(tmp_path / "duckdb.parquet")
        # Chunks change the classifier's batch size, whose BLAS product may differ in the last bit.
        pd.testing.assert_frame_equal(got.drop(columns="churn_probability"),
                                      expected.drop(columns="churn_probability"), check_exact=True)
        np.testing.assert_allclose(got["churn_probability"], expected["churn_probability"], rtol=1e-12, atol=0)
    fitted = train_scorer(DuckDBEngine(path), config).scorer
    assert fitted.purchase_model.params_ == trained["result"].scorer.purchase_model.params_
