"""The DuckDB engine equals the pandas engine to the last digit; chunked scoring equals unchunked."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from custscore.config import ColumnMap, ScoreConfig
from custscore.errors import CustscoreError
from custscore.features.customers import PandasEngine
from custscore.features.duckdb_engine import DuckDBEngine, DuckDBSettings
from custscore.features.engines import iter_customer_features, open_engine
from custscore.features.io import read_transactions

TINY_CHUNKS = DuckDBSettings(rows_per_chunk=300, threads=2, memory_limit="1GB")


def assert_frames_equal(got: pd.DataFrame, expected: pd.DataFrame, approx=(), rtol=0.0) -> None:
    """Columns in ``approx`` to ``rtol`` relative, the others exactly (same-day sums included:
    both engines add a day's rows in the order (ts, amount))."""
    assert list(got.columns) == list(expected.columns)
    exact = [c for c in expected.columns if c not in approx]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_exact=True)
    close = [c for c in expected.columns if c in approx]
    pd.testing.assert_frame_equal(got[close], expected[close], check_exact=False, rtol=rtol, atol=0)


def assert_bit_identical(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same index, columns, dtypes and values; floats compared by their bits (-0.0 and NaN included)."""
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert np.array_equal(got[column].to_numpy().view(np.int64), expected[column].to_numpy().view(np.int64)), column


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


def both_modes(settings: DuckDBSettings) -> list[tuple[DuckDBSettings, bool]]:
    """``settings`` in memory (a budget of 1 GB) and out of core (a budget of 0 bytes), with the
    mode each must give."""
    return [(replace(settings, in_memory_bytes=2**30), True), (replace(settings, in_memory_bytes=0), False)]


def assert_same_engines(path, dates, columns: ColumnMap = ColumnMap(), settings=TINY_CHUNKS):
    """The DuckDB engine, in memory and out of core, equals the pandas engine bit for bit on every question
    (float columns by their bits)."""
    pandas_engine = PandasEngine(read_transactions(path, columns), columns.amount_decimals)
    for mode_settings, in_memory in both_modes(settings):
        duck = DuckDBEngine(path, columns, mode_settings)
        try:
            assert duck.in_memory is in_memory
            assert duck.date_range() == pandas_engine.date_range()
            for as_of in dates:
                for unit in ("D", "W"):
                    assert_bit_identical(duck.customer_features(as_of, unit),
                                         pandas_engine.customer_features(as_of, unit))
                    assert_bit_identical(duck.rfm_summary(as_of, unit), pandas_engine.rfm_summary(pd.Timestamp(as_of), unit))
            for start, end in zip(dates[:-1], dates[1:]):
                assert_bit_identical(duck.window_purchases(start, end), pandas_engine.window_purchases(start, end))
            pd.testing.assert_frame_equal(duck.example_transactions(3), pandas_engine.example_transactions(3))
        finally:
            duck.close()
    return pandas_engine


@pytest.fixture(scope="module")
def cdnow_parquet(tmp_path_factory, cdnow_sample_csv):
    path = tmp_path_factory.mktemp("duck") / "cdnow.parquet"
    pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str}).to_parquet(path)
    return path


def test_cdnow_csv_matches_pandas_engine(cdnow_sample_csv):
    assert_same_engines(cdnow_sample_csv, ["1997-03-31", "1997-09-30", "1998-06-30"])


def test_cdnow_parquet_matches_pandas_engine_in_one_chunk_and_many(cdnow_parquet):
    assert_same_engines(cdnow_parquet, ["1997-09-30", "1998-06-30"], settings=DuckDBSettings())
    assert_same_engines(cdnow_parquet, ["1997-09-30", "1998-06-30"])


EDGE_LOG = """customer_id,date,amount
007,2020-01-01 09:15:00,11.77
007,2020-01-01 17:40:00,15.36
007,2020-01-01 23:59:59,9.97
007,2020-03-01,5.00
007,2020-06-30 12:00:00,20.00
007,2020-07-15,30.00
07,2020-02-01 10:00,1.00
07,2020-02-01 11:00,-1.00
07,2020-02-10,-4.00
07,2020-06-30,2.50
7,2020-06-30 08:00:00,8.00
7,2020-07-01,9.00
0007,2020-04-01T23:30:00,3.00
0007,2020-04-02T00:30:00,4.00
late,2020-08-01,1.00
"""


def test_edge_cases_match_pandas_engine_and_hand_values(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text(EDGE_LOG)
    pandas_engine = assert_same_engines(path, ["2020-06-30", "2020-07-31", "2020-08-31"])
    duck = DuckDBEngine(path, settings=TINY_CHUNKS)
    f = duck.customer_features("2020-06-30", "D")
    # 'late' starts after as_of; leading zeros keep '007', '07', '0007' and '7' apart.
    assert list(f.index) == ["0007", "007", "07", "7"]
    # 007: three purchases on 2020-01-01 are one purchase day; the as_of day counts, 2020-07-15 does not.
    assert f.loc["007", "frequency"] == 2
    assert f.loc["007", "recency_days"] == 181.0 and f.loc["007", "T_days"] == 181.0
    assert f.loc["007", "monetary_value"] == (5.0 + 20.0) / 2
    assert f.loc["0007", "frequency"] == 1  # two timestamps on two calendar days
    # 07: a day netting to 0 stays a purchase, a return-only day (-4) is none.
    assert f.loc["07", "frequency"] == 1 and f.loc["07", "monetary_value"] == 2.5
    assert f.loc["7", "frequency"] == 0 and f.loc["7", "days_since_last_purchase"] == 0.0
    first_day = pandas_engine.window_purchases("2019-12-31", "2020-01-01")
    assert first_day.loc["007", "spend"] == duck.window_purchases("2019-12-31", "2020-01-01").loc["007", "spend"]
    duck.close()


def test_timezone_aware_dates_are_converted_to_utc_days(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("customer_id,date,amount\na,2020-01-01T23:30:00-05:00,1\na,2020-01-03T01:00:00+02:00,2\n")
    pandas_engine = assert_same_engines(path, ["2020-01-02", "2020-01-05"])
    # 04:30 UTC and 23:00 UTC, both on 2020-01-02: one purchase day
    purchases = pandas_engine.purchases
    assert purchases["date"].dt.strftime("%Y-%m-%d").tolist() == ["2020-01-02"] and purchases["amount"].tolist() == [3.0]


@pytest.mark.parametrize("content", [
    "customer_id,date,total\na,2020-01-01,1\n",
    "customer_id,date,amount\n",
    "customer_id,date,amount\na,2020-01-01,1\n,2020-01-02,2\nb,2020-01-03,3\n",
    "customer_id,date,amount\na,2020-01-01,1\n  ,2020-01-02,2\n",
    "customer_id,date,amount\na,2020-01-01,1\nb,yesterday,2\nc,2020-13-01,3\n",
    "customer_id,date,amount\na,2020-01-01,1\nb,2020-01-02,abc\nc,2020-01-02,inf\nd,2020-01-03,\n",
    "customer_id,date,amount\na,2020-01-01T10:00:00Z,1\nb,2020-01-02,2\n",
    # DuckDB's own casts read these; pandas refuses them, so the engine must too:
    "customer_id,date,amount\na,2020-01-01,1.5\nb,2020-01-02,1_000.5\n",  # digits grouped with _
    "customer_id,date,amount\na,2020-01-01 10:00:00,1.5\nb,2020-01-02 24:00:00,2.5\n",  # hour 24
    "customer_id,date,amount\na,2020-01-01,1\nb,2020-01-02 24:00,2\n",
    "customer_id,date,amount\na,2020-01-01T10:00:00Z,1\nb,2020-01-02T24:00:00+01:00,2\n",
])
def test_validation_messages_equal_features_io(tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CustscoreError) as expected:
        read_transactions(path)
    with pytest.raises(CustscoreError) as got:
        DuckDBEngine(path)
    assert str(got.value) == str(expected.value)


def test_ids_with_underscores_do_not_stop_amounts_being_read(tmp_path):
    # A '_' in the file sends the amounts to a check in SQL, which finds none written with '_'.
    path = tmp_path / "ids.csv"
    path.write_text("customer_id,date,amount\ncust_1,2020-01-01,1.5\ncust_1,2020-01-09,2.25\ncust_2,2020-01-03,4.0\n")
    assert_same_engines(path, [pd.Timestamp("2020-01-31")])


def test_parquet_numeric_ids_and_missing_file(tmp_path):
    path = tmp_path / "ids.parquet"
    pd.DataFrame({"cust": [7, 7, 12], "when": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-02"]),
                  "value": [1.0, 2.0, 3.0]}).to_parquet(path)
    columns = ColumnMap(customer="cust", date="when", amount="value")
    assert_same_engines(path, ["2020-01-05"], columns)
    with pytest.raises(CustscoreError, match="file not found"):
        DuckDBEngine(tmp_path / "nope.parquet")


def test_open_engine_picks_duckdb_above_the_size_threshold(cdnow_sample_csv, monkeypatch):
    import custscore.features.engines as engines

    assert isinstance(open_engine(cdnow_sample_csv), PandasEngine)
    assert isinstance(open_engine(cdnow_sample_csv, engine="duckdb"), DuckDBEngine)
    monkeypatch.setattr(engines, "AUTO_LARGE_BYTES", 1)
    assert isinstance(open_engine(cdnow_sample_csv), DuckDBEngine)
    with pytest.raises(CustscoreError, match="engine: must be one of"):
        open_engine(cdnow_sample_csv, engine="polars")


def test_chunks_concatenate_to_the_whole_frame(cdnow_sample_csv):
    duck = DuckDBEngine(cdnow_sample_csv, settings=TINY_CHUNKS)
    chunks = list(iter_customer_features(duck, pd.Timestamp("1997-09-30"), "W"))
    assert len(chunks) > 5
    pd.testing.assert_frame_equal(pd.concat(chunks), duck.customer_features("1997-09-30", "W"), check_exact=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_chunked_scoring_equals_unchunked(trained, cdnow_sample_csv, tmp_path, suffix):
    from custscore.serving.batch import score_engine
    from custscore.serving.output import write_table_atomic

    scorer = trained["result"].scorer
    config = ScoreConfig(as_of="1997-09-30")
    duck = DuckDBEngine(cdnow_sample_csv, settings=TINY_CHUNKS)
    whole = scorer.score_customers(duck.customer_features(config.as_of, scorer.time_unit), config.as_of)
    write_table_atomic(whole, tmp_path / f"whole{suffix}")
    n, first = score_engine(scorer, duck, tmp_path / f"chunked{suffix}", config)
    assert n == len(whole) == 2357 and first["customer_id"].iloc[0] == whole["customer_id"].iloc[0]
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    got, expected = read(tmp_path / f"chunked{suffix}"), read(tmp_path / f"whole{suffix}")
    # The churn classifier's matrix product (BLAS) may differ in the last bit with the
    # batch size, so probabilities are compared to 1e-12 relative; all else exactly.
    assert_frames_equal(got, expected, approx=("churn_probability",), rtol=1e-12)
    assert got["customer_id"].is_monotonic_increasing


def test_score_engine_refuses_as_of_before_first_purchase(trained, cdnow_sample_csv, tmp_path):
    from custscore.serving.batch import score_engine

    duck = DuckDBEngine(cdnow_sample_csv)
    with pytest.raises(CustscoreError, match="before the first transaction"):
        score_engine(trained["result"].scorer, duck, tmp_path / "s.csv", ScoreConfig(as_of="1996-01-01"))
    assert os.listdir(tmp_path) == []


def test_chunked_writer_appends_and_is_atomic(tmp_path):
    from custscore.serving.chunked_output import ChunkedTableWriter

    target = tmp_path / "out.parquet"
    parts = [pd.DataFrame({"id": ["a", "b"], "x": [1.5, np.nan]}), pd.DataFrame({"id": ["c"], "x": [3.0]})]
    with ChunkedTableWriter(target) as writer:
        for part in parts:
            writer.write(part)
            assert not target.exists()  # nothing visible until the end
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.concat(parts, ignore_index=True))
    assert writer.n_rows == 3

    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with ChunkedTableWriter(target) as writer:
            writer.write(parts[1])
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]  # no temporary file left behind


def test_a_huge_customer_reaches_pandas_as_purchase_days_in_bounded_chunks(tmp_path, monkeypatch):
    """Issue #15: one customer's rows are merged per day in SQL, and chunks count purchase days.

    A whale with 6,000 rows on 12 days among 40 ordinary customers (one purchase day each),
    chunks of at most 5 purchase days: the whale arrives as its 12 day rows, alone in its
    chunk (a customer is never split), and every other chunk holds at most 5 day rows.
    """
    rng = np.random.default_rng(3)
    whale_days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 12, 6_000), unit="D")
    whale = pd.DataFrame({"customer_id": "c000", "date": whale_days + pd.to_timedelta(rng.integers(0, 86_400, 6_000),
                                                                                      unit="s"),
                          "amount": rng.integers(1, 1_000, 6_000) / 100.0})
    others = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(1, 41)],
                           "date": pd.Timestamp("2020-01-05"), "amount": 1.0})
    log = tmp_path / "whale.parquet"
    pd.concat([whale, others]).to_parquet(log, index=False)
    seen = []
    original = DuckDBEngine._purchases

    def recording(self, lo, hi, after, until):
        got = original(self, lo, hi, after, until)
        seen.append((lo, hi, len(got)))
        return got

    monkeypatch.setattr(DuckDBEngine, "_purchases", recording)
    duck = DuckDBEngine(log, ColumnMap(), DuckDBSettings(rows_per_chunk=5, threads=1))
    try:
        features = duck.customer_features(pd.Timestamp("2020-01-31"), "D")
    finally:
        duck.close()
    assert seen[0] == (0, 1, 12)  # the whale: 12 purchase days, not 6,000 rows
    assert all(n <= 5 for _, _, n in seen[1:]) and sum(n for _, _, n in seen) == 12 + 40
    assert features.loc["c000", "frequency"] == 11
    assert features.loc["c000", "monetary_value"] == pytest.approx(
        whale[whale["date"] > whale["date"].min().normalize() + pd.Timedelta(days=1)]["amount"].sum() / 11, rel=1e-12)


@pytest.mark.parametrize("amounts", [
    ["12.5", " 7", "1e2", "+3", "0.1", "-0.25", "1000"],  # the CSV reader types them
    ["12.5", "7", "3 EUR"],  # one it cannot read: the all-text path parses them and names the bad row
])
def test_amount_spellings_read_as_the_pandas_engine_reads_them(tmp_path, amounts):
    """The CSV fast path (amounts typed by DuckDB's CSV reader) and its all-text fallback both
    equal the pandas engine, value for value, or fail with its message."""
    rows = "".join(f"c{i % 3},2020-01-{1 + i:02d},{a}\n" for i, a in enumerate(amounts))
    path = tmp_path / "amounts.csv"
    path.write_text("customer_id,date,amount\n" + rows)
    try:
        read_transactions(path)
    except CustscoreError as expected:
        with pytest.raises(CustscoreError) as got:
            DuckDBEngine(path)
        assert str(got.value) == str(expected)
        return
    assert_same_engines(path, ["2020-01-05", "2020-01-31"])
