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

from conftest import run_cli


@pytest.fixture(scope="session")
def master(tmp_path_factory):
    from custscore.config import ScoreConfig, TrainConfig
    from custscore.features.cdnow import load_cdnow_master
    from custscore.serving.batch import score_file
    from custscore.training.train import train_file

    folder = tmp_path_factory.mktemp("master")
    log = folder / "master.csv"
    raw = load_cdnow_master()
    raw.to_csv(log, index=False)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
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
    proc = run_cli("evaluate", "--scores", str(master["scores"][day]), "--transactions", str(master["log"]),
                   "--output-dir", str(out), "--tracking-uri", master["uri"], *extra)
    return proc, out


def test_evaluate_reproduces_the_training_holdout_auc_and_counts(master):
    proc, out = _evaluate(master, "1997-09-30")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "evaluation.json").read_text())
    holdout = master["result"].metrics
    assert abs(record["metrics"]["auc_churn_classifier"] - holdout["auc_churn_classifier"]) < 1e-9
    assert abs(record["metrics"]["brier_churn_classifier"] - holdout["brier_churn_classifier"]) < 1e-9
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
