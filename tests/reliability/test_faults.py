"""Faults: kills mid-write, unreachable tracking servers, model formats of other versions, failed fits."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import cli
from custscore.errors import CustscoreError, FitError

SLOW_WRITER = """
import sys, time
import pandas as pd
from custscore.serving.output import write_table_atomic

class Slow(pd.DataFrame):
    def to_csv(self, handle, **kwargs):
        handle.write(b"customer_id,clv\\n")
        for i in range(10_000):
            handle.write(f"{i:05d},1.0\\n".encode())
            if i == 100:
                handle.flush()
                print("writing", flush=True)
                time.sleep(60)

write_table_atomic(Slow(), sys.argv[1])
"""


def test_sigkill_mid_write_leaves_previous_file(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("previous\n")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        temps = [p for p in tmp_path.iterdir() if p.name != "scores.csv"]
        assert temps and temps[0].stat().st_size > 0  # the partial write went to a temp file
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert target.read_text() == "previous\n"


@pytest.mark.parametrize("delay", [0.5, 2.0, 3.5])
def test_killing_custscore_score_never_leaves_a_truncated_file(trained, cdnow_sample_csv, tmp_path, delay):
    out = tmp_path / "scores.csv"
    out.write_text("previous\n")
    argv = [sys.executable, "-m", "custscore.cli", "score", "--model", "models:/custscore-test@champion",
            "--transactions", str(cdnow_sample_csv), "--as-of", "1997-09-30", "--output", str(out),
            "--tracking-uri", trained["config"].tracking_uri]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    text = out.read_text()
    if text != "previous\n":  # the run finished before the kill: then the file is complete
        scores = pd.read_csv(out, dtype={"customer_id": str})
        assert len(scores) == 2357 and scores["clv"].notna().all()


def test_refused_connection_to_tracking_server_fails_fast(tmp_path, cdnow_sample_csv):
    start = time.monotonic()
    proc = cli("train", "--transactions", str(cdnow_sample_csv), "--cutoff", "1997-09-30",
               "--horizon-days", "90", "--tracking-uri", "http://127.0.0.1:9")
    assert proc.returncode == 2
    assert "MLflow tracking store http://127.0.0.1:9 is not usable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert time.monotonic() - start < 60


def test_silent_tracking_server_times_out(tmp_path, cdnow_sample_csv):
    """A server that accepts connections but never answers: bounded by the HTTP timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        start = time.monotonic()
        proc = cli("score", "--model", "models:/custscore@champion", "--transactions", str(cdnow_sample_csv),
                   "--as-of", "1997-09-30", "--output", str(tmp_path / "out.csv"),
                   "--tracking-uri", f"http://127.0.0.1:{port}",
                   env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"})
        elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr[-1000:]
    assert "cannot load model 'models:/custscore@champion'" in proc.stderr
    assert elapsed < 60
    assert not (tmp_path / "out.csv").exists()


def _with_format(folder, format_version: int, written_by: str) -> None:
    """Rewrite a saved scorer's format and version fields, manifest hashes included."""
    import json

    from custscore.training import bundle
    for name in (bundle.TREE_FILE, bundle.MANIFEST_FILE):
        doc = json.loads((folder / name).read_text())
        doc.update(format_version=format_version, custscore_version=written_by)
        if name == bundle.MANIFEST_FILE:
            doc["sha256"][bundle.TREE_FILE] = bundle.sha256((folder / bundle.TREE_FILE).read_bytes())
        (folder / name).write_text(json.dumps(doc))


def test_model_of_another_format_is_refused_naming_versions(trained, tmp_path):
    from custscore.training import bundle
    bundle.save_scorer(trained["result"].scorer, tmp_path / "scorer")
    _with_format(tmp_path / "scorer", 0, "0.0.1")
    with pytest.raises(CustscoreError, match=r"format 0 \(written by custscore 0\.0\.1\) cannot be read by "
                                             r"custscore .* \(format 4\); retrain"):
        bundle.load_scorer(tmp_path / "scorer")


def test_model_of_another_format_is_refused_when_loaded_by_uri(trained, tmp_path):
    """The whole MLflow model folder, with its scorer files from another format."""
    import shutil

    import mlflow

    from custscore.serving.model_source import load_scorer_from_uri
    from custscore.training import bundle
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    local = mlflow.artifacts.download_artifacts(f"runs:/{trained['logged'].run_id}/model", dst_path=str(tmp_path))
    folder = tmp_path / "old-model"
    shutil.copytree(local, folder)
    _with_format(folder / bundle.MODEL_SCORER_DIR, 0, "0.0.1")
    with pytest.raises(CustscoreError, match=f"model '{folder}': format 0 .written by custscore 0.0.1. cannot be read"):
        load_scorer_from_uri(str(folder))


def test_fit_that_never_converges_is_reported_with_the_data_summary(monkeypatch, cdnow_sample_csv):
    from custscore.config import TrainConfig
    from custscore.features.customers import PandasEngine
    from custscore.features.io import read_transactions
    from custscore.training import fitting, pipeline

    def never(fun, x0, **kwargs):
        from scipy.optimize import OptimizeResult
        return OptimizeResult(x=np.asarray(x0), fun=1.0, jac=np.ones_like(x0), success=False, message="nope")

    monkeypatch.setattr(fitting, "minimize", never)
    engine = PandasEngine(read_transactions(cdnow_sample_csv))
    with pytest.raises(FitError, match=r"BG/NBD at cutoff 1997-09-30 \(2357 customers, 946 with repeat purchases\)"
                                       r": BG/NBD did not converge from 5 starts"):
        pipeline.train_scorer(engine, TrainConfig(cutoff="1997-09-30", horizon_days=90))


@pytest.mark.slow
def test_two_trainings_registering_one_name_on_a_fresh_store_both_succeed(tmp_path, cdnow_sample_csv):
    """Both create the SQLite store at once: the store lock serialises table creation and registration."""
    import mlflow
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [sys.executable, "-m", "custscore.cli", "train", "--transactions", str(cdnow_sample_csv),
            "--cutoff", "1997-09-30", "--horizon-days", "90", "--register-as", "X", "--tracking-uri", uri]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    mlflow.set_tracking_uri(uri)
    versions = MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions("name='X'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert sorted(out.split("registered: X version ")[1][0] for out, _ in outputs) == ["1", "2"]


def test_a_store_that_is_not_a_database_is_one_line(tmp_path, cdnow_sample_csv):
    (tmp_path / "mlflow.db").write_text("not a database\n")
    proc = cli("train", "--transactions", str(cdnow_sample_csv), "--cutoff", "1997-09-30", "--horizon-days", "90",
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert "is not usable: (sqlite3.DatabaseError) file is not a database" in proc.stderr
