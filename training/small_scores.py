"""Score rows of a few customers from numpy feature columns: the fast path's assembly.

:meth:`CustomerScorer.score_customers` builds pandas frames column by column (the churn
feature frame, the score table), which costs milliseconds for one customer. This module
builds the same rows from the arrays of
:func:`custscore.features.small_features.small_customer_features` and applies the
scorer's own fitted objects, so it cannot drift from them: the purchase model's ``p_alive``,
``expected_purchases`` and ``p_no_purchase`` (:class:`~custscore.training.purchase_models.PurchaseModel`), the churn
classifier's own ``predict_proba`` on :data:`~custscore.training.churn.CHURN_FEATURES`
(in that order) and :func:`~custscore.training.reasons.churn_reasons` on the same matrix, Gamma-Gamma through :meth:`CustomerScorer.expected_avg_spend`,
:func:`~custscore.training.value.expected_clv` and
:func:`~custscore.training.segments.segment_arrays` with the stored segment settings.
Only the arithmetic that turns feature columns into the churn inputs (days, rates, the
``ipt_mean_days`` fill) is written again here; the tests hold it equal to
:func:`~custscore.training.churn.churn_features`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from custscore.config import DAYS_PER_UNIT, DAYS_PER_YEAR, parse_date
from custscore.errors import CustscoreError
from custscore.features.rfm import duration_columns
from custscore.training.churn import CHURN_FEATURES
from custscore.training.purchase_models import PurchaseModel
from custscore.training.reasons import churn_reasons
from custscore.training.scorer import SCORE_COLUMNS, CustomerScorer
from custscore.training.segments import DISCOUNT_CREDIT_COLUMNS, required_columns, segment_arrays
from custscore.training.uncertainty import clv_interval, purchase_interval
from custscore.training.value import expected_clv

#: Feature columns the classifier reads as they are (as float).
_FEATURE_COLUMNS_AS_FLOAT = ("monetary_value", "days_since_last_purchase", "n_purchases_30d", "n_purchases_90d",
                             "n_purchases_365d", "spend_90d", "spend_365d", "trend_90d")
#: Score columns copied from the feature columns, and from the churn inputs (score <- input).
_SCORES_FROM_FEATURES = ("monetary_value", "tenure_days", "n_purchases_90d", "spend_90d", "n_purchases_365d",
                         "spend_365d", "trend_90d")
_SCORES_FROM_CHURN_INPUTS = {"days_since_last_purchase": "days_since_last_purchase", "p_alive": "p_alive",
                             "expected_purchases": "expected_purchases_horizon",
                             "p_no_purchase": "p_no_purchase_horizon"}
#: Churn features this module builds; a classifier asking for another one cannot use it.
KNOWN_CHURN_FEATURES: frozenset[str] = frozenset((
    "frequency", "recency_days", "T_days", "ipt_mean_days", "purchase_rate_per_year", "p_alive",
    "expected_purchases_horizon", "p_no_purchase_horizon", "horizon_days", "days_since_last_over_tenure",
    "days_since_last_over_ipt", "horizon_over_ipt", *_FEATURE_COLUMNS_AS_FLOAT))


def unsupported_reason(scorer: CustomerScorer, feature_names: frozenset[str]) -> Optional[str]:
    """Why :func:`score_small` cannot score with ``scorer``, or None when it can.

    ``feature_names`` are the columns the caller's features provide. The fast path needs
    segment thresholds, churn features it knows how to build and the segment inputs.
    """
    if scorer.segment_thresholds is None:
        return "the scorer has no segment thresholds"
    if getattr(scorer, "covariate_encoding", None) is not None:
        return "the scorer's purchase model takes covariates"
    if not scorer.has_amounts:
        return "the scorer was trained on a log without amounts"
    unknown = sorted(set(CHURN_FEATURES) - KNOWN_CHURN_FEATURES)
    if unknown:
        return f"churn features {unknown} are not built by the fast path"
    available = feature_names | set(SCORE_COLUMNS)
    missing = sorted(c for c in required_columns(scorer.segment_config)
                     if c not in available and c not in DISCOUNT_CREDIT_COLUMNS)
    if missing:
        return f"segment inputs {missing} are not built by the fast path"
    return None


def churn_inputs(features: Mapping[str, np.ndarray], purchase_model: PurchaseModel, horizon_days: int,
                 time_unit: str) -> pd.DataFrame:
    """The classifier's input (columns :data:`CHURN_FEATURES`, durations in days), as ``churn_features``.

    ``features`` holds the :func:`customer_features` columns (durations in ``time_unit``).
    """
    return pd.DataFrame(_churn_matrix(churn_input_arrays(features, purchase_model, horizon_days, time_unit)),
                        columns=list(CHURN_FEATURES))


def _churn_matrix(values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The :data:`CHURN_FEATURES` arrays as columns of one matrix, shape (n_customers, n_features)."""
    if not len(values["frequency"]):
        return np.zeros((0, len(CHURN_FEATURES)))
    return np.column_stack([values[c] for c in CHURN_FEATURES])


def churn_input_arrays(features: Mapping[str, np.ndarray], purchase_model: PurchaseModel, horizon_days: int,
                       time_unit: str) -> dict[str, np.ndarray]:
    """:func:`churn_inputs` as one array per :data:`CHURN_FEATURES` column (no frame)."""
    recency_col, t_col = duration_columns(time_unit)
    days = DAYS_PER_UNIT[time_unit]
    x, t_x, T = features["frequency"], features[recency_col], features[t_col]
    T_days = T * days
    p_alive = purchase_model.p_alive(x, t_x, T)
    frequency = x.astype(float)
    ipt_mean = features["ipt_mean_days"]
    ipt_filled = np.where(np.isnan(ipt_mean), T_days, ipt_mean)
    since_last = features["days_since_last_purchase"].astype(float)
    values = {
        "frequency": frequency,
        "recency_days": t_x * days,
        "T_days": T_days,
        **{c: features[c].astype(float) for c in _FEATURE_COLUMNS_AS_FLOAT},
        "ipt_mean_days": ipt_filled,
        "purchase_rate_per_year": frequency / np.maximum(T_days, 1.0) * DAYS_PER_YEAR,
        "p_alive": p_alive,
        "expected_purchases_horizon": purchase_model.expected_purchases(horizon_days / days, x, t_x, T),
        "p_no_purchase_horizon": purchase_model.p_no_purchase(horizon_days / days, x, t_x, T),
        "horizon_days": np.full(len(x), float(horizon_days)),
        "days_since_last_over_tenure": since_last / np.maximum(T_days, 1.0),
        "days_since_last_over_ipt": since_last / np.maximum(ipt_filled, 1.0),
        "horizon_over_ipt": horizon_days / np.maximum(ipt_filled, 1.0),
    }
    return values


def score_small(scorer: CustomerScorer, customer_ids: Any, features: Mapping[str, np.ndarray], as_of: Any,
                horizon_days: Optional[int] = None, model_version: Optional[str] = None) -> pd.DataFrame:
    """The score table of :meth:`CustomerScorer.score_customers` for these customers.

    A frame of :func:`score_small_columns` (same arguments).
    """
    return pd.DataFrame(score_small_columns(scorer, customer_ids, features, as_of, horizon_days, model_version))


def score_small_columns(scorer: CustomerScorer, customer_ids: Any, features: Mapping[str, np.ndarray], as_of: Any,
                        horizon_days: Optional[int] = None,
                        model_version: Optional[str] = None) -> dict[str, np.ndarray]:
    """The columns of :meth:`CustomerScorer.score_customers` for these customers, in order.

    ``customer_ids`` (text) are aligned with the ``features`` arrays (the columns of
    :func:`~custscore.features.small_features.small_customer_features`, durations in the
    scorer's ``time_unit``); rows come back in that order. ``horizon_days`` of None is
    the scorer's horizon; ``model_version`` (e.g. ``NAME/VERSION``) of None or empty is
    the scorer's own (its run id), as in batch scoring.
    """
    horizon = scorer.horizon_days if horizon_days is None else int(horizon_days)
    if horizon <= 0:
        raise CustscoreError(f"horizon_days: must be > 0, got {horizon}")
    reason = unsupported_reason(scorer, frozenset(features))
    if reason is not None:
        raise CustscoreError(f"fast path cannot score with this model: {reason}")
    time_unit = scorer.time_unit
    inputs = churn_input_arrays(features, scorer.purchase_model, horizon, time_unit)
    # The classifier takes a plain matrix when it was fitted on exactly these columns.
    matrix = _churn_matrix(inputs)
    fitted_on = getattr(scorer.churn, "features_", None)
    X = matrix if fitted_on == list(CHURN_FEATURES) else pd.DataFrame(matrix, columns=list(CHURN_FEATURES))
    recency_col, t_col = duration_columns(time_unit)
    x, t_x, T = features["frequency"], features[recency_col], features[t_col]
    spend = scorer.expected_avg_spend(x, features["monetary_value"])
    days = DAYS_PER_UNIT[time_unit]
    clv = expected_clv(scorer.purchase_model, x, t_x, T, spend, horizon_days=horizon, days_per_unit=days,
                       discount_rate_yearly=scorer.discount_rate)
    clv_range = clv_interval(scorer.purchase_model, x, t_x, T, spend, horizon_days=horizon, days_per_unit=days,
                             discount_rate_yearly=scorer.discount_rate, point=clv,
                             **scorer.spend_uncertainty(x, features["monetary_value"]))
    n = len(x)
    constant = {"time_unit": time_unit, "horizon_days": horizon, "discount_rate": float(scorer.discount_rate),
                "as_of": parse_date(as_of, "as_of").date().isoformat(),
                "model_version": model_version or scorer.model_version, "purchase_model": scorer.purchase_model.KEY}
    scores: dict[str, Any] = {
        "customer_id": np.asarray(customer_ids, dtype=object), "frequency": x, "recency": t_x, "T": T,
        **{c: features[c] for c in _SCORES_FROM_FEATURES},
        **{c: inputs[source] for c, source in _SCORES_FROM_CHURN_INPUTS.items()},
        "churn_probability": scorer.churn.predict_proba(X), **churn_reasons(scorer.churn, matrix),
        **purchase_interval(scorer.purchase_model, horizon / days, x, t_x, T),
        "expected_avg_spend": spend, "clv": clv, **clv_range,
        **{c: np.full(n, value, dtype=object if isinstance(value, str) else type(value))
           for c, value in constant.items()},
    }
    inputs = {c: (scores[c] if c in scores else features[c]) for c in required_columns(scorer.segment_config)
              if c in scores or c in features}
    segments = segment_arrays(inputs, scorer.segment_config, scorer.segment_thresholds)
    return {**{c: scores[c] for c in SCORE_COLUMNS}, **segments}
