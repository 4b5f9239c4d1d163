"""The account-team report: one self-contained HTML page and ``actions.csv`` from a scores file.

The page holds the value matrix, the pyramid, customer equity by segment, the top at-risk
high-value customers, the lifecycle stages and the churn-probability distribution, with
plots embedded as base64 PNG (no script, no external resource: it opens offline). Every
number is computed from the scores file alone; the segment settings come from its
sidecar (:mod:`custscore.serving.sidecar`).
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from custscore.errors import CustscoreError
from custscore.serving.html import img as html_img, page, png_base64, table as html_table
from custscore.serving.output import (check_not_inputs, check_output_folder, check_output_path, write_table_atomic,
                                      write_text_atomic)
from custscore.serving.sidecar import read_sidecar, sidecar_path
from custscore.spreadsheet import restore_text_columns
from custscore.training.segments import ACTIVITY_TIERS, CLASS_I_CAUSES, LIFECYCLE_STAGES, PYRAMID_TIERS, VALUE_CLASSES

#: Textbook shares (domain notes): value matrix 80/20, pyramid 5/15/80 of customers.
TEXTBOOK_CLASS = {"III+IV": (0.20, 0.80), "I+II": (0.80, 0.20)}
TEXTBOOK_PYRAMID = {"key": (0.05, 0.80), "potential": (0.15, 0.15), "regular": (0.80, 0.05)}
#: Columns of actions.csv, in order.
ACTION_COLUMNS: tuple[str, ...] = (
    "customer_id", "value_at_risk", "churn_probability", "future_value", "current_value", "value_class",
    "value_class_name", "pyramid_tier", "activity_tier", "previous_activity_tier", "lifecycle_stage",
    "class_i_cause", "reason", "retention_policy",
)
#: Class-I causes whose policy is an action now (domain notes: "act quickly or let go",
#: "end the relationship"); such customers are in actions.csv. Each needs its log column.
ACTION_CAUSES: Mapping[str, str] = {"poor credit": "arrears", "price-sensitive": "discount"}
#: Score columns the report reads.
REPORT_COLUMNS: tuple[str, ...] = (
    "customer_id", "churn_probability", "clv", "current_value", "future_value", "value_class", "value_class_name",
    "retention_policy", "class_i_cause", "pyramid_tier", "activity_tier", "previous_activity_tier", "alert",
    "alert_reason", "lifecycle_stage", "partial_churn",
)
TOP_AT_RISK = 20
AT_RISK_COLUMNS = ("customer_id", "value_at_risk", "churn_probability", "future_value", "value_class",
                   "pyramid_tier", "previous_activity_tier", "activity_tier", "lifecycle_stage", "reason")


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """A scores file written by ``custscore score`` (CSV or Parquet), ids as text.

    CSV text cells get back their raw values (:func:`custscore.spreadsheet.restore_formulas`).
    """
    path = Path(path)
    if not path.is_file():
        raise CustscoreError(f"--scores {path}: file not found")
    if path.suffix.lower() == ".parquet":
        scores = pd.read_parquet(path)
        scores["customer_id"] = scores["customer_id"].astype(str)
    else:
        scores = restore_text_columns(pd.read_csv(path, dtype={"customer_id": str}))
    missing = [c for c in REPORT_COLUMNS if c not in scores.columns]
    if missing:
        raise CustscoreError(f"--scores {path}: missing column(s) {missing}; score it again with this version")
    for col in ("alert", "partial_churn"):
        if scores[col].dtype != bool:
            scores[col] = scores[col].astype(str).str.lower().eq("true")
    for col in ("alert_reason", "class_i_cause"):
        if col in scores:
            scores[col] = scores[col].fillna("")
    return scores


def _share(part: pd.Series, whole: float) -> pd.Series:
    return part / whole if whole else part * np.nan


def value_matrix_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per class IV..I and per group III+IV / I+II: counts, shares of customers and value."""
    rows = []
    groups = {c: [c] for c in VALUE_CLASSES} | {"III+IV": ["III", "IV"], "I+II": ["I", "II"]}
    total_current, total_future = scores["current_value"].sum(), scores["future_value"].sum()
    for label, classes in groups.items():
        part = scores[scores["value_class"].isin(classes)]
        textbook = TEXTBOOK_CLASS.get(label, (np.nan, np.nan))
        rows.append({
            "class": label,
            "name": VALUE_CLASSES[label][0] if label in VALUE_CLASSES else "",
            "customers": len(part),
            "share_of_customers": len(part) / len(scores),
            "textbook_share_of_customers": textbook[0],
            "current_value": part["current_value"].sum(),
            "share_of_current_value": _share(part["current_value"].sum(), total_current),
            "textbook_share_of_value": textbook[1],
            "future_value": part["future_value"].sum(),
            "share_of_future_value": _share(part["future_value"].sum(), total_future),
        })
    return pd.DataFrame(rows)


def pyramid_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per pyramid tier: counts and future value with their shares next to the textbook ones.

    The suggested resource share is the tier's share of future value (resources follow profit).
    """
    total = scores["future_value"].sum()
    rows = []
    for tier in PYRAMID_TIERS:
        part = scores[scores["pyramid_tier"] == tier]
        rows.append({
            "tier": tier, "customers": len(part), "share_of_customers": len(part) / len(scores),
            "textbook_share_of_customers": TEXTBOOK_PYRAMID[tier][0],
            "future_value": part["future_value"].sum(),
            "share_of_future_value": _share(part["future_value"].sum(), total),
            "textbook_share_of_value": TEXTBOOK_PYRAMID[tier][1],
            "suggested_resource_share": _share(part["future_value"].sum(), total),
        })
    return pd.DataFrame(rows)


def equity_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Customer equity (sum of ``clv``) by value class x lifecycle stage, with totals."""
    table = scores.pivot_table(index="value_class", columns="lifecycle_stage", values="clv", aggfunc="sum",
                               fill_value=0.0)
    table = table.reindex(index=list(VALUE_CLASSES), columns=list(LIFECYCLE_STAGES), fill_value=0.0)
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table.rename_axis(index="value class", columns=None).reset_index()


def actions_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per customer with an alert, partial churn or an :data:`ACTION_CAUSES` class-I cause.

    Sorted by ``value_at_risk = churn_probability * future_value`` (descending); ties by
    ``customer_id``. ``reason`` joins the alert reason, "partial churn" and "class I:
    <cause>" with "; ".
    """
    acting_cause = scores["class_i_cause"].isin(list(ACTION_CAUSES))
    needs = scores[scores["alert"] | scores["partial_churn"] | acting_cause].copy()
    parts = [needs["alert_reason"],
             needs["partial_churn"].map({True: "partial churn", False: ""}),
             ("class I: " + needs["class_i_cause"]).where(acting_cause.loc[needs.index], "")]
    needs["reason"] = [_join_reasons(texts) for texts in zip(*parts)]
    needs["value_at_risk"] = needs["churn_probability"] * needs["future_value"]
    needs = needs.sort_values(["value_at_risk", "customer_id"], ascending=[False, True], kind="stable")
    return needs[list(ACTION_COLUMNS)].reset_index(drop=True)


def _join_reasons(texts: tuple[str, ...]) -> str:
    return "; ".join(t for t in texts if t)


def class_i_causes_table(scores: pd.DataFrame, optional_columns: Mapping[str, Any]) -> pd.DataFrame:
    """Class-I customers by cause (:data:`CLASS_I_CAUSES` order, then ``unknown``) with value and policy.

    ``optional_columns`` is the sidecar's record of the log columns read; a cause whose
    column was not read is marked "not asserted".
    """
    class_i = scores[scores["value_class"] == "I"]
    rows = []
    for cause in [*CLASS_I_CAUSES, "unknown"]:
        part = class_i[class_i["class_i_cause"] == cause]
        column = ACTION_CAUSES.get(cause)
        read = column is None or bool(optional_columns.get(column))
        rows.append({
            "cause": cause, "customers": len(part),
            "share_of_class_i": len(part) / len(class_i) if len(class_i) else np.nan,
            "current_value": part["current_value"].sum(), "future_value": part["future_value"].sum(),
            "policy": CLASS_I_CAUSES.get(cause, VALUE_CLASSES["I"][2]) if read
            else f"not asserted: no {column} column read",
        })
    return pd.DataFrame(rows)


def _bar_figure(title: str, labels: list[str], series: dict[str, list[float]], ylabel: str) -> Figure:
    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _churn_histogram(churn: np.ndarray, threshold: Optional[float]) -> Figure:
    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    ax.hist(churn, bins=np.linspace(0.0, 1.0, 21), color="#4c72b0", edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"alert threshold {threshold:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("churn probability")
    ax.set_ylabel("customers")
    ax.set_title("Churn probability")
    fig.tight_layout()
    return fig


def render_report(scores: pd.DataFrame, settings: dict[str, Any]) -> str:
    """The report page for ``scores`` and its sidecar ``settings`` (one HTML string)."""
    if len(scores) == 0:
        raise CustscoreError("--scores: the scores file has no customers")
    matrix, pyramid = value_matrix_table(scores), pyramid_table(scores)
    equity, actions = equity_table(scores), actions_table(scores)
    config, thresholds = settings.get("config", {}), settings.get("thresholds", {})
    causes = class_i_causes_table(scores, settings.get("optional_columns") or {})
    stages = scores["lifecycle_stage"].value_counts().reindex(list(LIFECYCLE_STAGES), fill_value=0)
    tiers = scores["activity_tier"].value_counts().reindex(list(ACTIVITY_TIERS), fill_value=0)
    classes = matrix.iloc[:4]
    at_risk = actions[actions["value_class"].isin(["II", "IV"]) | actions["pyramid_tier"].isin(["key", "potential"])]

    figures = {
        "value matrix": _bar_figure("Value matrix: share of customers and of value", classes["class"].tolist(), {
            "customers": classes["share_of_customers"].tolist(),
            "current value": classes["share_of_current_value"].tolist(),
            "future value": classes["share_of_future_value"].tolist()}, "share"),
        "pyramid": _bar_figure("Pyramid: customers vs future value", pyramid["tier"].tolist(), {
            "customers": pyramid["share_of_customers"].tolist(),
            "future value": pyramid["share_of_future_value"].tolist()}, "share"),
        "equity": _bar_figure("Customer equity (sum of clv) by value class", classes["class"].tolist(), {
            "equity": equity.set_index("value class").loc[classes["class"], "total"].tolist()}, "clv"),
        "lifecycle": _bar_figure("Lifecycle stages", list(stages.index), {"customers": stages.tolist()},
                                 "customers"),
        "churn": _churn_histogram(scores["churn_probability"].to_numpy(dtype=float),
                                  config.get("alert_churn_probability")),
    }
    img = {k: html_img(png_base64(v), k) for k, v in figures.items()}
    settings_rows = pd.DataFrame(
        [("scoring", k, settings[k]) for k in ("as_of", "horizon_days", "discount_rate", "model_version",
                                               "n_customers") if k in settings]
        + [("threshold", k, v) for k, v in thresholds.items()] + [("rule", k, v) for k, v in config.items()],
        columns=["kind", "setting", "value"])
    title = f"Customer value report, as of {settings.get('as_of', '')}"  # page() escapes it
    has_amounts = bool(settings.get("has_amounts", True))
    units = (" (actions.csv). Value is in the log's amount units"
             + (f" times a margin rate of {config['margin_rate']:g}" if config.get("margin_rate", 1) != 1 else "")
             + ".</p>") if has_amounts else (
        " (actions.csv). <b>Value not available: the transaction log has no amounts.</b> The value matrix, "
        "the pyramid and value at risk rank by purchases instead: current value = purchases over the value "
        "window, future value = expected purchases in the horizon (the clv column is empty); cut points "
        "labelled clv are in expected purchases.</p>")
    equity_part = ([html_table(equity, "equity"), img["equity"]] if has_amounts else
                   ["<p class='note'>Value not available: the log has no amounts, so there is no customer "
                    "equity.</p>"])
    parts = [
        f"<p class='note'>{len(scores):,} customers; model {html.escape(str(settings.get('model_version', '')))};"
        f" horizon {html.escape(str(settings.get('horizon_days', '')))} days; {len(actions):,} need action"
        + units,
        "<h2>Value matrix</h2><p class='note'>Current value = spend over the last "
        f"{config.get('value_window_days', '?')} days; high above {thresholds.get('current_spend_high', 0):,.2f}. "
        f"Growth potential = clv; high above {thresholds.get('clv_high', 0):,.2f}. The 80/20 rule expects "
        "classes III+IV to be ~20 % of customers with ~80 % of the value.</p>",
        html_table(matrix, "value-matrix"), img["value matrix"],
        "<h2>Class I causes</h2><p class='note'>The first cause that applies, in this order: poor credit "
        f"(latest arrears above {config.get('poor_credit_arrears', '?')}; needs --arrears-col), price-sensitive "
        f"(share of purchase days on discount above {config.get('price_sensitive_share', '?')}; needs "
        "--discount-col), decline (lifecycle stage), early relationship (tenure below "
        f"{config.get('stability_days', '?')} days). Poor-credit and price-sensitive customers are in "
        "actions.csv.</p>",
        html_table(causes, "class-i-causes"),
        "<h2>Customer pyramid</h2><p class='note'>By clv: key above "
        f"{thresholds.get('clv_key', 0):,.2f}, potential above {thresholds.get('clv_potential', 0):,.2f}. "
        "Suggested resource share = the tier's share of future value.</p>",
        html_table(pyramid, "pyramid"), img["pyramid"],
        "<h2>Customer equity by segment</h2><p class='note'>Sum of clv by value class and lifecycle stage.</p>",
        *equity_part,
        f"<h2>Top {TOP_AT_RISK} at-risk high-value customers</h2><p class='note'>Customers needing action in "
        "classes II/IV or the key/potential tiers, by value at risk = churn probability x future value.</p>",
        html_table(at_risk[list(AT_RISK_COLUMNS)].head(TOP_AT_RISK), "at-risk"),
        "<h2>Lifecycle stages and activity tiers</h2>",
        html_table(pd.DataFrame({"stage": stages.index, "customers": stages.to_numpy(),
                             "share_of_customers": stages.to_numpy() / len(scores)}), "lifecycle"),
        img["lifecycle"],
        html_table(pd.DataFrame({"activity_tier": tiers.index, "customers": tiers.to_numpy(),
                             "share_of_customers": tiers.to_numpy() / len(scores)}), "activity-tiers"),
        "<h2>Churn probability</h2>", img["churn"],
        "<h2>Settings</h2><p class='note'>From the scores' sidecar JSON; pass them again to reproduce.</p>",
        html_table(settings_rows, "settings"),
    ]
    return page(title, parts)


def write_report(scores_path: str | os.PathLike, output_path: str | os.PathLike,
                 actions_path: Optional[str | os.PathLike] = None) -> tuple[Path, Path, int]:
    """Write the HTML report and actions.csv (default: ``actions.csv`` beside the report).

    Returns (report path, actions path, number of actions). Both are written atomically;
    before any work, both are checked to be writable and not the scores or their sidecar.
    """
    output = Path(output_path)
    if output.suffix.lower() not in (".html", ".htm"):
        raise CustscoreError(f"--output {output}: the report is HTML; use a .html file name")
    actions_file = output.with_name("actions.csv") if actions_path is None else Path(actions_path)
    check_output_folder(output)
    check_output_path(actions_file, "--actions")
    check_not_inputs({"--output": output, "--actions": actions_file},
                     {"--scores": scores_path, "--scores sidecar": sidecar_path(scores_path)})
    scores = read_scores(scores_path)
    page = render_report(scores, read_sidecar(scores_path))
    actions = actions_table(scores)
    write_table_atomic(actions, actions_file)
    write_text_atomic(page, output)
    return output, actions_file, len(actions)
