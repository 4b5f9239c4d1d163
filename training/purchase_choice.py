"""The purchase models by name, and choosing the one the scores use (``--purchase-model``).

:data:`PURCHASE_MODELS` maps each model's ``KEY`` (``bgnbd``, ``mbgnbd``, ``pnbd``) to its
class (:class:`~custscore.training.purchase_models.PurchaseModel`); the rest of custscore
names models only through these keys. :func:`select_purchase_model` fits the candidates
and, for ``auto``, picks by out-of-time accuracy (mean Poisson deviance of predicted vs
actual purchases per customer over a validation span before the cutoff).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from custscore.config import AUTO, DAYS_PER_UNIT, TrainConfig
from custscore.errors import CustscoreError, FitError
from custscore.features.customers import FeatureEngine
from custscore.features.lookup import reindex_fill
from custscore.features.rfm import duration_columns
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.churn_select import validation_history_days, validation_horizon
from custscore.training.covariates import covariate_frame, for_customers
from custscore.training.mbgnbd import ModifiedBetaGeoModel
from custscore.training.paretonbd import ParetoNBDModel
from custscore.training.purchase_models import PurchaseModel
from custscore.training.training_memo import ValidationSample, memo_fit, validation_engine

#: Every purchase model by its key; the first is the reference, always fitted and logged unprefixed.
PURCHASE_MODELS: dict[str, type] = {cls.KEY: cls for cls in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel)}
#: The reference model's key.
REFERENCE_MODEL = BetaGeoModel.KEY


#: Optimiser starts of a candidate that ``auto`` may drop (not the reference, not a requested model).
#: A well-posed fit stops after two agreeing starts anyway (same result as the default 5); an
#: ill-posed one (e.g. Pareto/NBD with dropout not identified, where each 2F1 evaluation is ~14x
#: slower near z = 1) fails after 2 starts instead of 5: 31 s -> about 12 s on CDNOW master at 1997-04-05.
CANDIDATE_STARTS = 2


def fit_purchase_model(key: str, rfm: pd.DataFrame, time_unit: str, penalizer: float, seed: int,
                       when: str, n_starts: int | None = None) -> PurchaseModel:
    """Fit the model ``key`` on a feature frame (durations in ``time_unit``); ``when`` names the date in errors.

    ``n_starts``: optimiser starts (None: the model's default). Covariates the frame
    carries (:func:`~custscore.training.covariates.covariate_frame`) are fitted too."""
    recency_col, t_col = duration_columns(time_unit)
    starts = {} if n_starts is None else {"n_starts": n_starts}
    model = PURCHASE_MODELS[key](penalizer=penalizer, seed=seed, **starts)
    try:
        return model.fit(rfm["frequency"].to_numpy(), rfm[recency_col].to_numpy(), rfm[t_col].to_numpy(),
                         covariates=covariate_frame(rfm))
    except FitError as exc:
        raise FitError(f"{model.MODEL_NAME} at {when} ({len(rfm)} customers, "
                       f"{int((rfm['frequency'] > 0).sum())} with repeat purchases): {exc}") from exc


def fit_purchase_at(engine: FeatureEngine, key: str, as_of: pd.Timestamp, rfm: pd.DataFrame, config: TrainConfig,
                    when: str, n_starts: int | None = None) -> PurchaseModel:
    """:func:`fit_purchase_model` of ``key`` on ``rfm`` (the features at ``as_of``), once per training run:
    through the engine's :class:`~custscore.training.training_memo.TrainingMemo` when it has one."""
    memo_key = (key, pd.Timestamp(as_of), config.time_unit, config.bgnbd_penalizer, config.seed)
    return memo_fit(engine, memo_key, lambda: fit_purchase_model(key, rfm, config.time_unit, config.bgnbd_penalizer,
                                                                 config.seed, when, n_starts))


#: Columns of the comparison table (:func:`compare_purchase_models`), one row per candidate.
COMPARISON_COLUMNS = ("model", "identified", "validation_poisson_deviance", "validation_mae",
                      "validation_predicted", "validation_actual", "validation_log_likelihood", "log_likelihood",
                      "chosen")


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
    (:mod:`custscore.training.diagnostics`). ``validation_log_likelihood`` and ``log_likelihood``
    are both the fit's own; :func:`select_purchase_model` puts the fit at the cutoff's in the second.
    """
    actual = np.asarray(actual, dtype=float)
    rows = []
    for key, model in models.items():
        predicted = model.expected_purchases(t, frequency, recency, T)
        rows.append({"model": key, "identified": not model.warnings_,
                     "validation_poisson_deviance": poisson_deviance(actual, predicted),
                     "validation_mae": float(np.mean(np.abs(predicted - actual))),
                     "validation_predicted": float(np.sum(predicted)), "validation_actual": float(np.sum(actual)),
                     "validation_log_likelihood": float(model.log_likelihood_),
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


@dataclass
class PurchaseChoice:
    """The purchase model the scores use, every candidate fitted at the cutoff, and why.

    ``model`` is the chosen key, ``requested`` what ``--purchase-model`` asked for,
    ``fits`` every model fitted at the cutoff (the reference always; when the choice ran on a
    customer sample, only the reference and the chosen model), ``table`` the
    comparison (:data:`COMPARISON_COLUMNS`; NaN validation columns when nothing was
    validated), ``validation_days`` the span validated on (0 = none), ``warnings`` texts
    without the ``warning: `` prefix.
    """

    model: str
    requested: str
    fits: dict[str, PurchaseModel]
    table: pd.DataFrame
    validation_days: int
    reason: str
    warnings: list[str] = field(default_factory=list)
    #: the customers validated on (None when nothing was validated)
    validation_sample: Optional[ValidationSample] = None

    @property
    def shipped(self) -> PurchaseModel:
        return self.fits[self.model]


def _fit_candidates(engine: FeatureEngine, keys: list[str], rfm: pd.DataFrame, as_of: pd.Timestamp,
                    config: TrainConfig, when: str,
                    required: tuple[str, ...]) -> tuple[dict[str, PurchaseModel], dict[str, str]]:
    """Fitted models by key (on ``rfm``, the features at ``as_of``) and, for a candidate not in
    ``required`` whose fit failed, why."""
    fits, failed = {}, {}
    for key in keys:
        try:
            fits[key] = fit_purchase_at(engine, key, as_of, rfm, config, when,
                                        None if key in required else CANDIDATE_STARTS)
        except FitError as exc:
            if key in required:
                raise
            failed[key] = str(exc)
    return fits, failed


def select_purchase_model(engine: FeatureEngine, config: TrainConfig, first_day: pd.Timestamp,
                          calibration: pd.DataFrame) -> PurchaseChoice:
    """Fit the candidates and choose the one the scores use (``config.purchase_model``).

    ``auto``: every model is refitted on the log up to ``R = cutoff - h`` and predicts each
    customer's repeat purchases in ``(R, cutoff]``; the lowest mean Poisson deviance
    against what happened wins among fits identified both at ``R`` and at the cutoff
    (:func:`choose_model`), never the in-sample likelihood. ``h`` is the churn
    validation horizon (:func:`~custscore.training.churn_select.validation_horizon`: the
    model horizon, shorter with short history). The fits at ``R`` and their deviances use a
    seeded sample of ``config.validation_sample`` customers when more are known at ``R``
    (:func:`~custscore.training.training_memo.validation_engine`); the fits at the cutoff use
    every customer. On such a sample only the reference and the chosen model are fitted
    at the cutoff (:func:`_choose_fitting_at_cutoff`: the same choice, without fitting
    every candidate on every customer); the others' table rows keep their validation
    columns (``validation_log_likelihood`` is at ``R`` on the sample) and a NaN
    ``log_likelihood``. Without enough history the reference
    model ships with a warning. A named model ships as asked; the reference is fitted
    (and logged) next to it. ``calibration`` are the features at the cutoff.
    """
    when = f"cutoff {config.cutoff.date()}"
    requested = config.purchase_model
    history = (config.cutoff - first_day).days
    h = validation_horizon(config.horizon_days, history, 1)
    warnings: list[str] = []
    candidates = list(PURCHASE_MODELS)
    if covariate_frame(calibration) is not None:
        candidates = [k for k, cls in PURCHASE_MODELS.items() if cls.COVARIATE_LINKS]
        if requested not in candidates + [AUTO]:
            raise CustscoreError(f"--purchase-model {requested}: {PURCHASE_MODELS[requested].MODEL_NAME} takes no "
                                 f"covariates; with --covariates use one of {candidates} or auto")
        if requested == AUTO and h:
            left_out = [PURCHASE_MODELS[k].MODEL_NAME for k in PURCHASE_MODELS if k not in candidates]
            warnings.append(f"with covariates, auto chooses among {', '.join(PURCHASE_MODELS[k].MODEL_NAME for k in candidates)}"
                            f" ({', '.join(left_out)} takes no covariates)")
    required = (REFERENCE_MODEL,) if requested == AUTO else tuple(dict.fromkeys([REFERENCE_MODEL, requested]))
    if requested != AUTO or not h:  # without a validation span the reference ships: the others are not fitted
        fits, _ = _fit_candidates(engine, list(required), calibration, config.cutoff, config, when, required)
        empty = _unvalidated_table(fits)
        if requested != AUTO:
            return _chosen(PurchaseChoice(requested, requested, fits, empty, 0, "requested with --purchase-model",
                                          warnings))
        warnings.append(f"purchase model not validated ({history} days of history before cutoff "
                        f"{config.cutoff.date()}; choosing needs {validation_history_days(config.horizon_days, 1)}):"
                        f" the reference {fits[REFERENCE_MODEL].MODEL_NAME} is used (the others are not fitted)")
        return _chosen(PurchaseChoice(REFERENCE_MODEL, requested, fits, empty, 0, "not validated: short history",
                                      warnings))
    fits, failed = _fit_candidates(engine, [REFERENCE_MODEL], calibration, config.cutoff, config, when, required)
    reference = fits[REFERENCE_MODEL]
    R = config.cutoff - pd.Timedelta(days=h)
    # the early fits and their deviances on a customer sample at scale (config.validation_sample)
    sampled, sample = validation_engine(engine, R, config.time_unit, config.validation_sample, config.seed)
    customers = sampled.customer_features(R, config.time_unit)
    early, failed_early = _fit_candidates(sampled, candidates, customers, R, config, f"validation date {R.date()}", ())
    failed.update(failed_early)
    if not early:
        warnings.append(f"purchase model not validated: no model could be fitted at {R.date()} "
                        f"({'; '.join(failed_early.values())}); the reference {reference.MODEL_NAME} is used")
        return _chosen(PurchaseChoice(REFERENCE_MODEL, requested, fits, _unvalidated_table(fits), 0,
                                      f"not validated: no fit at {R.date()}", warnings))
    recency_col, t_col = duration_columns(config.time_unit)
    actual = reindex_fill(engine.window_purchases(R, config.cutoff)["n_purchases"], customers.index)
    early_here = {key: for_customers(model, customers) for key, model in early.items()}
    table = compare_purchase_models(early_here, customers["frequency"].to_numpy(), customers[recency_col].to_numpy(),
                                    customers[t_col].to_numpy(), actual, h / DAYS_PER_UNIT[config.time_unit])

    def fit_at_cutoff(key: str) -> Optional[PurchaseModel]:
        found, why = _fit_candidates(engine, [key], calibration, config.cutoff, config, when, ())
        failed.update(why)
        fits.update(found)
        return found.get(key)

    table = _choose_fitting_at_cutoff(table, fits, fit_at_cutoff)
    if table.empty:  # every fit at R failed at the cutoff, and the reference's at R
        warnings.append(f"purchase model not validated: no model was fitted both at {R.date()} and at the cutoff "
                        f"({'; '.join(failed.values())}); the reference {reference.MODEL_NAME} is used")
        return _chosen(PurchaseChoice(REFERENCE_MODEL, requested, fits, _unvalidated_table(fits), 0,
                                      f"not validated: no fit at both {R.date()} and the cutoff", warnings))
    if not sample.sampled:  # every customer was validated on: every candidate at the cutoff costs little
        for key in list(table["model"]):
            if key not in fits and fit_at_cutoff(key) is None:
                table = table[table["model"] != key].reset_index(drop=True)
        table = _choose_fitting_at_cutoff(table, fits, fit_at_cutoff)  # their identified and log_likelihood
    fits = {k: fits[k] for k in PURCHASE_MODELS if k in fits}  # the reference first, as the table
    model, reason = choose_model(table)
    reason = f"{reason}, over the {h} days before the cutoff on {sample.describe()}"
    unfitted = [k for k in table["model"] if k not in fits]
    if unfitted:
        reason += f"; {', '.join(unfitted)} not refitted at the cutoff (not chosen)"
    for key, why in failed.items():
        reason += f"; {key} not fitted ({why})"
    if not table["identified"].any():
        warnings.append(f"no purchase model is identified at cutoff {config.cutoff.date()}: "
                        f"{fits[model].MODEL_NAME} is used, its P(alive) and expected purchases are uncertain")
    return _chosen(PurchaseChoice(model, requested, fits, table, h, reason, warnings, sample))


def _unvalidated_table(fits: dict[str, PurchaseModel]) -> pd.DataFrame:
    """The comparison table of fits at the cutoff that nothing validated (NaN validation columns)."""
    return pd.DataFrame([{"model": k, "identified": not m.warnings_, "log_likelihood": m.log_likelihood_,
                          "chosen": False} for k, m in fits.items()], columns=list(COMPARISON_COLUMNS))


def _choose_fitting_at_cutoff(table: pd.DataFrame, fits: dict[str, PurchaseModel],
                              fit_at_cutoff: Callable[[str], Optional[PurchaseModel]]) -> pd.DataFrame:
    """The comparison ``table`` (fits at ``R``) with ``identified`` and ``log_likelihood`` at the cutoff for
    every model of ``fits`` (the fits at the cutoff so far), fitting at the cutoff only what the choice needs.

    :func:`choose_model` runs with a candidate not fitted at the cutoff yet counted as identified there;
    when it picks one, ``fit_at_cutoff(key)`` fits it (None: the fit failed, its row is dropped) and the
    rule runs again. It ends on a model fitted at the cutoff, the one :func:`choose_model` picks on the
    table of every candidate fitted there: a candidate ahead of it is not identified at ``R``, or was
    fitted and is not identified at the cutoff (a failed fit drops its row in both). ``log_likelihood`` is
    NaN for a candidate not fitted at the cutoff.
    """
    if table.empty:
        return table
    identified_at_R = dict(zip(table["model"], table["identified"].to_numpy(dtype=bool)))
    while True:
        table["identified"] = [identified_at_R[k] and (k not in fits or not fits[k].warnings_)
                               for k in table["model"]]
        table["log_likelihood"] = [fits[k].log_likelihood_ if k in fits else np.nan for k in table["model"]]
        if table.empty:
            return table
        model, _ = choose_model(table)
        if model in fits:
            return table
        # (the loop ends: each pass fits one candidate or drops its row, and the table ends empty at worst)
        if fit_at_cutoff(model) is None:
            table = table[table["model"] != model].reset_index(drop=True)


def _chosen(choice: PurchaseChoice) -> PurchaseChoice:
    choice.table["chosen"] = choice.table["model"] == choice.model
    return choice
