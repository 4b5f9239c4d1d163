"""The purchase models by name, fitted on a feature frame.

:data:`PURCHASE_MODELS` maps each model's ``KEY`` (``bgnbd``, ``mbgnbd``, ``pnbd``) to its
class (:class:`~custscore.training.purchase_models.PurchaseModel`); the rest of custscore
names models only through these keys.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from custscore.errors import FitError
from custscore.features.rfm import duration_columns
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.mbgnbd import ModifiedBetaGeoModel
from custscore.training.paretonbd import ParetoNBDModel
from custscore.training.purchase_models import PurchaseModel

#: Every purchase model by its key; the first is the reference, always fitted and logged unprefixed.
PURCHASE_MODELS: dict[str, type] = {cls.KEY: cls for cls in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel)}
#: The reference model's key.
REFERENCE_MODEL = BetaGeoModel.KEY


def fit_purchase_model(key: str, rfm: pd.DataFrame, time_unit: str, penalizer: float, seed: int,
                       when: str) -> PurchaseModel:
    """Fit the model ``key`` on a feature frame (durations in ``time_unit``); ``when`` names the date in errors."""
    recency_col, t_col = duration_columns(time_unit)
    model = PURCHASE_MODELS[key](penalizer=penalizer, seed=seed)
    try:
        return model.fit(rfm["frequency"].to_numpy(), rfm[recency_col].to_numpy(), rfm[t_col].to_numpy())
    except FitError as exc:
        raise FitError(f"{model.MODEL_NAME} at {when} ({len(rfm)} customers, "
                       f"{int((rfm['frequency'] > 0).sum())} with repeat purchases): {exc}") from exc


#: Columns of the comparison table (:func:`compare_purchase_models`), one row per candidate.
COMPARISON_COLUMNS = ("model", "identified", "validation_poisson_deviance", "validation_mae",
                      "validation_predicted", "validation_actual", "log_likelihood", "chosen")


def poisson_deviance(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean Poisson deviance per customer, ``2 mean[y ln(y / mu) - (y - mu)]`` (``y ln y`` = 0 at y = 0).

    A Bregman divergence: its expectation is smallest at the true conditional mean, so it
    ranks models by their expected purchases (the mean absolute error would reward
    predicting the median, mostly 0). ``predicted`` is clipped at 1e-12.

    >>> round(poisson_deviance(np.array([0.0, 2.0]), np.array([1.0, 2.0])), 6)
    1.0
    """
    y = np.asarray(actual, dtype=float)
    mu = np.maximum(np.asarray(predicted, dtype=float), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.mean(log_term - (y - mu)))


def compare_purchase_models(models: dict[str, PurchaseModel], frequency: Any, recency: Any, T: Any,
                            actual: Any, t: float) -> pd.DataFrame:
    """One row per fitted model: identified, and its out-of-time accuracy on ``actual`` purchases in ``(T, T + t]``.

    ``models`` were fitted on ``(frequency, recency, T)`` (model time unit, as ``t``);
    ``actual`` holds each customer's repeat purchases in the following ``t``. Columns
    :data:`COMPARISON_COLUMNS` (``chosen`` is False everywhere; :func:`choose_model` picks).
    ``identified`` is False when the fit raised a warning
    (:mod:`custscore.training.diagnostics`).
    """
    actual = np.asarray(actual, dtype=float)
    rows = []
    for key, model in models.items():
        predicted = model.expected_purchases(t, frequency, recency, T)
        rows.append({"model": key, "identified": not model.warnings_,
                     "validation_poisson_deviance": poisson_deviance(actual, predicted),
                     "validation_mae": float(np.mean(np.abs(predicted - actual))),
                     "validation_predicted": float(np.sum(predicted)), "validation_actual": float(np.sum(actual)),
                     "log_likelihood": float(model.log_likelihood_), "chosen": False})
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def choose_model(table: pd.DataFrame) -> tuple[str, str]:
    """``(key, reason)``: the lowest validation Poisson deviance among the identified fits.

    When no fit is identified, the lowest deviance of all (the caller warns). Ties go to
    the earlier row (the reference model first).
    """
    pool = table[table["identified"]] if table["identified"].any() else table
    best = pool.loc[pool["validation_poisson_deviance"].idxmin()]
    others = table[(table["model"] != best["model"])]
    beaten = ", ".join(f"{r.model} {r.validation_poisson_deviance:.4f}" + ("" if r.identified else " not identified")
                       for r in others.itertuples())
    reason = (f"lowest validation Poisson deviance {best['validation_poisson_deviance']:.4f}"
              + (f" (others: {beaten})" if beaten else "")
              + ("" if table["identified"].any() else "; no candidate fit is identified"))
    return str(best["model"]), reason
