"""BG/NBD: published CDNOW values, lifetimes on the same data, properties, simulation recovery."""
from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from custscore.errors import CustscoreError, FitError
from custscore.training.bgnbd import BetaGeoModel, bgnbd_log_likelihood
from custscore.training.fitting import GRADIENT_TOLERANCE, minimize_negative_log_likelihood, numerical_hessian
from custscore.training.simulate import simulate_bgnbd

# lifetimes is unmaintained and resets warning filters on import; only tests use it.
lifetimes = pytest.importorskip("lifetimes")

PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_LL = -9582.4
DATASETS = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW calibration summary in weeks (x, t_x, T rounded to 2 decimals; zbar = mean repeat spend)."""
    return pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])


def _lifetimes_bgf(params: dict) -> "lifetimes.BetaGeoFitter":
    fitter = lifetimes.BetaGeoFitter()
    fitter.params_ = pd.Series(params)[["r", "alpha", "a", "b"]]
    return fitter


def _rfm(df: pd.DataFrame):
    return df["x"].to_numpy(), df["t_x"].to_numpy(), df["T"].to_numpy()


# ----------------------------------------------------------------------------- published values


def test_cdnow_matches_published_parameters(fitted: BetaGeoModel) -> None:
    assert set(fitted.params_) == {"r", "alpha", "a", "b"}
    for name, value in PAPER.items():
        assert fitted.params_[name] == pytest.approx(value, rel=0.01), name
        assert isinstance(fitted.params_[name], float)
    assert fitted.log_likelihood_ == pytest.approx(PAPER_LL, abs=0.5)
    assert fitted.n_customers_ == 2357


def test_cdnow_holdout_forecast_matches_published_total(fitted: BetaGeoModel, cdnow: pd.DataFrame) -> None:
    # domain.md: 1,653 repeat purchases forecast for the 39-week holdout.
    total = fitted.expected_purchases(39.0, *_rfm(cdnow)).sum()
    assert total == pytest.approx(1653, abs=1.0)


# ----------------------------------------------------------------------------- lifetimes cross-checks


def test_log_likelihood_equals_lifetimes(cdnow: pd.DataFrame) -> None:
    x, t_x, T = _rfm(cdnow)
    params = np.array([PAPER[k] for k in ("r", "alpha", "a", "b")])
    # lifetimes returns the mean NLL per customer (plus penalty) for log-parameters.
    mean_nll = lifetimes.BetaGeoFitter._negative_log_likelihood(
        np.log(params), x, t_x, T, np.ones(len(x)), 0.0
    )
    ours, _ = bgnbd_log_likelihood(params, x.astype(float), t_x, T, np.ones(len(x)))
    assert ours == pytest.approx(-mean_nll * len(x), rel=1e-6)
    model = BetaGeoModel()
    model.params_ = dict(PAPER)
    assert model.log_likelihood_per_customer(x, t_x, T).sum() == pytest.approx(ours, rel=1e-12)


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_fit_equals_lifetimes_fit(cdnow: pd.DataFrame, penalizer: float) -> None:
    x, t_x, T = _rfm(cdnow)
    ours = BetaGeoModel(penalizer=penalizer).fit(x, t_x, T)
    theirs = lifetimes.BetaGeoFitter(penalizer_coef=penalizer).fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-5), name


def test_variance_diagonal_equals_lifetimes(cdnow: pd.DataFrame, fitted: BetaGeoModel) -> None:
    # lifetimes' off-diagonal terms are scaled inconsistently, its diagonal is the standard one.
    theirs = lifetimes.BetaGeoFitter().fit(*_rfm(cdnow)).variance_matrix_
    ours = fitted.variance_matrix_
    assert isinstance(ours, pd.DataFrame)
    assert list(ours.index) == list(ours.columns) == ["r", "alpha", "a", "b"]
    np.testing.assert_allclose(np.diag(ours), np.diag(theirs), rtol=1e-3)
    np.testing.assert_allclose(ours.to_numpy(), ours.to_numpy().T)


def test_p_alive_equals_lifetimes(cdnow: pd.DataFrame, fitted: BetaGeoModel) -> None:
    x, t_x, T = _rfm(cdnow)
    theirs = _lifetimes_bgf(fitted.params_).conditional_probability_alive(x, t_x, T)
    np.testing.assert_allclose(fitted.p_alive(x, t_x, T), theirs, rtol=1e-6)


@pytest.mark.parametrize("t", [1.0, 10.0, 39.0, 52.0 * 5])
def test_conditional_expected_purchases_equal_lifetimes(cdnow: pd.DataFrame, fitted: BetaGeoModel, t: float) -> None:
    x, t_x, T = _rfm(cdnow)
    theirs = _lifetimes_bgf(fitted.params_).conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
    ours = fitted.expected_purchases(t, x, t_x, T)
    assert ours.shape == (len(x),)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_unconditional_expected_purchases_equal_lifetimes(fitted: BetaGeoModel) -> None:
    t = np.array([0.5, 1.0, 39.0, 78.0, 520.0])
    theirs = _lifetimes_bgf(fitted.params_).expected_number_of_purchases_up_to_time(t)
    np.testing.assert_allclose(fitted.expected_purchases_new(t), np.asarray(theirs), rtol=1e-6)


# ----------------------------------------------------------------------------- properties


def test_fit_returns_self_and_init_stores_only_hyperparameters(cdnow: pd.DataFrame) -> None:
    model = BetaGeoModel(penalizer=0.0, n_starts=2, seed=3)
    assert vars(model) == {"penalizer": 0.0, "n_starts": 2, "seed": 3}
    assert model.fit(*_rfm(cdnow)) is model
    clone = pickle.loads(pickle.dumps(model))
    assert clone.params_ == model.params_
    assert not any(callable(v) for v in vars(model).values())


def test_p_alive_is_a_probability(fitted: BetaGeoModel) -> None:
    rng = np.random.default_rng(0)
    T = rng.uniform(0.01, 500, 5000)
    x = rng.integers(0, 300, 5000)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 5000), 0.0)
    p = fitted.p_alive(x, t_x, T)
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.isfinite(p))
    assert np.all(p[x == 0] == 1.0)


def test_expected_purchases_is_finite_and_monotone_in_t(fitted: BetaGeoModel) -> None:
    x, t_x, T = np.array([0, 1, 50, 200]), np.array([0.0, 1.0, 30.0, 38.0]), np.array([39.0, 39.0, 39.0, 39.0])
    values = np.array([fitted.expected_purchases(t, x, t_x, T) for t in (0.0, 1.0, 10.0, 100.0, 1000.0)])
    assert np.all(np.isfinite(values)) and np.all(values[0] == 0)
    assert np.all(np.diff(values, axis=0) > 0)


def test_expected_purchases_broadcasts_t(cdnow: pd.DataFrame, fitted: BetaGeoModel) -> None:
    x, t_x, T = _rfm(cdnow.head(50))
    t = np.linspace(1, 50, 50)
    per_element = np.array([fitted.expected_purchases(ti, x[i : i + 1], t_x[i : i + 1], T[i : i + 1])[0] for i, ti in enumerate(t)])
    np.testing.assert_allclose(fitted.expected_purchases(t, x, t_x, T), per_element, rtol=1e-12)


def test_new_customer_is_conditional_with_no_history(fitted: BetaGeoModel) -> None:
    # With x = 0 and T -> 0 nothing has been observed: eq. 10 reduces to eq. 9.
    t = np.array([1.0, 10.0, 100.0])
    conditional = fitted.expected_purchases(t, np.zeros(3), np.zeros(3), np.full(3, 1e-12))
    np.testing.assert_allclose(conditional, fitted.expected_purchases_new(t), rtol=1e-9)


def test_dataset_log_likelihood_is_sum_of_rows(cdnow: pd.DataFrame, fitted: BetaGeoModel) -> None:
    per_customer = fitted.log_likelihood_per_customer(*_rfm(cdnow))
    assert per_customer.shape == (len(cdnow),)
    assert fitted.log_likelihood_ == pytest.approx(per_customer.sum(), rel=1e-12)


def test_weighted_fit_equals_raw_fit(cdnow: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 4, len(cdnow))
    raw = cdnow.loc[cdnow.index.repeat(counts)]
    weighted = BetaGeoModel().fit(*_rfm(cdnow), weights=counts)
    plain = BetaGeoModel().fit(*_rfm(raw))
    for name in ("r", "alpha", "a", "b"):
        assert weighted.params_[name] == pytest.approx(plain.params_[name], rel=1e-6), name
    assert weighted.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-9)
    assert weighted.n_customers_ == plain.n_customers_ == int(counts.sum())


def test_time_unit_only_rescales_alpha(cdnow: pd.DataFrame, fitted: BetaGeoModel) -> None:
    x, t_x, T = _rfm(cdnow)
    days = BetaGeoModel().fit(x, t_x * 7, T * 7)
    for name in ("r", "a", "b"):
        assert days.params_[name] == pytest.approx(fitted.params_[name], rel=1e-5)
    assert days.params_["alpha"] == pytest.approx(7 * fitted.params_["alpha"], rel=1e-5)
    # The likelihood is a density in recency: changing the unit shifts it by -sum(x) ln 7.
    assert days.log_likelihood_ == pytest.approx(fitted.log_likelihood_ - x.sum() * np.log(7), rel=1e-8)
    np.testing.assert_allclose(days.p_alive(x, t_x * 7, T * 7), fitted.p_alive(x, t_x, T), rtol=1e-4)


def test_analytic_gradient_matches_finite_differences(cdnow: pd.DataFrame) -> None:
    x, t_x, T = _rfm(cdnow)
    x = x.astype(float)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(x))
    for theta in (np.array([0.243, 4.414, 0.793, 2.426]), np.array([1.5, 0.7, 3.0, 0.6])):
        _, grad = bgnbd_log_likelihood(theta, x, t_x, T, w)
        steps = 1e-6 * theta
        numeric = np.array(
            [
                (bgnbd_log_likelihood(theta + steps * e, x, t_x, T, w)[0] - bgnbd_log_likelihood(theta - steps * e, x, t_x, T, w)[0])
                / (2 * steps[j])
                for j, e in enumerate(np.eye(4))
            ]
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5)
        forward = approx_fprime(theta, lambda th: bgnbd_log_likelihood(th, x, t_x, T, w)[0], 1e-7 * theta)
        np.testing.assert_allclose(grad, forward, rtol=1e-3)


def test_numerical_hessian_of_quadratic() -> None:
    A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    np.testing.assert_allclose(numerical_hessian(lambda z: A @ z, np.array([1.0, 2.0, 3.0])), A, rtol=1e-8)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "needle"),
    [
        ([1, 2.7], [1.0, 2.0], [5.0, 5.0], "frequency: must be a whole number >= 0; position 1 has 2.7"),
        ([1, -1], [1.0, 0.0], [5.0, 5.0], "frequency: must be a whole number >= 0; position 1 has -1.0"),
        ([1, 2], [1.0, -0.5], [5.0, 5.0], "recency: must be >= 0; position 1"),
        ([1, 2], [1.0, 6.0], [5.0, 5.0], "recency: must be <= T; position 1"),
        ([0, 2], [1.0, 2.0], [5.0, 5.0], "recency: must be 0 when frequency is 0; position 0"),
        ([1, 0], [1.0, 0.0], [5.0, -1.0], "T: must be >= 0; position 1"),
        ([1, 2], [1.0, np.nan], [5.0, 5.0], "recency: must be finite; position 1"),
        ([1, 2], [1.0, 2.0], [5.0, np.inf], "T: must be finite; position 1"),
        ([1, 2], [1.0], [5.0, 5.0], "equal lengths"),
        (["1", "2"], [1.0, 2.0], [5.0, 5.0], "frequency: must be numeric"),
        ([True, False], [1.0, 0.0], [5.0, 5.0], "frequency: must be numeric"),
    ],
)
def test_invalid_input_is_named(frequency, recency, T, needle) -> None:
    with pytest.raises(CustscoreError) as info:
        BetaGeoModel().fit(frequency, recency, T)
    assert needle in str(info.value)
    model = BetaGeoModel()
    model.params_ = dict(PAPER)
    with pytest.raises(CustscoreError):
        model.p_alive(frequency, recency, T)


def test_invalid_weights_and_hyperparameters(cdnow: pd.DataFrame) -> None:
    x, t_x, T = _rfm(cdnow.head(20))
    with pytest.raises(CustscoreError, match="weights: must be > 0; position 3"):
        BetaGeoModel().fit(x, t_x, T, weights=np.r_[1, 1, 1, 0, np.ones(16)])
    with pytest.raises(CustscoreError, match="weights: must have one value per customer"):
        BetaGeoModel().fit(x, t_x, T, weights=np.ones(3))
    with pytest.raises(CustscoreError, match="penalizer: must be a finite number >= 0"):
        BetaGeoModel(penalizer=-0.1).fit(x, t_x, T)
    with pytest.raises(CustscoreError, match="n_starts"):
        BetaGeoModel(n_starts=0).fit(x, t_x, T)


def test_fit_errors_on_degenerate_data() -> None:
    with pytest.raises(FitError, match="need at least 10 customers, got 0"):
        BetaGeoModel().fit([], [], [])
    with pytest.raises(FitError, match="need at least 10 customers, got 3"):
        BetaGeoModel().fit([1, 2, 0], [1.0, 2.0, 0.0], [3.0, 4.0, 5.0])
    with pytest.raises(FitError, match="cannot fit BG/NBD: no customer has a repeat purchase"):
        BetaGeoModel().fit([0] * 12, [0.0] * 12, [3.0] * 12)
    with pytest.raises(FitError, match="not fitted"):
        BetaGeoModel().p_alive([1], [1.0], [2.0])


def test_non_convergence_raises_fit_error_with_advice() -> None:
    # A gradient inconsistent with the objective: the line search can never succeed.
    def broken(z: np.ndarray):
        return float(np.sum(z**2)), -2.0 * z + 1.0

    with pytest.raises(FitError) as info:
        minimize_negative_log_likelihood(broken, np.zeros(2), ["u", "v"], n_starts=3, model_name="BG/NBD",
                                         advice="try --penalizer 0.001 or more data")
    message = str(info.value)
    assert message.startswith("BG/NBD did not converge from 3 starts (best |grad| = ")
    assert "--penalizer 0.001" in message and "\n" not in message


def test_multistart_takes_best_converged_start() -> None:
    # Two minima; the default start sits in the basin of the worse one.
    def double_well(z: np.ndarray):
        u = z[0]
        return float((u**2 - 1) ** 2 + 0.3 * u), np.array([4 * u * (u**2 - 1) + 0.3])

    single, _ = minimize_negative_log_likelihood(double_well, np.array([0.2]), ["u"], n_starts=1)
    assert single[0] > 0
    x, res = minimize_negative_log_likelihood(double_well, np.array([0.2]), ["u"], n_starts=8, seed=0,
                                              stop_when_agreeing=False)
    assert x[0] < 0 and res.grad_max_abs <= GRADIENT_TOLERANCE


def test_multistart_stops_once_two_starts_agree() -> None:
    calls = []

    def bowl(z: np.ndarray):
        calls.append(1)
        return float(np.sum((z - 1.0) ** 2)), 2 * (z - 1.0)

    minimize_negative_log_likelihood(bowl, np.zeros(2), ["u", "v"], n_starts=5, seed=0)
    two_starts = len(calls)
    calls.clear()
    minimize_negative_log_likelihood(bowl, np.zeros(2), ["u", "v"], n_starts=5, seed=0, stop_when_agreeing=False)
    assert len(calls) > two_starts * 2  # all five ran


# ----------------------------------------------------------------------------- simulation recovery


def test_recovers_simulated_parameters() -> None:
    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    T = np.random.default_rng(11).uniform(27, 39, 20_000)
    data = simulate_bgnbd(20_000, **truth, T=T, seed=12)
    model = BetaGeoModel().fit(data["frequency"], data["recency"], data["T"])
    se = np.sqrt(np.diag(model.variance_matrix_))
    for (name, value), s in zip(truth.items(), se):
        assert s / value < 0.25, f"{name}: standard error too large for a meaningful test"
        assert abs(model.params_[name] - value) < 4 * s, f"{name}: {model.params_[name]} vs {value} (se {s})"


def test_customer_first_seen_on_cutoff_day_has_zero_log_likelihood() -> None:
    """T = 0, x = 0: the likelihood (FHL 2005 eq. 6) is exactly 1, so the row adds nothing."""
    model = BetaGeoModel().fit([1, 0, 2, 0, 3, 1, 0, 0, 2, 1, 0, 4], [3.0, 0, 4.0, 0, 5.0, 1.0, 0, 0, 2.0, 4.0, 0, 5.5],
                               [5.0, 5.0, 6.0, 4.0, 6.0, 6.0, 3.0, 2.0, 6.0, 5.0, 6.0, 6.0])
    ll = model.log_likelihood_per_customer([0], [0.0], [0.0])
    assert ll == pytest.approx([0.0], abs=1e-12)
    assert model.p_alive([0], [0.0], [0.0]) == pytest.approx([1.0])


def test_expected_purchases_on_many_customers_matches_lifetimes() -> None:
    """Above the dedupe threshold the bracket is computed per distinct (x, T): same values."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter
    rng = np.random.default_rng(5)
    T = rng.integers(1, 366, 30_000).astype(float)
    data = simulate_bgnbd(30_000, r=0.25, alpha=28.0, a=0.8, b=2.5, T=T, seed=6)
    x, t_x = data["frequency"].to_numpy(), np.minimum(np.round(data["recency"].to_numpy()), T)
    t_x[x == 0] = 0
    model = BetaGeoModel().fit(x, t_x, T)
    reference = BetaGeoFitter()
    reference.params_ = pd.Series(model.params_)
    expected = reference.conditional_expected_number_of_purchases_up_to_time(90.0, x, t_x, T)
    np.testing.assert_allclose(model.expected_purchases(90.0, x, t_x, T), expected, rtol=1e-6)
