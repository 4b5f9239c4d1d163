"""Choosing the purchase model (``--purchase-model``): out-of-time accuracy, not in-sample fit.

Truth here is independent of the code: simulated worlds whose generating model is known
(:func:`custscore.training.simulate.simulate_with_holdout`), a deviance computed by hand,
and the published CDNOW parameters of each model.
"""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from custscore.training.purchase_choice import (PURCHASE_MODELS, _choose_fitting_at_cutoff, choose_model,
                                                compare_purchase_models, poisson_deviance)
from custscore.training.simulate import simulate_with_holdout

#: The generating worlds (weeks). BG/NBD and MBG/NBD share parameters, so only the dropout at
#: time zero tells them apart. In the Pareto/NBD world lifetimes (mean rate 1/20 per week) do
#: not depend on the purchase rate (mean 0.2 per week). With CDNOW's Pareto/NBD parameters
#: (r 0.55, alpha 10.6, s 0.6, beta 11.7) auto picked Pareto/NBD in 3 of 5 seeds and MBG/NBD
#: (deviance within 0.002) in 2: there the models predict alike.
WORLDS = {"bgnbd": dict(r=0.5, alpha=5.0, a=1.0, b=3.0), "mbgnbd": dict(r=0.5, alpha=5.0, a=1.0, b=3.0),
          "pnbd": dict(r=1.0, alpha=5.0, s=1.0, beta=20.0)}
SEEDS = range(5)
#: Customers per world; validation span in weeks (26 weeks = half a year, as with CDNOW's cutoff).
N_CUSTOMERS, SPAN_WEEKS = 5_000, 26.0


def test_poisson_deviance_by_hand() -> None:
    # y = (0, 1, 3), mu = (0.5, 1, 2): 2/3 [0.5 + 0 + (3 ln 1.5 - 1)]
    expected = 2.0 / 3.0 * (0.5 + 0.0 + (3.0 * np.log(1.5) - 1.0))
    assert poisson_deviance(np.array([0, 1, 3]), np.array([0.5, 1.0, 2.0])) == pytest.approx(expected, rel=1e-12)
    assert poisson_deviance(np.array([2.0]), np.array([2.0])) == 0.0


def _world(model: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(100 + seed)
    T = rng.integers(26, 53, N_CUSTOMERS).astype(float)  # whole weeks of tenure, a 6-month cohort
    data = simulate_with_holdout(model, N_CUSTOMERS, WORLDS[model], T, SPAN_WEEKS, seed)
    data["recency"] = np.floor(data["recency"] * 7.0) / 7.0  # purchase days, as a log records them
    return data


@pytest.mark.slow
def test_auto_picks_the_generating_model_in_simulated_worlds() -> None:
    """Over 5 seeds per world, 5,000 customers and a 26-week validation span, auto picks the
    generating model 15 times out of 15 (BG/NBD 5/5, MBG/NBD 5/5, Pareto/NBD 5/5). The test
    requires >= 4/5 in every world."""
    picks = {}
    for world in WORLDS:
        picks[world] = []
        for seed in SEEDS:
            d = _world(world, seed)
            models = {k: cls().fit(d["frequency"], d["recency"], d["T"]) for k, cls in PURCHASE_MODELS.items()}
            table = compare_purchase_models(models, d["frequency"], d["recency"], d["T"], d["holdout"], SPAN_WEEKS)
            picks[world].append(choose_model(table)[0])
    hits = {world: sum(p == world for p in chosen) for world, chosen in picks.items()}
    print("auto picks:", picks, hits)
    assert all(h >= 4 for h in hits.values()), picks


def test_a_fit_that_is_not_identified_is_never_chosen_when_another_is() -> None:
    table = pd.DataFrame({"model": ["bgnbd", "mbgnbd", "pnbd"], "identified": [True, False, True],
                          "validation_poisson_deviance": [0.9, 0.5, 0.8]})
    assert choose_model(table)[0] == "pnbd"
    table["identified"] = False
    key, reason = choose_model(table)
    assert key == "mbgnbd" and "no candidate fit is identified" in reason


class _Fit:
    """A fit at the cutoff as the choice sees it: identified or not, and its log-likelihood."""

    def __init__(self, identified: bool, log_likelihood: float) -> None:
        self.warnings_ = [] if identified else ["not identified"]
        self.log_likelihood_ = log_likelihood


@pytest.mark.parametrize("deviance, at_R, at_cutoff, expected_fitted", [
    # the lowest deviance is identified at both dates: only it is fitted at the cutoff
    ([0.9, 0.5, 0.8], [True, True, True], [True, True, True], ["mbgnbd"]),
    # mbgnbd not identified at the cutoff: pnbd, next by deviance, is fitted too and ships
    ([0.9, 0.5, 0.8], [True, True, True], [True, False, True], ["mbgnbd", "pnbd"]),
    # mbgnbd's fit at the cutoff fails (None): its row goes, the reference (already fitted) ships
    ([0.7, 0.5, 0.8], [True, True, True], [True, None, True], ["mbgnbd"]),
    # nothing identified at R: the lowest deviance of all, fitted at the cutoff
    ([0.9, 0.5, 0.8], [False, False, False], [True, True, True], ["mbgnbd"]),
    # only mbgnbd is identified at R and it is not at the cutoff: lowest deviance of all (pnbd)
    ([0.9, 0.8, 0.5], [False, True, False], [True, False, True], ["mbgnbd", "pnbd"]),
])
def test_fitting_at_the_cutoff_only_what_the_choice_needs_gives_the_same_choice(
        deviance, at_R, at_cutoff, expected_fitted) -> None:
    """The truth is :func:`choose_model` on the table of every candidate fitted at the cutoff
    (identified = at R and at the cutoff, a failed fit's row dropped)."""
    models = ["bgnbd", "mbgnbd", "pnbd"]
    at_cutoff_fits = {k: None if ok is None else _Fit(ok, -100.0 - i) for i, (k, ok) in enumerate(zip(models, at_cutoff))}
    table = pd.DataFrame({"model": models, "identified": at_R, "validation_poisson_deviance": deviance})
    eager = table[[f is not None for f in at_cutoff_fits.values()]].copy()
    eager["identified"] = [r and at_cutoff_fits[k].warnings_ == [] for k, r in zip(eager["model"], eager["identified"])]
    expected = choose_model(eager)[0]
    fits, fitted = {"bgnbd": at_cutoff_fits["bgnbd"]}, []  # the reference is always fitted first

    def fit_at_cutoff(key):
        fitted.append(key)
        if at_cutoff_fits[key] is not None:
            fits[key] = at_cutoff_fits[key]
        return at_cutoff_fits[key]

    lazy = _choose_fitting_at_cutoff(table.copy(), fits, fit_at_cutoff)
    assert choose_model(lazy)[0] == expected
    assert fitted == expected_fitted
    unfitted = lazy[~lazy["model"].isin(list(fits))]
    assert unfitted["log_likelihood"].isna().all() and lazy[lazy["model"].isin(list(fits))]["log_likelihood"].notna().all()


def test_auto_on_cdnow_is_logged_and_printed(trained) -> None:
    """The session's CDNOW training (auto): every model fitted, the comparison table in MLflow,
    the reference BG/NBD unprefixed at the published values, the other models prefixed."""
    result, logged = trained["result"], trained["logged"]
    choice = result.purchase
    assert choice.requested == "auto" and set(choice.fits) == set(PURCHASE_MODELS)
    assert choice.validation_days == 90
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    run = mlflow.get_run(logged.run_id)
    params = run.data.params
    assert params["purchase_model"] == result.scorer.purchase_model.KEY == choice.model
    assert params["purchase_model_requested"] == "auto"
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426,  # FHL 2005
                 "pnbd_r": 0.553, "pnbd_alpha": 10.578, "pnbd_s": 0.606, "pnbd_beta": 11.669,  # FHL MATLAB note
                 "mbgnbd_r": 0.525, "mbgnbd_alpha": 6.183, "mbgnbd_a": 0.891, "mbgnbd_b": 1.614}  # BDF 2007
    for name, value in published.items():
        assert float(params[name]) == pytest.approx(value, rel=0.01), name
    assert run.data.tags["purchase_model_reason"].startswith("lowest validation Poisson deviance")
    path = mlflow.artifacts.download_artifacts(run_id=logged.run_id, artifact_path="tables/purchase_models.json")
    with open(path) as fh:
        table = json.load(fh)
    assert [row[0] for row in table["data"]] == ["bgnbd", "mbgnbd", "pnbd"]
    for key in PURCHASE_MODELS:
        assert f"purchase_validation_poisson_deviance_{key}" in run.data.metrics
    scores = result.scorer.score_customers(result.calibration, result.scorer.cutoff, with_segments=False)
    assert (scores["purchase_model"] == choice.model).all()


def test_a_requested_model_ships_and_the_reference_is_still_fitted(cdnow_sample_csv) -> None:
    """``purchase_model="pnbd"``: the scores are Pareto/NBD's (R BTYD walk-through: 25.46 expected
    purchases in 52 weeks for x = 26, t_x = 30.86, T = 31 at the CDNOW fit), BG/NBD is fitted beside it."""
    from custscore.config import TrainConfig
    from custscore.features.customers import PandasEngine
    from custscore.features.io import normalise_transactions
    from custscore.training.pipeline import train_scorer

    config = TrainConfig(cutoff="1997-09-30", horizon_days=90, time_unit="W", purchase_model="pnbd")
    engine = PandasEngine(normalise_transactions(pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})))
    result = train_scorer(engine, config)
    assert result.scorer.purchase_model.KEY == "pnbd" and set(result.purchase.fits) == {"bgnbd", "pnbd"}
    assert result.purchase.validation_days == 0
    assert result.scorer.purchase_model.expected_purchases(52.0, [26], [30.86], [31.0])[0] == pytest.approx(
        25.46, abs=0.01)
    assert result.purchase.fits["bgnbd"].params_["r"] == pytest.approx(0.243, rel=0.01)


def test_short_history_ships_the_reference_with_a_warning(cdnow_sample_csv) -> None:
    """CDNOW at 1997-04-15 with a 90-day horizon: 104 days of history, a validation span would be
    (104 - 30) // 2 = 37 days < 45 (half the horizon), so nothing is validated and BG/NBD ships."""
    from custscore.config import TrainConfig
    from custscore.features.customers import PandasEngine
    from custscore.features.io import normalise_transactions
    from custscore.training.purchase_choice import select_purchase_model

    engine = PandasEngine(normalise_transactions(pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})))
    config = TrainConfig(cutoff="1997-04-15", horizon_days=90, time_unit="W")
    first_day, _ = engine.date_range()
    choice = select_purchase_model(engine, config, first_day, engine.customer_features(config.cutoff, "W"))
    assert choice.model == "bgnbd" and choice.validation_days == 0
    assert len(choice.warnings) == 1 and choice.warnings[0].startswith("purchase model not validated (104 days")
    assert list(choice.fits) == ["bgnbd"]  # the others could not be chosen: not fitted


def test_without_a_sample_every_candidate_is_fitted_at_the_cutoff_and_its_row_says_so() -> None:
    """Every candidate fitted at the cutoff (all customers validated on): a candidate not identified
    there has ``identified`` False in the table even when the rule never needed its fit."""
    models = ["bgnbd", "mbgnbd", "pnbd"]
    table = pd.DataFrame({"model": models, "identified": [True, True, True],
                          "validation_poisson_deviance": [0.5, 0.9, 0.8]})
    at_cutoff = {"bgnbd": _Fit(True, -1.0), "mbgnbd": _Fit(False, -2.0), "pnbd": _Fit(True, -3.0)}
    fits = {"bgnbd": at_cutoff["bgnbd"]}

    def fit_at_cutoff(key):
        fits[key] = at_cutoff[key]
        return fits[key]

    lazy = _choose_fitting_at_cutoff(table.copy(), fits, fit_at_cutoff)
    assert list(fits) == ["bgnbd"] and lazy["identified"].tolist() == [True, True, True]  # the rest not needed
    for key in ("mbgnbd", "pnbd"):
        fit_at_cutoff(key)
    done = _choose_fitting_at_cutoff(lazy, fits, fit_at_cutoff)
    assert done["identified"].tolist() == [True, False, True]
    assert done["log_likelihood"].tolist() == [-1.0, -2.0, -3.0] and choose_model(done)[0] == "bgnbd"
