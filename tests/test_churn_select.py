"""What ships as churn_probability: never worse than the baselines, in simulated worlds and on CDNOW master.

Truth: simulated transaction logs with known generative parameters (a world where nobody
drops out, so P(alive) is 1 - 1e-9 for everyone; a world whose purchase rates drift), the
labels read from the log after the cutoff with pandas, AUC from scikit-learn and an
equal-mass ECE written here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from custscore.config import BacktestConfig, TrainConfig
from custscore.features.cdnow import load_cdnow_master
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions
from custscore.training.backtest import run_backtest
from custscore.training.churn_select import (BASELINES, CLASSIFIER, DEFAULT_BASELINE, choose_churn_model,
                                             validation_horizon)
from custscore.training.pipeline import train_scorer


def _ece_equal_mass(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    order = np.argsort(p, kind="stable")
    return float(sum(len(b) * abs(y[b].mean() - p[b].mean()) for b in np.array_split(order, n_bins)) / len(y))


def _holdout(tx: pd.DataFrame, config: TrainConfig) -> tuple[dict[str, float], float, str]:
    """(holdout AUC of churn_probability and of each baseline, ECE of churn_probability, what shipped)."""
    result = train_scorer(PandasEngine(tx), config)
    scorer, cutoff = result.scorer, config.cutoff
    scores = scorer.score_customers(result.calibration, cutoff, with_segments=False)
    day = tx["ts"].dt.normalize()  # a purchase on days cutoff + 1 .. cutoff + horizon
    after = tx[(day > cutoff) & (day <= cutoff + pd.Timedelta(days=config.horizon_days))]
    y = (~scores["customer_id"].isin(set(after["customer_id"]))).to_numpy().astype(int)
    days = 7.0 if config.time_unit == "W" else 1.0
    candidates = {
        "churn_probability": scores["churn_probability"].to_numpy(),
        "baseline_bgnbd_p_no_purchase": scorer.purchase_model.p_no_purchase(
            config.horizon_days / days, scores["frequency"], scores["recency"], scores["T"]),
        "baseline_bgnbd_expected_purchases": -scores["expected_purchases"].to_numpy(),
        "baseline_bgnbd_p_alive": -scores["p_alive"].to_numpy(),
        "baseline_days_since_last_purchase": scores["days_since_last_purchase"].to_numpy(),
        "baseline_n_purchases_90d": -scores["n_purchases_90d"].to_numpy(dtype=float),
    }
    aucs = {name: roc_auc_score(y, s) for name, s in candidates.items()}
    return aucs, _ece_equal_mass(y, candidates["churn_probability"]), scorer.churn_model


def _simulated(start: str = "2020-01-01", end: str = "2021-12-31", cohort_days: int = 180, **kw) -> pd.DataFrame:
    from custscore.training.simulate import simulate_transactions
    raw = simulate_transactions(20_000, start=start, end=end, seed=11, cohort_days=cohort_days,
                                p=6.0, q=3.7, v=15.0, **kw)
    return normalise_transactions(raw)


WORLDS = {
    # nobody drops out: a ~ 0, BG/NBD P(alive) = 1 - 1e-9 for everyone
    "no_dropout": dict(r=0.8, alpha=40.0, a=1e-6, b=1.0),
    # purchase rates fall by half a year (exp(-0.7)), dropout as on CDNOW
    "drifting_rates": dict(r=0.8, alpha=25.0, a=0.8, b=2.5, drift_per_year=-0.7),
}


@pytest.mark.slow
@pytest.mark.parametrize("world", list(WORLDS))
@pytest.mark.parametrize("validation_sample", [0, 4_000])  # every customer; a sample of the 20,000
def test_shipped_churn_score_never_worse_than_the_best_baseline(world, validation_sample):
    # With the choices validated on a sample, the shipped score must still hold out of time.
    tx = _simulated(**WORLDS[world])
    config = TrainConfig(cutoff="2021-10-02", horizon_days=90, holdout_end="2021-12-31",
                         validation_sample=validation_sample)
    aucs, ece, shipped = _holdout(tx, config)
    best = max(v for k, v in aucs.items() if k.startswith("baseline_"))
    assert aucs["churn_probability"] >= best - 0.005, (shipped, aucs)
    assert ece <= 0.02, (shipped, ece)


@pytest.mark.slow
def test_short_history_validates_the_classifier_on_a_shorter_window():
    """History of 1.5 horizons before the cutoff (135 days, horizon 90): the full-horizon rule would need
    180 days, so the classifier is validated on the longest window that fits, (135 - 30) // 2 = 52 days,
    and what ships ranks the 90-day holdout at least as well as the best baseline (- 0.005)."""
    horizon, history = 90, 135
    start = pd.Timestamp("2021-01-01")
    cutoff = start + pd.Timedelta(days=history)
    tx = _simulated(start=str(start.date()), end=str((cutoff + pd.Timedelta(days=horizon)).date()), cohort_days=60,
                    r=0.8, alpha=25.0, a=0.8, b=2.5)
    assert tx["ts"].min().normalize() == start  # the log's first day is day 0 of the history
    # the churn validation window is under test: the purchase model is fixed (auto's own short-history
    # rule is tested in tests/test_purchase_choice.py)
    config = TrainConfig(cutoff=cutoff, horizon_days=horizon, holdout_end=cutoff + pd.Timedelta(days=horizon),
                         purchase_model="bgnbd")
    result = train_scorer(PandasEngine(tx), config)
    selection = result.churn.selection
    assert selection.validation_horizon_days == 52
    assert CLASSIFIER in selection.validation_auc, selection.reason  # validated, not skipped
    assert result.metrics["churn_validation_horizon_days"] == 52
    assert any("validated on a 52-day window" in w for w in result.warnings), result.warnings
    aucs, _, shipped = _holdout(tx, config)
    best = max(v for k, v in aucs.items() if k.startswith("baseline_"))
    assert aucs["churn_probability"] >= best - 0.005, (shipped, aucs)


def test_validation_horizon_by_hand():
    """Longest h <= H with 2h (3h for calibration one horizon earlier) + 30 days of history; 0 below H/2."""
    assert validation_horizon(90, 365) == 90
    assert validation_horizon(180, 245) == 107  # CDNOW master at 1997-09-03: (245 - 30) // 2
    assert validation_horizon(180, 365) == 167
    assert validation_horizon(90, 135, horizons_before=2) == 0  # (135 - 30) // 3 = 35 < 45
    assert validation_horizon(90, 94) == 0  # CDNOW master at 1997-04-05


@pytest.mark.slow
def test_no_dropout_world_has_p_alive_at_float_noise():
    """The no-dropout world is the one the issue describes: P(alive) ~ 1 - 1e-9, spread float noise."""
    from custscore.training.purchase_choice import fit_purchase_model
    tx = _simulated(**WORLDS["no_dropout"])
    config = TrainConfig(cutoff="2021-10-02", horizon_days=90, purchase_model="bgnbd")
    customers = PandasEngine(tx).customer_features(config.reference_date, "D")
    bgnbd = fit_purchase_model("bgnbd", customers, "D", config.bgnbd_penalizer, config.seed, "test")
    alive = bgnbd.p_alive(customers["frequency"], customers["recency_days"], customers["T_days"])
    repeaters = customers["frequency"].to_numpy() > 0
    assert np.all(1.0 - alive[repeaters] < 1e-6)


def test_choice_rule_by_hand():
    """A classifier tied with the baselines ships; one behind by 0.02 beyond noise does not; a window
    that cannot rank churners keeps the default baseline."""
    rng = np.random.default_rng(5)
    n = 20_000
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * risk))).astype(int)
    noise = rng.normal(size=n)
    base = {name: risk + 1.2 * noise + 0.01 * rng.normal(size=n) for name in BASELINES}
    tied = choose_churn_model(y, {**base, CLASSIFIER: risk + 1.2 * rng.normal(size=n)})
    worse = choose_churn_model(y, {**base, CLASSIFIER: risk + 2.5 * rng.normal(size=n)})
    assert tied.model == CLASSIFIER, tied.reason
    assert worse.model in BASELINES and worse.diff > 0.005 and worse.diff_low > 0, worse.reason
    blind = choose_churn_model(y, {name: rng.normal(size=n) for name in BASELINES}, classifier_missing="test")
    assert blind.model == DEFAULT_BASELINE, blind.reason


@pytest.fixture(scope="module")
def master() -> pd.DataFrame:
    return normalise_transactions(load_cdnow_master())


@pytest.mark.slow
@pytest.mark.parametrize("cutoff", ["1997-04-05", "1997-05-01"])
def test_cdnow_master_short_history_ships_a_score_as_good_as_the_best_baseline(master, cutoff):
    """The issue's cutoffs: 90 days, the classifier cannot be validated (two horizons of history)."""
    config = TrainConfig(cutoff=cutoff, horizon_days=90)
    aucs, _, shipped = _holdout(master, config)
    best = max(v for k, v in aucs.items() if k.startswith("baseline_"))
    assert aucs["churn_probability"] >= best - 0.005, (shipped, aucs)
    result = run_backtest(PandasEngine(master), BacktestConfig(cutoffs=cutoff, horizon_days=90, n_bootstrap=50))
    row = result.by_origin.iloc[0]
    assert row["churn_model"] == shipped
    assert row["auc_churn_probability"] >= max(v for k, v in row.items() if k.startswith("auc_baseline_")) - 0.005


def _correlated_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Churn labels and three scores sharing noise (so their AUCs are correlated), a < b < c in noise."""
    y = (rng.random(n) < 0.7).astype(float)
    common = rng.normal(size=n)
    return y, {k: 0.6 * y + common + rng.normal(size=n) * (0.8 + 0.2 * i) for i, k in enumerate("abc")}


def test_delong_difference_is_the_auc_difference_and_its_interval_the_bootstraps() -> None:
    from sklearn.metrics import roc_auc_score

    from custscore.training.metrics import bootstrap_table, paired_auc_delong

    y, scores = _correlated_scores(np.random.default_rng(0), 20_000)
    delong = paired_auc_delong(y, scores, "a")
    table = bootstrap_table(y, scores, reference="a", n_boot=1000, seed=1, ranking=("auc",)).set_index("score")
    for name in ("b", "c"):
        d, low, high = delong[name]
        assert d == pytest.approx(roc_auc_score(y, scores[name]) - roc_auc_score(y, scores["a"]), abs=1e-12)
        assert low == pytest.approx(table.loc[name, "diff_low"], abs=6e-4)  # interval width ~0.016
        assert high == pytest.approx(table.loc[name, "diff_high"], abs=6e-4)


def test_delong_standard_error_matches_the_spread_over_repeated_worlds() -> None:
    """Independent truth: 400 worlds drawn from one model; the spread of the estimated AUC
    difference against DeLong's mean standard error (normal interval of width 2 x 1.96 SE)."""
    from custscore.training.metrics import paired_auc_delong

    rng = np.random.default_rng(3)
    diffs, ses = [], []
    for _ in range(400):
        y, scores = _correlated_scores(rng, 1500)
        d, low, high = paired_auc_delong(y, scores, "a")["c"]
        diffs.append(d)
        ses.append((high - low) / (2 * 1.959964))
    assert np.mean(ses) == pytest.approx(np.std(diffs, ddof=1), rel=0.1)


def test_selection_from_delong_from_customers_on_uses_delongs_interval(monkeypatch) -> None:
    import custscore.training.churn_select as select
    from custscore.training.metrics import paired_auc_delong

    y, scores = _correlated_scores(np.random.default_rng(4), 2000)
    monkeypatch.setattr(select, "DELONG_FROM", 2000)
    assert select._paired_auc(y, scores, "a", seed=0, n_boot=10) == paired_auc_delong(y, scores, "a")
    # one churner, or a score that is not finite: no variance from DeLong, the bootstrap answers
    one = np.zeros_like(y)
    one[0] = 1.0
    with pytest.raises(ValueError, match="at least 2 churners"):
        paired_auc_delong(one, scores, "a")
    assert all(np.isfinite(v[0]) for v in select._paired_auc(one, scores, "a", seed=0, n_boot=10).values())
    scores["b"][5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        paired_auc_delong(y, scores, "a")
