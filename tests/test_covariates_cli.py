"""``--covariates`` end to end: encoding, train (MLflow coefficients and standard errors), score, refusals.

Independent truths: the encoding by hand (mean, standard deviation, first level dropped), and
a simulated log whose purchase rate depends on region and age with known coefficients.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.training.covariate_file import ROW_COLUMN, fit_encoding, read_covariates
from custscore.training.covariates import COVARIATE_PREFIX, attach_covariates, covariate_frame, for_customers
from custscore.training.simulate import simulate_transactions
from conftest import cli

N = 2500
#: alpha_i = 30 exp(-(0.6 [north] - 0.4 [west] + 0.3 (age - 45) / 12)) days: south is the middle level.
TRUE_EFFECT = {"north": 0.6, "west": -0.4, "age_per_sd_12": 0.3}


def test_encoding_standardises_numbers_and_drops_the_first_level(tmp_path) -> None:
    path = tmp_path / "cov.csv"
    path.write_text("customer_id,age,region,flat\n1,20,south,7\n2,30,north,7\n3,40,west,7\n4,50,north,7\n")
    table = read_covariates(path, "customer_id")
    assert list(table.index) == ["1", "2", "3", "4"] and table[ROW_COLUMN].tolist() == [1, 2, 3, 4]
    encoding, warnings = fit_encoding(table, str(path))
    assert warnings == [f"covariate 'flat' in {path} is constant (7) over the training customers: not used"]
    assert encoding.names == ["age", "region_south", "region_west"]  # north (first sorted) is the reference
    encoded = encoding.transform(table, str(path))
    sd = np.sqrt(np.mean((np.array([20, 30, 40, 50]) - 35.0) ** 2))  # population sd by hand: 11.18
    np.testing.assert_allclose(encoded["age"], (np.array([20, 30, 40, 50]) - 35.0) / sd)
    assert encoded["region_south"].tolist() == [1, 0, 0, 0] and encoded["region_west"].tolist() == [0, 0, 1, 0]
    customers = pd.DataFrame({"frequency": [1, 2]}, index=pd.Index(["4", "1"], name="customer_id"))
    attached = attach_covariates(customers, encoded, str(path))
    assert covariate_frame(attached).loc["4"].tolist() == encoded.loc["4"].tolist()
    assert set(attached.columns) == {"frequency"} | {COVARIATE_PREFIX + c for c in encoding.names}


def test_encoding_refusals_name_file_row_column_and_value(tmp_path) -> None:
    path = tmp_path / "cov.csv"
    path.write_text("customer_id,age,region\n1,20,south\n2,30,north\n")
    table = read_covariates(path, "customer_id")
    encoding, _ = fit_encoding(table, "train.csv")
    later = tmp_path / "later.csv"
    later.write_text("customer_id,age,region\n1,20,south\n2,31,east\n")
    with pytest.raises(CustscoreError, match=r"later.csv: row 2 \(customer '2'\): column 'region': level 'east' "
                                             r"was not seen in training \(levels: north, south\)"):
        encoding.transform(read_covariates(later, "customer_id"), str(later))
    later.write_text("customer_id,region\n1,south\n")
    with pytest.raises(CustscoreError, match="no covariate column 'age'"):
        encoding.transform(read_covariates(later, "customer_id"), str(later))
    later.write_text("customer_id,age,region\n1,,south\n")
    with pytest.raises(CustscoreError, match=r"row 1 \(customer '1'\): column 'age': missing value"):
        encoding.transform(read_covariates(later, "customer_id"), str(later))
    many = tmp_path / "many.csv"
    many.write_text("customer_id,shop\n" + "".join(f"{i},s{i}\n" for i in range(150)))
    with pytest.raises(CustscoreError, match="column 'shop': 150 distinct values"):
        fit_encoding(read_covariates(many, "customer_id"), str(many))


def _truth_alpha(region: np.ndarray, age: np.ndarray) -> np.ndarray:
    eta = (TRUE_EFFECT["north"] * (region == "north") + TRUE_EFFECT["west"] * (region == "west")
           + TRUE_EFFECT["age_per_sd_12"] * (age - 45.0) / 12.0)
    return 30.0 * np.exp(-eta)


@pytest.fixture(scope="module")
def world(tmp_path_factory, new_store):
    folder = tmp_path_factory.mktemp("covariates")
    rng = np.random.default_rng(5)
    region = rng.choice(["north", "south", "west"], size=N, p=[0.4, 0.4, 0.2])
    age = rng.normal(45, 12, size=N).round()
    log = simulate_transactions(N, 0.8, _truth_alpha(region, age), 0.8, 3.0, 6.0, 3.7, 15.0,
                                "2020-01-01", "2021-12-31", seed=7)
    log.to_csv(folder / "log.csv", index=False)
    ids = np.char.zfill(np.arange(N).astype(str), len(str(N - 1)))
    pd.DataFrame({"customer_id": ids, "region": region, "age": age}).to_csv(folder / "cov.csv", index=False)
    uri = new_store(folder)
    trained = cli("train", "--transactions", str(folder / "log.csv"), "--cutoff", "2021-09-30",
                  "--horizon-days", "90", "--covariates", str(folder / "cov.csv"), "--purchase-model", "bgnbd",
                  "--tracking-uri", uri, "--experiment", "cov")
    assert trained.returncode == 0, trained.stderr
    run_id = next(line.split()[-1] for line in trained.stdout.splitlines() if line.startswith("run id:"))
    return folder, uri, run_id, age


@pytest.mark.slow
def test_train_logs_coefficients_with_standard_errors_that_cover_the_truth(world) -> None:
    import mlflow

    folder, uri, run_id, age = world
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["covariates"] == str(folder / "cov.csv") and params["purchase_model"] == "bgnbd"
    # Reference level north: south's effect on the rate is -0.6, west's -1.0; age per standard deviation
    # of the training customers' ages (the encoding standardises).
    truth = {"gamma_alpha_region_south": -TRUE_EFFECT["north"],
             "gamma_alpha_region_west": TRUE_EFFECT["west"] - TRUE_EFFECT["north"],
             "gamma_alpha_age": TRUE_EFFECT["age_per_sd_12"] * np.std(age) / 12.0}
    for name, value in truth.items():
        se = metrics[f"{name}_se"]
        assert 0 < se < 0.2 and abs(float(params[name]) - value) <= 4 * se, (name, params[name], value, se)
    assert {f"gamma_{p}_{c}" for p in ("a", "b") for c in ("age", "region_south", "region_west")} <= set(params)
    assert params["covariate_region_levels"] == "north,south,west"
    assert float(params["covariate_age_mean"]) == pytest.approx(np.mean(age), rel=1e-9)  # all customers trained on
    assert float(params["covariate_age_sd"]) == pytest.approx(np.std(age), rel=1e-9)


@pytest.mark.slow
def test_score_needs_the_covariates_and_uses_each_customers_own(world, tmp_path) -> None:
    folder, uri, run_id, _ = world
    base = ["score", "--model", f"runs:/{run_id}/model", "--transactions", str(folder / "log.csv"),
            "--as-of", "2021-12-31", "--tracking-uri", uri]
    scored = cli(*base, "--output", str(tmp_path / "a.csv"), "--covariates", str(folder / "cov.csv"))
    assert scored.returncode == 0, scored.stderr
    # The same customers, one customer's region changed: only that customer's scores move.
    cov = pd.read_csv(folder / "cov.csv", dtype={"customer_id": str})
    who = cov.index[cov["region"] == "south"][0]
    cov.loc[who, "region"] = "north"  # north buys faster (alpha smaller)
    cov.to_csv(tmp_path / "moved.csv", index=False)
    moved = cli(*base, "--output", str(tmp_path / "b.csv"), "--covariates", str(tmp_path / "moved.csv"))
    assert moved.returncode == 0, moved.stderr
    a, b = (pd.read_csv(tmp_path / f, dtype={"customer_id": str}).set_index("customer_id") for f in ("a.csv", "b.csv"))
    changed = a.index[a["expected_purchases"] != b["expected_purchases"]].tolist()
    assert changed == [cov.loc[who, "customer_id"]]
    if a.loc[changed[0], "frequency"] == 0:  # alive for sure (BG/NBD): a faster buyer expects more
        assert b.loc[changed[0], "expected_purchases"] > a.loc[changed[0], "expected_purchases"]

    missing = cli(*base, "--output", str(tmp_path / "c.csv"))
    assert missing.returncode == 2 and "trained with covariates (age, region): pass them" in missing.stderr
    assert not (tmp_path / "c.csv").exists()
    cov.loc[who, "region"] = "east"
    cov.to_csv(tmp_path / "east.csv", index=False)
    unseen = cli(*base, "--output", str(tmp_path / "d.csv"), "--covariates", str(tmp_path / "east.csv"))
    assert unseen.returncode == 2 and "column 'region': level 'east' was not seen in training" in unseen.stderr
    assert len(unseen.stderr.strip().splitlines()) == 1


def test_a_model_without_covariates_refuses_them_and_with_refuses_none() -> None:
    from custscore.training.bgnbd import BetaGeoModel
    from custscore.training.scorer import CustomerScorer

    scorer = CustomerScorer(purchase_model=BetaGeoModel(), gamma_gamma=None, churn=None, time_unit="D",
                            horizon_days=90, discount_rate=0.1, cutoff=pd.Timestamp("2021-01-01"))
    table = pd.DataFrame({"age": [30.0]}, index=pd.Index(["1"], name="customer_id"))
    with pytest.raises(CustscoreError, match="cov.csv: this model was trained without covariates"):
        scorer.encode_covariates(table, "cov.csv")
    model = BetaGeoModel()
    model.params_, model.covariate_names_ = {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0}, ("age",)
    with pytest.raises(CustscoreError, match="trained with covariates \\(age\\): pass --covariates FILE"):
        for_customers(model, pd.DataFrame({"frequency": [1]}))


@pytest.mark.slow
def test_http_takes_covariates_per_customer_and_refuses_requests_without(world) -> None:
    from fastapi.testclient import TestClient

    from custscore.config import ScoreConfig, ServeConfig
    from custscore.features.io import read_transactions
    from custscore.serving.batch import score_transactions
    from custscore.serving.http import create_app
    from custscore.serving.model_holder import load_model
    from custscore.training.tracking import use_tracking

    folder, uri, run_id, _ = world
    use_tracking(uri)
    model = load_model(f"runs:/{run_id}/model")
    assert model.fast_path_blocker == "the scorer's purchase model takes covariates"
    assert model.describe()["covariates"] == ["age", "region"]
    log = read_transactions(folder / "log.csv")
    cov = pd.read_csv(folder / "cov.csv", dtype={"customer_id": str}).set_index("customer_id")
    ids = ["0003", "0010", "0042"]
    tx = log[log["customer_id"].isin(ids)]
    batch = score_transactions(model.scorer, tx, ScoreConfig(as_of="2021-12-31"), model.label,
                               read_covariates(folder / "cov.csv", "customer_id")).set_index("customer_id")

    def customer(cid: str, covariates=None) -> dict:
        rows = tx[tx["customer_id"] == cid]
        out = {"customer_id": cid, "transactions": [{"date": t.strftime("%Y-%m-%d"), "amount": float(a)}
                                                    for t, a in zip(rows["ts"], rows["amount"])]}
        if covariates is not None:
            out["covariates"] = covariates
        return out

    own = {cid: {"region": cov.loc[cid, "region"], "age": int(cov.loc[cid, "age"])} for cid in ids}
    with TestClient(create_app(f"runs:/{run_id}/model", ServeConfig(), model=model),
                    raise_server_exceptions=False) as client:
        answer = client.post("/score", json={"as_of": "2021-12-31", "customers": [customer(c, own[c]) for c in ids]})
        assert answer.status_code == 200, answer.text
        for row in answer.json()["scores"]:
            for column in ("p_alive", "expected_purchases", "p_no_purchase", "clv", "churn_probability"):
                assert row[column] == pytest.approx(batch.loc[row["customer_id"], column], rel=1e-9), column
        without = client.post("/score", json={"as_of": "2021-12-31", "customers": [customer("0003")]})
        assert without.status_code == 422, without.text
        assert "customers[0].covariates: required (this model was trained with covariates ['age', 'region'])" \
            in without.json()["error"]
        east = client.post("/score", json={"as_of": "2021-12-31",
                                           "customers": [customer("0003", {"region": "east", "age": 40})]})
        assert east.status_code == 422 and "level 'east' was not seen in training" in east.text
        typo = client.post("/score", json={"as_of": "2021-12-31",
                                           "customers": [customer("0003", {"regoin": "north", "age": 40})]})
        assert typo.status_code == 422 and "covariates: no 'region'" in typo.text


def test_a_request_with_covariates_to_a_model_without_is_refused() -> None:
    from pydantic import ValidationError

    from custscore.config import ServeConfig
    from custscore.serving.http_schemas import score_request_model

    body = {"as_of": "2021-01-01", "customers": [{"customer_id": "1", "transactions": [
        {"date": "2020-01-01", "amount": 3.0}], "covariates": {"region": "north"}}]}
    with pytest.raises(ValidationError, match="this model was trained without covariates; leave them out"):
        score_request_model(ServeConfig()).model_validate(body, context={"has_amounts": True, "covariates": None})


def test_the_promotion_gate_backtests_a_champion_without_covariates_without_them() -> None:
    from custscore.config import TrainConfig
    from custscore.training.promotion import champion_recipe

    new = TrainConfig(cutoff="2021-09-30", covariates="cov.csv")
    assert champion_recipe({"purchase_model_requested": "bgnbd"}, new).covariates is None
    assert champion_recipe({"covariates": "old.csv"}, new).covariates == "old.csv"


@pytest.mark.slow
def test_backtest_takes_covariates_recovers_their_effect_and_predicts_better(tmp_path, new_store) -> None:
    """A short-history world where region sets the purchase rate (south 4x slower, r = 4 so
    region explains most of the spread): each origin's fit recovers gamma = -ln 4 within 4 SE,
    and the out-of-time per-customer purchase error is lower than without the covariates."""
    import json

    import mlflow

    n = 4000
    region = np.random.default_rng(3).choice(["north", "south"], size=n)
    log = simulate_transactions(n, 4.0, np.where(region == "north", 40.0, 160.0), 0.8, 6.0, 6.0, 3.7, 15.0,
                                "2021-01-01", "2021-12-31", seed=11, cohort_days=240)
    log.to_csv(tmp_path / "log.csv", index=False)
    ids = np.char.zfill(np.arange(n).astype(str), len(str(n - 1)))
    pd.DataFrame({"customer_id": ids, "region": region}).to_csv(tmp_path / "cov.csv", index=False)
    uri = new_store(tmp_path)
    base = ["backtest", "--transactions", str(tmp_path / "log.csv"), "--cutoffs", "2021-09-30", "--horizon-days", "90",
            "--purchase-model", "bgnbd", "--n-bootstrap", "50", "--tracking-uri", uri]
    missing = cli(*base, "--output-dir", str(tmp_path / "x"), "--covariates", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "nope.csv" in missing.stderr
    mae = {}
    for name, extra in (("with", ["--covariates", str(tmp_path / "cov.csv")]), ("without", [])):
        done = cli(*base, "--output-dir", str(tmp_path / name), *extra)
        assert done.returncode == 0, done.stderr
        mae[name] = json.loads((tmp_path / name / "summary.json").read_text())["purchases_mae"]
        parent = done.stdout.strip().split()[-1]
        mlflow.set_tracking_uri(uri)
        params = mlflow.get_run(parent).data.params
        assert params.get("covariates") == (str(tmp_path / "cov.csv") if extra else None)
    child = mlflow.search_runs(filter_string="tags.mlflow.parentRunId != ''", search_all_experiments=True,
                               output_format="list")
    fitted = [run for run in child if "gamma_alpha_region_south" in run.data.params]
    assert len(fitted) == 1
    gamma = float(fitted[0].data.params["gamma_alpha_region_south"])
    se = fitted[0].data.metrics["gamma_alpha_region_south_se"]
    assert abs(gamma - (-np.log(4.0))) <= 4 * se, (gamma, se)
    assert mae["with"] < mae["without"], mae
