"""Drift between two scoring runs: population stability, segment shares and migration.

Pure functions of two score tables (``custscore score`` output). The population
stability index of a numeric column is

    PSI = sum over bins of (c_i - r_i) * ln(c_i / r_i)

with ``r_i`` / ``c_i`` the reference / current share of customers in bin ``i``
(Siddiqi 2006, "Credit Risk Scorecards", ch. 8; Yurdakul 2018 for its statistics).
Bins: the ``n_bins`` (default 10) reference quantiles at 1/n, ..., (n-1)/n, duplicates
removed (a column with many ties, such as ``frequency``, gets fewer, wider bins); bin i
is (edge_{i-1}, edge_i], the first and last open-ended, so every current value falls in
a bin and a value tied at an edge (the zeros of a count) stays in the bin below it. A share of 0 (a bin empty in one run) is replaced by ``epsilon`` (default
1e-4) so the logarithm is finite; a bin empty in both contributes 0. Categorical
columns (segments) use one bin per label. NaN values are left out. Conventional
reading (``psi_warn`` / ``psi_threshold`` defaults): below 0.1 stable, 0.1 to 0.25
moderate, 0.25 and above a shift. Recency and T are compared in days, whatever each
model's time unit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custscore.config import DAYS_PER_UNIT, DriftConfig
from custscore.training.realised import SEGMENT_BREAKDOWN

#: Customer features compared (days for durations; spend in the log's amount units).
DRIFT_FEATURES: tuple[str, ...] = (
    "frequency", "recency_days", "T_days", "monetary_value", "tenure_days", "days_since_last_purchase",
    "n_purchases_90d", "spend_90d", "n_purchases_365d", "spend_365d", "trend_90d",
)
#: Model scores compared.
DRIFT_SCORES: tuple[str, ...] = ("p_alive", "churn_probability", "expected_purchases", "expected_avg_spend", "clv")


def psi_from_shares(reference: np.ndarray, current: np.ndarray, epsilon: float) -> float:
    """PSI of two share vectors over the same bins, zero shares floored at ``epsilon``.

    >>> round(psi_from_shares(np.array([0.5, 0.5]), np.array([0.8, 0.2]), 1e-4), 4)
    0.4159
    """
    r = np.maximum(np.asarray(reference, dtype=float), epsilon)
    c = np.maximum(np.asarray(current, dtype=float), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(reference: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges: the reference quantiles at 1/n, ..., (n-1)/n, duplicates removed.

    >>> quantile_edges(np.arange(10.0), 2).tolist()
    [4.5]
    """
    return np.unique(np.quantile(reference, np.arange(1, n_bins) / n_bins))


def binned_shares(reference: np.ndarray, current: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Share of reference and of current values in each reference-quantile bin (NaN left out)."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    edges = quantile_edges(reference, n_bins)
    size = len(edges) + 1
    r = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=size) / max(len(reference), 1)
    c = np.bincount(np.searchsorted(edges, current, side="left"), minlength=size) / max(len(current), 1)
    return r, c


def psi(reference, current, n_bins: int = 10, epsilon: float = 1e-4) -> float:
    """PSI of a numeric column between two runs (module docstring: bins, epsilon); NaN if either is empty.

    >>> round(psi(np.arange(10.0), np.array([0.0] * 8 + [9.0] * 2), n_bins=2), 4)
    0.4159
    """
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if np.isnan(reference).all() or np.isnan(current).all():
        return float("nan")
    return psi_from_shares(*binned_shares(reference, current, n_bins), epsilon)


def segment_shares(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Share of customers per label in each run: columns ``segment, reference_share, current_share, change``."""
    r = reference.astype(str).value_counts(normalize=True)
    c = current.astype(str).value_counts(normalize=True)
    labels = sorted(set(r.index) | set(c.index))
    out = pd.DataFrame({"segment": labels, "reference_share": r.reindex(labels, fill_value=0.0).to_numpy(),
                        "current_share": c.reindex(labels, fill_value=0.0).to_numpy()})
    out["change"] = out["current_share"] - out["reference_share"]
    return out


def migration_matrix(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Customers in both runs counted by (reference label, current label); both indexed by customer id."""
    both = reference.index.intersection(current.index)
    frame = pd.DataFrame({"reference": reference.loc[both].astype(str).to_numpy(),
                          "current": current.loc[both].astype(str).to_numpy()})
    return pd.crosstab(frame["reference"], frame["current"])


@dataclass
class DriftReport:
    """PSI per column, segment shares and migrations, customers new and gone, what crossed a threshold."""

    psi: pd.DataFrame
    shares: dict[str, pd.DataFrame] = field(default_factory=dict)
    migrations: dict[str, pd.DataFrame] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    crossed: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        """Flat metrics: ``psi_<column>``, ``max_share_change_<segment>``, customer counts."""
        out = {f"psi_{r.column}": float(r.psi) for r in self.psi.itertuples()}
        out.update({f"max_share_change_{k}": float(v["change"].abs().max()) for k, v in self.shares.items()})
        out.update({f"customers_{k}": float(v) for k, v in self.counts.items()})
        return out


def _in_days(scores: pd.DataFrame) -> pd.DataFrame:
    """``recency`` and ``T`` (in each row's ``time_unit``) as ``recency_days`` and ``T_days``."""
    days = scores["time_unit"].map(DAYS_PER_UNIT).to_numpy(dtype=float)
    return scores.assign(recency_days=scores["recency"].to_numpy(dtype=float) * days,
                         T_days=scores["T"].to_numpy(dtype=float) * days)


def _level(value: float, config: DriftConfig) -> str:
    if not np.isfinite(value):
        return "n/a"
    return "shift" if value >= config.psi_threshold else "moderate" if value >= config.psi_warn else "stable"


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> DriftReport:
    """Compare two score tables (one row per customer each) under ``config``'s thresholds.

    ``crossed`` lists, one text each, every PSI at or above ``psi_threshold`` and every
    segment share that moved by more than ``share_threshold`` (absolute).
    """
    reference, current = _in_days(reference), _in_days(current)
    rows = [("feature", c, psi(reference[c], current[c], config.n_bins, config.epsilon)) for c in DRIFT_FEATURES]
    rows += [("score", c, psi(reference[c], current[c], config.n_bins, config.epsilon)) for c in DRIFT_SCORES]
    report = DriftReport(psi=pd.DataFrame())
    ref_ids, cur_ids = reference.set_index("customer_id"), current.set_index("customer_id")
    for column in SEGMENT_BREAKDOWN:
        if column in reference.columns and column in current.columns:
            shares = segment_shares(reference[column], current[column])
            report.shares[column] = shares
            rows.append(("segment", column, psi_from_shares(shares["reference_share"].to_numpy(),
                                                            shares["current_share"].to_numpy(), config.epsilon)))
            report.migrations[column] = migration_matrix(ref_ids[column], cur_ids[column])
            for r in shares.itertuples():
                if abs(r.change) > config.share_threshold:
                    report.crossed.append(f"share of {column} {r.segment} moved {r.change:+.3f} "
                                          f"({r.reference_share:.3f} -> {r.current_share:.3f})")
    table = pd.DataFrame(rows, columns=["kind", "column", "psi"])
    table["level"] = [_level(v, config) for v in table["psi"]]
    report.psi = table
    report.crossed[:0] = [f"PSI of {r.column} {r.psi:.3f} >= {config.psi_threshold:g}"
                          for r in table.itertuples() if r.level == "shift"]
    both = ref_ids.index.intersection(cur_ids.index)
    report.counts = {"reference": len(ref_ids), "current": len(cur_ids), "in_both": len(both),
                     "new": len(cur_ids) - len(both), "gone": len(ref_ids) - len(both)}
    return report
