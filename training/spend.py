"""The spend model a scorer ships: Gamma-Gamma, or the observed mean spend when the data cannot fit it.

Gamma-Gamma (:mod:`custscore.training.gamma_gamma`) needs spend that varies between
customers. When it does not, :func:`fit_spend_model` skips it with a warning and returns
:class:`ObservedMeanSpend`:

- every customer's mean repeat spend is the same (constant spend): the observed mean,
  which is that constant, for everyone;
- spend varies per purchase but not between customers (Gamma-Gamma's likelihood ratio
  against one common spend distribution is not significant): the observed population
  mean for everyone (``pooled``). This is Gamma-Gamma's own limit: as ``q -> inf`` its
  conditional expectation ``p (v + x m) / (p x + q - 1)`` tends to the population mean,
  because a customer's own mean then only carries purchase-to-purchase noise;
- ``p`` on the optimiser's bound (no spread between one customer's purchases, e.g. one
  price per purchase with some days holding two purchases), or ``q <= 1`` (the model's
  population mean is infinite): each repeat customer's own mean repeat spend (Gamma-Gamma's
  ``p -> inf`` limit: a customer's own mean carries no noise), the observed population
  mean for customers without one.

The observed population mean is per repeat purchase: total repeat spend over total repeat
purchases (``sum x m / sum x``), the maximum-likelihood mean of the common spend distribution.
"""
from __future__ import annotations

from typing import Any, Union

import numpy as np

from custscore.errors import CustscoreError
from custscore.training.diagnostics import fmt
from custscore.training.fitting import as_numeric_vector, check_frequency, check_same_length, check_weights
from custscore.training.gamma_gamma import GammaGammaModel, _check_spend_inputs


class ObservedMeanSpend:
    """Expected spend per purchase from observed mean spends (Gamma-Gamma skipped).

    ``pooled``: the population mean for every customer (else each repeat customer's own
    mean). Fitted attributes: ``population_mean_`` (per repeat purchase, the log's money
    unit), ``params_`` (``{}``: no model parameters), ``n_customers_``, ``diagnostics_``
    and ``warnings_`` (one text: why Gamma-Gamma was skipped and what replaces it).

    >>> m = ObservedMeanSpend(pooled=False).fit([1, 3], [10.0, 30.0], reason="test")
    >>> m.population_mean_, m.expected_average_spend([0, 1], [0.0, 10.0]).tolist()
    (25.0, [25.0, 10.0])
    """

    def __init__(self, *, pooled: bool) -> None:
        self.pooled = pooled

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None, *, reason: str) -> "ObservedMeanSpend":
        """Observed mean spend of customers with ``frequency >= 1`` and ``monetary_value > 0``."""
        x, m = _check_spend_inputs(frequency, monetary_value)
        w = check_weights(weights, len(x))
        if len(x) == 0:
            raise CustscoreError("observed mean spend: no customer with a positive repeat spend")
        self.population_mean_ = float(np.dot(w * x, m) / np.dot(w, x))
        self.params_: dict[str, float] = {}
        self.n_customers_ = float(np.sum(w))
        self.diagnostics_ = {"population_mean": self.population_mean_, "pooled": bool(self.pooled)}
        if self.pooled:
            use = f"the observed mean spend per repeat purchase ({fmt(self.population_mean_)}) for every customer"
        else:
            use = (f"each customer's own mean repeat spend, and the observed mean per repeat purchase "
                   f"({fmt(self.population_mean_)}) for customers without one")
        self.warnings_ = (f"{reason}; Gamma-Gamma skipped: expected_avg_spend is {use}",)
        return self

    def expected_average_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """Expected spend per purchase, shape ``(n_customers,)``; ``monetary_value`` ignored where ``frequency == 0``."""
        if not hasattr(self, "population_mean_"):
            raise CustscoreError("ObservedMeanSpend is not fitted yet: call fit first")
        x = check_frequency(frequency, "frequency", minimum=0)
        m = as_numeric_vector(monetary_value, "monetary_value", check_finite=False)
        check_same_length(frequency=x, monetary_value=m)
        out = np.full(len(x), self.population_mean_)
        if not self.pooled:
            with np.errstate(invalid="ignore"):
                own = (x > 0) & (m > 0) & np.isfinite(m)
            out[own] = m[own]
        return out


SpendModel = Union[GammaGammaModel, ObservedMeanSpend]


def fit_spend_model(frequency: Any, monetary_value: Any, *, penalizer: float = 0.0, seed: int = 0) -> SpendModel:
    """Gamma-Gamma on repeat customers, or :class:`ObservedMeanSpend` when it cannot be used (module doc).

    Raises :class:`~custscore.errors.FitError` only when Gamma-Gamma cannot be fitted for
    other reasons (too few customers, no convergence).
    """
    x, m = _check_spend_inputs(frequency, monetary_value)
    if len(m) and np.ptp(m) <= 1e-12 * float(np.max(m)):
        reason = f"Gamma-Gamma: every customer's mean repeat spend is {fmt(float(m[0]))} (constant spend, nothing to fit)"
        return ObservedMeanSpend(pooled=True).fit(x, m, reason=reason)
    model = GammaGammaModel(penalizer=penalizer, seed=seed).fit(x, m)
    if model.unusable_ is None:
        return model
    pooled = model.diagnostics_["fallback"] == "population_mean"
    return ObservedMeanSpend(pooled=pooled).fit(x, m, reason=model.unusable_)
