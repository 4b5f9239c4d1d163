"""Model lifecycle on CDNOW master: realised accuracy of past scores (evaluate) and drift.

One session fixture trains on CDNOW master at 1997-09-30 (horizon 90 days) and scores the
log at 1997-09-30, 1998-03-31 and 1998-05-31; the tests check these against truth that
does not come from the code under test: the training holdout metric, counts recomputed
from the raw log, hand-computed PSI.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import cli

# One worker runs this module (--dist loadgroup in pyproject.toml): the CDNOW master model (fixture `master`)
# is trained once.
pytestmark = pytest.mark.xdist_group("lifecycle")


@pytest.fixture(scope="session")
def master(tmp_path_factory, new_store):
    from custscore.config import ScoreConfig, TrainConfig
    from custscore.features.cdnow import load_cdnow_master
    from custscore.serving.batch import score_file
    from custscore.training.train import train_file

    folder = tmp_path_factory.mktemp("master")
    log = folder / "master.csv"
    raw = load_cdnow_master()
    raw.to_csv(log, index=False)
    uri = new_store(folder)
    config = TrainConfig(cutoff="1997-09-30", horizon_days=90, tracking_uri=uri, experiment="lifecycle",
                         register_as="cdnow-master")
    result, logged = train_file(log, config)
    scores = {}
    for day in ("1997-09-30", "1998-03-31", "1998-05-31"):
        scores[day] = folder / f"scores-{day}.csv"
        score_file(logged.serving_uri, log, scores[day], ScoreConfig(as_of=day))
    return {"folder": folder, "log": log, "raw": raw, "uri": uri, "result": result, "logged": logged,
            "scores": scores}


def _evaluate(master, day, *extra):
    out = master["folder"] / f"eval-{day}{'-'.join(extra)}"
    proc = cli("evaluate", "--scores", str(master["scores"][day]), "--transactions", str(master["log"]),
               "--output-dir", str(out), "--tracking-uri", master["uri"], *extra)
    return proc, out


@pytest.mark.slow
def test_evaluate_reproduces_the_training_holdout_auc_and_counts(master):
    proc, out = _evaluate(master, "1997-09-30")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "evaluation.json").read_text())
    holdout = master["result"].metrics
    assert abs(record["metrics"]["auc_churn_probability"] - holdout["auc_churn_probability"]) < 1e-9
    assert abs(record["metrics"]["brier_churn_probability"] - holdout["brier_churn_probability"]) < 1e-9
    # actual outcomes recounted from the raw log: purchase days in (as_of, as_of + 90]
    raw = master["raw"]
    window = raw[(raw["date"] > "1997-09-30") & (raw["date"] <= "1997-12-29")]
    days = window.groupby("customer_id")["date"].nunique()
    assert record["metrics"]["purchases_actual"] == days.sum()
    assert record["metrics"]["churn_rate_actual"] == pytest.approx(1 - len(days) / raw["customer_id"].nunique())
    assert record["metrics"]["revenue_actual"] == pytest.approx(window["amount"].sum(), rel=1e-9)
    deciles = pd.DataFrame(record["tables"]["by_clv_decile"])
    assert deciles["customers"].sum() == 23570 and deciles["actual_purchases"].sum() == days.sum()
    page = (out / "evaluation.html").read_text()
    assert "Realised accuracy of scores as of 1997-09-30" in page and "data:image/png;base64," in page
    assert "<script" not in page and "http" not in page.split("<style>")[0]


@pytest.mark.slow
def test_evaluate_links_its_mlflow_run_to_the_model_version(master):
    import mlflow

    proc, _ = _evaluate(master, "1998-03-31")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split("MLflow run: ")[1].split()[0]
    mlflow.set_tracking_uri(master["uri"])
    tags = mlflow.tracking.MlflowClient().get_run(run_id).data.tags
    logged = master["logged"]
    assert tags["custscore.kind"] == "evaluate"
    assert (tags["model_name"], tags["model_version"]) == (logged.registered_name, logged.registered_version)
    assert tags["model_run_id"] == logged.run_id and tags["evaluate_warnings"] == "none"
    version = mlflow.tracking.MlflowClient().get_model_version(logged.registered_name, logged.registered_version)
    assert version.tags["evaluation_1998-03-31"] == run_id


@pytest.mark.slow
def test_evaluate_refuses_an_uncovered_horizon_and_evaluates_the_covered_part_with_partial(master):
    proc, out = _evaluate(master, "1998-05-31")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert ("scored as of 1998-05-31 for 90 days, but the log ends 1998-06-30, before 1998-08-29; "
            "wait until it covers the horizon or pass --partial to evaluate the 30 days it covers") in proc.stderr
    assert not (out / "evaluation.json").exists()
    proc, out = _evaluate(master, "1998-05-31", "--partial")
    assert proc.returncode == 0, proc.stderr
    assert "warning: the log covers only 30 of the scores' 90 horizon days" in proc.stderr
    record = json.loads((out / "evaluation.json").read_text())
    assert record["window_days"] == 30 and record["window_end"] == "1998-06-30"
    raw = master["raw"]
    assert record["metrics"]["purchases_actual"] == raw[raw["date"] > "1998-05-31"].groupby(
        "customer_id")["date"].nunique().sum()


# ---------------------------------------------------------------- drift

def test_psi_equals_the_hand_computed_value_on_toy_columns():
    from custscore.training.drift import psi

    # 2 bins split at the reference median 4.5: shares (0.5, 0.5) -> (0.8, 0.2)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(np.arange(10.0), np.array([0.0] * 8 + [9.0] * 2), n_bins=2) == pytest.approx(expected, abs=1e-12)
    # 10 reference deciles of 0..99; every current value in the first: nine empty bins at epsilon 1e-4
    expected = (1 - 0.1) * np.log(1 / 0.1) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(np.arange(100.0), np.arange(10.0) / 2) == pytest.approx(expected, abs=1e-12)
    # ties: 0 is 60 % of the reference (its median), so bins are (.., 0] and (0, ..): shares (0.6, 0.4) -> (0.3, 0.7)
    reference, current = np.array([0.0] * 6 + [1, 2, 3, 4]), np.array([0.0] * 3 + [5.0] * 7)
    expected = (0.3 - 0.6) * np.log(0.3 / 0.6) + (0.7 - 0.4) * np.log(0.7 / 0.4)
    assert psi(reference, current, n_bins=2) == pytest.approx(expected, abs=1e-12)
    assert psi(reference, reference) == 0.0


def _drift(master, reference, current, *extra):
    out = master["folder"] / f"drift-{reference.stem}-{current.stem}"
    proc = cli("drift", "--reference", str(reference), "--current", str(current), "--output-dir", str(out),
               *extra)
    return proc, (json.loads((out / "drift.json").read_text()) if (out / "drift.json").exists() else None)


@pytest.mark.slow
def test_drift_of_a_run_against_itself_is_zero_everywhere_and_exits_0(master):
    path = master["scores"]["1997-09-30"]
    proc, record = _drift(master, path, path, "--tracking-uri", master["uri"])
    assert proc.returncode == 0, proc.stderr
    assert all(row["psi"] == 0.0 for row in record["psi"]) and len(record["psi"]) == 20
    assert record["crossed"] == [] and record["customers"] == {"reference": 23570, "current": 23570,
                                                                "in_both": 23570, "new": 0, "gone": 0}
    for shares in record["segment_shares"].values():
        assert all(row["change"] == 0.0 for row in shares)
    for matrix in record["migrations"].values():  # everyone stays in their segment
        assert sum(n for r, row in matrix.items() for c, n in row.items() if r != c) == 0
    assert "MLflow run: " in proc.stdout


@pytest.mark.slow
def test_drift_across_six_months_reports_psi_and_exits_3(master):
    proc, record = _drift(master, master["scores"]["1997-09-30"], master["scores"]["1998-03-31"])
    assert proc.returncode == 3, proc.stderr
    psi = {row["column"]: row["psi"] for row in record["psi"]}
    # CDNOW is one cohort (first purchases in 1997 Q1): six months later every customer is 182 days older
    assert psi["T_days"] > 0.25 and psi["tenure_days"] > 0.25
    assert "PSI of T_days" in proc.stdout and "crossed:" in proc.stdout


@pytest.mark.slow
def test_a_planted_shift_in_one_column_exits_3_and_names_it(master, tmp_path):
    from custscore.serving.output import write_text_atomic
    from custscore.serving.sidecar import read_sidecar, sidecar_path

    source = master["scores"]["1997-09-30"]
    scores = pd.read_csv(source, dtype={"customer_id": str})
    shifted = tmp_path / "shifted.csv"
    scores.assign(monetary_value=scores["monetary_value"] * 3 + 50).to_csv(shifted, index=False)
    write_text_atomic(json.dumps(read_sidecar(source)), sidecar_path(shifted))
    proc, record = _drift(master, source, shifted)
    assert proc.returncode == 3, proc.stderr
    assert [row["column"] for row in record["psi"] if row["level"] == "shift"] == ["monetary_value"]
    assert record["crossed"] == [t for t in record["crossed"] if "monetary_value" in t] != []
