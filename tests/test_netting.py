"""Exact day netting (features.netting): the outcome of a day never depends on row order or float rounding.

Independent truth: hand-computed toy days, and exact decimal arithmetic (``decimal.Decimal``
sums of the amounts as written), whose nearest float64 every engine must return bit for bit.
"""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.duckdb_engine import DuckDBEngine, DuckDBSettings
from custscore.features.engines import open_engine, rfm_table
from custscore.features.io import read_transactions
from custscore.features.netting import amount_units, checked_units
from custscore.features.periods import merge_periods
from custscore.features.small_features import day_numbers, merge_days, small_customer_features
from conftest import cli

AS_OF = "2020-03-01"  # day 61 when 2020-01-01 is day 1


def toy_log(first_day: list[float]) -> pd.DataFrame:
    """One customer: ``first_day`` on 2020-01-01 (rows an hour apart, in that order), 5.0 on 2020-02-01."""
    ts = [pd.Timestamp("2020-01-01 09:00") + pd.Timedelta(hours=i) for i in range(len(first_day))]
    return pd.DataFrame({"customer_id": "c1", "date": ts + [pd.Timestamp("2020-02-01 12:00")],
                         "amount": first_day + [5.0]})


def write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".csv"):
        frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def small_rfm(frame: pd.DataFrame) -> pd.DataFrame:
    """RFM of the numpy fast path (features.small_features) for a raw frame."""
    tx = read_transactions_frame(frame)
    codes = pd.factorize(tx["customer_id"])[0]
    feats = small_customer_features(merge_days(codes, day_numbers(tx["ts"].to_numpy()), tx["amount"].to_numpy()),
                                    AS_OF)
    return pd.DataFrame({c: feats.columns[c] for c in ("frequency", "recency_days", "T_days")})


def read_transactions_frame(frame: pd.DataFrame) -> pd.DataFrame:
    from custscore.features.io import normalise_transactions

    return normalise_transactions(frame)


@pytest.mark.parametrize("first_day", [[0.3, -0.1, -0.2], [0.1, 0.2, -0.3], [-0.2, 0.3, -0.1]])
@pytest.mark.parametrize("engine", ["pandas", "duckdb-csv", "duckdb-parquet", "small"])
def test_toy_day_nets_to_zero_and_counts_in_every_order(tmp_path, engine, first_day):
    # float64: 0.3 - 0.1 - 0.2 = -5.6e-17 (was dropped), 0.1 + 0.2 - 0.3 = +2.8e-17 (was kept)
    frame = toy_log(first_day)
    if engine == "small":
        got = small_rfm(frame).iloc[0]
    else:
        kind, _, suffix = engine.partition("-")
        path = write(frame, tmp_path / f"log.{suffix or 'csv'}")
        eng = open_engine(path, ColumnMap(), kind)
        assert type(eng).__name__ == {"pandas": "PandasEngine", "duckdb": "DuckDBEngine"}[kind]
        got = rfm_table(eng, AS_OF).loc["c1"]
    assert (got["frequency"], got["recency_days"], got["T_days"]) == (1, 31.0, 60.0)


def test_toy_day_through_the_rfm_command(tmp_path):
    for i, first_day in enumerate([[0.3, -0.1, -0.2], [0.1, 0.2, -0.3]]):
        log = write(toy_log(first_day), tmp_path / f"log{i}.csv")
        out = tmp_path / f"rfm{i}.csv"
        result = cli("rfm", "--transactions", log, "--as-of", AS_OF, "--output", str(out))
        assert result.returncode == 0, result.stderr
        row = pd.read_csv(out).iloc[0]
        assert (row["frequency"], row["recency_days"], row["T_days"], row["monetary_value"]) == (1, 31.0, 60.0, 5.0)


# ---------------------------------------------------------------------- property: permuting a day's rows
AMOUNT_TEXT = st.one_of(
    st.sampled_from(["0.1", "0.2", "0.3", "-0.1", "-0.2", "-0.3", "11.77", "15.36", "-9.97", "0", "-0.0", "1e-4"]),
    st.integers(-10**7, 10**7).map(lambda u: str(Decimal(u).scaleb(-4))),  # four decimals
    st.integers(-10**5, 10**5).map(lambda u: str(Decimal(u).scaleb(-2))),  # cents
)
DAY = st.tuples(st.integers(0, 2), st.integers(0, 20), st.lists(AMOUNT_TEXT, min_size=1, max_size=6))


def _raw(days: list, permute) -> pd.DataFrame:
    """Rows of each (customer, day) at distinct times of day, the day's amounts in ``permute`` order."""
    rows = []
    for customer, day, amounts in days:
        for minute, text in enumerate(permute(amounts)):
            rows.append((f"c{customer}", pd.Timestamp("2021-03-01") + pd.Timedelta(days=day, minutes=minute),
                         float(text)))
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def _truth(days: list) -> dict:
    """Exact decimal net of each (customer, day): the float64 nearest to it, for the purchase days (net >= 0)."""
    net: dict = {}
    for customer, day, amounts in days:
        key = (f"c{customer}", (pd.Timestamp("2021-03-01") + pd.Timedelta(days=day)).value)
        net[key] = net.get(key, Decimal(0)) + sum(Decimal(a) for a in amounts)
    return {k: float(v) for k, v in sorted(net.items()) if v >= 0}


def _engine_days(frame: pd.DataFrame, tmp_path, tag: str) -> dict:
    """Per-day purchases (id, day ns) -> amount from every engine; all must agree bit for bit."""
    csv, parquet = write(frame, tmp_path / f"{tag}.csv"), write(frame, tmp_path / f"{tag}.parquet")
    out = {}
    merged = merge_periods(read_transactions(csv))
    out["pandas"] = merged
    tx = read_transactions(csv)
    codes, ids = pd.factorize(tx["customer_id"], sort=True)
    small = merge_days(codes, day_numbers(tx["ts"].to_numpy()), tx["amount"].to_numpy())
    out["small"] = pd.DataFrame({"customer_id": ids[small.codes], "date": (small.days * 86_400 * 10**9)
                                 .astype("datetime64[ns]"), "amount": small.amounts})
    out_of_core = DuckDBSettings(in_memory_bytes=0)
    for name, eng in (("duckdb-parquet", DuckDBEngine(parquet)), ("duckdb-csv", DuckDBEngine(csv)),
                      ("duckdb-out-of-core", DuckDBEngine(parquet, settings=out_of_core))):
        assert eng.in_memory is (name != "duckdb-out-of-core")
        got = eng._purchases(0, len(eng._ids), None, pd.Timestamp("2030-01-01"))
        out[name] = pd.DataFrame({"customer_id": eng._ids[got["customer_id"].to_numpy()], "date": got["date"],
                                  "amount": got["amount"].to_numpy()})
    return {name: {(c, pd.Timestamp(d).value): a for c, d, a in zip(f["customer_id"], f["date"], f["amount"])}
            for name, f in out.items()}


def _bits(days: dict) -> dict:
    return {k: np.float64(v).view(np.int64) for k, v in days.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(DAY, min_size=1, max_size=12), seed=st.integers(0, 2**32 - 1))
def test_permuting_each_days_rows_gives_bit_identical_days_on_every_engine(tmp_path, days, seed):
    rng = np.random.default_rng(seed)
    truth = _bits(_truth(days))
    if not truth:
        return  # every day nets to a return: no purchases (refused elsewhere)
    for tag, permute in (("given", list), ("permuted", lambda a: list(rng.permutation(a))),
                         ("reversed", lambda a: a[::-1])):
        for name, got in _engine_days(_raw(days, permute), tmp_path, tag).items():
            assert _bits(got) == truth, (tag, name)


# ---------------------------------------------------------------------- the units and their bounds
def test_units_round_half_to_even_and_are_exact_for_four_decimals():
    assert amount_units(np.array([29.33, 2.5e-4, 1e-4, -0.0]), 4).tolist() == [293300, 2, 1, 0]
    assert amount_units(np.array([0.5, 1.5, 2.5, -0.5, -1.5]), 0).tolist() == [0, 2, 2, 0, -2]
    # 0.00015 is 1.4999999999999999e-4 in float64: it rounds on its float value, to 1 unit
    assert amount_units(np.array([0.00015]), 4).tolist() == [1]
    assert checked_units(np.array([0.1, 0.2, -0.3]), 4).sum() == 0
    assert checked_units(np.array([0.1, 0.2, -0.3]), 2).sum() == 0


def test_amount_too_large_for_the_precision_is_refused_naming_row_value_and_option(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,amount\n1,2020-01-01,5\n2,2020-01-02,1e12\n")
    for engine in ("pandas", "duckdb"):
        with pytest.raises(CustscoreError, match=r"row 2: column 'amount': amount 1000000000000\.0 is too large "
                                                 r"for --amount-decimals 4 .*pass a smaller --amount-decimals"):
            open_engine(log, ColumnMap(), engine)
    assert len(rfm_table(open_engine(log, ColumnMap(amount_decimals=2), "pandas"), "2020-01-05")) == 2
    parquet = write(pd.DataFrame({"customer_id": ["1", "2"], "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                                  "amount": [5.0, 1e12]}), tmp_path / "log.parquet")
    with pytest.raises(CustscoreError, match="row 2: column 'amount': amount"):
        open_engine(parquet, ColumnMap(), "duckdb")


def test_log_whose_units_could_overflow_int64_is_refused(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,amount\n" + "".join(f"{i},2020-01-01,9e11\n" for i in range(600)))
    for engine in ("pandas", "duckdb"):
        with pytest.raises(CustscoreError, match=r"amounts add up to more than 2\*\*62 units .*--amount-decimals"):
            open_engine(log, ColumnMap(), engine)


def test_cli_option_and_its_bounds(tmp_path):
    log = write(toy_log([0.3, -0.1, -0.2]), tmp_path / "log.csv")
    out = tmp_path / "rfm.csv"
    result = cli("rfm", "--transactions", log, "--as-of", AS_OF, "--output", str(out), "--amount-decimals", "16")
    assert result.returncode == 2 and "amount_decimals: must be a whole number in [0, 15], got 16" in result.stderr
    assert not out.exists()
    # at 0 decimals 0.3 -> 0, -0.1 -> 0, -0.2 -> 0: still a zero-spend purchase day
    result = cli("rfm", "--transactions", log, "--as-of", AS_OF, "--output", str(out), "--amount-decimals", "0")
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(out)["frequency"].tolist() == [1]


def test_duckdb_sql_units_equal_numpy_ties_included():
    import duckdb

    from custscore.features.netting import units_amount, units_amount_sql, units_sql

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0, 1e3, 20_000), (rng.integers(-10**6, 10**6, 20_000) + 0.5),
                             [0.5, 1.5, 2.5, -0.5, -1.5, -0.0, 4503599627370495.5]])
    for decimals in (0, 2, 4):
        values = values[np.abs(values * 10.0**decimals) <= 2**53]  # the rest is refused before
        frame = pd.DataFrame({"a": values})
        got = duckdb.sql(f"SELECT {units_sql('a', decimals)} AS u, "
                         f"{units_amount_sql(units_sql('a', decimals), decimals)} AS m FROM frame").fetchnumpy()
        units = amount_units(values, decimals)
        assert np.array_equal(got["u"], units)
        assert np.array_equal(got["m"].view(np.int64), units_amount(units, decimals).view(np.int64))
