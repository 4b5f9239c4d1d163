"""``custscore drift``: compare two scoring runs, write JSON + HTML, log to MLflow if asked.

The maths is :mod:`custscore.training.drift`; this module reads the two scores files
(and their sidecars, for as-of dates and model versions), writes ``drift.json`` and a
self-contained ``drift.html`` to the output folder and, with a tracking URI (or under
``mlflow run``), one MLflow run. The caller turns ``DriftRun.crossed`` into exit status 3.
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from custscore.config import DriftConfig
from custscore.serving.html import page, table
from custscore.serving.output import write_text_atomic
from custscore.serving.scores_file import read_scores
from custscore.serving.sidecar import read_sidecar
from custscore.training.drift import DriftReport, drift_report


@dataclass(frozen=True)
class DriftRun:
    """One comparison: the report, the JSON record, files written and the MLflow run (or None)."""

    report: DriftReport
    record: dict[str, Any]
    outputs: list[Path]
    run_id: Optional[str]

    @property
    def crossed(self) -> list[str]:
        return self.report.crossed


def drift_files(reference_path: str | os.PathLike, current_path: str | os.PathLike, config: DriftConfig) -> DriftRun:
    """Compare the scores at ``reference_path`` and ``current_path``."""
    reference, current = read_scores(reference_path), read_scores(current_path)
    ref_settings, cur_settings = read_sidecar(reference_path), read_sidecar(current_path)
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    report = drift_report(reference, current, config)
    record = {
        "reference": {"scores": str(reference_path), "as_of": ref_settings.get("as_of"),
                      "model_version": ref_settings.get("model_version")},
        "current": {"scores": str(current_path), "as_of": cur_settings.get("as_of"),
                    "model_version": cur_settings.get("model_version")},
        "thresholds": {"psi_threshold": config.psi_threshold, "psi_warn": config.psi_warn,
                       "share_threshold": config.share_threshold, "n_bins": config.n_bins,
                       "epsilon": config.epsilon},
        "crossed": report.crossed, "customers": report.counts,
        "psi": json.loads(report.psi.to_json(orient="records")),
        "segment_shares": {k: json.loads(v.to_json(orient="records")) for k, v in report.shares.items()},
        "migrations": {k: json.loads(v.to_json(orient="index")) for k, v in report.migrations.items()},
    }
    outputs = [write_text_atomic(json.dumps(record, indent=1) + "\n", folder / "drift.json"),
               write_text_atomic(render_drift(report, record), folder / "drift.html")]
    run_id = None
    if config.tracking_uri or os.environ.get("MLFLOW_RUN_ID"):  # asked for, or launched by `mlflow run`
        from custscore.training.tracking import log_report_run, prepare_experiment

        tags = {"drift_crossed": " | ".join(report.crossed) or "none",
                "reference_as_of": str(record["reference"]["as_of"]), "current_as_of": str(record["current"]["as_of"]),
                "reference_model_version": str(record["reference"]["model_version"]),
                "current_model_version": str(record["current"]["model_version"])}
        tables = {"psi": report.psi, **{f"shares_{k}": v for k, v in report.shares.items()}}
        run_id = log_report_run("drift", prepare_experiment(config), params=record["thresholds"],
                                metrics=report.metrics, tags=tags, figures={}, tables=tables, record=record)
    return DriftRun(report, record, outputs, run_id)


def render_drift(report: DriftReport, record: dict[str, Any]) -> str:
    """The self-contained HTML page of one comparison."""
    ref, cur, n = record["reference"], record["current"], report.counts
    parts = [f"<p class='note'>Reference: {html.escape(str(ref['scores']))} (as of {ref['as_of']}, model "
             f"{html.escape(str(ref['model_version']))}); current: {html.escape(str(cur['scores']))} (as of "
             f"{cur['as_of']}, model {html.escape(str(cur['model_version']))}). Customers: {n['reference']:,} and "
             f"{n['current']:,}; {n['in_both']:,} in both, {n['new']:,} new, {n['gone']:,} gone.</p>"]
    if report.crossed:
        parts += ["<h2>Thresholds crossed</h2>"] + [f"<p class='alert'>{html.escape(t)}</p>" for t in report.crossed]
    else:
        parts.append("<p>Nothing crosses a threshold.</p>")
    parts += ["<h2>Population stability index</h2><p class='note'>Ten reference-quantile bins (fewer where values "
              f"tie), empty shares floored at {record['thresholds']['epsilon']:g}; stable below "
              f"{record['thresholds']['psi_warn']:g}, shift from {record['thresholds']['psi_threshold']:g}.</p>",
              table(report.psi, "psi", digits=4)]
    for column, shares in report.shares.items():
        migration = report.migrations[column].reset_index().rename(columns={"reference": f"{column} (reference)"})
        parts += [f"<h2>{html.escape(column.replace('_', ' '))}</h2>", table(shares, f"shares-{column}", digits=4),
                  "<p class='note'>Migration of customers in both runs (rows: reference, columns: current).</p>",
                  table(pd.DataFrame(migration), f"migration-{column}")]
    return page(f"Drift: {cur['as_of']} against {ref['as_of']}", parts)


def format_drift(run: DriftRun) -> str:
    """The terminal summary: PSI per column, what crossed, where the files are."""
    lines = [f"drift: {run.record['current']['as_of']} against {run.record['reference']['as_of']}; "
             f"customers {run.report.counts['reference']} -> {run.report.counts['current']} "
             f"({run.report.counts['new']} new, {run.report.counts['gone']} gone)"]
    lines += [f"  {r.kind:<8}{r.column:<28}PSI {r.psi:7.4f}  {r.level}" for r in run.report.psi.itertuples()]
    lines += [f"crossed: {t}" for t in run.crossed] or ["nothing crosses a threshold"]
    lines.append(f"report: {run.outputs[1]}  json: {run.outputs[0]}"
                 + (f"  MLflow run: {run.run_id}" if run.run_id else ""))
    return "\n".join(lines)
