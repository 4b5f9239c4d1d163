"""Shared fixtures: the CDNOW sample as a CSV log, and one trained + registered model."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cdnow_sample_csv(tmp_path_factory) -> Path:
    from custscore.features.cdnow import load_cdnow_sample
    path = tmp_path_factory.mktemp("data") / "cdnow_sample.csv"
    load_cdnow_sample().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def new_store(tmp_path_factory):
    """``new_store(folder)``: the tracking URI of an empty, ready MLflow SQLite store ``folder/mlflow.db``.

    A new store runs all of MLflow's schema migrations, one committed transaction each (seconds
    of disk syncs); each worker migrates one template and copies it. Tests of what happens on
    a store that does not exist yet (quickstart, lookups, concurrent first trainings) keep
    passing a plain path.
    """
    from mlflow.tracking import MlflowClient

    template = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()  # creates and migrates it

    def copy(folder: Path) -> str:
        shutil.copyfile(template, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"

    return copy


@pytest.fixture(scope="session")
def trained(tmp_path_factory, cdnow_sample_csv, new_store):
    """Train + register on the CDNOW sample with the paper's conventions (weeks)."""
    from custscore.config import TrainConfig
    from custscore.training.train import train_file
    folder = tmp_path_factory.mktemp("mlflow")
    config = TrainConfig(cutoff="1997-09-30", holdout_end="1998-06-30", horizon_days=90, time_unit="W",
                         tracking_uri=new_store(folder), register_as="custscore-test", experiment="tests")
    result, logged = train_file(cdnow_sample_csv, config)
    return {"result": result, "logged": logged, "config": config, "folder": folder}


#: Set (e.g. CUSTSCORE_SCREENSHOTS=docs, relative to the repository) to save the browser tests'
#: screenshots there (docs/report-cdnow.png, docs/page-customer.png); unset, nothing is written.
SCREENSHOTS_ENV = "CUSTSCORE_SCREENSHOTS"


def screenshot_folder() -> Path | None:
    """Where the browser tests save their screenshots, or None (the default: the tree is not modified)."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return None
    target = Path(folder) if Path(folder).is_absolute() else REPO / folder
    target.mkdir(parents=True, exist_ok=True)
    return target


def same_error_as_pandas(open_engine, path: Path) -> str:
    """``open_engine(path)``'s one-line error, asserted equal to the pandas engine's (features.io); returned."""
    from custscore.errors import CustscoreError
    from custscore.features.io import read_transactions

    with pytest.raises(CustscoreError) as expected:
        read_transactions(path)
    with pytest.raises(CustscoreError) as got:
        open_engine(path)
    assert str(got.value) == str(expected.value)
    return str(got.value)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``custscore ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "custscore.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=300)


@pytest.fixture(scope="session")
def cdnow_weeks():
    """CDNOW sample summarised at 1997-09-30 in weeks (days / 7): ``(x, t_x, T)`` of 2,357 customers."""
    from custscore.features.cdnow import load_cdnow_sample
    from custscore.features.io import normalise_transactions
    from custscore.features.periods import merge_periods
    from custscore.features.rfm import rfm_summary

    summary = rfm_summary(merge_periods(normalise_transactions(load_cdnow_sample())), "1997-09-30", "W")
    return (summary["frequency"].to_numpy(), summary["recency_weeks"].to_numpy(), summary["T_weeks"].to_numpy())
