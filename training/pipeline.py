"""Training: transactions -> fitted :class:`CustomerScorer` (+ holdout evaluation).

Pure of MLflow: :mod:`custscore.training.tracking` logs what this returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Union

import numpy as np
import pandas as pd

from custscore.config import AUTO, CHURN_STACK_MIN_HORIZON_DAYS, TrainConfig
from custscore.errors import CustscoreError, FitError
from custscore.features.customers import FeatureEngine
from custscore.training.calibration import calibration_window
from custscore.training.cutoff_check import check_dates
from custscore.training.churn import SPEND_FEATURES, ChurnClassifier, churn_features, churn_labels
from custscore.training.covariates import covariate_engine
from custscore.training.churn_select import (CLASSIFIER, BaselineChurnModel, ChurnSelection, baseline_scores,
                                             choose_churn_model, validation_history_days,
                                             validation_horizon)
from custscore.training.evaluate import HOLDOUT_SCORE_COLUMNS, HoldoutReport, evaluate_holdout
from custscore.training.purchase_choice import REFERENCE_MODEL, PurchaseChoice, fit_purchase_at, select_purchase_model
from custscore.training.scorer import CustomerScorer
from custscore.training.segments import SegmentConfig, fit_gap_days, fit_thresholds
from custscore.training.spend import SpendModel, fit_spend_model
from custscore.training.training_memo import CustomerSample, TrainingMemo, ValidationSample, validation_engine


@dataclass
class TrainResult:
    """A fitted scorer with what is worth logging about its fit.

    ``warnings``: what the data cannot tell (fit diagnostics of the shipped BG/NBD and
    spend model, one text each without the ``warning: `` prefix); the CLI prints them,
    MLflow gets them as the tag ``fit_warnings``, the scorer keeps them (``fit_warnings``).
    """

    scorer: CustomerScorer
    metrics: dict[str, float]
    n_customers: int
    holdout: Optional[HoldoutReport] = None
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: what the data cannot tell, one text per warning (printed as ``warning: TEXT``)
    warnings: list[str] = field(default_factory=list)
    #: the churn choice: shipped model, the classifier at the cutoff, validation table
    churn: Optional["ChurnFit"] = None
    #: the purchase model choice: every candidate fitted at the cutoff and the comparison
    purchase: Optional[PurchaseChoice] = None
    #: the covariate file as read (None without ``--covariates``)
    covariates: Optional[pd.DataFrame] = None


def purchase_key(config: TrainConfig) -> str:
    """The key of ``config.purchase_model``; ``auto`` (not chosen yet) is the reference model."""
    return REFERENCE_MODEL if config.purchase_model == AUTO else config.purchase_model


def has_amounts(config: TrainConfig) -> bool:
    """True unless the log has no amount column (``--amount-col none``)."""
    return config.columns.has_amounts


def repeat_spenders(customers: pd.DataFrame) -> pd.DataFrame:
    """Customers with a repeat purchase and a positive mean repeat spend: what Gamma-Gamma is fitted on."""
    return customers[(customers["frequency"] > 0) & (customers["monetary_value"] > 0)]


def fit_spend(calibration: pd.DataFrame, config: TrainConfig, when: str) -> Optional[SpendModel]:
    """The spend model on customers with a positive mean repeat spend (None for a log without amounts)."""
    if not has_amounts(config):
        return None
    repeat = repeat_spenders(calibration)
    try:
        return fit_spend_model(repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy(),
                               penalizer=config.gg_penalizer, seed=config.seed)
    except FitError as exc:
        raise FitError(f"Gamma-Gamma at {when} ({len(repeat)} customers with positive repeat spend): {exc}") from exc


def reference_windows(config: TrainConfig, cutoff: pd.Timestamp) -> list[tuple[pd.Timestamp, int]]:
    """Churn training windows ending at ``cutoff``: (reference date, label horizon in days).

    The first is the full-horizon window (reference = cutoff - horizon). Stacked windows
    (``config.churn_windows``) add one of 2/3 of the horizon, also ending at the cutoff:
    its customers are closer in age to the ones scored at the cutoff.
    """
    horizon = config.horizon_days
    horizons = [horizon] + ([2 * horizon // 3] if _stacked(config) and 2 * horizon // 3 > 0 else [])
    return [(cutoff - pd.Timedelta(days=h), h) for h in horizons]


def _stacked(config: TrainConfig) -> bool:
    return config.churn_windows == "stacked" or (config.churn_windows == "auto"
                                                 and config.horizon_days >= CHURN_STACK_MIN_HORIZON_DAYS)


def validation_config(config: TrainConfig, horizon_days: int) -> TrainConfig:
    """The classifier recipe of ``config`` (windows, calibration) with horizon ``horizon_days``,
    fitted as of ``cutoff - horizon_days``: the classifier validated on the window ending at the cutoff."""
    return replace(config, cutoff=config.cutoff - pd.Timedelta(days=horizon_days), horizon_days=horizon_days,
                   churn_windows="stacked" if _stacked(config) else "single")


def churn_examples(engine: FeatureEngine, config: TrainConfig,
                   cutoff: pd.Timestamp) -> list[tuple[pd.DataFrame, pd.Series]]:
    """Churn features and labels of every window of :func:`reference_windows` (full horizon first).

    In each window the features come from purchases up to the reference date (BG/NBD
    refitted there) and the label from (reference date, reference date + its horizon],
    which ends on or before ``cutoff``.
    """
    out = []
    for reference, horizon in reference_windows(config, cutoff):
        customers = engine.customer_features(reference, config.time_unit)
        model = fit_purchase_at(engine, purchase_key(config), reference, customers, config,
                                f"reference date {reference.date()}")
        X = churn_features(customers, model, horizon, config.time_unit)
        out.append((X, churn_labels(engine, X.index, reference, horizon)))
    return out


def fit_churn(engine: FeatureEngine, config: TrainConfig, first_day: pd.Timestamp,
              windows: Optional[list[tuple[pd.DataFrame, pd.Series]]] = None) -> ChurnClassifier:
    """The churn classifier at ``config.cutoff``, calibrated as ``config.churn_calibration`` says.

    ``windows`` are :func:`churn_examples` at the cutoff when the caller already has them.
    """
    windows = churn_examples(engine, config, config.cutoff) if windows is None else windows
    latest_X, latest_y = windows[0]  # the latest full-horizon window
    method = config.churn_calibration
    if calibration_window(method) == "earlier":
        # fit one horizon earlier, calibrate on the latest full-horizon window
        earlier = config.reference_date
        if earlier - pd.Timedelta(days=config.horizon_days) <= first_day:
            raise CustscoreError(
                f"churn_calibration {method}: cutoff minus twice the horizon "
                f"({(earlier - pd.Timedelta(days=config.horizon_days)).date()}) is not after the first transaction "
                f"({first_day.date()}); use churn_calibration sigmoid-latest or none")
        windows = churn_examples(engine, config, earlier)
    # One window: its frames as they are (a concat would copy millions of rows).
    X = pd.concat([w[0] for w in windows]) if len(windows) > 1 else windows[0][0]
    y = pd.concat([w[1] for w in windows]) if len(windows) > 1 else windows[0][1]
    exclude = () if has_amounts(config) else SPEND_FEATURES  # spend features are constant 0 without amounts
    if method == "none":
        return ChurnClassifier(exclude=exclude).fit(X, y)
    return ChurnClassifier(calibration=method, exclude=exclude).fit(X, y, latest_X, latest_y)


@dataclass
class ChurnFit:
    """The shipped churn model, the classifier refitted at the cutoff (None if it cannot be) and the choice."""

    shipped: Union[ChurnClassifier, BaselineChurnModel]
    classifier: Optional[ChurnClassifier]
    selection: ChurnSelection
    warnings: list[str] = field(default_factory=list)
    #: the customers the choice was validated on (:func:`~custscore.training.training_memo.validation_engine`)
    validation_sample: Optional[ValidationSample] = None


def _try_classifier(engine: FeatureEngine, config: TrainConfig, first_day: pd.Timestamp,
                    windows=None) -> tuple[Optional[ChurnClassifier], str]:
    """(classifier at ``config.cutoff``, "") or (None, why it cannot be fitted there)."""
    if windows is None and config.reference_date <= first_day:
        return None, (f"its examples would be built at {config.reference_date.date()}, not after the first "
                      f"transaction {first_day.date()}: validating it needs two horizons of history")
    try:
        return fit_churn(engine, config, first_day, windows), ""
    except (CustscoreError, FitError) as exc:
        return None, str(exc)


def select_churn(engine: FeatureEngine, config: TrainConfig, first_day: pd.Timestamp) -> ChurnFit:
    """Choose and fit what ships as ``churn_probability`` (:mod:`custscore.training.churn_select`).

    Validation: features at ``R = cutoff - h`` (BG/NBD refitted there), labels in
    ``(R, cutoff]``; the classifier is fitted as of ``R`` (its own windows end at ``R``)
    with horizon ``h``: the model's horizon, or a shorter one when history is short
    (:func:`~custscore.training.churn_select.validation_horizon`, :func:`validation_config`).
    The chosen model is then refitted on the latest window, as of the cutoff: the
    classifier on :func:`churn_examples` at the cutoff, a baseline calibrated on
    ``(cutoff - horizon, cutoff]``. The validation runs on a seeded sample of
    ``config.validation_sample`` of the customers known at ``cutoff - h`` when there are
    more (:func:`~custscore.training.training_memo.validation_engine`); the shipped models
    see every customer (the classifier at most its ``max_train_examples``).
    """
    windows = churn_examples(engine, config, config.cutoff)
    history = (config.cutoff - first_day).days
    before = 2 if calibration_window(config.churn_calibration) == "earlier" else 1
    h = validation_horizon(config.horizon_days, history, before)
    # the validation (examples, validated classifier, baselines, DeLong) on a customer sample at scale
    sampled, sample = validation_engine(engine, config.cutoff - pd.Timedelta(days=h or config.horizon_days),
                                        config.time_unit, config.validation_sample, config.seed)
    X_val, y_val = windows[0]
    if 0 < h < config.horizon_days:  # short history: the same rule on a shorter window ending at the cutoff
        X_val, y_val = churn_examples(sampled, replace(config, horizon_days=h, churn_windows="single"),
                                      config.cutoff)[0]
    elif isinstance(sampled, CustomerSample):  # the shipped examples at the same date, cut to the sample
        keep = sampled.rows(X_val.index)  # the labels share the examples' index: one lookup, no .loc by id
        X_val, y_val = X_val[keep], y_val[keep]
    if isinstance(engine, TrainingMemo):  # no step asks for the frames of those dates again
        engine.keep_only([(config.cutoff, config.time_unit)])
    # the shipped classifier first: with an "earlier" calibration its full frame one horizon before is the
    # one the validated classifier's sample is cut from
    classifier, why = _try_classifier(engine, config, first_day, windows)
    scores = baseline_scores(X_val)
    validated, missing = (_try_classifier(sampled, validation_config(config, h), first_day) if h else
                          (None, f"{history} days of history before the cutoff; validating it needs "
                                 f"{validation_history_days(config.horizon_days, before)} days"))
    if validated is not None:
        scores[CLASSIFIER] = validated.predict_proba(X_val)
    selection = choose_churn_model(y_val.to_numpy(), scores, seed=config.seed, classifier_missing=missing)
    warnings = []
    if validated is None:
        warnings.append(f"churn classifier not validated at cutoff {config.cutoff.date()} ({missing}); "
                        f"churn_probability is the calibrated {selection.model}")
    if not selection.informative:
        warnings.append(f"churn validation window ending at {config.cutoff.date()}: {selection.reason}; "
                        "churn_probability is neither validated nor calibrated")
    if classifier is None:
        warnings.append(f"churn classifier not fitted at cutoff {config.cutoff.date()}: {why}")
        if selection.model == CLASSIFIER:  # validated earlier but not fittable now
            selection = choose_churn_model(y_val.to_numpy(), baseline_scores(X_val), seed=config.seed,
                                           classifier_missing=why)
    if validated is not None and h < config.horizon_days:
        warnings.append(f"churn classifier validated on a {h}-day window ending at cutoff {config.cutoff.date()}, "
                        f"not at the {config.horizon_days}-day horizon ({history} days of history); the choice "
                        f"of churn_probability ({selection.model}) assumes the {h}-day ranking holds at "
                        f"{config.horizon_days} days")
    selection = replace(selection, validation_horizon_days=h or config.horizon_days)
    shipped = classifier if selection.model == CLASSIFIER else BaselineChurnModel(name=selection.model).fit(
        *windows[0], calibrate=selection.informative)  # calibrated at the full horizon
    return ChurnFit(shipped=shipped, classifier=classifier, selection=selection, warnings=warnings,
                    validation_sample=sample)


def train_scorer(engine: FeatureEngine, config: TrainConfig,
                 dates: Optional[tuple[pd.Timestamp, pd.Timestamp]] = None) -> TrainResult:
    """Fit the purchase model (:mod:`custscore.training.purchase_choice`), Gamma-Gamma and the churn
    classifier on the log up to the cutoff.

    ``engine`` answers feature questions about the log (see
    :mod:`custscore.features.customers`). Where the log extends past the cutoff, the
    scorer is evaluated on that holdout (up to ``config.holdout_end`` or the last day).
    ``dates``: what :func:`~custscore.training.cutoff_check.check_dates` returned for this
    engine and config, when the caller has checked them already.
    """
    first_day, last_day = check_dates(engine, config) if dates is None else dates
    cutoff = config.cutoff
    calibration = engine.customer_features(cutoff, config.time_unit)
    encoding, covariate_warnings, covariate_table = None, [], None
    if config.covariates is not None:  # every feature frame from here on carries the encoded covariates
        engine, encoding, covariate_warnings = covariate_engine(engine, calibration, config.covariates,
                                                                config.columns.customer)
        covariate_table = engine.table
        calibration = engine.attach(calibration)  # the frame at the cutoff, not a second pass over the log
    # features and purchase fits asked twice are computed once (the calibration frame is the first)
    engine = TrainingMemo(engine, known={(cutoff, config.time_unit): calibration})
    choice = select_purchase_model(engine, config, first_day, calibration)
    purchase = choice.shipped
    config = replace(config, purchase_model=choice.model)  # churn features use the chosen model

    gamma_gamma = fit_spend(calibration, config, f"cutoff {cutoff.date()}")
    warnings = (covariate_warnings + list(purchase.warnings_) + choice.warnings
                + (list(gamma_gamma.warnings_) if gamma_gamma is not None else []))

    # Churn examples: features <= each reference date, labels in (reference, cutoff].
    churn = select_churn(engine, config, first_day)
    engine.keep_only([(cutoff, config.time_unit)])  # only the calibration frame is asked for from here on

    warnings += churn.warnings
    gap_days = fit_gap_days(calibration["ipt_mean_days"].to_numpy(dtype=float))
    if gap_days is None and SegmentConfig().cadence == "learnt":
        warnings.append(f"no customer bought twice by the cutoff {cutoff.date()}: no purchase cadence to learn; "
                        "activity tiers and lifecycle stages use the textbook bounds")
    scorer = CustomerScorer(purchase_model=purchase, gamma_gamma=gamma_gamma, churn=churn.shipped, time_unit=config.time_unit,
                            horizon_days=config.horizon_days, discount_rate=config.discount_rate, cutoff=cutoff,
                            churn_model=churn.selection.model, has_amounts=gamma_gamma is not None,
                            fit_warnings=tuple(warnings), amount_decimals=config.columns.amount_decimals,
                            covariate_encoding=encoding)
    # Segment cut points: fixed numbers learned once from the calibration customers (segments.py).
    calibration_scores = scorer.score_customers(calibration, cutoff, with_segments=False)
    scorer.segment_thresholds = fit_thresholds(scorer.segment_inputs(calibration_scores, calibration),
                                               scorer.segment_config, calibration["ipt_mean_days"].to_numpy(dtype=float))
    # the holdout reads five of its columns: the rest (a GB at 5M customers) is freed before it runs
    calibration_scores = calibration_scores[list(HOLDOUT_SCORE_COLUMNS)]
    repeat = repeat_spenders(calibration)
    metrics = {
        **{f"{key}_log_likelihood": model.log_likelihood_ for key, model in choice.fits.items()},
        # standard errors from the observed information (inverse Hessian), prefixed as the params
        **{f"{model.PARAM_PREFIX}{name}_se": se for model in choice.fits.values()
           for name, se in model.diagnostics_["standard_errors"].items()},
        **{f"purchase_validation_{measure}_{row.model}": getattr(row, f"validation_{measure}")
           for row in choice.table.itertuples() for measure in ("poisson_deviance", "mae", "log_likelihood")},
        "gamma_gamma_log_likelihood": getattr(gamma_gamma, "log_likelihood_", float("nan")),
        "gamma_gamma_customers": float(len(repeat)),
        "frequency_monetary_corr": _safe_corr(repeat["frequency"], repeat["monetary_value"]),
        "repeat_customer_share": float((calibration["frequency"] > 0).mean()),
        **churn.selection.metrics(),
    }
    if churn.classifier is not None:
        metrics.update({"churn_train_examples": float(churn.classifier.n_train_),
                        "churn_train_rate": churn.classifier.churn_rate_train_})
    holdout_end = min(config.holdout_end, last_day) if config.holdout_end is not None else last_day
    holdout = None
    if holdout_end > cutoff:
        holdout = evaluate_holdout(scorer, engine, cutoff, holdout_end, calibration_scores, churn.classifier,
                                   calibration)
        metrics.update(holdout.metrics)
    return TrainResult(scorer=scorer, metrics=metrics, n_customers=len(calibration), holdout=holdout,
                       calibration=calibration, warnings=warnings, churn=churn, purchase=choice,
                       covariates=covariate_table)


def _safe_corr(a: pd.Series, b: pd.Series) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a.to_numpy(dtype=float), b.to_numpy(dtype=float))[0, 1])
