"""``custscore evaluate``: how good scores written at an earlier ``as_of`` turned out to be.

Reads a scores file and its sidecar (as-of date, horizon, model version), opens the log
as it stands now, measures the window after ``as_of``
(:mod:`custscore.training.realised`) and writes ``evaluation.html`` (self-contained) and
``evaluation.json`` to the output folder, plus one MLflow run tagged with the model
version that wrote the scores (and, for a registered version, the tag
``evaluation_<as_of>`` = that run's id on the version).
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from custscore.config import EvaluateConfig, parse_date
from custscore.errors import CustscoreError
from custscore.features.engines import open_engine
from custscore.serving.html import img, page, png_base64, table
from custscore.serving.output import write_text_atomic
from custscore.serving.scores_file import read_scores
from custscore.serving.sidecar import read_sidecar
from custscore.training.evaluate import MODEL
from custscore.training.realised import (RealisedReport, outcome_frame, realised_report, score_table_candidates,
                                         window_warnings)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: the report, its window, warnings, files written and the MLflow run."""

    report: RealisedReport
    as_of: pd.Timestamp
    horizon_days: int
    window_days: int
    model_version: str
    warnings: list[str]
    outputs: list[Path]
    run_id: str


def evaluation_window(as_of: pd.Timestamp, horizon_days: int, last_day: pd.Timestamp,
                      config: EvaluateConfig, scores_path: str | os.PathLike) -> int:
    """Days after ``as_of`` to evaluate: the horizon asked for, or (``partial``) the part covered.

    Refuses (one line) when the log ends before ``as_of`` + window and ``partial`` is off.
    """
    window = config.horizon_days or horizon_days
    end = as_of + pd.Timedelta(days=window)
    if end <= last_day:
        return window
    covered = int((last_day - as_of).days)
    if not config.partial or covered <= 0:
        hint = (f"pass --partial to evaluate the {covered} days it covers" if covered > 0
                else "no day after the scoring date is in the log yet")
        raise CustscoreError(f"--scores {scores_path}: scored as of {as_of.date()} for {window} days, but the log "
                             f"ends {last_day.date()}, before {end.date()}; wait until it covers the horizon or "
                             f"{hint}")
    return covered


def evaluate_file(scores_path: str | os.PathLike, transactions_path: str | os.PathLike,
                  config: EvaluateConfig) -> Evaluation:
    """Evaluate the scores at ``scores_path`` against the log at ``transactions_path``."""
    scores = read_scores(scores_path)
    settings = read_sidecar(scores_path)
    as_of = parse_date(settings.get("as_of"), f"{scores_path}: sidecar as_of")
    horizon = int(settings.get("horizon_days") or 0)
    if horizon <= 0:
        raise CustscoreError(f"--scores {scores_path}: the sidecar has no horizon_days; score it again")
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    engine = open_engine(transactions_path, config.columns, config.engine)
    first_day, last_day = engine.date_range()
    if as_of < first_day:
        raise CustscoreError(f"--scores {scores_path}: scored as of {as_of.date()}, before the log's first "
                             f"transaction ({first_day.date()}): not the log these scores came from")
    window = evaluation_window(as_of, horizon, last_day, config, scores_path)
    warnings = window_warnings(window, horizon, config.partial and window < (config.horizon_days or horizon))
    rows = outcome_frame(scores, engine, as_of, window, score_table_candidates(scores), scale=window / horizon)
    report = realised_report(rows, scores, window)
    model_version = str(settings.get("model_version", ""))
    record = evaluation_record(report, scores_path, transactions_path, as_of, horizon, window, model_version,
                               warnings)
    outputs = [write_text_atomic(json.dumps(record, indent=1) + "\n", folder / "evaluation.json"),
               write_text_atomic(render_evaluation(report, record), folder / "evaluation.html")]
    from custscore.training.tracking import log_report_run, model_link_tags, prepare_experiment, tag_model_version

    experiment_id = prepare_experiment(config)
    tags = {**model_link_tags(model_version), "scores_as_of": as_of.date().isoformat(),
            "evaluate_warnings": " | ".join(warnings) or "none", "partial": str(window < horizon).lower()}
    run_id = log_report_run("evaluate", experiment_id, params=_params(record), metrics=report.metrics, tags=tags,
                            figures=report.figures, tables=report.tables, record=record)
    tag_model_version(tags, f"evaluation_{as_of.date().isoformat()}", run_id)
    return Evaluation(report, as_of, horizon, window, model_version, warnings, outputs, run_id)


def evaluation_record(report: RealisedReport, scores_path, transactions_path, as_of: pd.Timestamp, horizon: int,
                      window: int, model_version: str, warnings: list[str]) -> dict[str, Any]:
    """The JSON output: settings, warnings, metrics (NaN as null) and every table as records."""
    return {
        "scores": str(scores_path), "transactions": str(transactions_path), "as_of": as_of.date().isoformat(),
        "horizon_days": horizon, "window_days": window,
        "window_end": (as_of + pd.Timedelta(days=window)).date().isoformat(), "model_version": model_version,
        "warnings": warnings,
        "metrics": {k: (None if pd.isna(v) else float(v)) for k, v in report.metrics.items()},
        "tables": {name: json.loads(t.to_json(orient="records")) for name, t in report.tables.items()},
    }


def _params(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("scores", "transactions", "as_of", "horizon_days", "window_days", "window_end")}


def render_evaluation(report: RealisedReport, record: dict[str, Any]) -> str:
    """The self-contained HTML page of one evaluation."""
    m = report.metrics
    headline = pd.DataFrame([(k, v) for k, v in m.items()], columns=["metric", "value"])
    parts = [f"<p class='note'>Scores of model {html.escape(record['model_version'])} as of {record['as_of']} "
             f"(horizon {record['horizon_days']} days) against the log in ({record['as_of']}, "
             f"{record['window_end']}]: {int(m['customers']):,} customers. Churn = no purchase in that window.</p>"]
    parts += [f"<p class='alert'>warning: {html.escape(w)}</p>" for w in record["warnings"]]
    parts += ["<h2>Headline</h2>", table(headline, "metrics", digits=4)]
    if "roc.png" in report.figures:
        parts += [f"<h2>Churn ranking</h2><p class='note'>AUC of {MODEL} and the baselines on the same "
                  "customers.</p>", img(png_base64(report.figures["roc.png"]), "ROC curves")]
    parts += ["<h2>Calibration</h2>", table(report.tables["reliability"], "reliability", digits=4),
              img(png_base64(report.figures["reliability.png"]), "reliability plot")]
    parts += ["<h2>Purchases, spend and clv by clv decile</h2><p class='note'>Decile 1 = the highest tenth by "
              "clv. Revenue is realised spend in the window, in the log's amount units.</p>",
              table(report.tables["by_clv_decile"], "by-clv-decile")]
    for name, frame in report.tables.items():
        if name.startswith("by_") and name != "by_clv_decile":
            parts += [f"<h2>By {html.escape(name[3:].replace('_', ' '))}</h2>", table(frame, name.replace("_", "-"))]
    return page(f"Realised accuracy of scores as of {record['as_of']}", parts)


def format_evaluation(run: Evaluation) -> str:
    """The terminal summary."""
    m = run.report.metrics
    lines = [f"evaluated {int(m['customers'])} customers scored as of {run.as_of.date()} over {run.window_days} "
             f"days (model {run.model_version})",
             f"churn: actual rate {m['churn_rate_actual']:.3f}, predicted {m['churn_rate_predicted']:.3f}"
             + (f", AUC {m['auc_' + MODEL]:.3f}" if "auc_" + MODEL in m else "")
             + f", Brier {m['brier_' + MODEL]:.4f}, ECE {m['ece_' + MODEL]:.4f}",
             f"purchases: predicted {m['purchases_predicted']:.0f}, actual {m['purchases_actual']:.0f} "
             f"({m['purchases_error_pct']:+.1f} %)",
             f"revenue: predicted {m['revenue_predicted']:.0f}, actual {m['revenue_actual']:.0f} "
             f"({m['revenue_error_pct']:+.1f} %); Spearman(clv, actual revenue) {m['clv_revenue_spearman']:.3f}",
             f"report: {run.outputs[1]}  json: {run.outputs[0]}  MLflow run: {run.run_id}"]
    return "\n".join(lines)
