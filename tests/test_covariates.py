"""Time-invariant covariates (Fader and Hardie 2007, note 019) for BG/NBD and Pareto/NBD.

Independent truths: the base models with the per-customer parameter substituted by hand,
the no-covariate fit (all-zero covariates), and simulated worlds with known coefficients
(recovered within 4 standard errors from the fitted Hessian).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.mbgnbd import ModifiedBetaGeoModel
from custscore.training.paretonbd import ParetoNBDModel
from custscore.training.purchase_models import DEDUPE_FROM, CovariateLikelihood
from custscore.training.simulate import simulate_bgnbd, simulate_paretonbd

#: Customers per simulated world: recovery tolerances are derived from the fit's own
#: standard errors, which shrink as 1/sqrt(N); 4,000 keeps each fit to a few seconds.
N_WORLD = 4000
T_WEEKS = 52.0


def _world_covariates(n: int, seed: int) -> pd.DataFrame:
    """A binary covariate (a 0/1 dummy, as a one-hot level) and a standard-normal one."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"north": (rng.random(n) < 0.4).astype(float), "age": rng.normal(size=n)})


BG_TRUE = {"r": 0.8, "alpha": 6.0, "a": 0.8, "b": 3.0,
           "gamma_alpha_north": 0.5, "gamma_alpha_age": -0.3,
           "gamma_a_north": 0.0, "gamma_a_age": 0.4, "gamma_b_north": 0.0, "gamma_b_age": 0.0}
PNBD_TRUE = {"r": 0.8, "alpha": 6.0, "s": 0.8, "beta": 30.0,
             "gamma_alpha_north": 0.5, "gamma_alpha_age": -0.3,
             "gamma_beta_north": -0.6, "gamma_beta_age": 0.3}


def _per_customer(true: dict, param: str, Z: pd.DataFrame, sign: float) -> np.ndarray:
    """``p0 exp(sign gamma' z)`` written out by hand, the simulator's input."""
    eta = sum(true[f"gamma_{param}_{c}"] * Z[c].to_numpy() for c in Z.columns)
    return true[param] * np.exp(sign * eta)


@pytest.fixture(scope="module")
def bg_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    Z = _world_covariates(N_WORLD, seed=11)
    alpha = _per_customer(BG_TRUE, "alpha", Z, -1.0)
    a, b = _per_customer(BG_TRUE, "a", Z, 1.0), _per_customer(BG_TRUE, "b", Z, 1.0)
    return simulate_bgnbd(N_WORLD, BG_TRUE["r"], alpha, a, b, T_WEEKS, seed=12), Z


@pytest.fixture(scope="module")
def pnbd_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    Z = _world_covariates(N_WORLD, seed=21)
    alpha, beta = _per_customer(PNBD_TRUE, "alpha", Z, -1.0), _per_customer(PNBD_TRUE, "beta", Z, -1.0)
    return simulate_paretonbd(N_WORLD, PNBD_TRUE["r"], alpha, PNBD_TRUE["s"], beta, T_WEEKS, seed=22), Z


@pytest.fixture(scope="module")
def bg_fit(bg_world) -> BetaGeoModel:
    data, Z = bg_world
    return BetaGeoModel().fit(data["frequency"], data["recency"], data["T"], covariates=Z)


@pytest.fixture(scope="module")
def pnbd_fit(pnbd_world) -> ParetoNBDModel:
    data, Z = pnbd_world
    return ParetoNBDModel().fit(data["frequency"], data["recency"], data["T"], covariates=Z)


def _assert_recovered(model, true: dict) -> None:
    se = model.diagnostics_["standard_errors"]
    assert set(model.params_) == set(true)
    for name, value in true.items():
        assert np.isfinite(se[name]) and se[name] > 0, name
        # 4 standard errors: a false alarm in about 1 of 16,000 parameters
        assert abs(model.params_[name] - value) <= 4 * se[name], (name, model.params_[name], value, se[name])


def test_bgnbd_recovers_parameters_and_coefficients(bg_fit: BetaGeoModel) -> None:
    assert bg_fit.covariate_names_ == ("north", "age")
    _assert_recovered(bg_fit, BG_TRUE)
    # the purchase-rate coefficients are pinned down, not just within a wide band
    assert bg_fit.diagnostics_["standard_errors"]["gamma_alpha_north"] < 0.15


@pytest.mark.slow
def test_paretonbd_recovers_parameters_and_coefficients(pnbd_fit: ParetoNBDModel) -> None:
    _assert_recovered(pnbd_fit, PNBD_TRUE)
    assert pnbd_fit.diagnostics_["standard_errors"]["gamma_alpha_north"] < 0.15


def _assert_equals_base_model(fitted, cls, hand: dict, z: pd.DataFrame) -> None:
    """``fitted`` with covariates ``z`` against the base model ``cls`` at the parameters ``hand``."""
    base = cls()
    base.params_ = hand
    x, t_x, T = [3], [20.0], [40.0]
    for method in ("p_alive", "log_likelihood_per_customer"):
        assert getattr(fitted, method)(x, t_x, T, covariates=z)[0] == pytest.approx(
            getattr(base, method)(x, t_x, T)[0], rel=1e-12), method
    for method in ("expected_purchases", "p_no_purchase"):
        assert getattr(fitted, method)(13.0, x, t_x, T, covariates=z)[0] == pytest.approx(
            getattr(base, method)(13.0, x, t_x, T)[0], rel=1e-12), method
    np.testing.assert_allclose(fitted.purchase_pmf(13.0, x, t_x, T, 8, covariates=z),
                               base.purchase_pmf(13.0, x, t_x, T, 8), rtol=1e-9)


def test_row_likelihood_and_predictions_equal_base_model_with_parameters_substituted(bg_fit, pnbd_fit) -> None:
    # One customer, z = (1, 0.7): alpha_i etc. by hand, then the base model (no covariates) at those values.
    z = pd.DataFrame({"north": [1.0], "age": [0.7]})
    p = bg_fit.params_
    _assert_equals_base_model(bg_fit, BetaGeoModel, {
        "r": p["r"], "alpha": p["alpha"] * np.exp(-(p["gamma_alpha_north"] * 1.0 + p["gamma_alpha_age"] * 0.7)),
        "a": p["a"] * np.exp(p["gamma_a_north"] * 1.0 + p["gamma_a_age"] * 0.7),
        "b": p["b"] * np.exp(p["gamma_b_north"] * 1.0 + p["gamma_b_age"] * 0.7)}, z)
    q = pnbd_fit.params_
    _assert_equals_base_model(pnbd_fit, ParetoNBDModel, {
        "r": q["r"], "s": q["s"],
        "alpha": q["alpha"] * np.exp(-(q["gamma_alpha_north"] * 1.0 + q["gamma_alpha_age"] * 0.7)),
        "beta": q["beta"] * np.exp(-(q["gamma_beta_north"] * 1.0 + q["gamma_beta_age"] * 0.7))}, z)


def test_many_customers_predictions_match_one_by_one(bg_fit, bg_world) -> None:
    # The vectorised per-row paths (block loops, quantiles, discounting) against single calls.
    data, Z = bg_world
    rows = slice(0, 40)
    x, t_x, T, z = (data["frequency"][rows], data["recency"][rows], data["T"][rows], Z.iloc[rows])
    low, high = bg_fit.purchase_quantiles(26.0, x, t_x, T, covariates=z)
    discounted = bg_fit.discounted_expected_purchases([10.0, 20.0], [0.9, 0.8], x, t_x, T, covariates=z)
    for i in (0, 7, 39):
        one = z.iloc[[i]]
        args = ([x.iloc[i]], [t_x.iloc[i]], [T.iloc[i]])
        lo, hi = bg_fit.purchase_quantiles(26.0, *args, covariates=one)
        assert (low[i], high[i]) == (lo[0], hi[0])
        e10 = bg_fit.expected_purchases(10.0, *args, covariates=one)[0]
        e20 = bg_fit.expected_purchases(20.0, *args, covariates=one)[0]
        assert discounted[i] == pytest.approx(0.9 * e10 + 0.8 * (e20 - e10), rel=1e-12)


@pytest.mark.parametrize("cls, world", [(BetaGeoModel, "bg_world"), (ParetoNBDModel, "pnbd_world")])
def test_all_zero_covariates_give_the_no_covariate_fit(cls, world, request) -> None:
    data, _ = request.getfixturevalue(world)
    data = data.iloc[:1500]
    args = (data["frequency"], data["recency"], data["T"])
    plain = cls().fit(*args)
    zeros = cls().fit(*args, covariates=pd.DataFrame({"z": np.zeros(len(data))}))
    assert zeros.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-9)
    for name in cls.PARAM_NAMES:
        assert zeros.params_[name] == pytest.approx(plain.params_[name], rel=1e-4), name
    # a coefficient of a covariate that never varies is not identified: said, not hidden
    assert all(v == 0.0 for k, v in zeros.params_.items() if k.startswith("gamma_"))
    assert zeros.variance_matrix_ is None and zeros.warnings_


def test_chain_rule_gradient_matches_differences_of_the_value(bg_world) -> None:
    data, Z = bg_world
    rows = slice(0, 300)
    for model in (BetaGeoModel(), ParetoNBDModel()):
        model.covariate_names_ = ("north", "age")
        n_coef = 2 * len(model.COVARIATE_LINKS)
        lik = CovariateLikelihood(model, data["frequency"][rows].to_numpy(float), data["recency"][rows].to_numpy(),
                                  data["T"][rows].to_numpy(), np.ones(300), Z.iloc[rows].to_numpy())
        theta = np.concatenate([[0.7, 5.0, 0.9, 4.0], np.linspace(-0.4, 0.4, n_coef)])
        _, grad = lik.value_and_gradient(theta)
        for j in range(len(theta)):
            h = 1e-6 * max(abs(theta[j]), 1.0)
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            numeric = (lik.value_and_gradient(up)[0] - lik.value_and_gradient(down)[0]) / (2 * h)
            assert grad[j] == pytest.approx(numeric, rel=1e-5, abs=1e-6), (type(model).__name__, j)


def test_covariates_are_required_and_refused_as_fitted(bg_fit) -> None:
    with pytest.raises(CustscoreError, match="trained with covariates \\(north, age\\)"):
        bg_fit.p_alive([1], [2.0], [5.0])
    with pytest.raises(CustscoreError, match="expected columns"):
        bg_fit.p_alive([1], [2.0], [5.0], covariates=pd.DataFrame({"age": [0.0], "north": [1.0]}))
    with pytest.raises(CustscoreError, match="one row per customer"):
        bg_fit.p_alive([1, 2], [2.0, 3.0], [5.0, 5.0], covariates=pd.DataFrame({"north": [1.0], "age": [0.0]}))
    plain = BetaGeoModel()
    plain.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    with pytest.raises(CustscoreError, match="trained without covariates"):
        plain.p_alive([1], [2.0], [5.0], covariates=np.zeros((1, 1)))
    with pytest.raises(CustscoreError, match="MBG/NBD does not take covariates"):
        ModifiedBetaGeoModel().fit([1] * 20, [1.0] * 20, [5.0] * 20, covariates=np.zeros((20, 1)))
    with pytest.raises(CustscoreError, match="must be finite; row 1 column 'z0'"):
        BetaGeoModel().fit([1] * 20, [1.0] * 20, [5.0] * 20, covariates=np.array([[0.0], [np.nan]] * 10))


@pytest.mark.slow
def test_standard_errors_match_the_spread_over_seeds() -> None:
    # 8 BG/NBD worlds of 2,000 customers: the Hessian's SE of the purchase coefficient against the
    # standard deviation of its estimates (a chi-square of 7 degrees of freedom: within a factor 2).
    estimates, errors = [], []
    for seed in range(8):
        Z = _world_covariates(2000, seed=100 + seed)
        alpha = _per_customer(BG_TRUE, "alpha", Z, -1.0)
        a, b = _per_customer(BG_TRUE, "a", Z, 1.0), _per_customer(BG_TRUE, "b", Z, 1.0)
        data = simulate_bgnbd(2000, BG_TRUE["r"], alpha, a, b, T_WEEKS, seed=200 + seed)
        fit = BetaGeoModel(n_starts=2).fit(data["frequency"], data["recency"], data["T"], covariates=Z)
        estimates.append(fit.params_["gamma_alpha_north"])
        errors.append(fit.diagnostics_["standard_errors"]["gamma_alpha_north"])
    ratio = np.std(estimates, ddof=1) / np.mean(errors)
    assert 0.5 < ratio < 2.0, (ratio, estimates, errors)


@pytest.mark.parametrize("cls, true", [(BetaGeoModel, BG_TRUE), (ParetoNBDModel, PNBD_TRUE)])
def test_many_customers_sharing_x_and_T_keep_their_own_parameters(cls, true) -> None:
    # Above DEDUPE_FROM customers the no-covariate paths evaluate once per distinct (x, T);
    # with covariates, customers of one pair differ. 12,000 customers on 3 (x, t_x, T) rows,
    # each against the base model at its parameters substituted by hand.
    n = DEDUPE_FROM + 2000
    x, t_x, T = (np.resize(v, n) for v in ([0, 3, 3], [0.0, 20.0, 20.0], [40.0, 40.0, 40.0]))
    Z = _world_covariates(n, seed=31)
    fitted = cls()
    fitted.params_, fitted.covariate_names_ = dict(true), ("north", "age")
    levels = (0.1, 0.9)
    got = {"p_alive": fitted.p_alive(x, t_x, T, covariates=Z),
           "expected": fitted.expected_purchases(13.0, x, t_x, T, covariates=Z),
           "silent": fitted.p_no_purchase(13.0, x, t_x, T, covariates=Z),
           "discounted": fitted.discounted_expected_purchases([10.0, 20.0], [0.9, 0.8], x, t_x, T, covariates=Z),
           "pmf": fitted.purchase_pmf(13.0, x, t_x, T, 8, covariates=Z),
           "quantiles": np.column_stack(fitted.purchase_quantiles(13.0, x, t_x, T, levels, covariates=Z))}
    signs = dict(cls.COVARIATE_LINKS)
    for i in (1, 4, 7, 5000, n - 2):  # rows 1, 4, 7, ... share (x, t_x, T) = (3, 20, 40)
        base = cls()
        base.params_ = {p: (_per_customer(true, p, Z.iloc[[i]], signs[p])[0] if p in signs else true[p])
                        for p in cls.PARAM_NAMES}
        one = ([x[i]], [t_x[i]], [T[i]])
        assert got["p_alive"][i] == pytest.approx(base.p_alive(*one)[0], rel=1e-12)
        assert got["expected"][i] == pytest.approx(base.expected_purchases(13.0, *one)[0], rel=1e-12)
        assert got["silent"][i] == pytest.approx(base.p_no_purchase(13.0, *one)[0], rel=1e-12)
        assert got["discounted"][i] == pytest.approx(
            base.discounted_expected_purchases([10.0, 20.0], [0.9, 0.8], *one)[0], rel=1e-12)
        np.testing.assert_allclose(got["pmf"][i], base.purchase_pmf(13.0, *one, 8)[0], rtol=1e-9)
        assert tuple(got["quantiles"][i]) == tuple(q[0] for q in base.purchase_quantiles(13.0, *one, levels))
    # the covariates move the answers within one (x, T) pair: a shared evaluation would not
    assert np.ptp(got["expected"][1::3]) > 0.1 * np.mean(got["expected"][1::3])
