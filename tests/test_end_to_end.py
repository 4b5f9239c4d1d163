"""Foundation path on the CDNOW sample: features -> fits -> MLflow -> registry -> scores.

Truth is independent of this code: the published CDNOW parameters (Fader, Hardie & Lee
2005, see shared/domain.md) and the data itself.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli

PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.mark.parametrize("name", sorted(PAPER_BGNBD))
def test_bgnbd_reproduces_paper_within_1pct(trained, name):
    fitted = trained["result"].scorer.purchase_model.params_[name]
    assert fitted == pytest.approx(PAPER_BGNBD[name], rel=0.01)


def test_bgnbd_log_likelihood_matches_paper(trained):
    assert trained["result"].scorer.purchase_model.log_likelihood_ == pytest.approx(-9582.4, abs=1.0)


@pytest.mark.parametrize("name", sorted(PAPER_GG))
def test_gamma_gamma_reproduces_paper_within_3pct(trained, name):
    fitted = trained["result"].scorer.gamma_gamma.params_[name]
    assert fitted == pytest.approx(PAPER_GG[name], rel=0.03)


def test_holdout_forecast_matches_paper(trained):
    """39-week holdout: 1,882 repeat purchases observed, BG/NBD forecasts about 1,653."""
    m = trained["result"].metrics
    assert m["holdout_days"] == 273
    assert m["holdout_customers"] == 2357
    assert m["holdout_purchases_actual"] == 1882
    assert m["holdout_purchases_predicted"] == pytest.approx(1653, rel=0.01)


def test_churn_classifier_is_informative(trained):
    m = trained["result"].metrics
    assert 0.5 < m["auc_churn_classifier"] <= 1.0
    assert 0.0 < m["brier_churn_classifier"] < 0.25


def test_mlflow_run_has_named_params_metrics_and_model(trained):
    logged = trained["logged"]
    client = MlflowClient(tracking_uri=trained["config"].tracking_uri)
    run = client.get_run(logged.run_id)
    params = run.data.params
    for name in ["r", "alpha", "a", "b", "p", "q", "v", "time_unit", "cutoff", "horizon_days",
                 "discount_rate", "n_customers"]:
        assert name in params, name
    assert params["time_unit"] == "W" and params["cutoff"] == "1997-09-30"
    assert params["horizon_days"] == "90" and params["n_customers"] == "2357"
    assert float(params["r"]) == pytest.approx(PAPER_BGNBD["r"], rel=0.01)
    for metric in ["bgnbd_log_likelihood", "frequency_monetary_corr", "auc_churn_classifier",
                   "brier_churn_classifier", "holdout_purchases_predicted", "holdout_purchases_actual"]:
        assert metric in run.data.metrics, metric
    version = client.get_model_version_by_alias("custscore-test", "champion")
    assert str(version.version) == logged.registered_version


def _registry_pyfunc(trained):
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    mlflow.set_registry_uri(trained["config"].tracking_uri)
    return mlflow.pyfunc.load_model("models:/custscore-test@champion")


@pytest.mark.slow
def test_registered_pyfunc_equals_cli_scores(trained, cdnow_sample_csv, tmp_path):
    out = tmp_path / "scores.csv"
    proc = run_cli("score", "--model", "models:/custscore-test@champion", "--transactions", str(cdnow_sample_csv),
                   "--as-of", "1997-09-30", "--output", str(out), "--tracking-uri", trained["config"].tracking_uri)
    assert proc.returncode == 0, proc.stderr
    cli = pd.read_csv(out, dtype={"customer_id": str})
    raw = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    pyfunc = _registry_pyfunc(trained).predict(raw.astype({"date": str}), params={"as_of": "1997-09-30"})
    assert len(cli) == len(pyfunc) == 2357
    assert cli["customer_id"].tolist() == pyfunc["customer_id"].tolist()
    assert cli["customer_id"].str.len().eq(5).all()  # leading zeros kept ("00004")
    for col in ["frequency", "recency", "T", "tenure_days", "p_alive", "churn_probability",
                "expected_purchases", "expected_avg_spend", "clv"]:
        np.testing.assert_allclose(cli[col].to_numpy(float), pyfunc[col].to_numpy(float), rtol=1e-9, atol=1e-12,
                                   err_msg=col)
    assert (cli["model_version"] == f"custscore-test/{trained['logged'].registered_version}").all()


def test_score_ignores_transactions_after_as_of(trained, cdnow_sample_csv):
    scorer = trained["result"].scorer
    from custscore.features.io import read_transactions
    tx = read_transactions(cdnow_sample_csv)
    as_of = pd.Timestamp("1997-06-30")
    full = scorer.score(tx, as_of=as_of)
    cut = scorer.score(tx[tx["ts"] <= as_of], as_of=as_of)
    pd.testing.assert_frame_equal(full, cut)


def test_score_columns_and_ranges(trained, cdnow_sample_csv):
    from custscore.features.io import read_transactions
    scores = trained["result"].scorer.score(read_transactions(cdnow_sample_csv), as_of="1997-09-30")
    for col in ["customer_id", "frequency", "recency", "T", "tenure_days", "p_alive", "churn_probability",
                "expected_purchases", "expected_avg_spend", "clv", "model_version"]:
        assert col in scores.columns
    assert scores["customer_id"].is_monotonic_increasing
    assert scores["p_alive"].between(0, 1).all() and scores["churn_probability"].between(0, 1).all()
    assert (scores["clv"] >= 0).all() and (scores["expected_purchases"] >= 0).all()
    # T in weeks = tenure in days / 7 for the paper's convention
    np.testing.assert_allclose(scores["T"] * 7, scores["tenure_days"])
