"""Rolling-origin backtest: train at each origin on the past only, judge on the future.

At each origin the scorer is fitted by :func:`~custscore.training.pipeline.train_scorer`
(exactly what ``custscore train`` runs with ``cutoff = origin``) on a
:class:`ClippedEngine` that refuses any question about a day after the origin, then
scored at the origin and compared with the ``horizon_days`` after it: churn (model and
baselines on the same customers, bootstrap intervals), purchases and spend. Rows of
all origins are pooled for the headline table, resampling whole customers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custscore.config import BacktestConfig, TrainConfig
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine
from custscore.training.evaluate import CLASSIFIER_SCORE, MODEL, churn_candidates
from custscore.training.metrics import bootstrap_table
from custscore.training.pipeline import TrainResult, train_scorer
from custscore.training.plots import (calibration_purchases_plot, gains_plot, purchases_by_frequency,
                                      purchases_over_time_plot, reliability_plot, roc_plot)
from custscore.training.realised import candidate_columns, outcome_frame, value_metrics

if TYPE_CHECKING:  # figures are drawn in training.plots; `score` and `serve` never import matplotlib
    from matplotlib.figure import Figure


class LeakageError(RuntimeError):
    """A question about the log after the origin reached a clipped engine (a bug)."""


class ClippedEngine:
    """A :class:`FeatureEngine` that sees the log only up to ``last_day`` (inclusive).

    ``date_range`` ends at ``last_day``; asking for features or a purchase window that
    ends after it raises :class:`LeakageError` instead of answering.
    """

    def __init__(self, engine: FeatureEngine, last_day: pd.Timestamp) -> None:
        self.engine = engine
        self.last_day = pd.Timestamp(last_day)

    def _check(self, day: pd.Timestamp, what: str) -> None:
        if pd.Timestamp(day) > self.last_day:
            raise LeakageError(f"{what} {pd.Timestamp(day).date()} is after the origin {self.last_day.date()}")

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        first, last = self.engine.date_range()
        return first, min(last, self.last_day)

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        self._check(as_of, "features as of")
        return self.engine.customer_features(as_of, time_unit)

    def window_purchases(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        self._check(end, "purchase window ending")
        return self.engine.window_purchases(start, end)

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame:
        rows = self.engine.example_transactions(n_customers)
        return rows[pd.to_datetime(rows["date"]) <= self.last_day].reset_index(drop=True)


def rolling_origins(engine: FeatureEngine, config: BacktestConfig) -> tuple[pd.Timestamp, ...]:
    """The origins of ``config``, checked against the log's dates.

    With ``n_origins``/``step_days`` the last origin is ``horizon_days`` before the
    log's last day. Every origin needs ``horizon_days`` of future (to judge) and of past
    (the churn training examples sit at origin minus horizon).
    """
    first_day, last_day = engine.date_range()
    horizon = pd.Timedelta(days=config.horizon_days)
    if config.cutoffs:
        origins = config.cutoffs
    else:
        last_origin = last_day - horizon
        origins = tuple(last_origin - pd.Timedelta(days=config.step_days * k)
                        for k in reversed(range(config.n_origins)))
    for origin in origins:
        if origin + horizon > last_day:
            raise CustscoreError(f"origin {origin.date()}: the log ends {last_day.date()}, before origin + "
                                 f"{config.horizon_days} days; use an earlier cutoff or a shorter horizon")
        if origin - horizon <= first_day:
            raise CustscoreError(f"origin {origin.date()}: origin - {config.horizon_days} days is not after the "
                                 f"first transaction ({first_day.date()}); use later origins or fewer of them")
    return tuple(origins)


@dataclass
class OriginResult:
    """One origin: the training result, per-customer outcome rows, metrics and figures."""

    origin: pd.Timestamp
    train: TrainResult
    rows: pd.DataFrame
    metrics: dict[str, float]
    table: pd.DataFrame
    figures: dict[str, Figure] = field(default_factory=dict)


@dataclass
class BacktestResult:
    """All origins plus the pooled table (model and baselines with intervals)."""

    config: BacktestConfig
    origins: list[OriginResult]
    table: pd.DataFrame
    metrics: dict[str, float]
    by_origin: pd.DataFrame
    figures: dict[str, Figure] = field(default_factory=dict)

    def comparison(self) -> pd.DataFrame:
        """Pooled AUC (and Brier where defined) of the model and each baseline, with intervals."""
        return _comparison(self.table)


def outcome_rows(train: TrainResult, engine: FeatureEngine, origin: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Per customer known at ``origin``: churn scores, predictions and what happened next.

    Features come from the log up to ``origin`` only; ``engine`` must cover
    (origin, origin + horizon] for the truth. Columns: ``origin, customer_id, churned``,
    one column per churn candidate, ``frequency``, ``predicted_purchases``,
    ``actual_purchases``, ``predicted_revenue``, ``actual_revenue``, ``clv``.
    """
    scorer = train.scorer
    customers = ClippedEngine(engine, origin).customer_features(origin, scorer.time_unit)
    if scorer.covariate_encoding is not None:  # a recipe with --covariates: the file it was trained with
        customers = scorer.with_covariates(customers, train.covariates, scorer.covariate_encoding.source)
    scores = scorer.score_customers(customers, origin, horizon_days)
    candidates = churn_candidates(scorer, customers, scores, train.churn.classifier, horizon_days)
    rows = outcome_frame(scores, engine, origin, horizon_days, candidates)
    rows.insert(0, "origin", origin.date().isoformat())
    return rows


def origin_rows(engine: FeatureEngine, config: TrainConfig, horizon_days: int) -> tuple[TrainResult, pd.DataFrame]:
    """Train with ``config`` at ``config.cutoff`` on the log up to it only; its :func:`outcome_rows`."""
    train = train_scorer(ClippedEngine(engine, config.cutoff), config)
    return train, outcome_rows(train, engine, config.cutoff, horizon_days)


def score_rows(rows: pd.DataFrame, config: BacktestConfig, seed: int,
               pooled: bool = False) -> tuple[dict[str, float], pd.DataFrame]:
    """Flat metrics and the bootstrap table of outcome rows (one origin or pooled)."""
    y = rows["churned"].to_numpy()
    candidates = {name: rows[name].to_numpy() for name in candidate_columns(rows)}
    table = bootstrap_table(y, candidates, probabilities=tuple(n for n in (MODEL, CLASSIFIER_SCORE) if n in candidates),
                            reference=MODEL, n_boot=config.n_bootstrap,
                            seed=seed, level=config.confidence,
                            groups=rows["customer_id"].to_numpy() if pooled else None)
    metrics = {f"{r.metric}_{r.score}": r.estimate for r in table.itertuples()}
    metrics.update({f"{r.metric}_{r.score}_ci_low": r.ci_low for r in table.itertuples()})
    metrics.update({f"{r.metric}_{r.score}_ci_high": r.ci_high for r in table.itertuples()})
    metrics["churn_rate_actual"] = float(y.mean())
    metrics["churn_rate_predicted"] = float(rows[MODEL].mean())
    metrics["customers"] = float(len(rows))
    metrics.update(value_metrics(rows))
    return metrics, table


def figures(rows: pd.DataFrame, horizon_days: int) -> dict[str, Figure]:
    """ROC, reliability, gains and calibration-purchases plots of outcome rows."""
    y = rows["churned"].to_numpy()
    candidates = {name: rows[name].to_numpy() for name in candidate_columns(rows)}
    calib = purchases_by_frequency(rows["frequency"].to_numpy(), rows["predicted_purchases"].to_numpy(),
                                   rows["actual_purchases"].to_numpy())
    return {
        "roc.png": roc_plot(y, candidates, horizon_days),
        "reliability.png": reliability_plot(y, {MODEL: candidates[MODEL]}, horizon_days),
        "gains.png": gains_plot(y, candidates, horizon_days),
        "calibration_purchases.png": calibration_purchases_plot(calib, horizon_days),
    }


def run_backtest(engine: FeatureEngine, config: BacktestConfig) -> BacktestResult:
    """Train at every origin on the past only, score, and compare with the next horizon."""
    origins = rolling_origins(engine, config)
    results = []
    for k, origin in enumerate(origins):
        train, rows = origin_rows(engine, config.train_config(origin), config.horizon_days)
        metrics, table = score_rows(rows, config, seed=config.seed + k)
        results.append(OriginResult(origin=origin, train=train, rows=rows, metrics=metrics, table=table,
                                    figures=figures(rows, config.horizon_days)))
    pooled_rows = pd.concat([r.rows for r in results], ignore_index=True)
    metrics, table = score_rows(pooled_rows, config, seed=config.seed, pooled=True)
    metrics["n_origins"] = float(len(origins))
    by_origin = pd.DataFrame({
        "origin": [r.origin.date().isoformat() for r in results],
        "customers": [len(r.rows) for r in results],
        "churn_rate": [r.metrics["churn_rate_actual"] for r in results],
        "predicted": [r.metrics["purchases_predicted"] for r in results],
        "actual": [r.metrics["purchases_actual"] for r in results],
        "churn_model": [r.train.scorer.churn_model for r in results],
        "purchase_model": [r.train.scorer.purchase_model.KEY for r in results],
        **{f"auc_{name}": [r.metrics.get(f"auc_{name}", float("nan")) for r in results]
           for name in dict.fromkeys(c for r in results for c in candidate_columns(r.rows))},
        "brier_" + MODEL: [r.metrics[f"brier_{MODEL}"] for r in results],
        "ece_" + MODEL: [r.metrics[f"ece_{MODEL}"] for r in results],
    })
    pooled_figures = figures(pooled_rows, config.horizon_days)
    pooled_figures["purchases_over_time.png"] = purchases_over_time_plot(by_origin, config.horizon_days)
    return BacktestResult(config=config, origins=results, table=table, metrics=metrics, by_origin=by_origin,
                          figures=pooled_figures)


def backtest_warnings(result: BacktestResult) -> list[str]:
    """Every origin's fit warnings, each prefixed with its origin date."""
    return [f"origin {r.origin.date()}: {text}" for r in result.origins for text in r.train.warnings]


def _comparison(table: pd.DataFrame) -> pd.DataFrame:
    keep = table[table["metric"].isin(["auc", "brier", "ece"])]
    wide = keep.pivot(index="score", columns="metric")
    out = pd.DataFrame(index=wide.index)
    for metric in ("auc", "brier", "ece"):
        if ("estimate", metric) not in wide.columns:
            continue
        out[metric] = wide["estimate", metric]
        out[f"{metric}_ci"] = [f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
                               for lo, hi in zip(wide["ci_low", metric], wide["ci_high", metric])]
    out["auc_minus_model"] = wide["diff", "auc"]
    out["auc_minus_model_ci"] = [f"[{lo:+.3f}, {hi:+.3f}]" if name != MODEL else ""
                                 for name, lo, hi in zip(wide.index, wide["diff_low", "auc"],
                                                         wide["diff_high", "auc"])]
    order = [MODEL] + sorted(n for n in out.index if n != MODEL)
    return out.loc[order].reset_index()


def format_comparison(result: BacktestResult) -> str:
    """The model-vs-baseline table for the terminal."""
    cfg = result.config
    m = result.metrics
    table = result.comparison()
    lines = [f"backtest: {len(result.origins)} origins "
             f"({', '.join(r.origin.date().isoformat() for r in result.origins)}), churn within "
             f"{cfg.horizon_days} days, {int(m['customers'])} customer-origins pooled, actual churn rate "
             f"{m['churn_rate_actual']:.3f}, predicted {m['churn_rate_predicted']:.3f}",
             f"{'score':<36}{'AUC':>7}  {int(100 * cfg.confidence)}% interval   "
             f"{'AUC - model':>11}  {'interval':<17}{'Brier':>7}{'ECE':>7}"]
    for r in table.itertuples():
        brier = f"{r.brier:>7.4f}" if isinstance(getattr(r, "brier", None), float) and np.isfinite(r.brier) else ""
        ece = f"{r.ece:>7.4f}" if isinstance(getattr(r, "ece", None), float) and np.isfinite(r.ece) else ""
        diff = f"{r.auc_minus_model:>+11.3f}  {r.auc_minus_model_ci:<17}" if r.score != MODEL else " " * 30
        lines.append(f"{r.score:<36}{r.auc:>7.3f}  {r.auc_ci:<16}{diff}{brier}{ece}")
    lines.append("shipped as churn_probability: " + ", ".join(
        f"{r.origin.date()} {r.train.scorer.churn_model} (AUC {r.metrics[f'auc_{MODEL}']:.3f})" for r in result.origins))
    lines.append("purchase model: " + ", ".join(
        f"{r.origin.date()} {r.train.scorer.purchase_model.KEY}" for r in result.origins))
    lines.append(f"purchases in the horizon (summed over origins): predicted {m['purchases_predicted']:.0f}, "
                 f"actual {m['purchases_actual']:.0f} ({m['purchases_error_pct']:+.1f} %), per-customer MAE "
                 f"{m['purchases_mae']:.3f}")
    lines.append(f"revenue in the horizon: predicted {m['revenue_predicted']:.0f}, actual {m['revenue_actual']:.0f}; "
                 f"Spearman(clv, actual revenue) {m['clv_revenue_spearman']:.3f}")
    return "\n".join(lines)
