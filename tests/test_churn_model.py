"""Churn model: training windows, ratio features, calibration, options recorded and shared."""
from __future__ import annotations

import dataclasses

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import cli
from custscore.config import BacktestConfig, TrainConfig
from custscore.errors import CustscoreError
from custscore.features.cdnow import load_cdnow_sample
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions
from custscore.training.backtest import ClippedEngine
from custscore.training.calibration import ProbabilityCalibrator, calibration_window, fitting_method
from custscore.training.churn import CHURN_FEATURES, ChurnClassifier
from custscore.training.pipeline import churn_examples, reference_windows, train_scorer


def test_reference_windows_by_hand():
    cutoff = pd.Timestamp("1998-01-01")
    single = TrainConfig(cutoff=cutoff, horizon_days=90)  # auto: one window below 180 days
    assert reference_windows(single, cutoff) == [(pd.Timestamp("1997-10-03"), 90)]
    stacked = TrainConfig(cutoff=cutoff, horizon_days=180)  # auto: 180 and 2/3 x 180 = 120 days
    assert reference_windows(stacked, cutoff) == [(pd.Timestamp("1997-07-05"), 180),
                                                  (pd.Timestamp("1997-09-03"), 120)]
    forced = dataclasses.replace(single, churn_windows="stacked")
    assert reference_windows(forced, cutoff)[1] == (pd.Timestamp("1997-11-02"), 60)
    assert len(reference_windows(dataclasses.replace(stacked, churn_windows="single"), cutoff)) == 1


def test_ratio_features_by_hand():
    """Customer a: purchases on days 0, 10, 40 before as-of day 100 (days), horizon 90."""
    tx = normalise_transactions(pd.DataFrame({
        "customer_id": ["a", "a", "a"] + [f"c{i}" for i in range(12)] * 2,
        "date": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-02-10"]
                               + ["2020-01-05"] * 12 + [f"2020-02-{d:02d}" for d in range(1, 13)]),
        "amount": [10.0] * 27}))
    # reference 2020-04-10 = day 100 of a; a small penalizer lets BG/NBD converge on 13 customers
    config = TrainConfig(cutoff="2020-07-09", horizon_days=90, penalizer=0.01)
    (X, y), = churn_examples(PandasEngine(tx), config, config.cutoff)
    a = X.loc["a"]
    assert a["T_days"] == 100 and a["days_since_last_purchase"] == 60 and a["ipt_mean_days"] == 20
    assert a["horizon_days"] == 90
    assert a["days_since_last_over_tenure"] == pytest.approx(60 / 100)
    assert a["days_since_last_over_ipt"] == pytest.approx(60 / 20)
    assert a["horizon_over_ipt"] == pytest.approx(90 / 20)
    assert y.loc["a"] == 1 and list(X.columns) == list(CHURN_FEATURES)


def test_platt_calibration_recovers_a_known_map():
    """Outcomes drawn from expit(2 logit(p) - 0.5): the fitted map is that one."""
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 40_000)
    y = (rng.random(p.size) < expit(2.0 * logit(p) - 0.5)).astype(int)
    cal = ProbabilityCalibrator(method=fitting_method("sigmoid-latest")).fit(p, y)
    assert cal.slope_ == pytest.approx(2.0, abs=0.08) and cal.intercept_ == pytest.approx(-0.5, abs=0.05)
    assert cal.transform(np.array([0.5]))[0] == pytest.approx(expit(-0.5), abs=0.015)
    assert [calibration_window(m) for m in ("none", "sigmoid", "isotonic", "sigmoid-latest")] == [
        "none", "earlier", "earlier", "latest"]


def test_classifier_caps_training_examples_and_scores_like_a_logistic_regression():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.gamma(2.0, 3.0, (3000, len(CHURN_FEATURES))), columns=list(CHURN_FEATURES))
    for name in ("p_alive", "p_no_purchase_horizon"):
        X[name] = rng.uniform(0.01, 0.99, 3000)
    y = (rng.random(3000) < expit(X["days_since_last_purchase"] / 6.0 - 1.0)).astype(int)
    model = ChurnClassifier(max_train_examples=1000).fit(X, y)
    assert model.n_train_ == 1000 and model.dropped_features_ == []
    # truth: scikit-learn's own pipeline on the documented transform (signed log1p, logits of the probabilities)
    keep = np.sort(np.random.default_rng(0).choice(3000, 1000, replace=False))
    Z = np.log1p(X.to_numpy())
    for name in ("p_alive", "p_no_purchase_horizon"):
        Z[:, CHURN_FEATURES.index(name)] = logit(X[name].to_numpy())
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)).fit(Z[keep], y[keep])
    expected = reference.predict_proba(Z)[:, 1]
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-9)
    np.testing.assert_allclose(model.predict_proba(X.to_numpy()), expected, rtol=1e-9)
    assert not hasattr(model, "pipeline_")


@pytest.mark.slow
@pytest.mark.parametrize("windows, calibration", [("stacked", "sigmoid-latest"), ("single", "sigmoid")])
def test_planted_future_purchase_changes_no_churn_model(windows, calibration):
    """Every window and calibration path only asks about days up to the cutoff."""
    tx = normalise_transactions(load_cdnow_sample())
    origin = pd.Timestamp("1998-03-31")
    planted = pd.DataFrame({"customer_id": [tx["customer_id"].iloc[0]], "ts": [origin + pd.Timedelta(days=2)],
                            "amount": [500.0]}).astype(tx.dtypes.to_dict())
    config = TrainConfig(cutoff=origin, horizon_days=90, time_unit="W", churn_windows=windows,
                         churn_calibration=calibration)
    fits = [train_scorer(ClippedEngine(PandasEngine(t), origin), config).scorer.churn
            for t in (tx, pd.concat([tx, planted], ignore_index=True))]
    np.testing.assert_allclose(fits[0].weights_, fits[1].weights_, rtol=1e-12)  # same fit up to rounding
    assert fits[0].calibration_ == fits[1].calibration_ and fits[0].calibration_.startswith(calibration)


def test_backtest_trains_with_the_train_config():
    config = BacktestConfig(cutoffs="1998-01-31", horizon_days=90, churn_windows="stacked", churn_calibration="none")
    train = config.train_config(pd.Timestamp("1998-01-31"))
    assert (train.churn_windows, train.churn_calibration) == ("stacked", "none")
    for name in ("churn_windows", "churn_calibration", "horizon_days", "time_unit", "penalizer", "seed"):
        assert getattr(BacktestConfig, name) == getattr(TrainConfig, name), name
    with pytest.raises(CustscoreError, match="churn_windows"):
        TrainConfig(cutoff="1998-01-31", churn_windows="many")


@pytest.mark.slow
def test_early_calibration_without_two_horizons_of_history_ships_a_baseline_and_says_why():
    tx = normalise_transactions(load_cdnow_sample())
    config = TrainConfig(cutoff="1997-06-30", horizon_days=90, time_unit="W", churn_calibration="isotonic")
    result = train_scorer(PandasEngine(tx), config)
    assert result.scorer.churn_model.startswith("baseline_") and result.churn.classifier is None
    assert any("churn_calibration isotonic" in w and "sigmoid-latest" in w for w in result.warnings), result.warnings


@pytest.mark.slow
def test_train_cli_records_churn_options(cdnow_sample_csv, tmp_path, new_store):
    uri = new_store(tmp_path)
    proc = cli("train", "--transactions", str(cdnow_sample_csv), "--cutoff", "1997-09-30", "--horizon-days",
               "90", "--time-unit", "W", "--churn-calibration", "none", "--churn-windows", "stacked",
               "--tracking-uri", uri, "--experiment", "churn-options")
    assert proc.returncode == 0, proc.stderr
    client = mlflow.tracking.MlflowClient(uri)
    run, = client.search_runs([client.get_experiment_by_name("churn-options").experiment_id])
    assert run.data.params["churn_calibration"] == "none" and run.data.params["churn_windows"] == "stacked"
    # what shipped and why: param, tag, validation AUCs; printed by train
    shipped = run.data.params["churn_model"]
    assert shipped in ("classifier", "baseline_bgnbd_p_no_purchase", "baseline_bgnbd_expected_purchases",
                       "baseline_bgnbd_p_alive", "baseline_days_since_last_purchase", "baseline_n_purchases_90d")
    assert f"churn_probability: {shipped}" in proc.stdout and run.data.tags["churn_model_reason"]
    assert "churn_validation_auc_baseline_bgnbd_p_no_purchase" in run.data.metrics
    assert run.data.params["churn_dropped_features"] != "" and "fit_warnings" in run.data.tags
    bad = cli("train", "--transactions", str(cdnow_sample_csv), "--cutoff", "1997-09-30", "--horizon-days",
              "90", "--churn-windows", "many", "--tracking-uri", uri)
    assert bad.returncode == 2 and "--churn-windows" in bad.stderr


def test_expected_purchases_finite_at_the_poisson_limit_of_a_five_day_fit():
    """The BG/NBD fitted on CDNOW master at 1997-01-05 (5 days of history); truth: mpmath at 30 digits."""
    import mpmath

    from custscore.training.bgnbd import BetaGeoModel
    r, alpha, a, b = 8826553.308401555, 1194305877.9231315, 438361.4295257846, 2.281321686890286e-06
    model = BetaGeoModel()
    model.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
    x, t_x, T = np.array([0, 1, 2]), np.array([0.0, 1.0, 0.5]), np.array([3.0, 4.0, 1.0])
    got = model.expected_purchases(90.0, x, t_x, T)
    mpmath.mp.dps = 30
    for xi, Ti, g, alive in zip(x, T, got, model.p_alive(x, t_x, T)):
        z = mpmath.mpf(90) / (alpha + Ti + 90)
        c = mpmath.mpf(a) + b + int(xi) - 1
        bracket = c / (mpmath.mpf(a) - 1) * (1 - (1 - z) ** (r + int(xi)) * mpmath.hyp2f1(r + int(xi), b + int(xi), c, z))
        assert g == pytest.approx(float(bracket) * alive, rel=1e-9)


def test_float_noise_feature_gets_no_weight():
    """P(alive) = 1 - 1e-9 +- 1.6e-11 for everyone (a no-dropout fit): dropped, and so is a constant."""
    rng = np.random.default_rng(3)
    n = 5000
    X = pd.DataFrame(rng.gamma(2.0, 3.0, (n, len(CHURN_FEATURES))), columns=list(CHURN_FEATURES))
    X["p_alive"] = 1.0 - 1e-9 + rng.normal(0.0, 1.6e-11, n)
    X["p_no_purchase_horizon"] = rng.uniform(0.05, 0.95, n)
    X["horizon_days"] = 90.0
    y = (rng.random(n) < X["p_no_purchase_horizon"]).astype(int)
    model = ChurnClassifier().fit(X, y)
    assert model.dropped_features_ == ["p_alive", "horizon_days"]
    assert np.all(np.abs(model.weights_) < 10.0)
    # scoring a customer whose P(alive) moved by float noise changes nothing
    shifted = X.assign(p_alive=1.0 - 1e-7)
    np.testing.assert_allclose(model.predict_proba(shifted), model.predict_proba(X), rtol=1e-12)


def test_feature_correlation_over_many_blocks_is_numpys_and_the_transform_is_the_formula():
    """Both are computed in blocks / in place for million-row frames: same numbers as the textbook."""
    from custscore.training.churn import feature_correlation, transform_features

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(150_000, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    Z = np.column_stack([Z, np.full(len(Z), 2.0)])  # a constant column: correlation 0, diagonal 1
    R = feature_correlation(Z)
    np.testing.assert_allclose(R[:3, :3], np.corrcoef(Z[:, :3], rowvar=False), atol=1e-12)
    assert R[3, 3] == 1.0 and not R[3, :3].any()
    A = rng.normal(scale=50.0, size=(1_000, 2))
    A[0, 0] = 0.0
    np.testing.assert_array_equal(transform_features(A, ["frequency", "spend_90d"]), np.sign(A) * np.log1p(np.abs(A)))
    # in place (the fits' matrices): the same numbers, a probability column as its clipped logit
    P = np.column_stack([A, rng.uniform(size=len(A))])
    P[1, 2], P[2, 2] = 0.0, 1.0  # clipped at 1e-6 from 0 and 1
    names = ["frequency", "spend_90d", "p_alive"]
    p = np.clip(P[:, 2], 1e-6, 1 - 1e-6)
    truth = np.column_stack([np.sign(A) * np.log1p(np.abs(A)), np.log(p / (1 - p))])
    B = P.copy()
    out = transform_features(B, names, in_place=True)
    assert out is B
    np.testing.assert_array_equal(out, truth)
    np.testing.assert_array_equal(transform_features(P, names), truth)
