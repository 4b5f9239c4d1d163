"""The DuckDB engine's date check and its SQL ``rfm_summary``, against the pandas engine and by hand.

Dates: a column of naive ISO dates is read by DuckDB's CSV reader in a strict format (fast);
a column carrying UTC offsets or Z is converted to UTC days; a zone name ("Europe/Paris",
"EST", "UTC") or any other text after the time is refused with features.io's message, where
a naive cast would silently drop it (checked below that DuckDB's casts do drop it).
"""
from __future__ import annotations

from dataclasses import replace

import duckdb
import pandas as pd
import pytest

from custscore.config import ColumnMap
from custscore.features.customers import PandasEngine
from custscore.features.duckdb_engine import DuckDBEngine, DuckDBSettings, _strict_iso_format
from custscore.features.engines import rfm_table
from custscore.features.io import read_transactions

from conftest import same_error_as_pandas
from test_duckdb_engine import EDGE_LOG, both_modes, edge_log

SMALL = DuckDBSettings(rows_per_chunk=300, threads=2, memory_limit="1GB")
HEADER = "customer_id,date,amount\n"


def assert_rfm_equal(path, cutoffs, columns: ColumnMap = ColumnMap()) -> pd.DataFrame:
    """DuckDB's rfm_summary (what rfm_table uses), in memory and out of core, equals the pandas
    engine's bit for bit: columns, dtypes, index (values and dtype), every value."""
    reference = PandasEngine(read_transactions(path, columns), columns.amount_decimals)
    for settings, in_memory in both_modes(SMALL):
        duck = DuckDBEngine(path, columns, settings)
        try:
            assert duck.in_memory is in_memory
            for cutoff in cutoffs:
                for unit in ("D", "W"):
                    expected = reference.rfm_summary(pd.Timestamp(cutoff), unit)
                    pd.testing.assert_frame_equal(duck.rfm_summary(cutoff, unit), expected, check_exact=True)
                    pd.testing.assert_frame_equal(rfm_table(duck, cutoff, unit), expected, check_exact=True)
            got = duck.rfm_summary(cutoffs[-1], "D")
        finally:
            duck.close()
    return got


def dates_log(folder, dates, amount="1.5"):
    """A CSV log of one row per date, customer c0, c1, ..."""
    path = folder / "dates.csv"
    path.write_text(HEADER + "".join(f"c{i},{d},{amount}\n" for i, d in enumerate(dates)))
    return path


def same_error(path) -> str:
    """The DuckDB engine refuses the log with features.io's message, word for word; returns it."""
    return same_error_as_pandas(lambda log: DuckDBEngine(log, settings=SMALL), path)


def days_of(path) -> list[str]:
    duck = DuckDBEngine(path, settings=SMALL)
    try:
        return [str(d.date()) for d in duck.customer_features("2030-01-01", "D")["first_purchase"]]
    finally:
        duck.close()


# ---------------------------------------------------------------------- dates
def test_duckdb_casts_really_drop_zone_names_and_offsets():
    """Why the check exists: a naive cast (and the CSV reader's TIMESTAMP) keeps 10:00 whatever follows."""
    con = duckdb.connect()
    for text in ("1997-01-05 10:00 Europe/Paris", "1997-01-05 10:00 EST", "1997-01-05 10:00+02:00",
                 "1997-01-05T10:00Z", "1997-01-05 10:00 xyz"):
        assert str(con.execute("SELECT CAST(? AS TIMESTAMP)", [text]).fetchone()[0]) == "1997-01-05 10:00:00"
    con.close()


@pytest.mark.parametrize("zoned", ["1997-01-05 23:00 Europe/Paris", "1997-01-05 23:00 EST", "1997-01-05 23:00 UTC",
                                   "1997-01-05 23:00:00 xyz", "1997-01-05T23:00:00.5 America/New_York"])
@pytest.mark.parametrize("where", ["first row", "later row", "every row"])
def test_zone_names_are_refused_as_features_io_refuses_them(tmp_path, zoned, where):
    naive = "1997-01-04 10:00"
    dates = {"first row": [zoned, naive, naive], "later row": [naive, naive, zoned], "every row": [zoned] * 3}[where]
    message = same_error(dates_log(tmp_path, dates))
    assert "cannot parse date" in message and zoned in message


@pytest.mark.parametrize("dates, utc_days", [
    (["2020-01-01T23:30:00Z", "2020-01-02T00:30:00Z"], ["2020-01-01", "2020-01-02"]),
    (["2020-01-01 23:30:00+02:00", "2020-01-01 23:30:00-02:00"], ["2020-01-01", "2020-01-02"]),
    (["2020-01-01 23:30-05", "2020-01-02 01:00:00.25+0100"], ["2020-01-02", "2020-01-02"]),
])
def test_offsets_and_z_give_utc_days_by_hand_and_as_pandas(tmp_path, dates, utc_days):
    path = dates_log(tmp_path, dates, "2.0")
    assert days_of(path) == utc_days
    assert_rfm_equal(path, ["2020-01-02", "2020-01-03"])


def test_naive_date_times_keep_their_day_across_midnight(tmp_path):
    path = tmp_path / "naive.csv"
    path.write_text(HEADER + "a,2020-01-01 23:59:59.999,1\nb,2020-01-02 00:00:00.000,2\nc,2020-01-02 00:00:01.5,3\n")
    assert days_of(path) == ["2020-01-01", "2020-01-02", "2020-01-02"]
    assert_rfm_equal(path, ["2020-01-01", "2020-01-02"])


@pytest.mark.parametrize("dates", [
    ["2020-01-01 10:00:00", "2020-01-02T10:00:00Z"],      # naive first: the strict fast read fails on row 2
    ["2020-01-01T10:00:00Z", "2020-01-02 10:00:00"],      # aware first
    ["2020-01-01", "2020-01-02 10:00:00+01:00", "2020-01-03"],
])
def test_mixed_naive_and_aware_is_the_pandas_message(tmp_path, dates):
    assert "mixes timezone-aware dates" in same_error(dates_log(tmp_path, dates))


def test_mixed_shapes_and_long_fractions_fall_back_and_still_equal_pandas(tmp_path):
    """Date only, minutes, seconds, T, 9 fractional digits in one column: the strict fast read
    refuses the column, the text path reads each value."""
    path = tmp_path / "shapes.csv"
    path.write_text(HEADER + "a,2020-01-01,1\na,2020-01-03 10:00,2\na,2020-01-05T23:59:59,3\n"
                             "b,2020-01-02 12:00:00.123456789,4\nb,2020-01-04 00:00:00.5,5\n")
    assert days_of(path) == ["2020-01-01", "2020-01-02"]
    assert_rfm_equal(path, ["2020-01-03", "2020-01-10"])


@pytest.mark.parametrize("first", [" 2020-01-05", "\t2020-01-05", "2020/01/05", "2020/1/5 10:00", "2020-1-5"])
@pytest.mark.parametrize("where", ["first row", "later row"])
def test_dates_features_io_reads_are_read_the_same_anywhere_in_the_column(tmp_path, first, where):
    """Blanks around a date, slashes, one-digit months: features.io reads them, so must DuckDB
    (the first row picks the CSV reader's strict format; a later one goes through the typed read)."""
    rows = [f"a,{first},1.0", "a,2020-01-09,2.0", "b,2020-01-07,1.0"]
    if where == "later row":
        rows = rows[1:] + rows[:1]
    path = tmp_path / "d.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    assert days_of(path) == ["2020-01-05", "2020-01-07"]
    assert_rfm_equal(path, ["2020-01-06", "2020-02-01"])


def test_strict_iso_formats():
    assert _strict_iso_format("2020-01-01") == "%Y-%m-%d"
    assert _strict_iso_format("2020-01-01T10:00") == "%Y-%m-%dT%H:%M"
    assert _strict_iso_format("2020-01-01 10:00:00") == "%Y-%m-%d %H:%M:%S"
    assert _strict_iso_format("2020-01-01 10:00:00.000") == "%Y-%m-%d %H:%M:%S.%f"
    for zoned in ("2020-01-01 10:00:00Z", "2020-01-01 10:00+01:00", "2020-01-01 10:00 UTC",
                  "2020-01-01 10:00:00.1234567",
                  "01/02/2020", "20200101"):
        assert _strict_iso_format(zoned) is None


# ---------------------------------------------------------------------- rfm_summary
def test_rfm_summary_of_the_edge_log_equals_pandas_and_hand_values(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text(EDGE_LOG)
    summary = assert_rfm_equal(path, ["2019-12-31", "2020-01-01", "2020-06-30", "2020-07-31"])
    # 007: days 2020-01-01 (3 rows), 03-01, 06-30, 07-15; 07: Feb 1 nets to 0 (a purchase), Feb 10 return-only.
    assert summary.loc["007", "frequency"] == 3 and summary.loc["007", "monetary_value"] == (5.0 + 20.0 + 30.0) / 3
    assert summary.loc["07", "frequency"] == 1 and summary.loc["07", "monetary_value"] == 2.5
    assert list(summary.index) == ["0007", "007", "07", "7"]  # 'late' starts after the cutoff


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("order", ["shuffled", "by time"])
def test_rfm_summary_on_returns_net_zero_days_and_order_dependent_sums(tmp_path, suffix, order):
    log = edge_log(n_customers=300)
    if order == "by time":
        log = log.sort_values("date", kind="stable")
    path = tmp_path / f"edge{suffix}"
    if suffix == ".csv":
        log.assign(date=log["date"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    else:
        log.to_parquet(path, index=False)
    assert_rfm_equal(path, ["2021-01-01", "2021-04-30", "2021-12-31"])


def test_day_amounts_are_added_in_day_order_as_the_pandas_engine_adds_them(tmp_path):
    """Nine days whose float sum depends on the order of addition: equal to pandas' day-order sum,
    and that sum differs from another order (so the test can fail)."""
    amounts = [33.33, 11.77, 15.36, 0.0001, 0.7, 0.1, 9.97, 0.2, 0.3]
    path = tmp_path / "order.csv"
    days = pd.date_range("2020-01-01", periods=len(amounts), freq="D")
    log = pd.DataFrame({"customer_id": "a", "date": days.strftime("%Y-%m-%d")[::-1], "amount": amounts[::-1]})
    log.to_csv(path, index=False)
    summary = assert_rfm_equal(path, ["2020-12-31"])
    in_day_order = sum(amounts) - amounts[0]
    assert summary.loc["a", "monetary_value"] == in_day_order / 8
    assert sum(amounts[::-1]) - amounts[0] != in_day_order


def test_rfm_summary_with_text_dates_in_parquet_and_optional_columns(tmp_path):
    log = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "b"],
                        "date": ["2020-01-01", "2020-01-01 10:00", "2020-01-02", "2020-01-09", "2020-01-09T12:00:00"],
                        "amount": [1.0, 2.0, 3.0, -1.0, 4.0], "discount": [0, 1, 0, 0, 1],
                        "arrears": [0.0, 0.0, 5.0, 0.0, 1.0]})
    path = tmp_path / "text.parquet"
    log.to_parquet(path, index=False)
    summary = assert_rfm_equal(path, ["2020-01-05", "2020-01-31"], ColumnMap(discount="discount", arrears="arrears"))
    # a: two rows on one day; b: 2020-01-09 nets -1 + 4 = 3.
    assert summary["frequency"].to_dict() == {"a": 0, "b": 1} and summary.loc["b", "monetary_value"] == 3.0


def test_rfm_summary_before_every_first_purchase_is_empty_as_in_pandas(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text(HEADER + "a,2020-05-01,1\nb,2020-06-01,2\n")
    summary = assert_rfm_equal(path, ["2020-01-01"])
    assert len(summary) == 0


def test_rfm_summary_after_the_chunked_features_is_unchanged(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text(EDGE_LOG)
    reference = PandasEngine(read_transactions(path))
    duck = DuckDBEngine(path, settings=replace(SMALL, in_memory_bytes=0))  # out of core: SQL tables
    try:
        before = duck.rfm_summary("2020-06-30", "D")
        duck.customer_features("2020-06-30", "D")  # builds the coded purchases table
        pd.testing.assert_frame_equal(duck.rfm_summary("2020-06-30", "D"), before, check_exact=True)
        pd.testing.assert_frame_equal(before, reference.rfm_summary(pd.Timestamp("2020-06-30"), "D"), check_exact=True)
    finally:
        duck.close()
