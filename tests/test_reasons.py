"""Reasons per customer: the listed drivers are the shipped model's largest contributions.

Truth: the contributions recomputed here with numpy from the classifier's ``weights_``,
the churn features and the training population (the transform written again from its
definition: logit of probabilities clipped at 1e-6, signed log1p of everything else),
with drivers correlated at |r| >= 0.9 over that population listed once (``np.corrcoef``),
and a hand-made customer whose words are known.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from custscore.features.cdnow import load_cdnow_sample
from custscore.features.customers import customer_features
from custscore.features.io import normalise_transactions
from custscore.features.periods import merge_periods
from custscore.training.bundle import load_scorer, save_scorer
from custscore.training.churn import CHURN_FEATURES, ChurnClassifier, churn_features, churn_labels
from custscore.training.churn_select import BaselineChurnModel
from custscore.training.reasons import REASON_COLUMNS, reason_text, reason_texts
from custscore.features.customers import PandasEngine
from custscore.serving.model_holder import load_model
from custscore.training.tracking import use_tracking

REFERENCE, AS_OF = pd.Timestamp("1997-06-30"), "1997-09-30"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return normalise_transactions(load_cdnow_sample())


@pytest.fixture(scope="module")
def population(trained, cdnow):
    """(scorer, training features X, labels y) at the reference date, BG/NBD of the trained model."""
    use_tracking(trained["config"].tracking_uri)
    scorer = load_model("models:/custscore-test@champion").scorer
    engine = PandasEngine(cdnow)
    customers = customer_features(merge_periods(cdnow[cdnow["ts"] <= REFERENCE]), REFERENCE, "W")
    X = churn_features(customers, scorer.purchase_model, 90, "W")
    y = churn_labels(engine, X.index, REFERENCE, 90)
    return scorer, X, y


def _z(A: np.ndarray, names: list[str]) -> np.ndarray:
    out = np.sign(A) * np.log(1.0 + np.abs(A))
    for j, name in enumerate(names):
        if name in ("p_alive", "p_no_purchase_horizon"):
            p = np.clip(A[:, j], 1e-6, 1 - 1e-6)
            out[:, j] = np.log(p / (1 - p))
    return out


def _typical(m: float, name: str) -> float:
    if name in ("p_alive", "p_no_purchase_horizon"):
        return 1 / (1 + np.exp(-m))
    return np.sign(m) * (np.exp(abs(m)) - 1)


def test_classifier_reasons_are_its_largest_positive_contributions(population, cdnow):
    scorer, X, y = population
    model = ChurnClassifier().fit(X, y)
    shipped = dataclasses.replace(scorer, churn=model, churn_model="classifier")
    scores = shipped.score(cdnow, as_of=AS_OF)
    customers = customer_features(merge_periods(cdnow), pd.Timestamp(AS_OF), "W")
    A = churn_features(customers, scorer.purchase_model, 90, "W")
    names = [n for n in model.used_features_ if n != "horizon_days"]
    mean = _z(X[names].to_numpy(float), names).mean(axis=0)
    w = dict(zip(model.used_features_, model.weights_))
    C = np.array([w[n] for n in names]) * (_z(A[names].to_numpy(float), names) - mean)
    R = np.abs(np.corrcoef(_z(X[names].to_numpy(float), names), rowvar=False))  # over the training population
    n_with = np.zeros(4, dtype=int)
    n_grouped = 0
    for i in range(len(A)):
        positive = [j for j in np.argsort(-C[i], kind="stable") if C[i, j] > 0]
        order = []
        for j in positive:  # skip a driver correlated at |r| >= 0.9 with one already listed
            if len(order) < 3 and all(R[j, o] < 0.9 for o in order):
                order.append(j)
        n_grouped += order != positive[:3]
        features = A.iloc[i].to_dict()
        want = [reason_text(names[j], features, _typical(mean[j], names[j])) for j in order]
        want += [""] * (3 - len(want))
        assert scores.loc[i, list(REASON_COLUMNS)].tolist() == want, i
        n_with[len(order)] += 1
    assert n_with[3] > 0.5 * len(A)  # most customers have three drivers
    assert n_grouped > 100  # the grouping changed what many customers are told
    # the words quote the customer's own numbers
    for column, start, number in (("reason_1", "customer for", "tenure_days"),
                                  ("reason_2", "no purchase for", "days_since_last_purchase")):
        quoted = scores[column].str.startswith(start)
        assert quoted.sum() > 100
        for text, days in zip(scores.loc[quoted, column], scores.loc[quoted, number]):
            assert text.startswith(f"{start} {days:,.0f} day")


def test_words_of_a_hand_made_customer():
    f = dict.fromkeys(CHURN_FEATURES, 0.0) | {"days_since_last_purchase": 143.0, "ipt_mean_days": 47.7,
                                              "days_since_last_over_ipt": 143 / 47.7, "frequency": 0.0,
                                              "T_days": 400.0, "n_purchases_90d": 1.0, "spend_90d": 40.0,
                                              "p_no_purchase_horizon": 0.834, "horizon_days": 90.0}
    assert reason_text("days_since_last_over_ipt", f, 1.0) == "no purchase for 143 days, 3.0x their usual gap of 48 days"
    assert reason_text("frequency", f, 2.0) == "only 1 purchase in their first 400 days"
    assert reason_text("n_purchases_90d", f, 2.5) == "only 1 purchase in the last 90 days (typical customer: 2.5)"
    assert reason_text("spend_90d", f, 100.0) == "only 40.00 spent in the last 90 days (typical customer: 100.00)"
    assert reason_text("p_no_purchase_horizon", f, 0.6) == (
        "purchase model: 83 % chance of no purchase in the next 90 days (typical customer: 60 %)")


#: (value, expected words) at the rounding edges of each spec, written by hand: Python's format
#: rounds the exact binary value half to even (1.005 is 1.00499999..., 0.05 is 0.0500000000000000027...).
_EDGES = {
    "spend_90d": [(0.125, "0.12"), (0.375, "0.38"), (1.005, "1.00"), (2.675, "2.67"), (-0.001, "-0.00"),
                  (1234567.891, "1,234,567.89"), (40.0, "40.00"), (0.005, "0.01")],
    "trend_90d": [(0.125, "0.12"), (-0.125, "-0.12"), (0.995, "0.99"), (-0.0, "-0.00"), (0.3, "0.30")],
    "purchase_rate_per_year": [(0.05, "0.1"), (0.25, "0.2"), (0.35, "0.3"), (2.45, "2.5"), (12.0, "12.0")],
    "days_since_last_purchase": [(0.5, "0 days"), (1.5, "2 days"), (2.5, "2 days"), (1.0, "1 day"),
                                 (1.4, "1 day"), (1234.0, "1,234 days")],
    "p_alive": [(0.125, "12 %"), (0.135, "14 %"), (0.005, "0 %"), (0.015, "2 %"), (1.0, "100 %")],
}
_EDGE_TEMPLATES = {
    "spend_90d": "{only}{v} spent in the last 90 days (typical customer: 100.00)",
    "trend_90d": "purchase rate trend {v} (last 90 days vs the 90 before; typical customer: 0.00)",
    "purchase_rate_per_year": "{only}{v} repeat purchases a year (typical customer: 1.0)",
    "days_since_last_purchase": "no purchase for {v} (typical customer: 30 days)",
    "p_alive": "purchase model: probability still active {v} (typical customer: 50 %)",
}
_EDGE_TYPICAL = {"spend_90d": 100.0, "trend_90d": 0.0, "purchase_rate_per_year": 1.0,
                 "days_since_last_purchase": 30.0, "p_alive": 0.5}


@pytest.mark.parametrize("name", sorted(_EDGES))
@pytest.mark.parametrize("repeat", [1, 50])  # a few customers (object arrays) and many (Arrow)
def test_words_at_rounding_edges_match_hand_written_texts(name, repeat):
    values = np.array([v for v, _ in _EDGES[name]] * repeat)
    typical = _EDGE_TYPICAL[name]
    want = [_EDGE_TEMPLATES[name].format(v=words, only="only " if v < typical else "")
            for v, words in _EDGES[name]] * repeat
    features = {c: np.zeros(len(values)) for c in CHURN_FEATURES} | {name: values}
    assert list(reason_texts(name, features, typical)) == want


def test_baseline_reasons_are_its_driver_then_the_activity_facts(population, cdnow):
    scorer, X, y = population
    model = BaselineChurnModel(name="baseline_bgnbd_p_no_purchase").fit(X, y)
    scores = dataclasses.replace(scorer, churn=model, churn_model=model.name).score(cdnow, as_of=AS_OF)
    customers = customer_features(merge_periods(cdnow), pd.Timestamp(AS_OF), "W")
    A = churn_features(customers, scorer.purchase_model, 90, "W")
    driver = A["p_no_purchase_horizon"].to_numpy()
    typical = _typical(_z(X[["p_no_purchase_horizon"]].to_numpy(float), ["p_no_purchase_horizon"]).mean(),
                       "p_no_purchase_horizon")
    risky = _z(driver[:, None], ["p_no_purchase_horizon"])[:, 0] > np.log(typical / (1 - typical))
    assert 0 < risky.sum() < len(A)
    assert scores.loc[risky, "reason_1"].str.startswith("purchase model: ").all()
    assert not scores.loc[~risky, "reason_1"].str.startswith("purchase model: ").any()
    # a customer idle for more than their usual gap has it as a fact
    idle = A["days_since_last_over_ipt"].to_numpy() > 50  # far above any typical ratio
    texts = scores.loc[idle, list(REASON_COLUMNS)].agg(" | ".join, axis=1)
    assert idle.sum() > 10 and texts.str.contains("their usual gap").all()


def test_reasons_survive_the_model_file(population, cdnow, tmp_path):
    scorer, X, y = population
    shipped = dataclasses.replace(scorer, churn=ChurnClassifier().fit(X, y), churn_model="classifier")
    save_scorer(shipped, tmp_path / "m")
    again = load_scorer(tmp_path / "m")
    a, b = shipped.score(cdnow, as_of=AS_OF), again.score(cdnow, as_of=AS_OF)
    assert a[list(REASON_COLUMNS)].equals(b[list(REASON_COLUMNS)])
    assert isinstance(again.churn.population_mean_, np.ndarray)
