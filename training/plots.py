"""Evaluation figures as :class:`matplotlib.figure.Figure` objects (no pyplot state).

Each function takes plain arrays or tables and returns a figure ready for
``mlflow.log_figure`` or ``Figure.savefig``. Churn scores: higher = more likely to churn.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional

import numpy as np
import pandas as pd

from custscore.training.metrics import gains_curve, reliability_table, roc_points

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _new_figure(width: float, height: float) -> Figure:
    """A figure ``width`` x ``height`` inches; matplotlib is imported by the first plot, not by ``score``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))

#: Calibration-period frequencies at and above this are pooled in the calibration plot.
MAX_FREQUENCY_BIN = 7
#: Points kept per ROC curve: more are invisible at figure size and slow to draw
#: (a 5M-customer ROC curve took seconds to plot).
MAX_CURVE_POINTS = 2_000


def thinned(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points of the curve ``(x, y)`` (x increasing), ends kept.

    >>> [a.tolist() for a in thinned(np.linspace(0, 1, 11), np.linspace(0, 1, 11), max_points=3)]
    [[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]]
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(np.int64))
    return x[keep], y[keep]


def purchases_by_frequency(frequency: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """Mean predicted and actual holdout purchases by calibration frequency (7+ pooled)."""
    bins = np.minimum(np.asarray(frequency), MAX_FREQUENCY_BIN)
    return (pd.DataFrame({"frequency_bin": bins, "predicted": predicted, "actual": actual})
            .groupby("frequency_bin").agg(customers=("actual", "size"), predicted=("predicted", "mean"),
                                          actual=("actual", "mean")).reset_index())


def calibration_purchases_plot(calib: pd.DataFrame, holdout_days: int) -> Figure:
    """The classic BTYD plot: holdout purchases by calibration-period frequency."""
    fig = _new_figure(6, 4)
    ax = fig.subplots()
    labels = [str(b) if b < MAX_FREQUENCY_BIN else f"{MAX_FREQUENCY_BIN}+" for b in calib["frequency_bin"]]
    ax.plot(labels, calib["actual"], "o-", label="actual")
    ax.plot(labels, calib["predicted"], "s--", label="model predicted")
    ax.set_xlabel("repeat purchases in calibration period")
    ax.set_ylabel(f"mean purchases in {holdout_days}-day holdout")
    ax.legend()
    fig.tight_layout()
    return fig


def _diagonal_figure(draw, xlabel: str, ylabel: str, title: str, diagonal_label: str) -> Figure:
    """Square figure with curves drawn by ``draw(ax)`` and the y = x reference line."""
    fig = _new_figure(5, 5)
    ax = fig.subplots()
    draw(ax)
    ax.plot([0, 1], [0, 1], ":", color="grey", label=diagonal_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def roc_plot(churned: np.ndarray, candidates: Mapping[str, np.ndarray], horizon: int,
             aucs: Optional[Mapping[str, float]] = None,
             curves: Optional[Mapping[str, tuple[np.ndarray, np.ndarray, float]]] = None) -> Figure:
    """ROC curves of several churn scores on the same customers (``aucs`` if already computed;
    ``curves``: :func:`~custscore.training.metrics.roc_points` of each score if already computed)."""
    def draw(ax):
        for name, score in candidates.items():
            fpr, tpr, auc = curves[name] if curves is not None else roc_points(churned, score)
            auc = aucs[name] if aucs is not None else auc
            ax.plot(*thinned(fpr, tpr), label=f"{name} (AUC {auc:.3f})")
    return _diagonal_figure(draw, "false positive rate", "true positive rate", f"churn within {horizon} days",
                            "random")


def reliability_plot(churned: np.ndarray, probabilities: Mapping[str, np.ndarray], horizon: int) -> Figure:
    """Observed churn rate against mean predicted probability, ten equal-width bins."""
    def draw(ax):
        for name, p in probabilities.items():
            table = reliability_table(churned, p)
            ax.plot(table["mean_probability"], table["observed_rate"], "o-", label=name)
    return _diagonal_figure(draw, "predicted churn probability", "observed churn rate",
                            f"reliability, churn within {horizon} days", "perfect calibration")


def gains_plot(churned: np.ndarray, candidates: Mapping[str, np.ndarray], horizon: int) -> Figure:
    """Cumulative gains: share of churners found when targeting the top share by score."""
    def draw(ax):
        for name, score in candidates.items():
            gains = gains_curve(churned, score)
            ax.plot(gains["share_targeted"], gains["share_captured"], label=name)
        ax.axvline(0.1, color="grey", lw=0.5)
    return _diagonal_figure(draw, "share of customers targeted (highest churn score first)",
                            "share of churners captured", f"gains, churn within {horizon} days", "random")


def purchases_over_time_plot(by_origin: pd.DataFrame, horizon: int) -> Figure:
    """Predicted and actual purchases in the horizon after each origin.

    ``by_origin`` has columns ``origin``, ``predicted``, ``actual``.
    """
    fig = _new_figure(6, 4)
    ax = fig.subplots()
    origins = pd.to_datetime(by_origin["origin"])
    ax.plot(origins, by_origin["actual"], "o-", label="actual")
    ax.plot(origins, by_origin["predicted"], "s--", label="model predicted")
    ax.set_xlabel("origin (scoring date)")
    ax.set_ylabel(f"purchases in the next {horizon} days")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
