"""Fit diagnostics: what a maximum-likelihood fit can and cannot tell, as plain data and texts.

Computed by the estimators after every fit (:class:`~custscore.training.bgnbd.BetaGeoModel`,
:class:`~custscore.training.gamma_gamma.GammaGammaModel`) from the fitted parameters, the
optimiser's box (:data:`~custscore.training.fitting.LOG_PARAM_BOUND`) and the observed
information. A diagnostic never stops a fit: it becomes one warning text (no ``warning:``
prefix) naming the process the data does not identify and what that means for the scores.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from custscore.training.fitting import LOG_PARAM_BOUND

#: Observed information (in log-parameters, per customer) with a condition number above
#: this is near-singular: some combination of parameters moves by orders of magnitude
#: without changing the likelihood. CDNOW's BG/NBD fit has 165, its Gamma-Gamma fit 891
#: (lifetimes' CDNOW summary, tests/test_diagnostics.py); 1e8 leaves five orders of room.
MAX_CONDITION_NUMBER = 1e8
#: BG/NBD with a mean dropout probability per purchase ``a / (a + b)`` below this is at the
#: negative-binomial limit (FHL 2005, section 3: BG/NBD -> NBD as p -> 0): one dropout per
#: 10,000 purchases, so P(alive) is ~1 for every customer the data can show.
NBD_LIMIT_MEAN_DROPOUT = 1e-4


def fmt(value: float) -> str:
    """A parameter in warnings and printouts: 3 significant digits, exponent when needed.

    >>> fmt(1e-7), fmt(5e4), fmt(0.793)
    ('1e-07', '5e+04', '0.793')
    """
    return f"{value:.3g}"


def at_box(names: Sequence[str], params: np.ndarray, scales: np.ndarray,
           free: Optional[np.ndarray] = None) -> list[str]:
    """Names of the parameters on (or within rounding of) the optimiser's box (``free`` ones: the value itself)."""
    params = np.asarray(params, dtype=float)
    free = np.zeros(len(params), dtype=bool) if free is None else np.asarray(free, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(free, params, np.log(params / np.asarray(scales, dtype=float)))
    return [name for name, zj in zip(names, z) if abs(zj) >= LOG_PARAM_BOUND * (1 - 1e-9)]


def information_summary(names: Sequence[str], params: np.ndarray, hessian: np.ndarray,
                        n_customers: float, free: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Condition number of the observed information per customer in log-parameters.

    ``hessian`` is the second-derivative matrix of the summed log-likelihood in natural
    parameters; the information in ``log theta`` is ``P (-H / n) P`` with ``P = diag(theta)``
    (unit-free, so parameters of any size compare; ``free`` parameters, coefficients of
    standardised covariates, enter as they are). Returns ``condition_number`` (inf when
    not positive definite or not finite), ``min_eigenvalue`` and ``weakest`` (the
    parameters that make up the least-determined direction).
    """
    params = np.asarray(params, dtype=float)
    if free is not None:
        params = np.where(np.asarray(free, dtype=bool), 1.0, params)
    info = -np.asarray(hessian, dtype=float) * np.outer(params, params) / float(n_customers)
    if not np.all(np.isfinite(info)):
        return {"condition_number": float("inf"), "min_eigenvalue": float("nan"), "weakest": list(names)}
    eigenvalues, vectors = np.linalg.eigh(0.5 * (info + info.T))
    low, high = float(eigenvalues[0]), float(eigenvalues[-1])
    weakest = [name for name, c in zip(names, vectors[:, 0]) if abs(c) >= 0.3]
    condition = high / low if low > 0 else float("inf")
    return {"condition_number": condition, "min_eigenvalue": low, "weakest": weakest}


def standard_errors(names: Sequence[str], variance: Optional[np.ndarray]) -> dict[str, float]:
    """Standard errors from a variance matrix (NaN for all when there is none or a diagonal is < 0)."""
    if variance is None:
        return {name: float("nan") for name in names}
    diag = np.diag(np.asarray(variance, dtype=float))
    with np.errstate(invalid="ignore"):
        return {name: float(np.sqrt(d)) if d >= 0 else float("nan") for name, d in zip(names, diag)}


def fit_diagnostics(names: Sequence[str], params: np.ndarray, scales: np.ndarray, hessian: np.ndarray,
                    n_customers: float, variance: Optional[np.ndarray],
                    free: Optional[np.ndarray] = None) -> dict[str, Any]:
    """The model-agnostic diagnostics of one fit, plain data: box, information, standard errors."""
    info = information_summary(names, params, hessian, n_customers, free)
    se = standard_errors(names, variance)
    return {"at_bound": at_box(names, params, scales, free), **info, "standard_errors": se,
            "standard_errors_finite": bool(all(np.isfinite(v) for v in se.values()))}


def generic_warnings(model: str, diagnostics: Mapping[str, Any], params: Mapping[str, float],
                     processes: Mapping[str, str], consequence: str,
                     skip: Sequence[str] = ()) -> list[str]:
    """Warnings for parameters on the box and a near-singular information matrix.

    ``processes`` names the process each parameter belongs to (``a`` -> ``dropout``);
    parameters in ``skip`` were explained by a model-specific warning already.
    """
    out = []
    bound = [name for name in diagnostics["at_bound"] if name not in skip]
    if bound:
        values = ", ".join(f"{name}={fmt(params[name])}" for name in bound)
        what = " and ".join(dict.fromkeys(processes[name] for name in bound))
        out.append(f"{model}: {what} not identified ({values} at the optimiser's bound): {consequence}")
    elif not skip and (diagnostics["condition_number"] > MAX_CONDITION_NUMBER
                       or not diagnostics["standard_errors_finite"]):
        weakest = [name for name in diagnostics["weakest"]] or list(params)
        what = " and ".join(dict.fromkeys(processes[name] for name in weakest))
        out.append(f"{model}: {what} not identified (near-singular information matrix, condition number "
                   f"{fmt(diagnostics['condition_number'])}, weakest in {', '.join(weakest)}; standard errors "
                   f"{'not available' if not diagnostics['standard_errors_finite'] else 'huge'}): {consequence}")
    return out
