"""Discounting maths for customer value: annuities, discount factors, expected CLV.

Rates are yearly and always an explicit argument; a year has ``DAYS_PER_YEAR`` days.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from custscore.config import DAYS_PER_YEAR
from custscore.errors import CustscoreError
from custscore.training.fitting import as_numeric_vector, check_hyperparameters
from custscore.training.purchase_models import PurchaseModel

#: Bounds of the arguments of this module, declared once and checked on every call.
VALUE_CONSTRAINTS: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "discount_rate_yearly": (lambda v: _is_number(v) and 0.0 <= v < 1.0, "in [0, 1)"),
    "horizon_days": (lambda v: _is_number(v) and np.isfinite(v) and v > 0, "a finite number of days > 0"),
    "step_days": (lambda v: _is_number(v) and np.isfinite(v) and v > 0, "a finite number of days > 0"),
    "days_per_unit": (lambda v: _is_number(v) and np.isfinite(v) and v > 0, "a finite number of days > 0"),
    "years": (lambda v: _is_number(v) and np.isfinite(v) and v >= 0, "a finite number >= 0"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def annuity_value(cash_per_year: float, discount_rate_yearly: float, years: float) -> float:
    """Present value of ``cash_per_year`` received at the end of each of ``years`` years.

    ``CV = R (1 - (1 + r)**-n) / r``, and ``R n`` when ``r = 0``.

    >>> annuity_value(100, 0.10, 1)
    90.90909090909...
    >>> annuity_value(100, 0.10, 2)
    173.55371900826...
    >>> annuity_value(100, 0.0, 3)
    300.0
    """
    check_hyperparameters({"discount_rate_yearly": discount_rate_yearly, "years": years}, VALUE_CONSTRAINTS)
    if discount_rate_yearly == 0:
        return float(cash_per_year) * float(years)
    r = float(discount_rate_yearly)
    return float(cash_per_year) * (1.0 - (1.0 + r) ** -float(years)) / r


def discount_factor(days: Any, discount_rate_yearly: float) -> np.ndarray | float:
    """Factor ``(1 + r)**(-days / DAYS_PER_YEAR)`` turning cash ``days`` ahead into today's money.

    >>> round(discount_factor(DAYS_PER_YEAR, 0.10), 6)
    0.909091
    """
    check_hyperparameters({"discount_rate_yearly": discount_rate_yearly}, VALUE_CONSTRAINTS)
    days_arr = np.asarray(days, dtype=float)
    out = (1.0 + float(discount_rate_yearly)) ** (-days_arr / DAYS_PER_YEAR)
    return float(out) if out.ndim == 0 else out


def step_ends_days(horizon_days: float, step_days: float) -> np.ndarray:
    """Ends of the steps ``step, 2 step, ...`` splitting ``(0, horizon_days]``; the last is the horizon.

    >>> step_ends_days(75, 30).tolist()
    [30.0, 60.0, 75.0]
    """
    n_full = int(np.floor(horizon_days / step_days + 1e-12))
    ends = step_days * np.arange(1, n_full + 1, dtype=float)
    if n_full == 0 or not np.isclose(ends[-1], horizon_days, rtol=0, atol=1e-9 * max(1.0, horizon_days)):
        ends = np.append(ends, float(horizon_days))
    else:
        ends[-1] = float(horizon_days)
    return ends


def expected_clv(
    purchase_model: PurchaseModel,
    frequency: Any,
    recency: Any,
    T: Any,
    expected_spend: Any,
    horizon_days: float,
    days_per_unit: float,
    discount_rate_yearly: float,
    step_days: float = 30,
) -> np.ndarray:
    """Discounted expected value of each customer's purchases in the next ``horizon_days``.

    ``(0, horizon_days]`` is split into steps of ``step_days`` (the last may be shorter and
    ends exactly at the horizon). With ``E(t)`` the purchase model's conditional expected
    purchases in ``(T, T + t]`` (for BG/NBD FHL 2005 eq. 10)::

        CLV = sum_k [E(end_k) - E(end_{k-1})] * expected_spend * discount_factor(end_k)

    so each step's purchases are discounted from the end of the step. ``frequency``,
    ``recency`` and ``T`` are in model units of ``days_per_unit`` days (1 for a model fitted
    in days, 7 for weeks); ``expected_spend`` (per transaction, e.g. from
    :meth:`GammaGammaModel.expected_average_spend`) is a scalar or one value per customer.
    With 30-day steps and a yearly rate ``(1 + m)**(DAYS_PER_YEAR / 30) - 1`` this is
    lifetimes' ``customer_lifetime_value`` with ``freq="D"`` and monthly rate ``m``.
    Shape ``(n_customers,)``.
    """
    check_hyperparameters(
        {
            "horizon_days": horizon_days,
            "days_per_unit": days_per_unit,
            "discount_rate_yearly": discount_rate_yearly,
            "step_days": step_days,
        },
        VALUE_CONSTRAINTS,
    )
    spend = as_numeric_vector(expected_spend, "expected_spend")
    n = len(np.atleast_1d(np.asarray(frequency)))
    if len(spend) not in (1, n):
        raise CustscoreError(f"expected_spend: must be a scalar or have one value per customer ({n}), got {len(spend)}")
    ends = step_ends_days(float(horizon_days), float(step_days))
    return purchase_model.discounted_expected_purchases(ends / days_per_unit, discount_factor(ends, discount_rate_yearly),
                                               frequency, recency, T) * spend
