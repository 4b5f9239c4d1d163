"""CustomerScorer: the fitted pieces plus the feature pipeline, scoring customers.

One object owns everything needed to go from transaction rows to one score row per
customer, so batch scoring, the MLflow pyfunc and the HTTP server all call the same
:meth:`CustomerScorer.score`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from custscore.config import DAYS_PER_UNIT, ColumnMap, parse_date
from custscore.errors import CustscoreError
from custscore.features.customers import customer_features
from custscore.features.periods import merge_periods
from custscore.features.rfm import duration_columns
from custscore.training.columns import frame_of
from custscore.training.texts import repeat_text
from custscore.training.churn import ChurnClassifier, churn_features
from custscore.training.churn_select import BaselineChurnModel
from custscore.training.covariate_file import CovariateEncoding
from custscore.training.covariates import attach_covariates, for_customers
from custscore.training.purchase_models import PurchaseModel
from custscore.training.reasons import churn_reasons
from custscore.training.segments import SegmentConfig, SegmentThresholds, assign_segments, required_columns
from custscore.training.spend import SpendModel
from custscore.training.uncertainty import clv_interval, purchase_interval
from custscore.training.value import expected_clv

#: Columns of a score table, in order. Durations: ``recency`` and ``T`` are in the
#: model's ``time_unit`` (BTYD convention), every other duration says its unit.
#: ``reason_1..3``: what raises the churn risk most, in words (:mod:`custscore.training.reasons`).
#: ``purchase_model``: the key of the model behind ``p_alive``, ``expected_purchases`` and ``clv``.
#: ``p_no_purchase`` (in the horizon), ``purchases_p10/p90`` and ``clv_p10/p90``: how sure the
#: scores are (:mod:`custscore.training.uncertainty`).
SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "frequency",
    "recency",
    "T",
    "time_unit",
    "monetary_value",
    "tenure_days",
    "days_since_last_purchase",
    "n_purchases_90d",
    "spend_90d",
    "n_purchases_365d",
    "spend_365d",
    "trend_90d",
    "p_alive",
    "churn_probability",
    "reason_1",
    "reason_2",
    "reason_3",
    "expected_purchases",
    "p_no_purchase",
    "purchases_p10",
    "purchases_p90",
    "expected_avg_spend",
    "clv",
    "clv_p10",
    "clv_p90",
    "horizon_days",
    "discount_rate",
    "as_of",
    "model_version",
    "purchase_model",
)


@dataclass
class CustomerScorer:
    """Fitted purchase model + Gamma-Gamma + churn model with their scoring conventions.

    ``purchase_model`` is the fitted model of repeat purchases the scores use (any
    :class:`~custscore.training.purchase_models.PurchaseModel`; its ``KEY`` is the score
    column ``purchase_model``). ``time_unit`` is the unit of its parameters (``D`` or ``W``),
    ``horizon_days`` the default churn/CLV horizon, ``discount_rate`` yearly,
    ``cutoff`` the last calibration day of training. ``model_version`` is filled in
    when the scorer is logged (the MLflow run id). ``segment_config`` and
    ``segment_thresholds`` (fitted by training) define the segment columns added after
    :data:`SCORE_COLUMNS` (:mod:`custscore.training.segments`).

    ``gamma_gamma`` is the spend model (Gamma-Gamma, or the observed mean spend when
    Gamma-Gamma was skipped, :mod:`custscore.training.spend`), None when the training log
    had no amounts: then ``has_amounts`` is False and ``monetary_value``,
    ``expected_avg_spend`` and ``clv`` are NaN. ``fit_warnings`` are the training fit
    warnings (texts without the ``warning: `` prefix), shown by ``score`` and ``/version``.
    ``covariate_encoding`` (None: trained without covariates) turns a covariate table into
    the purchase model's columns; then every customer scored needs a row of covariates
    (:meth:`with_covariates`), and a model without covariates refuses a covariate table.
    """

    purchase_model: PurchaseModel
    gamma_gamma: Optional[SpendModel]
    churn: Union[ChurnClassifier, BaselineChurnModel]
    time_unit: str
    horizon_days: int
    discount_rate: float
    cutoff: pd.Timestamp
    model_version: str = ""
    segment_config: SegmentConfig = field(default_factory=SegmentConfig)
    segment_thresholds: Optional[SegmentThresholds] = None
    #: what ships as ``churn_probability``: ``classifier`` or a baseline name such as
    #: ``baseline_bgnbd_p_no_purchase`` (training.churn_select); ``churn`` is that model
    churn_model: str = "classifier"
    has_amounts: bool = True
    fit_warnings: tuple[str, ...] = ()
    #: the training log's day-netting precision (ColumnMap.amount_decimals): every scoring
    #: path nets a day as training did
    amount_decimals: int = ColumnMap.amount_decimals
    #: how covariates are encoded for the purchase model (None: trained without covariates)
    covariate_encoding: Optional[CovariateEncoding] = None

    def with_covariates(self, customers: pd.DataFrame, covariates: Optional[pd.DataFrame],
                        source: str = "covariates") -> pd.DataFrame:
        """``customers`` with the encoded covariates of ``covariates`` (indexed by customer id) attached.

        Errors (one line, naming ``source``): a model trained with covariates given none or
        a table missing a customer, a column or with an unseen level; a model trained
        without covariates given a table.
        """
        encoded = self.encode_covariates(covariates, source)
        return customers if encoded is None else attach_covariates(customers, encoded, source)

    def encode_covariates(self, covariates: Optional[pd.DataFrame], source: str = "covariates") -> Optional[pd.DataFrame]:
        """The purchase model's covariate columns of a covariate table (None for a model without
        covariates); the refusals of :meth:`with_covariates`."""
        encoding = self.covariate_encoding
        if encoding is None:
            if covariates is not None:
                raise CustscoreError(f"{source}: this model was trained without covariates; score without them")
            return None
        if covariates is None:
            raise CustscoreError(f"this model was trained with covariates ({', '.join(encoding.columns)}): "
                                 "pass them (--covariates FILE, or \"covariates\" per customer over HTTP)")
        return encoding.transform(covariates, source)

    def score(self, transactions: pd.DataFrame, as_of=None, horizon_days: Optional[int] = None,
              covariates: Optional[pd.DataFrame] = None, covariates_source: str = "covariates") -> pd.DataFrame:
        """Score normalised transactions (``customer_id``, ``ts``, ``amount``) at ``as_of``.

        Transactions after ``as_of`` (inclusive day) are ignored, so scoring a full log
        at an earlier date equals scoring the log cut at that date. ``as_of`` of None
        means the last transaction day. Returns one row per customer whose first
        purchase is on or before ``as_of``, sorted by ``customer_id``. ``covariates``:
        the covariate table (:func:`~custscore.training.covariates.read_covariates`) of a
        model trained with covariates.
        """
        if len(transactions) == 0:
            raise CustscoreError("no transactions to score")
        as_of = transactions["ts"].max().normalize() if as_of is None else parse_date(as_of, "as_of")
        kept = transactions[transactions["ts"] < as_of + pd.Timedelta(days=1)]
        if len(kept) == 0:
            first = transactions["ts"].min().date()
            raise CustscoreError(f"as_of {as_of.date()} is before the first transaction ({first}): nothing to score")
        purchases = merge_periods(kept, amount_decimals=self.amount_decimals)
        customers = self.with_covariates(customer_features(purchases, as_of, self.time_unit), covariates,
                                         covariates_source)
        return self.score_customers(customers, as_of, horizon_days)

    def score_customers(self, customers: pd.DataFrame, as_of: pd.Timestamp,
                        horizon_days: Optional[int] = None, with_segments: bool = True) -> pd.DataFrame:
        """Score a per-customer feature frame (the :func:`customer_features` contract).

        Any feature engine (pandas, DuckDB, ...) can produce ``customers``; this is the
        only place the fitted models are applied. ``with_segments=False`` returns only
        :data:`SCORE_COLUMNS` (used to fit the segment thresholds). A model with covariates
        needs them attached (:meth:`with_covariates`).
        """
        horizon = self.horizon_days if horizon_days is None else int(horizon_days)
        if horizon <= 0:
            raise CustscoreError(f"horizon_days: must be > 0, got {horizon}")
        purchase_model = for_customers(self.purchase_model, customers)
        X = churn_features(customers, purchase_model, horizon, self.time_unit)
        recency_col, t_col = duration_columns(self.time_unit)
        x = customers["frequency"].to_numpy()
        t_x = customers[recency_col].to_numpy()
        T = customers[t_col].to_numpy()
        monetary = customers["monetary_value"].to_numpy(dtype=float)
        if self.has_amounts:
            spend = self.expected_avg_spend(x, monetary)
            clv = expected_clv(purchase_model, x, t_x, T, spend, horizon_days=horizon,
                               days_per_unit=DAYS_PER_UNIT[self.time_unit],
                               discount_rate_yearly=self.discount_rate)
            clv_range = clv_interval(purchase_model, x, t_x, T, spend, horizon_days=horizon,
                                     days_per_unit=DAYS_PER_UNIT[self.time_unit],
                                     discount_rate_yearly=self.discount_rate, point=clv,
                                     **self.spend_uncertainty(x, monetary))
        else:  # no amounts in the log: value is not known, never 0
            monetary = spend = clv = np.full(len(x), np.nan)
            clv_range = {"clv_p10": clv, "clv_p90": clv}
        n = len(customers)
        out = frame_of({
            "customer_id": _ids(customers.index),
            "frequency": x,
            "recency": t_x,
            "T": T,
            "time_unit": repeat_text(self.time_unit, n),
            "monetary_value": monetary,
            "tenure_days": customers["tenure_days"].to_numpy(dtype=float),
            "days_since_last_purchase": X["days_since_last_purchase"].to_numpy(),
            "n_purchases_90d": customers["n_purchases_90d"].to_numpy(),
            "spend_90d": customers["spend_90d"].to_numpy(),
            "n_purchases_365d": customers["n_purchases_365d"].to_numpy(),
            "spend_365d": customers["spend_365d"].to_numpy(),
            "trend_90d": customers["trend_90d"].to_numpy(),
            "p_alive": X["p_alive"].to_numpy(),
            "churn_probability": self.churn.predict_proba(X),
            **churn_reasons(self.churn, X.to_numpy(dtype=float)),
            "expected_purchases": X["expected_purchases_horizon"].to_numpy(),
            "p_no_purchase": X["p_no_purchase_horizon"].to_numpy(),
            **purchase_interval(purchase_model, horizon / DAYS_PER_UNIT[self.time_unit], x, t_x, T),
            "expected_avg_spend": spend,
            "clv": clv,
            **clv_range,
            "horizon_days": horizon,
            "discount_rate": self.discount_rate,
            "as_of": repeat_text(pd.Timestamp(as_of).date().isoformat(), n),
            "model_version": repeat_text(self.model_version, n),
            "purchase_model": repeat_text(self.purchase_model.KEY, n),
        })
        out = out[list(SCORE_COLUMNS)].reset_index(drop=True)
        if not with_segments:
            return out
        if self.segment_thresholds is None:
            raise CustscoreError("this scorer has no segment thresholds (trained before segments existed); retrain it")
        inputs = self.segment_inputs(out.assign(**{c: customers[c].to_numpy() for c in required_columns(self.segment_config)
                                                   if c not in out.columns and c in customers.columns}), customers)
        return pd.concat([out, assign_segments(inputs, self.segment_config, self.segment_thresholds)], axis=1)

    def segment_inputs(self, scores: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
        """What the segments rank by: value, or purchases for a log without amounts.

        Without amounts, current value is the purchase count over the value window
        (``n_purchases_<w>d`` in place of ``spend_<w>d``) and future value the expected
        purchases in the horizon (in place of ``clv``): the segments rank by purchases, and
        ``current_value``/``future_value`` are then counts (the report says so).
        """
        if self.has_amounts:
            return scores
        spend_col = self.segment_config.spend_column
        counts = spend_col.replace("spend_", "n_purchases_")
        source = scores[counts] if counts in scores.columns else customers[counts]
        return scores.assign(**{spend_col: source.to_numpy(dtype=float),
                                "clv": scores["expected_purchases"].to_numpy(dtype=float)})

    def spend_params(self) -> dict[str, float]:
        """The spend model's fitted numbers by name (Gamma-Gamma ``p, q, v``, or
        ``observed_mean_spend`` when it was skipped); ``{}`` for a log without amounts."""
        if self.gamma_gamma is None:
            return {}
        params = dict(self.gamma_gamma.params_)
        if not params:
            params["observed_mean_spend"] = self.gamma_gamma.population_mean_
        return {k: float(v) for k, v in params.items()}

    def expected_avg_spend(self, frequency: np.ndarray, monetary_value: np.ndarray,
                           spend_model: Optional[SpendModel] = None) -> np.ndarray:
        """Expected spend per purchase of the spend model (or of ``spend_model``), shape (n_customers,).

        Customers without a positive mean repeat spend (no repeat purchase, or returns
        netting their spend to <= 0) get the population mean (Gamma-Gamma's
        ``p * v / (q - 1)``, or the observed one).
        """
        model = self.gamma_gamma if spend_model is None else spend_model
        if model is None:
            raise CustscoreError("this model was trained on a log without amounts: no expected spend")
        frequency = np.asarray(frequency)
        monetary_value = np.asarray(monetary_value, dtype=float)
        informative = (frequency > 0) & (monetary_value > 0)
        spend = np.asarray(model.expected_average_spend(np.zeros(1, dtype=int), np.ones(1)))[0]
        out = np.full(frequency.shape, spend, dtype=float)
        if informative.any():
            out[informative] = model.expected_average_spend(frequency[informative], monetary_value[informative])
        return out

    def spend_uncertainty(self, frequency: np.ndarray, monetary_value: np.ndarray) -> dict[str, Any]:
        """The ``spend_model`` and ``spend_at`` arguments of :func:`~custscore.training.uncertainty.clv_interval`:
        the spend model's parameter uncertainty enters the CLV range."""
        return {"spend_model": self.gamma_gamma,
                "spend_at": lambda fit: self.expected_avg_spend(frequency, monetary_value, spend_model=fit)}


def _ids(index: pd.Index) -> Any:
    """The customer ids of a feature frame's index as a column (an Arrow-backed text index as it is)."""
    return index.array if isinstance(index.dtype, pd.StringDtype) else index.to_numpy()
