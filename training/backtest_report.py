"""``custscore backtest``: run the rolling-origin backtest on a file, write and log it.

Outputs in ``config.output_dir``: ``metrics.csv`` and ``metrics.json`` (one row per
scope x score x metric, scope = origin date or ``pooled``), ``by_origin.csv``,
``comparison.csv`` and the PNG plots. MLflow: one parent run (pooled metrics, tables,
plots) with a child run per origin (its training params and metrics, tables, plots).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from custscore.atomic import write_atomic
from custscore.config import BacktestConfig
from custscore.errors import CustscoreError
from custscore.spreadsheet import csv_bytes
from custscore.features.engines import open_engine
from custscore.training.backtest import BacktestResult, backtest_warnings, run_backtest
from custscore.training.tracking import _finite, log_fit_warnings, log_params_beside, model_params, prepare_experiment


def backtest_file(transactions_path: str | os.PathLike, config: BacktestConfig) -> tuple[BacktestResult, str]:
    """Backtest the log at ``transactions_path``; return the result and the parent run id."""
    engine = open_engine(transactions_path, config.columns, "pandas")
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise CustscoreError(f"--output-dir {folder}: not a folder")
    experiment_id = prepare_experiment(config.train_config(engine.date_range()[1]))
    result = run_backtest(engine, config)
    write_outputs(result, folder)
    return result, log_backtest(result, experiment_id)


def metrics_table(result: BacktestResult) -> pd.DataFrame:
    """Long table of every origin's and the pooled bootstrap table, with a ``scope`` column."""
    parts = [r.table.assign(scope=r.origin.date().isoformat(), churn_model=r.train.scorer.churn_model)
             for r in result.origins]
    shipped = ",".join(dict.fromkeys(r.train.scorer.churn_model for r in result.origins))
    parts.append(result.table.assign(scope="pooled", churn_model=shipped))
    table = pd.concat(parts, ignore_index=True)
    return table[["scope", "churn_model"] + [c for c in table.columns if c not in ("scope", "churn_model")]]


def write_outputs(result: BacktestResult, folder: Path) -> list[Path]:
    """Write the tables (CSV for spreadsheets, JSON) and the pooled plots to ``folder`` atomically."""
    table = metrics_table(result)
    files = {
        "metrics.csv": csv_bytes(table),
        "metrics.json": table.to_json(orient="records", indent=1).encode(),
        "by_origin.csv": csv_bytes(result.by_origin),
        "comparison.csv": csv_bytes(result.comparison()),
        "summary.json": json.dumps(_finite(result.metrics), indent=1, sort_keys=True).encode(),
    }
    files.update({name: _png(fig) for name, fig in result.figures.items()})
    return [_write_atomic(folder / name, data) for name, data in files.items()]


def log_backtest(result: BacktestResult, experiment_id: str | None) -> str:
    """One parent run (pooled) with a nested child run per origin; returns the parent id."""
    cfg = result.config
    train_cfg = cfg.train_config(result.origins[0].origin)
    with mlflow.start_run(experiment_id=experiment_id, run_name="backtest") as parent:
        mlflow.set_tag("custscore.kind", "backtest")
        log_fit_warnings(backtest_warnings(result))
        log_params_beside({"horizon_days": cfg.horizon_days, "time_unit": cfg.time_unit,
                           "origins": ",".join(r.origin.date().isoformat() for r in result.origins),
                           "n_bootstrap": cfg.n_bootstrap, "confidence": cfg.confidence, "seed": cfg.seed,
                           "bgnbd_penalizer": train_cfg.bgnbd_penalizer, "gg_penalizer": train_cfg.gg_penalizer,
                           "discount_rate": cfg.discount_rate,
                           "churn_calibration": _calibration_methods(result),
                           "churn_windows": cfg.churn_windows,
                           **({"covariates": cfg.covariates} if cfg.covariates is not None else {}),
                           "churn_model": ",".join(r.train.scorer.churn_model for r in result.origins)})
        mlflow.log_metrics(_finite(result.metrics))
        _log_tables_and_plots(metrics_table(result), result.figures)
        mlflow.log_table(result.by_origin, "tables/by_origin.json")
        mlflow.log_table(result.comparison(), "tables/comparison.json")
        for origin in result.origins:
            with mlflow.start_run(experiment_id=experiment_id, nested=True,
                                  run_name=f"origin {origin.origin.date()}"):
                log_fit_warnings(origin.train.warnings)
                mlflow.log_params(model_params(origin.train, cfg.train_config(origin.origin)))
                mlflow.log_metrics(_finite({**origin.train.metrics, **origin.metrics}))
                _log_tables_and_plots(origin.table, origin.figures)
        return parent.info.run_id


def _calibration_methods(result: BacktestResult) -> str:
    methods = {str(getattr(r.train.scorer.churn, "calibration_", "none")) for r in result.origins}
    return ",".join(sorted(methods))


def _log_tables_and_plots(table: pd.DataFrame, figures: dict[str, Figure]) -> None:
    mlflow.log_table(table, "tables/metrics.json")
    mlflow.log_text(table.to_csv(index=False), "tables/metrics.csv")
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"plots/{name}")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda handle: handle.write(data))
