"""The DuckDB engine's two modes: in memory (per-day arrays in numpy) when the log fits, out of core (SQL) when not.

Which mode: the check pass counts the transactions, and the log goes in memory when they fit
``in_memory_bytes`` at ``IN_MEMORY_BYTES_PER_ROW`` each (half the memory available by default,
out of core where that is unknown). Both modes must equal the pandas engine bit for bit
(the edge-case logs of test_duckdb_engine.py run in both through ``assert_same_engines``).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features import engines
from custscore.features.customers import PandasEngine
from custscore.features.duckdb_engine import DuckDBEngine, DuckDBSettings
from custscore.features.io import read_transactions

from test_duckdb_engine import EDGE_LOG, TINY_CHUNKS, assert_frames_equal, assert_same_engines, both_modes, cdnow_parquet  # noqa: F401 (fixture)

EDGE_ROWS = EDGE_LOG.count("\n") - 1  # 15 transactions


@pytest.fixture
def edge_csv(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text(EDGE_LOG)
    return path


def test_the_mode_follows_the_estimate_at_the_boundary(edge_csv):
    budget = EDGE_ROWS * engines.IN_MEMORY_BYTES_PER_ROW
    fits = DuckDBEngine(edge_csv, settings=replace(TINY_CHUNKS, in_memory_bytes=budget))
    short = DuckDBEngine(edge_csv, settings=replace(TINY_CHUNKS, in_memory_bytes=budget - 1))
    try:
        assert fits.in_memory and not short.in_memory
        # out of core keeps its SQL tables; in memory DuckDB holds none
        tables = {row[0] for row in short._con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert tables == {"days"}
        assert fits._con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 0
    finally:
        fits.close()
        short.close()


def test_default_budget_is_half_the_available_memory_and_unknown_means_out_of_core(edge_csv, monkeypatch):
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 2 * EDGE_ROWS * engines.IN_MEMORY_BYTES_PER_ROW)
    assert DuckDBEngine(edge_csv).in_memory
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 2 * EDGE_ROWS * engines.IN_MEMORY_BYTES_PER_ROW - 2)
    assert not DuckDBEngine(edge_csv).in_memory
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: None)
    assert not DuckDBEngine(edge_csv).in_memory


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1GB"])
def test_in_memory_bytes_must_be_a_whole_number(bad):
    with pytest.raises(CustscoreError, match="in_memory_bytes: must be a whole number >= 0"):
        DuckDBSettings(in_memory_bytes=bad)


def test_shuffled_log_with_returns_net_zero_days_and_optional_columns_in_both_modes(tmp_path):
    """A simulated log (300 customers, many rows per day, returns, days netting to exactly 0,
    discount flags and arrears), rows shuffled: both modes equal the pandas engine, one chunk and many."""
    rng = np.random.default_rng(17)
    n = 4_000
    frame = pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in rng.integers(0, 300, n)],
        "date": (pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 120 * 24, n), unit="h")).astype(str),
        "amount": np.round(rng.normal(20, 15, n), 2),
        "disc": rng.integers(0, 2, n),
        "overdue": rng.integers(0, 40, n).astype(float)})
    zero = frame.iloc[:50].copy()
    zero["amount"] = -zero["amount"]  # each of these days nets to 0 (same customer, same timestamp)
    frame = pd.concat([frame, zero]).sample(frac=1.0, random_state=3)
    path = tmp_path / "shuffled.csv"
    frame.to_csv(path, index=False)
    columns = ColumnMap(discount="disc", arrears="overdue")
    assert_same_engines(path, ["2021-02-15", "2021-03-31", "2021-06-30"], columns)
    assert_same_engines(path, ["2021-03-31"], columns, settings=DuckDBSettings())


def test_a_stream_of_arrow_batches_in_both_modes(edge_csv):
    """``DuckDBEngine.from_arrow`` (a database result) reads the same purchases in either mode."""
    reference = PandasEngine(read_transactions(edge_csv))
    frame = pd.read_csv(edge_csv, dtype={"customer_id": str})
    frame["date"] = pd.to_datetime(frame["date"], format="ISO8601")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for settings, in_memory in both_modes(TINY_CHUNKS):
        stream = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=4))
        duck = DuckDBEngine.from_arrow(stream, ColumnMap(), "edge stream", settings)
        try:
            assert duck.in_memory is in_memory
            for as_of in ("2020-06-30", "2020-08-31"):
                assert_frames_equal(duck.customer_features(as_of, "D"), reference.customer_features(as_of, "D"))
            pd.testing.assert_frame_equal(duck.example_transactions(3), reference.example_transactions(3))
        finally:
            duck.close()


def test_a_log_of_only_returns_has_no_purchases_in_either_mode(tmp_path):
    path = tmp_path / "returns.csv"
    path.write_text("customer_id,date,amount\na,2020-01-01,-1\nb,2020-01-02,-2\n")
    reference = PandasEngine(read_transactions(path))
    for settings, _ in both_modes(TINY_CHUNKS):
        duck = DuckDBEngine(path, settings=settings)
        try:
            assert len(duck.customer_features("2020-12-31", "D")) == len(reference.customer_features("2020-12-31", "D"))
            pd.testing.assert_frame_equal(duck.rfm_summary("2020-12-31", "D"),
                                          reference.rfm_summary(pd.Timestamp("2020-12-31"), "D"), check_exact=True)
        finally:
            duck.close()


def test_csv_rows_are_counted_when_short_and_estimated_from_the_first_lines_when_long(tmp_path):
    from custscore.features.duckdb_engine import _csv_rows_estimate

    short = tmp_path / "short.csv"
    short.write_text("customer_id,date,amount\na,2020-01-01,1\nb,2020-01-02,2")  # no final line break
    assert _csv_rows_estimate(short) == 2
    long = tmp_path / "long.csv"
    long.write_text("customer_id,date,amount\n" + "".join(f"c{i % 977},2020-01-{1 + i % 28:02d},{i % 50}.5\n"
                                                          for i in range(20_000)))
    assert _csv_rows_estimate(long, sample_bytes=4096) == pytest.approx(20_000, rel=0.05)


def _grouped(ids, day, units, maxima=None):
    from custscore.features.coded_arrays import grouped_days

    out = grouped_days(pa.array(ids), np.array(day, dtype=np.int32), np.array(units, dtype=np.int64), 2,
                       {name: np.array(v) for name, v in (maxima or {}).items()})
    return out[0].tolist(), out[1].tolist(), out[2].tolist(), out[3].tolist(), {k: v.tolist() for k, v in out[4].items()}


def test_customers_grouped_in_any_order_come_out_in_id_order_merged_per_day():
    # Rows grouped by customer in the order c, a, b (as a sort by a hash of the id gives), days
    # increasing within each. Worked by hand at 2 decimals: c's day 3 nets 1.00 - 1.00 = 0 (kept,
    # a net-zero day is a purchase day); b's day 2 is 0.50 + 0.25, day 5 a return only (dropped).
    ids, code, day, amount, maxima = _grouped(
        ["c", "c", "a", "b", "b", "b"], [3, 3, 1, 2, 2, 5], [100, -100, 999, 50, 25, -10],
        {"arrears": [1.0, 4.0, 2.0, 3.0, 5.0, 9.0]})
    assert ids == ["a", "b", "c"]
    assert code == [0, 1, 2] and day == [1, 2, 3] and amount == [9.99, 0.75, 0.0]
    assert maxima == {"arrears": [2.0, 5.0, 4.0]}


def test_a_customer_in_two_groups_as_two_ids_sharing_a_hash_would_give_gives_the_same_arrays():
    # b's rows come in two groups around a's (ids sharing a hash, their rows interleaved on day 2):
    # the rows are then coded by id and sorted, so the arrays equal those of the clean grouping.
    split = _grouped(["b", "a", "b"], [1, 2, 4], [100, 200, 300])
    clean = _grouped(["b", "b", "a"], [1, 4, 2], [100, 300, 200])
    assert split == clean == (["a", "b"], [0, 1, 1], [2, 1, 4], [2.0, 1.0, 3.0], {})


def test_customers_already_in_id_order_and_days_out_of_order_within_a_customer():
    # No reorder of the customers is needed; b's days 4 then 1 are sorted by the merge.
    assert _grouped(["a", "b", "b"], [2, 4, 1], [200, 300, 100]) == (["a", "b"], [0, 1, 1], [2, 1, 4], [2.0, 1.0, 3.0], {})


def test_parquet_read_in_file_order_only_when_its_row_groups_hold_increasing_id_ranges(tmp_path):
    import pyarrow.parquet as pq

    from custscore.features.duckdb_engine import parquet_grouped_by

    ids = [f"c{k:02d}" for k in range(12) for _ in range(3)]
    log = pa.table({"customer_id": ids, "date": ["2020-01-01", "2020-02-01", "2020-03-01"] * 12, "amount": [1.0] * 36})
    grouped, one_group, overlapping = tmp_path / "grouped.parquet", tmp_path / "one.parquet", tmp_path / "over.parquet"
    pq.write_table(log, grouped, row_group_size=9)
    pq.write_table(log, one_group)
    pq.write_table(log.take(np.r_[0:9, 30:36, 9:30]), overlapping, row_group_size=9)
    assert parquet_grouped_by(grouped, "customer_id")
    assert not parquet_grouped_by(one_group, "customer_id")  # one group: the footer cannot tell
    assert not parquet_grouped_by(overlapping, "customer_id")
    assert not parquet_grouped_by(tmp_path / "missing.parquet", "customer_id")
    # Whatever the order read, the features are the pandas engine's.
    interleaved = tmp_path / "interleaved.parquet"  # id ranges per group, but customers mixed within
    pq.write_table(log.take(np.concatenate([np.arange(g, g + 9).reshape(3, 3).T.ravel() for g in range(0, 36, 9)])),
                   interleaved, row_group_size=9)
    assert parquet_grouped_by(interleaved, "customer_id")
    expected = PandasEngine(read_transactions(grouped)).customer_features(pd.Timestamp("2020-03-31"), "D")
    for path in (grouped, one_group, overlapping, interleaved):
        got = DuckDBEngine(path).customer_features(pd.Timestamp("2020-03-31"), "D")
        assert_frames_equal(got, expected)


def test_features_of_some_customers_are_their_rows_of_the_full_frame_in_both_modes(tmp_path, cdnow_parquet):
    # Each customer's features come from his own purchases, so a sample's frame computed alone
    # (in memory: their purchases gathered) equals the full pandas frame's rows, in id order.
    reference = PandasEngine(read_transactions(cdnow_parquet))
    full = reference.customer_features(pd.Timestamp("1997-09-30"), "W")
    rng = np.random.default_rng(7)
    wanted = pd.Index(rng.choice(full.index.to_numpy(), size=300, replace=False), name="customer_id")
    wanted = wanted.append(pd.Index(["not a customer"], name="customer_id"))  # unknown ids are ignored
    expected = full[full.index.isin(wanted)]
    for settings, in_memory in both_modes(TINY_CHUNKS):
        duck = DuckDBEngine(cdnow_parquet, ColumnMap(), settings)
        assert duck.in_memory is in_memory
        assert_frames_equal(duck.customer_features_of(wanted, pd.Timestamp("1997-09-30"), "W"), expected)
        assert len(duck.customer_features_of(pd.Index([], name="customer_id"), pd.Timestamp("1997-09-30"), "W")) == 0


def test_parquet_of_integer_ids_in_numeric_order_is_read_in_file_order_and_put_in_text_order(tmp_path):
    # Row groups hold increasing numeric id ranges, so the file is read in file order; but ids are
    # text to every engine, and 9 < 10 < 100 as numbers is "10" < "100" < "9" as text: the customers
    # must still come out in text order, with the pandas engine's features.
    import pyarrow.parquet as pq

    from custscore.features.duckdb_engine import parquet_grouped_by

    ids = [k for k in (7, 8, 9, 10, 11, 99, 100, 101, 1000) for _ in range(2)]
    log = pa.table({"customer_id": pa.array(ids, pa.int64()),
                    "date": ["2020-01-01", "2020-02-15"] * 9, "amount": [1.5, 2.25] * 9})
    path = tmp_path / "ints.parquet"
    pq.write_table(log, path, row_group_size=4)
    assert parquet_grouped_by(path, "customer_id")
    expected = PandasEngine(read_transactions(path)).customer_features(pd.Timestamp("2020-03-31"), "D")
    assert expected.index.tolist()[:3] == ["10", "100", "1000"]
    got = DuckDBEngine(path).customer_features(pd.Timestamp("2020-03-31"), "D")
    assert_frames_equal(got, expected)
