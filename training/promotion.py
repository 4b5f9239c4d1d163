"""The promotion gate: does a newly trained version replace the registered champion?

With ``--promote auto`` and a champion in the registry, the new training recipe and the
champion's recipe (the settings logged with its run) are backtested on the same rolling
origins of the current log, all before the cutoff: the log is read through a
:class:`~custscore.training.backtest.ClippedEngine` ending at the cutoff, so the decision
never sees a later day. At each origin both recipes are trained on the log up to the
origin and judged on the ``horizon_days`` after it (the new recipe's horizon for both:
the question is which recipe serves this horizon best). The pooled customer-origin rows
of the two recipes are the same customers with the same outcomes, so paired customer
bootstrap intervals (whole customers resampled, the same draws for both metrics) give

- churn AUC difference new - champion (worse beyond noise: the interval's upper end < 0);
- purchase forecast error difference, the per-customer mean absolute error of expected
  purchases in the horizon, new - champion (worse beyond noise: the lower end > 0).

The new version gets alias ``champion`` when it is worse on neither, else ``challenger``;
the reasons go to the terminal and to tags ``promotion.*`` on the version.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from custscore.config import PromotionConfig, TrainConfig
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine
from custscore.training.backtest import ClippedEngine, origin_rows
from custscore.training.evaluate import MODEL
from custscore.training.metrics import bootstrap_table, bootstrap_weights

CHAMPION = "champion"
CHALLENGER = "challenger"
#: TrainConfig fields that are not part of a training recipe (dates, where to log, how to read).
NOT_RECIPE = ("cutoff", "holdout_end", "horizon_days", "experiment", "tracking_uri", "register_as", "columns",
              "engine", "promote")


@dataclass(frozen=True)
class PromotionDecision:
    """The alias a new version gets, why, and the numbers behind it (tags on the version)."""

    alias: str
    reason: str
    tags: dict[str, str] = field(default_factory=dict)


def recipe_fields() -> tuple[str, ...]:
    """The TrainConfig fields that make up a training recipe (every field not in :data:`NOT_RECIPE`)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in NOT_RECIPE)


def champion_recipe(params: Mapping[str, str], new: TrainConfig) -> TrainConfig:
    """The new config with the recipe fields the champion's run logged (MLflow params are text).

    A field the champion did not log (an older custscore) keeps the new config's value.
    """
    hints = typing.get_type_hints(TrainConfig)
    changes: dict[str, Any] = {}
    for name in recipe_fields():
        if name in params:
            changes[name] = _from_param(params[name], hints[name])
    if "purchase_model_requested" in params:  # param purchase_model names the choice, not the recipe
        changes["purchase_model"] = params["purchase_model_requested"]
    if "bgnbd_penalizer" in params and "penalizer" not in params:
        changes["penalizer"] = None  # the champion's own penalties, not the new run's shortcut
    if "covariates" not in params:
        changes["covariates"] = None  # a run without covariates logs none (None params are not logged)
    return dataclasses.replace(new, **changes)


def _from_param(text: str, hint: Any) -> Any:
    """An MLflow param (text) as the field's type: int or float, also inside ``Optional``."""
    kinds = typing.get_args(hint) or (hint,)
    for kind in (int, float):
        if kind in kinds:
            return kind(text)
    return text


def gate_origins(engine: FeatureEngine, config: TrainConfig, gate: PromotionConfig) -> list[pd.Timestamp]:
    """Origins ``step_days`` apart, the last ``horizon_days`` before the cutoff.

    Only origins with two horizons of past are kept: the churn examples sit one horizon
    before the origin, and a BG/NBD fitted on less than a horizon of history there is
    mostly noise (on CDNOW at 1997-09-30, horizon 90 days, that leaves the last origin).
    """
    first_day, _ = engine.date_range()
    horizon = pd.Timedelta(days=config.horizon_days)
    last = config.cutoff - horizon
    origins = [last - pd.Timedelta(days=gate.step_days * k) for k in reversed(range(gate.n_origins))]
    return [o for o in origins if o - 2 * horizon >= first_day]


def pooled_rows(engine: FeatureEngine, config: TrainConfig, origins: list[pd.Timestamp]) -> pd.DataFrame:
    """Outcome rows of ``config``'s recipe trained and judged at every origin, pooled."""
    parts = []
    for origin in origins:
        at_origin = dataclasses.replace(config, cutoff=origin, holdout_end=None, register_as=None)
        parts.append(origin_rows(engine, at_origin, config.horizon_days)[1])
    return pd.concat(parts, ignore_index=True)


def paired_comparison(new: pd.DataFrame, champion: pd.DataFrame, gate: PromotionConfig,
                      seed: int) -> dict[str, float]:
    """AUC and purchase-MAE differences new - champion with paired customer-bootstrap intervals."""
    if not (new["customer_id"].equals(champion["customer_id"]) and new["origin"].equals(champion["origin"])):
        raise ValueError("the two recipes' rows are not the same customers at the same origins")
    y = new["churned"].to_numpy()
    groups = new["customer_id"].to_numpy()
    table = bootstrap_table(y, {"new": new[MODEL].to_numpy(), CHAMPION: champion[MODEL].to_numpy()},
                            reference=CHAMPION, n_boot=gate.n_bootstrap, seed=seed, level=gate.confidence,
                            groups=groups)
    auc = table[(table["score"] == "new") & (table["metric"] == "auc")].iloc[0]
    champion_auc = table[(table["score"] == CHAMPION) & (table["metric"] == "auc")].iloc[0]
    err_new = np.abs(new["predicted_purchases"].to_numpy() - new["actual_purchases"].to_numpy())
    err_champion = np.abs(champion["predicted_purchases"].to_numpy() - champion["actual_purchases"].to_numpy())
    diffs = np.array([np.average(err_new - err_champion, weights=w)
                      for w in bootstrap_weights(len(y), gate.n_bootstrap, seed, groups)])
    tail = 100.0 * (1.0 - gate.confidence) / 2.0
    mae_low, mae_high = np.percentile(diffs, [tail, 100.0 - tail])
    return {"auc_new": float(auc["estimate"]), "auc_champion": float(champion_auc["estimate"]),
            "auc_diff": float(auc["diff"]), "auc_diff_low": float(auc["diff_low"]),
            "auc_diff_high": float(auc["diff_high"]),
            "mae_new": float(err_new.mean()), "mae_champion": float(err_champion.mean()),
            "mae_diff": float(err_new.mean() - err_champion.mean()), "mae_diff_low": float(mae_low),
            "mae_diff_high": float(mae_high), "rows": float(len(y))}


def decide(numbers: Mapping[str, float]) -> tuple[str, list[str]]:
    """``(alias, reasons)`` from :func:`paired_comparison`: challenger when worse beyond noise on either."""
    reasons = []
    if numbers["auc_diff_high"] < 0:
        reasons.append(f"churn AUC worse: {numbers['auc_diff']:+.4f} [{numbers['auc_diff_low']:+.4f}, "
                       f"{numbers['auc_diff_high']:+.4f}] ({numbers['auc_new']:.4f} vs {numbers['auc_champion']:.4f})")
    if numbers["mae_diff_low"] > 0:
        reasons.append(f"purchase forecast error worse: MAE {numbers['mae_diff']:+.4f} [{numbers['mae_diff_low']:+.4f}, "
                       f"{numbers['mae_diff_high']:+.4f}] ({numbers['mae_new']:.4f} vs {numbers['mae_champion']:.4f})")
    return (CHALLENGER, reasons) if reasons else (CHAMPION, [])


def promotion_decision(engine: FeatureEngine, config: TrainConfig, champion: Optional[tuple[str, Mapping[str, str]]],
                       gate: PromotionConfig = PromotionConfig()) -> PromotionDecision:
    """The alias of a new version trained with ``config``; ``champion`` = (its version, its run's params).

    ``engine`` may cover days after the cutoff: the gate reads it only up to the cutoff.
    """
    if config.promote == "always":
        return PromotionDecision(CHAMPION, "--promote always", {"promotion.decision": CHAMPION,
                                                                "promotion.reason": "--promote always"})
    if config.promote == "never":
        return PromotionDecision(CHALLENGER, "--promote never", {"promotion.decision": CHALLENGER,
                                                                 "promotion.reason": "--promote never"})
    if champion is None:
        reason = "no champion yet"
        return PromotionDecision(CHAMPION, reason, {"promotion.decision": CHAMPION, "promotion.reason": reason})
    version, params = champion
    clipped = ClippedEngine(engine, config.cutoff)
    origins = gate_origins(clipped, config, gate)
    base = {"promotion.champion_version": str(version),
            "promotion.origins": ",".join(o.date().isoformat() for o in origins)}
    if not origins:
        reason = (f"no backtest origin fits before the cutoff {config.cutoff.date()} (each needs "
                  f"twice {config.horizon_days} days of past and {config.horizon_days} of future); use --promote always "
                  "to promote anyway")
        return PromotionDecision(CHALLENGER, reason, {**base, "promotion.decision": CHALLENGER,
                                                      "promotion.reason": reason})
    rows = {}
    for name, recipe in (("new", config), (CHAMPION, champion_recipe(params, config))):
        try:
            rows[name] = pooled_rows(clipped, recipe, origins)
        except (CustscoreError, ArithmeticError) as exc:  # a recipe that cannot be fitted there
            reason = f"the gate's backtest of the {name} recipe failed: {' '.join(str(exc).split())}"
            return PromotionDecision(CHALLENGER, reason, {**base, "promotion.decision": CHALLENGER,
                                                          "promotion.reason": reason[:5000]})
    numbers = paired_comparison(rows["new"], rows[CHAMPION], gate, config.seed)
    alias, reasons = decide(numbers)
    reason = "; ".join(reasons) or (f"not worse than champion version {version} beyond noise: churn AUC "
                                    f"{numbers['auc_diff']:+.4f} [{numbers['auc_diff_low']:+.4f}, "
                                    f"{numbers['auc_diff_high']:+.4f}], purchase MAE {numbers['mae_diff']:+.4f} "
                                    f"[{numbers['mae_diff_low']:+.4f}, {numbers['mae_diff_high']:+.4f}]")
    tags = {**base, "promotion.decision": alias, "promotion.reason": reason,
            **{f"promotion.{k}": f"{v:.6g}" for k, v in numbers.items()}}
    return PromotionDecision(alias, reason, tags)
