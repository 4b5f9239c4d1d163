"""How sure a score is: purchase-count intervals and CLV intervals from parameter uncertainty.

- ``purchases_p10`` / ``purchases_p90``: the 10th and 90th percentiles of each customer's
  predictive distribution of repeat purchases in the horizon, P(X = k | x, t_x, T)
  (:meth:`~custscore.training.purchase_models.PurchaseModel.purchase_quantiles`).
- ``clv_p10`` / ``clv_p90``: the 10th and 90th percentiles of the CLV under the estimated
  sampling distribution of the purchase model's parameters: ``ln theta`` normal around the
  fit with ``Cov(ln theta) = D^-1 V D^-1`` (``V`` the inverse observed information,
  ``D = diag(theta)``, so every parameter stays positive), and ``ln CLV`` linear in
  ``ln theta`` (delta method; gradient by central differences, 2 x 4 CLV evaluations):
  ``CLV exp(-+ 1.2816 sd)``. Parameter vectors drawn from that distribution
  (:func:`parameter_draws`) give the same percentiles within a few % on CDNOW
  (tests/test_uncertainty.py); the delta method costs 8 CLV evaluations instead of one per
  draw, so single-customer HTTP answers and millions of rows stay fast. NaN when the
  purchase fit has no positive-definite covariance. Covariate coefficients (any sign,
  ``gamma_*``) enter as they are, not in logs: normal around the fit with their own
  variances, steps of :data:`_LOG_STEP` in the coefficient.
- The spend model's parameters (Gamma-Gamma ``p, q, v``) are uncertain too: ``ln CLV =
  ln E[discounted purchases] + ln E[spend]``, and the two fits' likelihoods share no
  parameter (the joint information is block-diagonal), so their variances add:
  ``sd^2 = g' Cov(ln theta) g + h' Cov(ln phi) h`` with ``h`` the gradient of ln E[spend]
  in ``ln phi`` (central differences, 2 x 3 spend evaluations). A spend model without a
  covariance (the observed mean spend that replaces an unusable Gamma-Gamma) adds nothing.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import numpy as np

from custscore.training.purchase_models import PurchaseModel
from custscore.training.value import expected_clv

#: Parameter vectors of :func:`parameter_draws` (the check of the delta method).
CLV_DRAWS = 1000
#: Seed of the draws.
DRAW_SEED = 20260
#: Step in ln(theta) of the central differences of ln CLV.
_LOG_STEP = 1e-4
#: The standard normal's 90th percentile.
_Z90 = 1.2815515655446004
#: The interval's levels (10th and 90th percentiles).
LEVELS = (0.1, 0.9)


def purchase_interval(model: PurchaseModel, t: float, frequency: Any, recency: Any,
                      T: Any) -> dict[str, np.ndarray]:
    """``purchases_p10`` and ``purchases_p90`` over the next ``t`` (model unit), shape ``(n,)`` each."""
    low, high = model.purchase_quantiles(t, frequency, recency, T, LEVELS)
    return {"purchases_p10": low, "purchases_p90": high}


def parameter_draws(model: PurchaseModel, n_draws: int = CLV_DRAWS, seed: int = DRAW_SEED) -> list[dict[str, float]]:
    """``n_draws`` parameter dicts with ``ln theta ~ N(ln theta_hat, D^-1 V D^-1)``; [] without a covariance.

    (Covariate coefficients are drawn as they are, not in logs.)
    """
    found = log_parameter_covariance(model)
    if found is None:
        return []
    names, theta, cov = found
    free = _free(model, names)
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(np.where(free, theta, np.log(np.abs(theta))), cov, size=n_draws, method="eigh")
    draws = np.where(free, draws, np.exp(draws))
    return [dict(zip(names, row.tolist())) for row in draws]


def _free(model: Any, names: list[str]) -> np.ndarray:
    """True for the parameters that are not in logs: covariate coefficients (any sign)."""
    base = getattr(model, "PARAM_NAMES", ())
    return np.array([bool(base) and n not in base for n in names], dtype=bool)


def log_parameter_covariance(model: Any) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """``(names, theta, Cov(ln theta))`` of a fit (``params_``, ``variance_matrix_``; coefficients not in logs),
    or None without a finite covariance."""
    variance = getattr(model, "variance_matrix_", None)
    if variance is None:
        return None
    names = list(variance.index)
    theta = np.array([model.params_[n] for n in names])
    scale = np.where(_free(model, names), 1.0, theta)
    cov = variance.to_numpy(dtype=float) / np.outer(scale, scale)
    return (names, theta, cov) if np.all(np.isfinite(cov)) else None


def log_variance(model: Any, value_at: Callable[[Any], np.ndarray]) -> np.ndarray | None:
    """Delta-method ``Var(ln value)`` per customer under ``model``'s parameter covariance, or None without one.

    ``value_at(fit)`` evaluates the per-customer value (> 0, shape ``(n,)``) with ``fit``, a
    copy of ``model`` with shifted ``params_``; the gradient of its log in ``ln theta`` (covariate
    coefficients as they are, :func:`_free`) is taken by central differences (2 evaluations
    per parameter); NaN where the value is 0.
    """
    found = log_parameter_covariance(model)
    if found is None:
        return None
    names, theta, cov = found
    free = _free(model, names)

    def at(params: np.ndarray) -> np.ndarray:
        shifted = copy.copy(model)
        shifted.params_ = {**model.params_, **dict(zip(names, params.tolist()))}
        return value_at(shifted)

    with np.errstate(divide="ignore", invalid="ignore"):
        gradient = []
        for j in range(len(names)):
            step = np.zeros(len(names))
            step[j] = _LOG_STEP
            up, down = (np.where(free, theta + sign * step, theta * np.exp(sign * step)) for sign in (1.0, -1.0))
            gradient.append((np.log(at(up)) - np.log(at(down))) / (2 * _LOG_STEP))
        gradient = np.array(gradient)
        return np.maximum(np.einsum("in,ij,jn->n", gradient, cov, gradient), 0.0)


def clv_interval(model: PurchaseModel, frequency: Any, recency: Any, T: Any, expected_spend: Any,
                 horizon_days: float, days_per_unit: float, discount_rate_yearly: float,
                 spend_model: Any = None, spend_at: Optional[Callable[[Any], np.ndarray]] = None,
                 point: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """``clv_p10`` and ``clv_p90`` of :func:`expected_clv` under parameter uncertainty (delta method in logs).

    ``spend_model`` (the fitted spend model) and ``spend_at(fit)`` (the per-customer
    ``expected_spend`` computed with ``fit``, a copy of ``spend_model`` with shifted
    parameters) add the spend parameters' uncertainty; without them the spend is taken as known.
    ``point``: :func:`expected_clv` at the fit with these arguments when the caller has it
    (the score's ``clv``), so it is not computed again.
    """
    n = len(np.atleast_1d(frequency))
    if n == 0:
        return {"clv_p10": np.full(0, np.nan), "clv_p90": np.full(0, np.nan)}

    def clv(fit: PurchaseModel) -> np.ndarray:
        return expected_clv(fit, frequency, recency, T, expected_spend, horizon_days=horizon_days,
                            days_per_unit=days_per_unit, discount_rate_yearly=discount_rate_yearly)

    purchase = log_variance(model, clv)
    if purchase is None:
        return {"clv_p10": np.full(n, np.nan), "clv_p90": np.full(n, np.nan)}
    spend = None if spend_model is None or spend_at is None else log_variance(spend_model, spend_at)
    point = clv(model) if point is None else np.asarray(point, dtype=float)
    with np.errstate(invalid="ignore"):
        sd = np.where(point > 0, np.sqrt(purchase + (0.0 if spend is None else spend)), 0.0)  # CLV 0 has no spread
    return {"clv_p10": point * np.exp(-_Z90 * sd), "clv_p90": point * np.exp(_Z90 * sd)}
