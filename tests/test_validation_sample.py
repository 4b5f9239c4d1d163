"""The model choices at scale run on a seeded customer sample (``--validation-sample``).

Truth is independent of the code: the sample rule is checked by counting and by set
membership, and the choice on a simulated BG/NBD world (where the generating model and
BG/NBD's own P(no purchase) are the known better answers) must be the same with and
without the sample.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from custscore.config import TrainConfig
from custscore.errors import CustscoreError
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions
from custscore.training.pipeline import train_scorer
from custscore.training.sampling import sample_customers, sample_positions
from custscore.training.simulate import simulate_transactions
from custscore.training.training_memo import CustomerSample, TrainingMemo, validation_engine

WORLD = dict(r=0.8, alpha=25.0, a=0.8, b=2.5, p=6.0, q=3.7, v=15.0)


def _log(n_customers: int, seed: int) -> pd.DataFrame:
    return simulate_transactions(n_customers, start="2020-01-01", end="2021-09-30", seed=seed, cohort_days=300,
                                 **WORLD)


def test_sample_positions_only_above_the_size_seeded_and_uniform() -> None:
    assert sample_positions(1000, 1000, 0) is None and sample_positions(999, 1000, 0) is None
    assert sample_positions(1000, 0, 0) is None  # 0 = no sample
    first, again, other = (sample_positions(1000, 100, s) for s in (7, 7, 8))
    assert len(first) == 100 == len(np.unique(first)) and np.all(np.diff(first) > 0)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    # uniform: over 400 draws each of 1,000 rows is drawn 40 times on average (sd about 6)
    counts = np.bincount(np.concatenate([sample_positions(1000, 100, s) for s in range(400)]), minlength=1000)
    assert counts.sum() == 40_000 and 15 < counts.min() and counts.max() < 65
    ids = pd.Index([f"c{i}" for i in range(10)])
    assert list(sample_customers(ids, 3, 1)) == list(ids[sample_positions(10, 3, 1)])


def test_validation_engine_samples_only_above_the_size_and_cuts_every_date() -> None:
    engine = TrainingMemo(PandasEngine(normalise_transactions(_log(600, 1))))
    R, earlier = pd.Timestamp("2021-06-30"), pd.Timestamp("2021-03-31")
    known = engine.customer_features(R, "D").index
    for size in (0, len(known)):  # no sample: the engine itself
        same, sample = validation_engine(engine, R, "D", size, 0)
        assert same is engine and sample.used == sample.known == len(known) and not sample.sampled
    view, sample = validation_engine(engine, R, "D", 200, 0)
    assert isinstance(view, CustomerSample) and (sample.used, sample.known) == (200, len(known))
    assert sample.describe() == f"200 of {len(known):,} customers"
    at_R = view.customer_features(R, "D")
    assert len(at_R) == 200 and set(at_R.index) <= set(known)
    full_earlier = engine.customer_features(earlier, "D")
    at_earlier = view.customer_features(earlier, "D")  # the sampled customers already known then
    assert set(at_earlier.index) == set(full_earlier.index) & set(at_R.index)
    pd.testing.assert_frame_equal(at_earlier, full_earlier.loc[at_earlier.index])
    again, _ = validation_engine(engine, R, "D", 200, 0)
    other, _ = validation_engine(engine, R, "D", 200, 1)
    assert list(again.customers) == list(view.customers) != list(other.customers)


def test_the_sample_is_cut_as_soon_as_the_frame_is_computed() -> None:
    """A frame asked for through the sample only is kept cut: the memo holds its 100 rows, not 600."""
    engine = TrainingMemo(PandasEngine(normalise_transactions(_log(600, 2))))
    view, _ = validation_engine(engine, pd.Timestamp("2021-06-30"), "D", 100, 0)
    view.customer_features(pd.Timestamp("2021-02-28"), "D")
    sizes = {key: len(frame) for key, frame in engine._features.items()}
    assert sorted(sizes.values()) == [100, len(engine.customer_features(pd.Timestamp("2021-06-30"), "D"))]


def test_the_choice_in_a_known_world_is_the_same_with_and_without_the_sample() -> None:
    """BG/NBD world, 12,000 customers: both purchase and churn choices, on all of them and on
    a 4,000-customer sample, are the generating model and BG/NBD's own P(no purchase)."""
    engine = PandasEngine(normalise_transactions(_log(12_000, 5)))
    picks = {}
    for size in (0, 4_000):
        result = train_scorer(engine, TrainConfig(cutoff="2021-06-30", horizon_days=60, validation_sample=size))
        picks[size] = (result.purchase.model, result.churn.selection.model)
        assert result.purchase.validation_sample.used == result.churn.validation_sample.used == min(
            size or 12_000, result.purchase.validation_sample.known)
        assert result.churn.selection.validation_examples == result.churn.validation_sample.used
        # on a sample only the reference (and the chosen model) are fitted on every customer at the cutoff; every
        # candidate keeps its validation metrics, its log-likelihood at R named as such
        fitted = {"bgnbd", "mbgnbd", "pnbd"} if size == 0 else {"bgnbd", result.purchase.model}
        assert set(result.purchase.fits) == fitted
        assert {k for k in ("bgnbd", "mbgnbd", "pnbd") if f"{k}_log_likelihood" in result.metrics} == fitted
        table = result.purchase.table.set_index("model")
        assert table["log_likelihood"].notna().to_dict() == {k: k in fitted for k in ("bgnbd", "mbgnbd", "pnbd")}
        for key in ("bgnbd", "mbgnbd", "pnbd"):
            assert np.isfinite(result.metrics[f"purchase_validation_log_likelihood_{key}"])
            assert result.metrics[f"purchase_validation_log_likelihood_{key}"] == table.loc[key, "validation_log_likelihood"]
    assert picks[0] == picks[4_000] == ("bgnbd", "baseline_bgnbd_p_no_purchase"), picks
    # the shipped models use every customer whatever the sample
    assert result.n_customers == len(engine.customer_features(pd.Timestamp("2021-06-30"), "D"))


def test_bad_validation_sample_is_one_line() -> None:
    for bad in (-1, 2.5, True):
        with pytest.raises(CustscoreError, match="validation_sample: must be a whole number of customers"):
            TrainConfig(cutoff="2021-06-30", validation_sample=bad)


def test_sample_size_is_logged_and_printed(tmp_path, new_store) -> None:
    path = tmp_path / "log.csv"
    _log(3_000, 3).to_csv(path, index=False)
    uri = new_store(tmp_path)
    done = run_cli("train", "--transactions", str(path), "--cutoff", "2021-06-30", "--horizon-days", "60",
                   "--validation-sample", "1000", "--tracking-uri", uri)
    assert done.returncode == 0, done.stderr
    run_id = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("run id:"))
    params = mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.params
    known = int(params["churn_validation_known_customers"])
    assert params["validation_sample"] == "1000" and params["churn_validation_customers"] == "1000"
    assert params["purchase_validation_customers"] == "1000" and 1000 < known <= 3000
    assert done.stdout.count(f"validated on 1,000 of {known:,} customers") == 2  # purchase and churn choices
