"""Rolling-origin backtest: no leakage past the origin, origins, reproducibility, CLI."""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from conftest import cli
from custscore.config import BacktestConfig
from custscore.errors import CustscoreError
from custscore.features.cdnow import load_cdnow_sample
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions
from custscore.training.backtest import ClippedEngine, LeakageError, outcome_rows, rolling_origins, run_backtest
from custscore.training.pipeline import train_scorer

ORIGIN = pd.Timestamp("1998-01-31")


@pytest.fixture(scope="module")
def sample_tx() -> pd.DataFrame:
    return normalise_transactions(load_cdnow_sample())


def test_planted_future_purchase_changes_nothing_at_the_origin(sample_tx):
    """A purchase after the origin (by a known and by a new customer) is invisible there."""
    known = sample_tx["customer_id"].iloc[0]
    planted = pd.DataFrame({"customer_id": [known, "planted-new"],
                            "ts": [ORIGIN + pd.Timedelta(days=1), ORIGIN + pd.Timedelta(days=3)],
                            "amount": [999.0, 50.0]})
    with_future = PandasEngine(pd.concat([sample_tx, planted.astype(sample_tx.dtypes.to_dict())],
                                         ignore_index=True))
    without = PandasEngine(sample_tx)
    config = BacktestConfig(cutoffs=(ORIGIN,), horizon_days=90, time_unit="W").train_config(ORIGIN)

    a = ClippedEngine(with_future, ORIGIN).customer_features(ORIGIN, "W")
    b = ClippedEngine(without, ORIGIN).customer_features(ORIGIN, "W")
    pd.testing.assert_frame_equal(a, b)
    assert "planted-new" not in a.index

    fit_a = train_scorer(ClippedEngine(with_future, ORIGIN), config)
    fit_b = train_scorer(ClippedEngine(without, ORIGIN), config)
    assert fit_a.scorer.purchase_model.params_ == fit_b.scorer.purchase_model.params_
    pd.testing.assert_frame_equal(fit_a.scorer.score_customers(a, ORIGIN), fit_b.scorer.score_customers(b, ORIGIN))
    # ... while the truth after the origin does see it
    rows = outcome_rows(fit_a, with_future, ORIGIN, 90).set_index("customer_id")
    assert rows.loc[known, "churned"] == 0 and rows.loc[known, "actual_revenue"] >= 999.0


def test_clipped_engine_refuses_questions_after_the_origin(sample_tx):
    engine = ClippedEngine(PandasEngine(sample_tx), ORIGIN)
    assert engine.date_range()[1] == ORIGIN
    later = ORIGIN + pd.Timedelta(days=1)
    with pytest.raises(LeakageError):
        engine.customer_features(later, "D")
    with pytest.raises(LeakageError):
        engine.window_purchases(ORIGIN - pd.Timedelta(days=10), later)
    assert (pd.to_datetime(engine.example_transactions(50)["date"]) <= ORIGIN).all()


def test_rolling_origins_step_back_from_the_end(sample_tx):
    engine = PandasEngine(sample_tx)  # log ends 1998-06-30
    origins = rolling_origins(engine, BacktestConfig(n_origins=3, step_days=30, horizon_days=90))
    assert [o.date().isoformat() for o in origins] == ["1998-01-31", "1998-03-02", "1998-04-01"]
    with pytest.raises(CustscoreError, match="origin 1998-05-01"):
        rolling_origins(engine, BacktestConfig(cutoffs="1998-05-01", horizon_days=90))
    with pytest.raises(CustscoreError, match="first transaction"):
        rolling_origins(engine, BacktestConfig(cutoffs="1997-03-01", horizon_days=90))


def test_config_needs_exactly_one_way_to_give_origins():
    with pytest.raises(CustscoreError, match="either --cutoffs"):
        BacktestConfig(horizon_days=90)
    with pytest.raises(CustscoreError, match="either --cutoffs"):
        BacktestConfig(cutoffs="1997-09-30", n_origins=2, step_days=30)
    with pytest.raises(CustscoreError, match="step_days"):
        BacktestConfig(n_origins=2, step_days=0)


@pytest.mark.slow
def test_backtest_is_reproducible_and_its_auc_matches_sklearn(sample_tx):
    config = BacktestConfig(cutoffs="1998-03-31", horizon_days=90, time_unit="W", n_bootstrap=50, seed=3)
    first = run_backtest(PandasEngine(sample_tx), config)
    second = run_backtest(PandasEngine(sample_tx), config)
    pd.testing.assert_frame_equal(first.table, second.table)
    rows = pd.concat([o.rows for o in first.origins])
    auc = first.table.set_index(["score", "metric"])["estimate"]
    for name in ("churn_classifier", "baseline_days_since_last_purchase", "baseline_n_purchases_90d"):
        assert auc[name, "auc"] == pytest.approx(roc_auc_score(rows["churned"], rows[name]))
    # rows are the customers known at each origin, truth from the 90 days after it
    assert list(first.by_origin["customers"]) == [len(o.rows) for o in first.origins]
    comparison = first.comparison().set_index("score")
    assert comparison.loc["churn_classifier", "auc"] > 0.7


@pytest.mark.slow
def test_backtest_cli_writes_tables_plots_and_nested_runs(cdnow_sample_csv, tmp_path, new_store):
    uri = new_store(tmp_path)
    out = tmp_path / "bt"
    proc = cli("backtest", "--transactions", str(cdnow_sample_csv), "--cutoffs", "1997-12-31,1998-03-31",
               "--horizon-days", "90", "--time-unit", "W", "--n-bootstrap", "50", "--output-dir", str(out),
               "--tracking-uri", uri)
    assert proc.returncode == 0, proc.stderr
    assert "churn_classifier" in proc.stdout and "baseline_days_since_last_purchase" in proc.stdout
    for name in ("metrics.csv", "metrics.json", "roc.png", "reliability.png", "gains.png",
                 "calibration_purchases.png", "purchases_over_time.png"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "metrics.csv")
    assert set(table["scope"]) == {"1997-12-31", "1998-03-31", "pooled"}
    assert len(json.loads((out / "metrics.json").read_text())) == len(table)

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("custscore-backtest")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2
    assert "auc_churn_classifier" in parents[0].data.metrics
    assert "auc_churn_classifier_ci_low" in children[0].data.metrics
    assert parents[0].data.params["churn_calibration"].startswith("sigmoid-latest on ")
    assert parents[0].data.params["churn_windows"] == "auto"
    assert children[0].data.params["churn_calibration"] == "sigmoid-latest"


def test_backtest_cli_rejects_both_origin_options(cdnow_sample_csv, tmp_path):
    proc = cli("backtest", "--transactions", str(cdnow_sample_csv), "--cutoffs", "1997-12-31",
               "--origins", "2", "--step-days", "30", "--horizon-days", "90", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--cutoffs" in proc.stderr
