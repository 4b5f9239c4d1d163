"""A model nets days as its training did: ``CustomerScorer.amount_decimals`` in every scoring path.

A model trained with ``--amount-decimals 6`` scores a 6-decimal log identically over HTTP
(numpy fast path and pandas path), with :meth:`CustomerScorer.score` and with
``custscore score``; the truth of the days that differ from 4-decimal netting is
hand-computed:

- ``tiny`` buys ``0.00002 + 0.00002`` on each of three days: 40 units of 1e-6 a day, so
  monetary value 0.00004 at 6 decimals; at 4 decimals each row is ``rint(0.2) = 0`` units, a
  zero-spend day, monetary value 0.
- ``ret`` has ``0.00002, -0.00003`` on 1997-03-01 and ``10.0`` on 1997-04-01: at 6 decimals the
  first day nets to -10 units, a return-only day (dropped): frequency 0; at 4 decimals both
  rows are 0 units, a zero-spend purchase: frequency 1, recency 31 days.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from custscore.config import ColumnMap, ServeConfig, TrainConfig
from custscore.features.io import read_transactions
from custscore.serving.http import create_app
from custscore.serving.model_holder import load_model
from custscore.training.bundle import MODEL_CLASSES
from custscore.training.codec import decode, encode
from custscore.training.tracking import use_tracking
from custscore.training.train import train_file
from conftest import cli
from test_http import _assert_rows_equal  # HTTP rows vs a score frame, 1e-9

# One worker runs this module (--dist loadgroup in pyproject.toml): the 6-decimal model (fixture `model6`) is
# trained once.
pytestmark = pytest.mark.xdist_group("model_netting")

AS_OF = "1997-09-30"
NAME = "custscore-decimals6"
URI = f"models:/{NAME}@champion"
#: (customer, date, amount) of the hand-computed customers, then two ordinary ones
ROWS = [("tiny", "1997-03-01", 0.00002), ("tiny", "1997-03-01", 0.00002),
        ("tiny", "1997-04-01", 0.00002), ("tiny", "1997-04-01", 0.00002),
        ("tiny", "1997-05-01", 0.00002), ("tiny", "1997-05-01", 0.00002),
        ("ret", "1997-03-01", 0.00002), ("ret", "1997-03-01", -0.00003), ("ret", "1997-04-01", 10.0),
        ("plain", "1997-02-01", 12.345678), ("plain", "1997-06-01", 20.000001), ("plain", "1997-06-01", 5.5),
        ("once", "1997-08-15", 3.25)]
HTTP_CUSTOMERS = ["once", "plain", "tiny"]  # amounts >= 0 (refunds are not accepted over HTTP)


@pytest.fixture(scope="module")
def model6(tmp_path_factory, cdnow_sample_csv, new_store):
    folder = tmp_path_factory.mktemp("decimals6")
    tracking = new_store(folder)
    config = TrainConfig(cutoff=AS_OF, horizon_days=90, time_unit="W", tracking_uri=tracking, register_as=NAME,
                         experiment="tests-decimals", columns=ColumnMap(amount_decimals=6))
    train_file(cdnow_sample_csv, config)
    use_tracking(tracking)
    log = folder / "log.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"]).to_csv(log, index=False)
    return {"model": load_model(URI), "tracking": tracking, "log": log, "folder": folder}


@pytest.fixture(scope="module")
def pandas_scores(model6) -> pd.DataFrame:
    tx = read_transactions(model6["log"], ColumnMap(amount_decimals=6))
    return model6["model"].scorer.score(tx, as_of=AS_OF).set_index("customer_id")


def test_the_model_keeps_its_training_precision(model6):
    scorer = model6["model"].scorer
    assert scorer.amount_decimals == 6 and type(scorer.amount_decimals) is int


def test_a_model_file_without_the_field_nets_at_the_old_default(model6):
    tree, arrays = encode(model6["model"].scorer, MODEL_CLASSES)
    del tree["state"]["amount_decimals"]  # a model saved before the field existed
    assert decode(tree, arrays, MODEL_CLASSES).amount_decimals == ColumnMap.amount_decimals == 4


def test_pandas_path_nets_at_the_models_precision(model6, pandas_scores):
    assert pandas_scores.loc["tiny", "monetary_value"] == pytest.approx(0.00004, rel=1e-12)
    assert pandas_scores.loc["ret", "frequency"] == 0 and pandas_scores.loc["ret", "recency"] == 0.0
    at4 = dataclasses.replace(model6["model"].scorer, amount_decimals=4)
    tx = read_transactions(model6["log"], ColumnMap(amount_decimals=6))
    four = at4.score(tx, as_of=AS_OF).set_index("customer_id")
    assert four.loc["tiny", "monetary_value"] == 0.0
    assert four.loc["ret", "frequency"] == 1 and four.loc["ret", "recency"] * 7 == pytest.approx(31.0)
    assert four.loc["tiny", "clv"] != pandas_scores.loc["tiny", "clv"]


def _request(log_rows) -> dict:
    customers = [{"customer_id": c, "transactions": [{"date": d, "amount": a} for cc, d, a in log_rows if cc == c]}
                 for c in HTTP_CUSTOMERS]
    return {"as_of": AS_OF, "customers": customers}


@pytest.mark.parametrize("fast_path", [True, False])
def test_http_equals_the_pandas_path(model6, pandas_scores, fast_path):
    model = model6["model"]
    assert model.fast_path_blocker is None
    config = ServeConfig() if fast_path else ServeConfig(fast_path_max_customers=0)
    with TestClient(create_app(URI, config, model=model)) as client:
        response = client.post("/score", json=_request(ROWS))
    assert response.status_code == 200, response.text
    want = pandas_scores.loc[HTTP_CUSTOMERS].assign(model_version=model.label)
    _assert_rows_equal(response.json()["scores"], want)
    tiny = response.json()["scores"][HTTP_CUSTOMERS.index("tiny")]
    assert tiny["monetary_value"] == pytest.approx(0.00004, rel=1e-12)


@pytest.mark.slow
def test_batch_scoring_defaults_to_the_models_precision_and_warns_on_another(model6, pandas_scores):
    folder, tracking = model6["folder"], model6["tracking"]
    args = ["score", "--model", URI, "--transactions", str(model6["log"]), "--as-of", AS_OF,
            "--tracking-uri", tracking, "--engine"]
    for engine in ("pandas", "duckdb"):
        out = folder / f"scores_{engine}.csv"
        result = cli(*args, engine, "--output", str(out))
        assert result.returncode == 0, result.stderr
        assert "warning:" not in result.stderr
        got = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
        assert got.loc["tiny", "monetary_value"] == pytest.approx(0.00004, rel=1e-12)
        assert got.loc["ret", "frequency"] == 0
        for column in ("frequency", "recency", "T", "monetary_value", "p_alive", "churn_probability", "clv"):
            np.testing.assert_allclose(got[column].to_numpy(), pandas_scores[column].to_numpy(), rtol=1e-9)

    same = cli(*args, "pandas", "--output", str(folder / "same.csv"), "--amount-decimals", "6")
    assert same.returncode == 0 and "warning:" not in same.stderr
    other = cli(*args, "pandas", "--output", str(folder / "four.csv"), "--amount-decimals", "4")
    assert other.returncode == 0, other.stderr
    warnings = [line for line in other.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "--amount-decimals 4 differs from the model's 6" in warnings[0]
    four = pd.read_csv(folder / "four.csv", dtype={"customer_id": str}).set_index("customer_id")
    assert four.loc["tiny", "monetary_value"] == 0.0 and four.loc["ret", "frequency"] == 1
