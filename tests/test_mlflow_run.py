"""Every MLproject entry point through a real ``mlflow run --env-manager local``, and
``mlflow models serve`` against ``models:/NAME@champion``, on the CDNOW sample.

MLflow quotes each ``-P`` value as one shell word, so these runs catch what a test that
formats the command itself cannot (an options string reaching argparse as one argument,
an empty default arriving as ``''``).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

# One worker runs this module (--dist loadgroup in pyproject.toml): one trained MLproject store (module
# fixture `project`) for all its runs.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow_run")]

BIN = str(Path(sys.executable).parent)


def _env(folder: Path) -> dict:
    # the entry points call `custscore` from PATH: this environment's
    store = f"sqlite:///{folder / 'mlflow.db'}"  # tracking and registry: the same store, whatever the worker set
    return {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
            "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}


def mlflow_run(folder: Path, entry: str, **params: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local",
            "--experiment-name", "mlproject"]
    argv += [a for k, v in params.items() for a in ("-P", f"{k}={v}")]
    return subprocess.run(argv, capture_output=True, text=True, cwd=folder, env=_env(folder), timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory, cdnow_sample_csv, new_store):
    folder = tmp_path_factory.mktemp("mlproject")
    new_store(folder)  # the store _env points the runs at
    train = mlflow_run(folder, "train", transactions=str(cdnow_sample_csv), cutoff="1997-09-30", horizon_days="90",
                       time_unit="W", register_as="mlproject")
    assert train.returncode == 0, train.stderr[-3000:]
    return {"folder": folder, "train": train, "log": cdnow_sample_csv}


def test_train_entry_point_takes_each_option_as_its_own_parameter(project):
    out = project["train"].stdout
    assert "(alpha in weeks" in out and "registered: mlproject version 1" in out
    assert re.search(r"^r\s+0\.243$", out, re.M)  # FHL 2005: r = 0.243 in weeks


def test_score_evaluate_and_drift_entry_points_with_the_uri_train_printed(project):
    folder = project["folder"]
    uri = re.search(r"^model URI: (\S+)$", project["train"].stdout, re.M).group(1)
    assert uri.startswith("runs:/")  # MLflow 3: a logged model, found from its run
    for day in ("1997-09-30", "1998-03-31"):
        score = mlflow_run(folder, "score", model=uri, transactions=str(project["log"]), as_of=day,
                           output=str(folder / f"scores-{day}.csv"))
        assert score.returncode == 0, score.stderr[-3000:]
    evaluate = mlflow_run(folder, "evaluate", scores=str(folder / "scores-1997-09-30.csv"),
                          transactions=str(project["log"]), output_dir=str(folder / "evaluation"))
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    record = json.loads((folder / "evaluation" / "evaluation.json").read_text())
    assert record["model_version"] == uri.split("/")[1] and record["window_days"] == 90
    drift = mlflow_run(folder, "drift", reference=str(folder / "scores-1997-09-30.csv"),
                       current=str(folder / "scores-1997-09-30.csv"), output_dir=str(folder / "drift"))
    assert drift.returncode == 0, drift.stderr[-3000:]
    assert "nothing crosses a threshold" in drift.stdout


def test_backtest_entry_point(project):
    folder = project["folder"]
    proc = mlflow_run(folder, "backtest", transactions=str(project["log"]), horizon_days="90", origins="1",
                      step_days="30", time_unit="W", n_bootstrap="20", output_dir=str(folder / "backtest"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backtest: 1 origins (1998-04-01)" in proc.stdout and (folder / "backtest" / "comparison.csv").exists()


def test_quickstart_entry_point(project):
    folder = project["folder"]
    proc = mlflow_run(folder, "quickstart", workdir=str(folder / "qs"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "models:/custscore@champion" in proc.stdout and (folder / "qs" / "scores.csv").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_for_the_champion_alias(project, tmp_path):
    # MLflow's server runs `uvicorn` from PATH: make it this environment's (docs/http.md, "mlflow models serve")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "uvicorn").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m uvicorn "$@"\n')
    (shim / "uvicorn").chmod(0o755)
    env = _env(project["folder"])
    env["PATH"] = str(shim) + os.pathsep + env["PATH"]
    from mlflow.tracking import MlflowClient
    registry = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_REGISTRY_URI"])
    assert str(registry.get_model_version_by_alias("mlproject", "champion").version) == "1", project["train"].stdout
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/mlproject@champion",
                               "--env-manager", "local", "-p", str(port), "--host", "127.0.0.1"],
                              cwd=project["folder"], env=env, stdout=log, stderr=subprocess.STDOUT)
    body = json.dumps({"dataframe_split": {"columns": ["customer_id", "date", "amount"],
                                           "data": [["00004", "1997-01-01", 29.33], ["00004", "1997-01-18", 29.73],
                                                    ["00004", "1997-08-02", 14.96]]},
                       "params": {"as_of": "1997-09-30"}}).encode()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
                break
            except urllib.error.HTTPError as exc:  # the server answered: no point waiting
                raise AssertionError(exc.read()[-3000:]) from exc
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    (row,) = answer["predictions"]
    # FHL (2005): P(alive) 0.7266 for x = 2, t_x = 30.43, T = 38.86 weeks
    assert row["customer_id"] == "00004" and abs(row["p_alive"] - 0.7266) < 5e-4
