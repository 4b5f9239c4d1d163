"""Shared fixtures: the CDNOW sample as a CSV log, and one trained + registered model."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import traceback
import warnings
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


#: Set (to anything) to run every :func:`cli` call through :func:`run_cli` in a subprocess: a
#: check that the in-process runs give the same results (``CUSTSCORE_CLI_SUBPROCESS=1 pytest ...``).
CLI_SUBPROCESS_ENV = "CUSTSCORE_CLI_SUBPROCESS"

#: The warning filters of a fresh interpreter (``python3 -c "import warnings; print(warnings.filters)"``),
#: which the subprocess of :func:`run_cli` starts with; pytest's own filters record warnings instead.
FRESH_WARNING_FILTERS = [("default", None, DeprecationWarning, "__main__", 0),
                         ("ignore", None, DeprecationWarning, None, 0),
                         ("ignore", None, PendingDeprecationWarning, None, 0),
                         ("ignore", None, ImportWarning, None, 0),
                         ("ignore", None, ResourceWarning, None, 0)]


#: The loggers MLflow configures when imported, from ``MLFLOW_LOGGING_LEVEL`` (mlflow.utils.logging_utils).
MLFLOW_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's default ``warnings.showwarning``: the formatted warning on (the current) stderr."""
    (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """:func:`run_cli` without the subprocess: ``custscore.cli.main(ARGS)`` in this process.

    Each subprocess starts an interpreter and imports pandas, MLflow and custscore again (2-4 s
    on the shared 2-core machine); here they are imported once per worker. What a test sees is
    kept: stdout and stderr as text, ``main``'s exit status (argparse's for usage errors), an
    exception ``main`` lets through as its traceback on stderr and status 1 (as Python does),
    warnings printed on stderr with a fresh interpreter's filters (not recorded by pytest).
    ``cwd``, ``os.environ`` and MLflow's tracking and registry URIs are restored afterwards.
    Tests about the process itself (signals, concurrent processes, environment read at import,
    ``python -m``) use :func:`run_cli`.
    """
    if os.environ.get(CLI_SUBPROCESS_ENV):
        return run_cli(*args, cwd=cwd, env=env)
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils
    from mlflow.utils import logging_utils

    from custscore.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_uris = tracking_utils._tracking_uri, registry_utils._registry_uri
    loggers = [logging.getLogger(name) for name in MLFLOW_LOGGERS]
    saved_loggers = [(logger.handlers, logger.level, logger.propagate) for logger in loggers]
    try:
        os.environ.update(env or {})
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # as main() does before MLflow is imported
        os.environ.setdefault("COLUMNS", "80")  # argparse's help width with stdout a pipe, not this terminal
        logging_utils._configure_mlflow_loggers("mlflow")  # what importing MLflow does with that level
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.filters[:] = FRESH_WARNING_FILTERS
            warnings._filters_mutated()
            warnings.showwarning = _print_warning
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse: --help (0), usage errors (2)
                code = exc.code
                if isinstance(code, str):
                    print(code, file=sys.stderr)
                status = 1 if isinstance(code, str) else (code or 0)
            except Exception:  # noqa: BLE001 - what `python -m custscore.cli` would show and exit with
                traceback.print_exc(file=sys.stderr)
                status = 1
    finally:
        while mlflow.active_run() is not None:  # as MLflow's atexit hook ends a run left open
            mlflow.end_run()
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_uris
        for logger, (handlers, level, propagate) in zip(loggers, saved_loggers):
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["custscore", *argv], status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def cdnow_weeks():
    """CDNOW sample summarised at 1997-09-30 in weeks (days / 7): ``(x, t_x, T)`` of 2,357 customers."""
    from custscore.features.cdnow import load_cdnow_sample
    from custscore.features.io import normalise_transactions
    from custscore.features.periods import merge_periods
    from custscore.features.rfm import rfm_summary

    summary = rfm_summary(merge_periods(normalise_transactions(load_cdnow_sample())), "1997-09-30", "W")
    return (summary["frequency"].to_numpy(), summary["recency_weeks"].to_numpy(), summary["T_weeks"].to_numpy())
