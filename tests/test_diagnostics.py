"""Fit diagnostics and Gamma-Gamma failure modes, against simulation truth and lifetimes (issue #14)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import cli
from custscore.config import BacktestConfig, TrainConfig
from custscore.errors import CustscoreError
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.gamma_gamma import GammaGammaModel
from custscore.training.pipeline import train_scorer
from custscore.training.simulate import simulate_bgnbd, simulate_spend, simulate_transactions
from custscore.training.spend import ObservedMeanSpend, fit_spend_model

lifetimes = pytest.importorskip("lifetimes")
DATASETS = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")


def one_purchase_per_day(log: pd.DataFrame) -> pd.DataFrame:
    """Drop same-day repeats, so every purchase day holds exactly one simulated purchase."""
    return log.drop_duplicates(["customer_id", "date"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- estimators


def test_cdnow_fits_have_no_warnings_and_match_lifetimes(cdnow: pd.DataFrame) -> None:
    bg = BetaGeoModel().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    theirs = lifetimes.BetaGeoFitter().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    for name in ("r", "alpha", "a", "b"):  # the box does not move an interior optimum
        assert bg.params_[name] == pytest.approx(theirs.params_[name], rel=1e-4)
    assert bg.warnings_ == () and bg.diagnostics_["at_bound"] == []
    assert bg.diagnostics_["condition_number"] < 1e3 and bg.diagnostics_["standard_errors_finite"]
    repeat = cdnow[cdnow["x"] > 0]
    gg = GammaGammaModel().fit(repeat["x"], repeat["zbar"])
    assert gg.warnings_ == () and gg.unusable_ is None and gg.diagnostics_["heterogeneity_lr"] > 100
    assert gg.diagnostics_["condition_number"] < 1e4


def test_nbd_world_warns_that_dropout_is_not_identified() -> None:
    # Simulation truth: p ~ Beta(1e-3, 1e5), i.e. practically no customer ever drops out.
    T = np.random.default_rng(3).uniform(30, 365, 5000)
    df = simulate_bgnbd(5000, 0.5, 20.0, 1e-3, 1e5, T, seed=4)
    model = BetaGeoModel().fit(df["frequency"], df["recency"], df["T"])
    assert model.params_["a"] / (model.params_["a"] + model.params_["b"]) < 1e-4
    # The purchase process is still identified: r and alpha near the truth.
    assert model.params_["r"] == pytest.approx(0.5, rel=0.1)
    assert model.params_["alpha"] == pytest.approx(20.0, rel=0.15)
    assert len(model.warnings_) == 1
    text = model.warnings_[0]
    assert text.startswith("BG/NBD: dropout not identified (a=") and "negative-binomial limit" in text
    assert "P(alive) is ~1 for everyone" in text and "\n" not in text
    assert 1 - model.diagnostics_["min_p_alive_repeat"] < 1e-3


def test_gamma_gamma_q_below_one_is_flagged_not_fatal() -> None:
    x = np.random.default_rng(0).integers(1, 6, 5000)
    m = simulate_spend(x, 6.0, 0.7, 15.0, seed=1)  # truth q = 0.7: mean spend undefined
    spend = fit_spend_model(x, m)
    assert isinstance(spend, ObservedMeanSpend) and not spend.pooled
    assert "q=" in spend.warnings_[0] and "<= 1" in spend.warnings_[0]
    # own mean for repeat customers, observed mean per repeat purchase for the others
    out = spend.expected_average_spend(np.r_[0, x[:3]], np.r_[0.0, m[:3]])
    np.testing.assert_allclose(out, np.r_[np.dot(x, m) / x.sum(), m[:3]])


def test_homogeneous_spend_pools_to_the_population_mean() -> None:
    # Truth: every customer spends Gamma(4, rate 4/25) per purchase: mean 25, no heterogeneity.
    x = np.random.default_rng(0).integers(1, 6, 5000)
    q = 1e7
    m = simulate_spend(x, 4.0, q, q * 25 / 4, seed=0)
    spend = fit_spend_model(x, m)
    assert isinstance(spend, ObservedMeanSpend) and spend.pooled
    assert "heterogeneity between customers not identified" in spend.warnings_[0]
    assert spend.population_mean_ == pytest.approx(25.0, rel=0.01)
    np.testing.assert_allclose(spend.expected_average_spend(x, m), spend.population_mean_)


def test_constant_spend_uses_the_constant() -> None:
    spend = fit_spend_model([1, 2, 3] * 10, [25.0] * 30)
    assert isinstance(spend, ObservedMeanSpend) and "constant spend" in spend.warnings_[0]
    np.testing.assert_array_equal(spend.expected_average_spend([0, 1, 5], [0.0, 25.0, 25.0]), 25.0)


def test_non_convergence_advice_names_the_models_own_option() -> None:
    from custscore.training.bgnbd import FIT_ADVICE as BG
    from custscore.training.gamma_gamma import FIT_ADVICE as GG
    assert "--bgnbd-penalizer" in BG and "--gg-penalizer" in GG


def test_penalizer_shortcut_sets_both_and_each_option_wins() -> None:
    both = TrainConfig(cutoff="2020-01-01", penalizer=0.01)
    assert (both.bgnbd_penalizer, both.gg_penalizer) == (0.01, 0.01)
    one = TrainConfig(cutoff="2020-01-01", gg_penalizer=0.001)
    assert (one.bgnbd_penalizer, one.gg_penalizer) == (0.0, 0.001)
    mixed = BacktestConfig(cutoffs="2020-01-01", penalizer=0.01, bgnbd_penalizer=0.5).train_config(
        pd.Timestamp("2020-01-01"))
    assert (mixed.bgnbd_penalizer, mixed.gg_penalizer) == (0.5, 0.01)
    with pytest.raises(CustscoreError, match="gg_penalizer: must be a finite number >= 0"):
        TrainConfig(cutoff="2020-01-01", gg_penalizer=-1.0)
    params = TrainConfig(cutoff="2020-01-01", gg_penalizer=0.001).as_params()
    assert params["bgnbd_penalizer"] == 0.0 and params["gg_penalizer"] == 0.001


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def nbd_log(tmp_path_factory) -> Path:
    """A log from a world without dropout (p ~ Beta(1e-3, 1e5)), spend with heterogeneity."""
    log = simulate_transactions(3000, 0.5, 20.0, 1e-3, 1e5, 4.0, 3.7, 15.0, "2020-01-01", "2021-06-30", seed=5)
    path = tmp_path_factory.mktemp("nbd") / "nbd.csv"
    log.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_boundary_fit_warns_in_train_mlflow_score_and_version(nbd_log: Path, tmp_path: Path, new_store) -> None:
    uri = new_store(tmp_path)
    # BG/NBD's own NBD-limit warning (auto would ship MBG/NBD here, warning that no model is identified)
    trained = cli("train", "--transactions", str(nbd_log), "--cutoff", "2021-03-31", "--horizon-days", "90",
                  "--tracking-uri", uri, "--experiment", "diag", "--purchase-model", "bgnbd")
    assert trained.returncode == 0, trained.stderr
    lines = [line for line in trained.stderr.splitlines() if line.startswith("warning: BG/NBD: dropout not identified")]
    assert len(lines) == 1, trained.stderr
    a_row = next(line for line in trained.stdout.splitlines() if line.startswith("a "))
    assert float(a_row.split()[1]) < 1e-3 and "0.000" not in a_row  # printed with its digits, not 0.000
    run_id = next(line.split()[-1] for line in trained.stdout.splitlines() if line.startswith("run id:"))
    import mlflow
    mlflow.set_tracking_uri(uri)
    tag = MlflowClient().get_run(run_id).data.tags["fit_warnings"]
    assert tag == lines[0][len("warning: "):]
    scored = cli("score", "--model", f"runs:/{run_id}/model", "--transactions", str(nbd_log), "--as-of",
                 "2021-03-31", "--output", str(tmp_path / "scores.csv"), "--tracking-uri", uri)
    assert scored.returncode == 0, scored.stderr
    assert lines[0] in scored.stderr.splitlines()
    from custscore.serving.model_holder import load_model
    described = load_model(f"runs:/{run_id}/model").describe()
    assert described["fit_warnings"] == [tag] and described["has_amounts"] is True


def _train(log: pd.DataFrame, **config) -> "object":
    tx = normalise_transactions(log)
    return train_scorer(PandasEngine(tx), TrainConfig(cutoff="2021-03-31", horizon_days=90, **config))


def test_constant_spend_log_trains_without_penalizer(tmp_path: Path) -> None:
    log = one_purchase_per_day(simulate_transactions(2000, 0.5, 20.0, 0.8, 2.5, 4.0, 3.7, 15.0,
                                                     "2020-01-01", "2021-06-30", seed=6)).assign(amount=25.0)
    result = _train(log)
    assert any("constant spend" in w and "Gamma-Gamma skipped" in w for w in result.warnings), result.warnings
    scores = result.scorer.score(normalise_transactions(log), as_of="2021-03-31")
    np.testing.assert_allclose(scores["expected_avg_spend"], 25.0, rtol=1e-12)
    assert np.all(np.isfinite(scores["clv"])) and result.scorer.has_amounts


def test_homogeneous_spend_log_trains_with_a_warning_and_the_true_mean() -> None:
    # Truth: per-purchase spend Gamma(4, rate 4/25) for everyone (q huge): mean 25. The
    # likelihood-ratio test is at the 5 % level, so 1 homogeneous world in 20 looks
    # heterogeneous (seed 7: LR 3.9, q fitted 434, spends still shrunk to ~25); seed 8 gives LR 0.
    q = 1e7
    log = one_purchase_per_day(simulate_transactions(3000, 0.5, 20.0, 0.8, 2.5, 4.0, q, q * 25 / 4,
                                                     "2020-01-01", "2021-06-30", seed=8))
    result = _train(log)
    assert any("heterogeneity between customers not identified" in w for w in result.warnings), result.warnings
    spend = result.scorer.score(normalise_transactions(log), as_of="2021-03-31")["expected_avg_spend"]
    assert spend.nunique() == 1 and spend.iloc[0] == pytest.approx(25.0, rel=0.03)


# ----------------------------------------------------------------------------- logs without amounts


def _without_amounts(log: pd.DataFrame, **config):
    """Train as ``--amount-col none`` does: the engines give amount 0.0 per purchase day."""
    from custscore.config import ColumnMap
    return _train(log.assign(amount=0.0), columns=ColumnMap(amount=None), **config)


@pytest.mark.slow
def test_equal_amounts_give_the_same_bgnbd_as_no_amounts() -> None:
    log = one_purchase_per_day(simulate_transactions(2000, 0.5, 20.0, 0.8, 2.5, 4.0, 3.7, 15.0,
                                                     "2020-01-01", "2021-06-30", seed=9)).assign(amount=10.0)
    with_amounts, without = _train(log), _without_amounts(log)
    for name, value in with_amounts.scorer.purchase_model.params_.items():
        assert without.scorer.purchase_model.params_[name] == pytest.approx(value, rel=1e-9, abs=0), name
    assert without.scorer.has_amounts is False and without.scorer.gamma_gamma is None
    churn = without.scorer.churn
    assert not {"monetary_value", "spend_90d", "spend_365d"} & set(churn.features_)
    scores = without.scorer.score(normalise_transactions(log.assign(amount=0.0)), as_of="2021-03-31")
    for column in ("monetary_value", "expected_avg_spend", "clv"):
        assert scores[column].isna().all(), column
    assert scores["churn_probability"].between(0, 1).all() and scores["expected_purchases"].notna().all()
    # segments rank by purchases: future value = expected purchases, current = purchases in the window
    np.testing.assert_allclose(scores["future_value"], scores["expected_purchases"] * 1.0)
    np.testing.assert_allclose(scores["current_value"], scores["n_purchases_365d"].astype(float))
    assert scores["value_class"].notna().all()
    # the report says value is not available, and /version says the model has no amounts
    from custscore.serving.model_holder import LoadedModel
    from custscore.serving.report import render_report
    from custscore.serving.sidecar import sidecar_record
    page = render_report(scores, sidecar_record(without.scorer, scores))
    assert "Value not available: the transaction log has no amounts" in page
    described = LoadedModel(scorer=without.scorer, label="x", model_uri="runs:/x/model", loaded_at="").describe()
    assert described["has_amounts"] is False and described["fitted_params"]["gamma_gamma"] == {}


@pytest.mark.slow
def test_log_without_amounts_trains_scores_and_reports_through_the_cli(tmp_path: Path, new_store) -> None:
    log = simulate_transactions(1500, 0.5, 20.0, 0.8, 2.5, 4.0, 3.7, 15.0, "2020-01-01", "2021-06-30", seed=10)
    path = tmp_path / "visits.csv"
    log.drop(columns="amount").to_csv(path, index=False)  # a visits log: no amount column at all
    uri = new_store(tmp_path)
    trained = cli("train", "--transactions", str(path), "--cutoff", "2021-03-31", "--horizon-days", "90",
                  "--amount-col", "none", "--tracking-uri", uri, "--experiment", "visits")
    assert trained.returncode == 0, trained.stderr
    assert "Gamma-Gamma not fitted" in trained.stdout and "Traceback" not in trained.stderr
    run_id = next(line.split()[-1] for line in trained.stdout.splitlines() if line.startswith("run id:"))
    scores_path = tmp_path / "scores.csv"
    scored = cli("score", "--model", f"runs:/{run_id}/model", "--transactions", str(path), "--as-of",
                 "2021-03-31", "--output", str(scores_path), "--amount-col", "none", "--tracking-uri", uri)
    assert scored.returncode == 0, scored.stderr
    scores = pd.read_csv(scores_path, dtype={"customer_id": str})
    for column in ("monetary_value", "expected_avg_spend", "clv"):
        assert scores[column].isna().all(), column
    assert scores["churn_probability"].between(0, 1).all() and scores["value_class"].notna().all()
    reported = cli("report", "--scores", str(scores_path), "--output", str(tmp_path / "report.html"))
    assert reported.returncode == 0, reported.stderr
    assert "Value not available" in (tmp_path / "report.html").read_text(encoding="utf-8")
    # HTTP: the same model over the API takes transactions without amounts and gives the batch scores
    import mlflow
    from fastapi.testclient import TestClient

    from custscore.config import ServeConfig
    from custscore.serving.http import create_app
    from custscore.serving.model_holder import load_model

    mlflow.set_tracking_uri(uri)
    model_uri = f"runs:/{run_id}/model"
    loaded = load_model(model_uri)  # the checked loader, as `custscore serve` loads it
    ids = sorted(log["customer_id"].astype(str).unique())[:5]
    customers = [{"customer_id": cid, "transactions": [{"date": d} for d in sorted(
        log.loc[(log["customer_id"].astype(str) == cid) & (log["date"] <= "2021-03-31"), "date"].astype(str))]}
        for cid in ids]
    customers = [c for c in customers if c["transactions"]]
    expected = scores.assign(customer_id=scores["customer_id"].astype(str)).set_index("customer_id")
    for fast_path_max_customers in (256, 0):  # the numpy fast path and the pandas path
        with TestClient(create_app(model_uri, ServeConfig(fast_path_max_customers=fast_path_max_customers),
                                   model=loaded)) as client:
            answer = client.post("/score", json={"as_of": "2021-03-31", "customers": customers})
            described = client.get("/version").json()
        assert answer.status_code == 200, answer.text
        assert described["has_amounts"] is False, described
        assert answer.status_code == 200, answer.text
        for row in answer.json()["scores"]:
            want = expected.loc[row["customer_id"]]
            assert row["clv"] is None and row["monetary_value"] is None
            assert row["frequency"] == want["frequency"]
            assert row["churn_probability"] == pytest.approx(want["churn_probability"], rel=1e-9)
            assert row["expected_purchases"] == pytest.approx(want["expected_purchases"], rel=1e-9)
