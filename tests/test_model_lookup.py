"""A model lookup names the tracking store it searched, and a failed lookup creates no file.

Before this, `custscore score --model models:/custscore@champion` run from a folder without
a store left an empty ~1 MB ./mlflow.db behind (MLflow creates the SQLite file on first use).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import cli, run_cli

NO_ENV_STORE = {"MLFLOW_TRACKING_URI": ""}  # the default store, sqlite:///mlflow.db in the current folder


def _one_line(proc) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("command", ["score", "serve"])
@pytest.mark.parametrize("model", ["models:/custscore@champion", "models:/custscore/3", "runs:/0123456789abcdef/model"])
def test_missing_default_store_is_refused_and_not_created(tmp_path, command, model):
    work = tmp_path / "empty"
    work.mkdir()
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,amount\n1,2020-01-01,3\n")
    args = (["--transactions", str(log), "--as-of", "2020-03-01", "--output", str(work / "scores.csv")]
            if command == "score" else ["--port", "0"])
    run = cli if command == "score" else run_cli  # serve in a subprocess: were it to start, its timeout ends it
    err = _one_line(run(command, "--model", model, *args, cwd=work, env=NO_ENV_STORE))
    assert err == (f"custscore {command}: error: cannot load model {model!r} from tracking store sqlite:///mlflow.db: "
                   f"no such file {work / 'mlflow.db'}; pass --tracking-uri sqlite:///PATH/mlflow.db with the "
                   "store the model was trained into (the quickstart's is custscore-quickstart/mlflow.db)")
    assert list(work.iterdir()) == []  # no mlflow.db, no mlruns/, no lock, no output


def test_explicit_missing_store_names_its_path(tmp_path):
    db = tmp_path / "elsewhere" / "mlflow.db"
    err = _one_line(cli("score", "--model", "models:/custscore@champion", "--transactions", "x.csv",
                        "--as-of", "2020-03-01", "--output", str(tmp_path / "s.csv"),
                        "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path))
    assert f"from tracking store sqlite:///{db}: no such file {db}; pass --tracking-uri" in err
    assert list(tmp_path.iterdir()) == []


def test_existing_store_without_the_model_is_named(trained, tmp_path):
    uri = trained["config"].tracking_uri
    before = sorted(p.name for p in trained["folder"].iterdir())
    err = _one_line(cli("score", "--model", "models:/nope@champion", "--transactions", "x.csv",
                        "--as-of", "2020-03-01", "--output", str(tmp_path / "s.csv"), "--tracking-uri", uri,
                        cwd=tmp_path))
    assert err.startswith(f"custscore score: error: cannot load model 'models:/nope@champion' from tracking store "
                          f"{uri}: "), err
    assert "nope" in err.split(f"{uri}: ", 1)[1]  # MLflow's reason names the missing model
    assert sorted(p.name for p in trained["folder"].iterdir()) == before and list(tmp_path.iterdir()) == []


def test_a_local_model_folder_needs_no_store(tmp_path):
    err = _one_line(cli("score", "--model", str(tmp_path / "no-model"), "--transactions", "x.csv",
                        "--as-of", "2020-03-01", "--output", str(tmp_path / "s.csv"), cwd=tmp_path,
                        env=NO_ENV_STORE))
    assert "tracking store" not in err and "cannot load model" in err
    assert list(tmp_path.iterdir()) == []


def test_a_model_folder_is_read_in_place_without_mlflow(tmp_path, trained, cdnow_sample_csv):
    """``score --model FOLDER``: MLflow is never imported, the folder is untouched, and the
    scores equal those of the same model looked up by its run (``runs:/ID/model``)."""
    import subprocess
    import sys

    import mlflow
    import pandas as pd

    store = trained["config"].tracking_uri
    mlflow.set_tracking_uri(store)
    folder = Path(mlflow.artifacts.download_artifacts(trained["logged"].model_uri, dst_path=str(tmp_path / "model")))
    before = sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*"))
    script = ("import sys; from custscore.config import ScoreConfig; from custscore.serving.batch import score_file; "
              f"score_file({str(folder)!r}, {str(cdnow_sample_csv)!r}, {str(tmp_path / 'folder.csv')!r}, "
              "ScoreConfig(as_of='1997-09-30'), None); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "MLFLOW_TRACKING_URI": ""}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"  # no mlflow module imported
    assert list(tmp_path.glob("mlflow.db")) == []  # and no store created
    assert sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*")) == before
    run_id = trained["logged"].run_id
    by_run = cli("score", "--model", f"runs:/{run_id}/model", "--transactions", str(cdnow_sample_csv),
                 "--as-of", "1997-09-30", "--output", str(tmp_path / "run.csv"), "--tracking-uri", store)
    assert by_run.returncode == 0, by_run.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "folder.csv"), pd.read_csv(tmp_path / "run.csv"),
                                  check_exact=True)
