"""Logs without amounts (``ColumnMap.amount = None``, CLI ``--amount-col none``) on every engine.

Independent truth: the BTYD frequency, recency and T count purchase days only, so they must
equal those of the same log read with its amounts (CDNOW sample: no return-only day).
"""
from __future__ import annotations

import pandas as pd
import pytest

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.engines import open_engine, rfm_table
from conftest import cli

NO_AMOUNTS = ColumnMap(amount=None)
BTYD = ["frequency", "recency_days", "T_days"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory, cdnow_sample_csv):
    folder = tmp_path_factory.mktemp("no_amounts")
    with_amounts = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    assert (with_amounts["amount"] >= 0).all()  # no return-only day: the same purchase days either way
    without = with_amounts.drop(columns="amount")
    paths = {"with.csv": with_amounts, "without.csv": without}
    for name, frame in paths.items():
        frame.to_csv(folder / name, index=False)
    parquet = with_amounts.assign(date=pd.to_datetime(with_amounts["date"]))
    parquet.to_parquet(folder / "with.parquet", index=False)
    parquet.drop(columns="amount").to_parquet(folder / "without.parquet", index=False)
    return folder


@pytest.mark.parametrize("engine, suffix", [("pandas", "csv"), ("duckdb", "csv"), ("duckdb", "parquet")])
def test_rfm_without_amounts_equals_rfm_with_amounts(logs, engine, suffix):
    expected = rfm_table(open_engine(logs / f"with.{suffix}", ColumnMap(), engine), "1997-09-30")
    for name in ("without", "with"):  # no amount column, and an amount column that is ignored
        eng = open_engine(logs / f"{name}.{suffix}", NO_AMOUNTS, engine)
        got = rfm_table(eng, "1997-09-30")
        pd.testing.assert_frame_equal(got[BTYD], expected[BTYD], check_exact=True)
        assert (got["monetary_value"] == 0.0).all()
        features = eng.customer_features(pd.Timestamp("1997-09-30"), "D")
        assert list(features.columns) == list(open_engine(logs / f"with.{suffix}", ColumnMap(), engine)
                                              .customer_features(pd.Timestamp("1997-09-30"), "D").columns)
        assert (features["spend_90d"] == 0.0).all()


def test_an_ignored_amount_column_may_hold_anything(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,amount\n1,2020-01-01,12 EUR\n1,2020-01-05,\n2,2020-01-02,x\n")
    for engine in ("pandas", "duckdb"):
        with pytest.raises(CustscoreError, match="amount is not a finite number: '12 EUR'"):
            open_engine(log, ColumnMap(), engine)
        got = rfm_table(open_engine(log, NO_AMOUNTS, engine), "2020-01-10")
        assert got["frequency"].tolist() == [1, 0] and got["recency_days"].tolist() == [4.0, 0.0]


def test_rfm_command_with_amount_col_none(logs, tmp_path):
    out = tmp_path / "rfm.csv"
    result = cli("rfm", "--transactions", str(logs / "without.csv"), "--as-of", "1997-09-30",
                 "--output", str(out), "--amount-col", "none")
    assert result.returncode == 0, result.stderr
    expected = rfm_table(open_engine(logs / "with.csv", ColumnMap(), "pandas"), "1997-09-30")
    got = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    assert got[BTYD].to_numpy().tolist() == expected[BTYD].to_numpy().tolist()
    assert ColumnMap(amount=None).has_amounts is False and ColumnMap().has_amounts is True
