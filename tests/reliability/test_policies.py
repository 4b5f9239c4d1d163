"""Documented input policies (docs/inputs.md): each shown on a log whose answer is known."""
from __future__ import annotations

import pandas as pd
import pytest

from custscore.config import TrainConfig
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions, read_transactions
from custscore.features.periods import merge_periods
from custscore.features.rfm import rfm_summary
from custscore.training.pipeline import train_scorer

CUTOFF = "2020-03-01"


def _rfm(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return rfm_summary(merge_periods(normalise_transactions(frame)), CUTOFF)


def test_returns_are_netted_and_return_only_days_dropped():
    rfm = _rfm([("a", "2020-01-01", 10.0), ("a", "2020-01-05", 30.0), ("a", "2020-01-05", -10.0),
                ("a", "2020-01-09", -25.0), ("a", "2020-01-12", 0.0)])
    row = rfm.loc["a"]
    assert row["frequency"] == 2  # Jan 5 (net 20) and Jan 12 (0); Jan 9 is return-only
    assert row["monetary_value"] == pytest.approx(10.0)  # (20 + 0) / 2
    assert row["recency_days"] == 11


def test_a_customer_with_only_returns_is_absent():
    rfm = _rfm([("a", "2020-01-01", 10.0), ("b", "2020-01-02", -5.0)])
    assert list(rfm.index) == ["a"]


def test_duplicate_rows_add_spend_not_purchases():
    once = _rfm([("a", "2020-01-01", 10.0), ("a", "2020-01-08", 4.0)])
    twice = _rfm([("a", "2020-01-01", 10.0), ("a", "2020-01-08", 4.0), ("a", "2020-01-08", 4.0)])
    assert once.loc["a", "frequency"] == twice.loc["a", "frequency"] == 1
    assert twice.loc["a", "monetary_value"] == 2 * once.loc["a", "monetary_value"]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimiters_are_detected(tmp_path, sep):
    path = tmp_path / "log.csv"
    path.write_text(sep.join(["customer_id", "date", "amount"]) + "\n" + sep.join(["007", "2020-01-01", "3.5"]) + "\n")
    tx = read_transactions(path)
    assert tx["customer_id"].tolist() == ["007"] and tx["amount"].tolist() == [3.5]


def test_encoding_option_reads_latin1(tmp_path):
    from custscore.config import ColumnMap
    path = tmp_path / "log.csv"
    path.write_bytes("customer_id,date,amount\nJos\xe9,2020-01-01,3\n".encode("latin-1"))
    assert read_transactions(path, ColumnMap(encoding="latin-1"))["customer_id"].tolist() == ["José"]


def test_numeric_parquet_ids_become_text_without_decimals(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"customer_id": [17, 17, 5], "date": pd.to_datetime(["2020-01-01"] * 3),
                  "amount": [1.0, 2.0, 3.0]}).to_parquet(path)
    assert sorted(read_transactions(path)["customer_id"].unique()) == ["17", "5"]


def test_transactions_after_the_cutoff_do_not_change_the_fit(cdnow_sample_csv):
    tx = read_transactions(cdnow_sample_csv)
    config = TrainConfig(cutoff="1997-09-30", horizon_days=90, time_unit="W")
    full = train_scorer(PandasEngine(tx), config)
    cut = train_scorer(PandasEngine(tx[tx["ts"] < pd.Timestamp("1997-10-01")]), config)
    assert full.scorer.purchase_model.params_ == cut.scorer.purchase_model.params_
    assert full.scorer.gamma_gamma.params_ == cut.scorer.gamma_gamma.params_
    assert "holdout_purchases_actual" in full.metrics and "holdout_purchases_actual" not in cut.metrics


def test_cutoff_on_the_last_day_is_accepted_without_holdout(cdnow_sample_csv):
    tx = read_transactions(cdnow_sample_csv)
    result = train_scorer(PandasEngine(tx), TrainConfig(cutoff="1998-06-30", horizon_days=90, time_unit="W"))
    assert result.holdout is None and result.n_customers == 2357
