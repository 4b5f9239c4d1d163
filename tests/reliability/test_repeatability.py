"""Repeatability: same data and seed -> same parameters and bit-identical scores, sorted by id."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import cli
from custscore.config import TrainConfig
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions, read_transactions
from custscore.training.pipeline import train_scorer


def test_training_twice_gives_the_same_parameters_and_scores(trained, cdnow_sample_csv):
    tx = read_transactions(cdnow_sample_csv)
    again = train_scorer(PandasEngine(tx), trained["config"]).scorer
    first = trained["result"].scorer
    for fitted, refit in [(first.purchase_model.params_, again.purchase_model.params_),
                          (first.gamma_gamma.params_, again.gamma_gamma.params_)]:
        for name in fitted:
            assert abs(fitted[name] - refit[name]) <= 1e-8 * abs(fitted[name]), name
    a = first.score(tx, as_of="1997-09-30").drop(columns="model_version")
    b = again.score(tx, as_of="1997-09-30").drop(columns="model_version")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_scores_do_not_depend_on_row_order(trained, cdnow_sample_csv):
    raw = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    shuffled = raw.sample(frac=1.0, random_state=7).reset_index(drop=True)
    scorer = trained["result"].scorer
    a = scorer.score(normalise_transactions(raw), as_of="1997-12-31")
    b = scorer.score(normalise_transactions(shuffled), as_of="1997-12-31")
    assert a["customer_id"].tolist() == sorted(a["customer_id"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.slow
def test_two_score_runs_write_byte_identical_files(trained, cdnow_sample_csv, tmp_path):
    outputs = []
    for name in ("a.csv", "b.csv"):
        proc = cli("score", "--model", "models:/custscore-test@champion", "--transactions",
                   str(cdnow_sample_csv), "--as-of", "1997-09-30", "--output", str(tmp_path / name),
                   "--tracking-uri", trained["config"].tracking_uri)
        assert proc.returncode == 0, proc.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert np.isfinite(pd.read_csv(tmp_path / "a.csv")["clv"]).all()
