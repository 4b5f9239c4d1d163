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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from custscore.errors import CustscoreError
from custscore.serving.html import fmt, img as html_img, page, png_base64, table as html_table
from custscore.serving.output import (check_not_inputs, check_output_folder, check_output_path, write_table_atomic,
                                      write_text_atomic)
from custscore.serving.scores_file import ACTION_CAUSES, needs_action, read_scores
from custscore.serving.scores_file import horizon_words as _horizon_words, value_at_risk
from custscore.serving.sidecar import read_sidecar, sidecar_path
from custscore.training.reasons import REASON_COLUMNS
from custscore.training.segments import ACTIVITY_TIERS, CLASS_I_CAUSES, LIFECYCLE_STAGES, PYRAMID_TIERS, VALUE_CLASSES

#: Textbook shares (domain notes): value matrix 80/20, pyramid 5/15/80 of customers.
TEXTBOOK_CLASS = {"III+IV": (0.20, 0.80), "I+II": (0.80, 0.20)}
TEXTBOOK_PYRAMID = {"key": (0.05, 0.80), "potential": (0.15, 0.15), "regular": (0.80, 0.05)}
#: Columns of actions.csv, in order.
ACTION_COLUMNS: tuple[str, ...] = (
    "customer_id", "value_at_risk", "churn_probability", "future_value", "current_value", "value_class",
    "value_class_name", "pyramid_tier", "activity_tier", "previous_activity_tier", "lifecycle_stage",
    "class_i_cause", "reason", "retention_policy", *REASON_COLUMNS,
)
TOP_AT_RISK = 20
#: Score columns shown as ranges when present (older score files lack them): CLV and the
#: purchases in the horizon, 10th-90th percentiles (training.uncertainty).
INTERVAL_COLUMNS: tuple[str, ...] = ("clv", "clv_p10", "clv_p90", "expected_purchases", "purchases_p10",
                                     "purchases_p90")
#: Plain names of the activity tiers (the bounds are in the glossary and the settings).
TIER_NAMES: Mapping[str, str] = {"A": "very active", "B": "active", "C": "occasional", "D": "slipping",
                                 "none": "inactive"}
#: Money columns of actions.csv (rounded to the currency's decimals; full precision stays in the scores).
MONEY_COLUMNS: tuple[str, ...] = ("value_at_risk", "future_value", "current_value")
#: Decimals of churn_probability in actions.csv.
PROBABILITY_DECIMALS = 3


@dataclass(frozen=True)
class Currency:
    """How money is shown to people: a symbol in front and a number of decimals.

    >>> Currency("$", 0).format(-1234.5), Currency().format(1234.567)
    ('-$1,234', '1,234.57')
    """

    symbol: str = ""
    decimals: int = 2

    def format(self, value: float) -> str:
        sign = "-" if value < 0 and round(abs(value), self.decimals) > 0 else ""
        return f"{sign}{self.symbol}{abs(value):,.{self.decimals}f}"


def parse_currency(text: Optional[str]) -> Currency:
    """``--currency SYMBOL[:DECIMALS]`` (``$``, ``EUR :0``, ``€:2``); None = no symbol, 2 decimals.

    >>> parse_currency("€:0"), parse_currency("$")
    (Currency(symbol='€', decimals=0), Currency(symbol='$', decimals=2))
    """
    if text is None:
        return Currency()
    symbol, _, decimals = text.rpartition(":") if ":" in text else (text, "", "2")
    if not decimals.isdigit() or int(decimals) > 4 or not symbol.strip() or len(symbol) > 8 \
            or any(c in symbol for c in "<>&\"'") or not symbol.isprintable():
        raise CustscoreError(f"--currency {text!r}: expected SYMBOL[:DECIMALS] with a symbol of at most 8 "
                             "printable characters (no <>&\"') and 0-4 decimals, e.g. '$' or 'EUR :0'")
    return Currency(symbol, int(decimals))


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
    """One row per customer of :func:`needs_action`.

    Sorted by :func:`value_at_risk` (descending); ties by ``customer_id``. ``reason``
    joins the alert reason, "partial churn" and "class I: <cause>" with "; ".
    """
    acting_cause = scores["class_i_cause"].isin(list(ACTION_CAUSES))
    needs = scores[needs_action(scores)].copy()
    parts = [needs["alert_reason"],
             needs["partial_churn"].map({True: "partial churn", False: ""}),
             ("class I: " + needs["class_i_cause"]).where(acting_cause.loc[needs.index], "")]
    needs["reason"] = [_join_reasons(texts) for texts in zip(*parts)]
    needs["value_at_risk"] = value_at_risk(needs)
    needs = needs.sort_values(["value_at_risk", "customer_id"], ascending=[False, True], kind="stable")
    extra = [c for c in INTERVAL_COLUMNS if c in needs.columns]
    return needs[list(ACTION_COLUMNS) + extra].reset_index(drop=True)


def rounded_for_people(actions: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """``actions`` with :data:`MONEY_COLUMNS` rounded to ``decimals`` and churn_probability to
    :data:`PROBABILITY_DECIMALS` (a copy; the order is kept)."""
    return actions.assign(**{c: actions[c].round(decimals) for c in MONEY_COLUMNS},
                          churn_probability=actions["churn_probability"].round(PROBABILITY_DECIMALS))


def people_list(actions: pd.DataFrame, money: "Currency | None", top: int) -> pd.DataFrame:
    """The first ``top`` customers of ``actions`` as people read them: plain names next to
    the codes, churn risk in %, why (the alert and the churn reasons) and the recommended action.

    ``money`` None: value columns are purchases (a log without amounts), shown with 1 decimal.
    """
    part = actions.head(top)
    fmt = money.format if money is not None else (lambda v: f"{v:,.1f}")
    tiers = [f"{TIER_NAMES.get(p, p)} ({p}) -> {TIER_NAMES.get(t, t)} ({t})" if p != t else f"{TIER_NAMES.get(t, t)} ({t})"
             for p, t in zip(part["previous_activity_tier"], part["activity_tier"])]
    why = [_join_reasons(texts) for texts in zip(part["reason"], *(part[c] for c in REASON_COLUMNS))]
    ranges = {}
    if all(c in part.columns for c in INTERVAL_COLUMNS):  # "CLV 1,200 (900-1,500)"
        if money is not None:
            ranges["CLV (80 % range)"] = [f"{fmt(v)} ({fmt(lo)}-{fmt(hi)})"
                                          for v, lo, hi in zip(part["clv"], part["clv_p10"], part["clv_p90"])]
        ranges["purchases expected (80 % range)"] = [
            f"{v:,.1f} ({lo:,.0f}-{hi:,.0f})"
            for v, lo, hi in zip(part["expected_purchases"], part["purchases_p10"], part["purchases_p90"])]
    return pd.DataFrame({
        "customer": part["customer_id"].to_numpy(),
        "value at risk": [fmt(v) for v in part["value_at_risk"]],
        "churn risk": [f"{100 * p:.0f} %" for p in part["churn_probability"]],
        "future value": [fmt(v) for v in part["future_value"]],
        "value class": [f"{c} {n}" for c, n in zip(part["value_class"], part["value_class_name"])],
        "pyramid": part["pyramid_tier"].to_numpy(),
        "activity": tiers,
        "stage": part["lifecycle_stage"].to_numpy(),
        "why": why,
        "recommended action": part["retention_policy"].to_numpy(),
        **ranges,
    })


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


def _money_cell(value: Any, column: str, money: Currency) -> str:
    """A money cell: numbers (not booleans, not NaN) through ``money``, anything else as :func:`fmt`."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
            and not np.isnan(value):
        return money.format(float(value))
    return fmt(value, column)


def _table(frame: pd.DataFrame, table_id: str, money: Optional[Currency] = None,
           money_columns: tuple[str, ...] = ()) -> str:
    """An HTML table (:func:`custscore.serving.html.table`); ``money_columns`` formatted by ``money``."""
    formats = ({c: (lambda v, c=c: _money_cell(v, c, money)) for c in money_columns} if money is not None else {})
    return html_table(frame, table_id, formats=formats)


def _glossary(horizon_words: str, has_amounts: bool, cadence: str) -> str:
    terms = {
        "churn risk": f"probability that the customer makes no purchase in the {horizon_words}",
        "future value": (f"expected revenue of the {horizon_words}, discounted to today" if has_amounts else
                         f"expected purchases in the {horizon_words} (the log has no amounts)"),
        "current value": "revenue over the value window" if has_amounts else "purchases over the value window",
        "value at risk": "churn risk x future value: what is lost if the customer goes",
        "value class": "IV platinum, III gold (high current value), II iron (high future value only), I lead (low both)",
        "pyramid": "key (top 5 % by future value), potential (next 15 %), regular (the rest)",
        "activity": ("by days since the last purchase against this log's usual gaps between purchases"
                     if cadence == "learnt" else "by purchases in the last calendar month (A more than 10, "
                     "B 6-10, C 1-5, D none after some the month before)"),
        "stage": "exploration (trust not yet built), formation (buying more), stability (steady), "
                 "decline (buying less, or silent for long)",
        "why": "the alert and what raises the churn risk most, with the customer's own numbers",
    }
    return "<h2>Glossary</h2><dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                                             for k, v in terms.items()) + "</dl>"


def render_report(scores: pd.DataFrame, settings: dict[str, Any], currency: Optional[Currency] = None) -> str:
    """The report page for ``scores`` and its sidecar ``settings`` (one HTML string); money
    shown with ``currency`` (default: no symbol, 2 decimals)."""
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
    has_amounts = bool(settings.get("has_amounts", True))
    money = (currency or Currency()) if has_amounts else None
    horizon_words, discount_words = _horizon_words(settings)
    cadence = str(config.get("cadence", "textbook"))
    largest_stage, largest_tier = stages.idxmax(), tiers.idxmax()
    settings_rows = pd.DataFrame(
        [("scoring", k, settings[k]) for k in ("as_of", "horizon_days", "discount_rate", "model_version",
                                               "n_customers") if k in settings]
        + [("threshold", k, v) for k, v in thresholds.items()] + [("rule", k, v) for k, v in config.items()],
        columns=["kind", "setting", "value"])
    title = f"Customer value report, as of {settings.get('as_of', '')}"  # page() escapes it
    units = (" (actions.csv). Future value is the expected revenue of the " + horizon_words + ", " + discount_words
             + "; value is in " + (f"{html.escape(money.symbol)} " if money and money.symbol else "the log's amount units")
             + (f" times a margin rate of {config['margin_rate']:g}" if config.get("margin_rate", 1) != 1 else "")
             + ".</p>") if has_amounts else (
        " (actions.csv). <b>Value not available: the transaction log has no amounts.</b> The value matrix, "
        "the pyramid and value at risk rank by purchases instead: current value = purchases over the value "
        "window, future value = expected purchases in the horizon (the clv column is empty); cut points "
        "labelled clv are in expected purchases.</p>")
    fmt = money.format if money is not None else (lambda v: f"{v:,.2f}")
    value_cols = ("current_value", "future_value")
    equity_part = ([_table(equity, "equity", money, tuple(str(c) for c in equity.columns)), img["equity"]]
                   if has_amounts else
                   ["<p class='note'>Value not available: the log has no amounts, so there is no customer "
                    "equity.</p>"])
    stage_bounds = (f"Stages and activity tiers follow this log's own rhythm: repeat buyers' usual gaps between "
                    f"purchases are {', '.join(f'{g:,.0f}' for g in thresholds['gap_days'])} days (half, three "
                    "quarters and 90 % of them buy at least this often)." if cadence == "learnt"
                    and thresholds.get("gap_days") else "Stages and activity tiers use the textbook bounds.")
    parts = [
        f"<p class='note'>{len(scores):,} customers; looking {horizon_words} ahead; {len(actions):,} need action"
        + units,
        f"<h2>Top {TOP_AT_RISK} at-risk high-value customers</h2><p class='note'>Customers needing action in "
        "classes II/IV or the key/potential tiers, by value at risk = churn risk x future value, each with why "
        "and what to do. Every customer needing action is in actions.csv.</p>",
        _table(people_list(at_risk, money, TOP_AT_RISK), "at-risk"),
        "<h2>Value matrix</h2><p class='note'>Current value = " + ("spend" if has_amounts else "purchases")
        + f" over the last {config.get('value_window_days', '?')} days; high above "
        f"{fmt(thresholds.get('current_spend_high', 0))}. Growth potential = future value; high above "
        f"{fmt(thresholds.get('clv_high', 0))}. The 80/20 rule expects classes III+IV (gold, platinum) to be "
        "~20 % of customers with ~80 % of the value.</p>",
        _table(matrix, "value-matrix", money, value_cols), img["value matrix"],
        "<h2>Class I (lead) causes</h2><p class='note'>The first cause that applies, in this order: poor credit "
        f"(latest arrears above {config.get('poor_credit_arrears', '?')}; needs --arrears-col), price-sensitive "
        f"(share of purchase days on discount above {config.get('price_sensitive_share', '?')}; needs "
        "--discount-col), decline (lifecycle stage), early relationship (a young customer). Poor-credit and "
        "price-sensitive customers are in actions.csv.</p>",
        _table(causes, "class-i-causes", money, value_cols),
        "<h2>Customer pyramid</h2><p class='note'>By future value: key above "
        f"{fmt(thresholds.get('clv_key', 0))}, potential above {fmt(thresholds.get('clv_potential', 0))}. "
        "Suggested resource share = the tier's share of future value.</p>",
        _table(pyramid, "pyramid", money, ("future_value",)), img["pyramid"],
        "<h2>Customer equity by segment</h2><p class='note'>Sum of future value (clv) by value class and "
        "lifecycle stage.</p>",
        *equity_part,
        "<h2>Lifecycle stages and activity tiers</h2><p class='note'>" + stage_bounds
        + f" Largest stage: {largest_stage} ({100 * stages.max() / len(scores):.1f} % of customers); largest "
        f"activity tier: {TIER_NAMES.get(largest_tier, largest_tier)} ({largest_tier}, "
        f"{100 * tiers.max() / len(scores):.1f} %).</p>",
        _table(pd.DataFrame({"stage": stages.index, "customers": stages.to_numpy(),
                             "share_of_customers": stages.to_numpy() / len(scores)}), "lifecycle"),
        img["lifecycle"],
        _table(pd.DataFrame({"activity_tier": tiers.index, "name": [TIER_NAMES[t] for t in tiers.index],
                             "customers": tiers.to_numpy(),
                             "share_of_customers": tiers.to_numpy() / len(scores)}), "activity-tiers"),
        "<h2>Churn risk</h2>", img["churn"],
        _glossary(horizon_words, has_amounts, cadence),
        "<details><summary>Settings (for data scientists)</summary><p class='note'>From the scores' sidecar JSON; "
        f"pass them again to reproduce. Model {html.escape(str(settings.get('model_version', '')))}.</p>",
        _table(settings_rows, "settings"), "</details>",
    ]
    return page(title, parts)


def write_report(scores_path: str | os.PathLike, output_path: str | os.PathLike,
                 actions_path: Optional[str | os.PathLike] = None,
                 currency: Optional[str] = None) -> tuple[Path, Path, int]:
    """Write the HTML report and actions.csv (default: ``actions.csv`` beside the report).

    ``currency`` is ``--currency SYMBOL[:DECIMALS]`` (:func:`parse_currency`): money in the
    page and in actions.csv is rounded to its decimals (full precision stays in the scores).

    Returns (report path, actions path, number of actions). Both are written atomically;
    before any work, both are checked to be writable and not the scores or their sidecar.
    """
    money = parse_currency(currency)
    output = Path(output_path)
    if output.suffix.lower() not in (".html", ".htm"):
        raise CustscoreError(f"--output {output}: the report is HTML; use a .html file name")
    actions_file = output.with_name("actions.csv") if actions_path is None else Path(actions_path)
    check_output_folder(output)
    check_output_path(actions_file, "--actions")
    check_not_inputs({"--output": output, "--actions": actions_file},
                     {"--scores": scores_path, "--scores sidecar": sidecar_path(scores_path)})
    scores = read_scores(scores_path)
    settings = read_sidecar(scores_path)
    page = render_report(scores, settings, money)
    actions = actions_table(scores)
    write_table_atomic(rounded_for_people(actions, money.decimals if settings.get("has_amounts", True) else 2),
                       actions_file)
    write_text_atomic(page, output)
    return output, actions_file, len(actions)
