"""MBG/NBD: the modified beta-geometric / negative-binomial model of repeat purchasing.

Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and
comparison of models for customer base analysis", International Journal of Research in
Marketing 24(3), 201-209 (BDF 2007).

As BG/NBD (:mod:`custscore.training.bgnbd`), except that a customer may also drop out at
time zero, right after the first purchase: with ``lambda ~ Gamma(shape r, rate alpha)``
and ``p ~ Beta(a, b)`` the customer drops out with probability ``p`` after every
purchase, the first included. So a one-time buyer has P(alive) < 1. Inputs ``frequency``
x, ``recency`` t_x and ``T`` are in one time unit of the caller's choosing; ``alpha`` is
in that unit (``r``, ``a``, ``b`` are unit-free).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from scipy.special import gammaln

from custscore.training.bgnbd import BetaGeoLikelihood, conditional_bracket, p_no_purchase_given_alive, pmf_if_alive
from custscore.training.diagnostics import generic_warnings
from custscore.training.fitting import check_rfm
from custscore.training.purchase_models import MaximumLikelihoodPurchaseModel, check_horizon

PARAM_NAMES = ("r", "alpha", "a", "b")
PROCESSES = {"r": "purchase rate", "alpha": "purchase rate", "a": "dropout", "b": "dropout"}
_CONSEQUENCE = "P(alive), expected purchases and CLV are uncertain; compare them with days since last purchase"


def _log_odds_dead(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``D = ln(a) - ln(b+x) + (r+x) (ln(alpha+T) - ln(alpha+t_x))`` (every x, also x = 0): P(alive) = sigmoid(-D)."""
    r, alpha, a, b = (float(v) for v in params)
    return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))


def _terms(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row pieces of BDF 2007's likelihood: ``A = A1 + A2 + A3`` and ``D``, ``LL = A + softplus(D)``.

    - A1 = lnG(r+x) - lnG(r) + r ln(alpha)
    - A2 = lnG(a+b) + lnG(b+x+1) - lnG(b) - lnG(a+b+x+1)
    - A3 = -(r+x) ln(alpha+T)
    - D: :func:`_log_odds_dead`
    """
    r, alpha, a, b = (float(v) for v in params)
    A = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + x + 1.0) - gammaln(b)
         - gammaln(a + b + x + 1.0) - (r + x) * np.log(alpha + T))
    return {"A": A, "D": _log_odds_dead(params, x, t_x, T)}


def ModifiedBetaGeoLikelihood(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> BetaGeoLikelihood:
    """BDF 2007's MBG/NBD log-likelihood (their eq. for L(r, alpha, a, b | x, t_x, T), in log form).

    ``L = Gamma(r+x) alpha**r / Gamma(r) * B(a, b+x+1) / B(a, b)
    * [(alpha+T)**-(r+x) + a/(b+x) (alpha+t_x)**-(r+x)]``; the second term is present for
    every customer (dropout at time zero), unlike BG/NBD's ``[x > 0]``. BG/NBD's grouped
    likelihood with its analytic gradient and Hessian (:class:`~custscore.training.bgnbd.BetaGeoLikelihood`,
    ``dropout_at_zero=True``); time unit of ``t_x`` and ``T``.
    """
    return BetaGeoLikelihood(x, t_x, T, weights, dropout_at_zero=True)


class ModifiedBetaGeoModel(MaximumLikelihoodPurchaseModel):
    """MBG/NBD model (BDF 2007) on the shared fit (:class:`MaximumLikelihoodPurchaseModel`).

    Hyper-parameters and fitted attributes as :class:`~custscore.training.bgnbd.BetaGeoModel`
    (``params_`` r, alpha, a, b; alpha in the caller's time unit).

    >>> m = ModifiedBetaGeoModel()
    >>> m.params_ = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    >>> m.p_alive([0], [0.0], [38.86]).round(4).tolist()
    [0.3897]
    """

    PARAM_NAMES = PARAM_NAMES
    KEY = "mbgnbd"
    MODEL_NAME = "MBG/NBD"
    PARAM_PREFIX = "mbgnbd_"
    FIT_ADVICE = "try a penalizer of 0.001 or more, or more data"
    TIME_PARAMS = ("alpha",)

    def _likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> BetaGeoLikelihood:
        return ModifiedBetaGeoLikelihood(x, t_x, T, w)

    def _extra_diagnostics(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                           covariates: Optional[np.ndarray] = None) -> dict[str, Any]:
        a, b = self.params_["a"], self.params_["b"]
        return {"mean_dropout": a / (a + b)}

    def _warnings(self) -> list[str]:
        return generic_warnings("MBG/NBD", self.diagnostics_, self.params_, PROCESSES, _CONSEQUENCE)

    def log_likelihood_per_customer(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """Log-likelihood of each customer's ``(x, t_x, T)`` (BDF 2007). Shape ``(n_customers,)``.

        (MBG/NBD takes no covariates: ``covariates`` must be None.)
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        q = _terms(np.array(self._params(covariates, len(x))), x, t_x, t_cal)
        return q["A"] + np.logaddexp(0.0, q["D"])

    def p_alive(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """P(alive at T) = ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))**(r+x))`` (BDF 2007), < 1 also at x = 0."""
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        return np.exp(-np.logaddexp(0.0, _log_odds_dead(self._params(covariates, len(x)), x, t_x, t_cal)))

    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]`` if alive at T (BDF 2007, conditional expectation)::

            E = P(alive) (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))**(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]

        with P(alive) = ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))**(r+x))``; the bracket is
        BG/NBD's eq. 10 bracket at ``b + 1`` (:func:`custscore.training.bgnbd.conditional_bracket`).
        ``t`` in the model's unit.
        """
        r, alpha, a, b = params
        return conditional_bracket(t, x, T, r, alpha, a, b + 1.0)

    def _pmf_if_alive(self, t: float, k_max: int, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """P(k purchases | alive at T): BG/NBD's (:func:`~custscore.training.bgnbd.pmf_if_alive`) with
        ``p ~ Beta(a, b + x + 1)`` (alive means x + 1 survived dropout chances, time zero included)."""
        r, alpha, a, b = params
        return pmf_if_alive(r, alpha, a, b + x + 1.0, t, k_max, x, T)

    def p_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """P(no repeat purchase in ``(T, T + t]``): dead, or alive and silent (dropout happens only at purchases).

        ``(1 - P(alive)) + P(alive) ((alpha+T)/(alpha+T+t))**(r+x)``, as BG/NBD
        (:func:`custscore.training.bgnbd.p_no_purchase_given_alive`) with MBG/NBD's P(alive).
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        r, alpha = self._params(covariates, len(x))[:2]
        return p_no_purchase_given_alive(r, alpha, check_horizon(t), x, t_cal, self.p_alive(x, t_x, t_cal))
