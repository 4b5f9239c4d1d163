"""Covariates carried with the customers: feature frames, bound purchase models, wrapped engines.

The encoded covariates (:mod:`custscore.training.covariate_file`) ride along with the
per-customer feature frames (prefixed :data:`COVARIATE_PREFIX`, :func:`attach_covariates`),
and :func:`for_customers` binds a purchase model fitted with covariates to the customers
of one frame, so every caller of the purchase-model interface works unchanged.
:func:`covariate_engine` wraps a feature engine so that training sees them everywhere.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pandas as pd

from custscore.errors import CustscoreError
from custscore.features.engines import iter_customer_features
from custscore.features.io import _show
from custscore.training.covariate_file import ROW_COLUMN, CovariateEncoding, fit_encoding, read_covariates
from custscore.training.purchase_models import PurchaseModel

#: Prefix of the encoded covariate columns in a per-customer feature frame.
COVARIATE_PREFIX = "covariate__"


def attach_covariates(customers: pd.DataFrame, encoded: pd.DataFrame, source: str) -> pd.DataFrame:
    """``customers`` (indexed by customer id) with the encoded covariates as prefixed columns.

    ``encoded`` is :meth:`CovariateEncoding.transform` of the covariate table; a customer
    without a row there is an error naming the first one and how many are missing.
    """
    missing = ~customers.index.isin(encoded.index)
    if missing.any():
        first = customers.index[np.flatnonzero(missing)[0]]
        raise CustscoreError(f"{source}: no covariates for customer {_show(first)} ({int(missing.sum())} of "
                             f"{len(customers)} customers missing); the covariate file needs a row per customer")
    rows = encoded.reindex(customers.index)
    return customers.assign(**{COVARIATE_PREFIX + c: rows[c].to_numpy() for c in encoded.columns})


def covariate_frame(customers: pd.DataFrame) -> Optional[pd.DataFrame]:
    """The encoded covariates a feature frame carries (prefix stripped), or None without any."""
    columns = [c for c in customers.columns if str(c).startswith(COVARIATE_PREFIX)]
    if not columns:
        return None
    return customers[columns].rename(columns=lambda c: c[len(COVARIATE_PREFIX):])


def for_customers(model: PurchaseModel, customers: pd.DataFrame) -> PurchaseModel:
    """``model`` for the customers of ``customers``, in its row order: bound to their covariates
    when the model was fitted with covariates, else ``model`` itself (also when already bound).

    A model with covariates and a frame without them is an error (one line).
    """
    if isinstance(model, CovariateBound) or not getattr(model, "covariate_names_", ()):
        return model
    frame = covariate_frame(customers)
    if frame is None:
        raise CustscoreError(f"this {model.MODEL_NAME} model was trained with covariates "
                             f"({', '.join(model.covariate_names_)}): pass --covariates FILE")
    return CovariateBound(model, frame[list(model.covariate_names_)])


class CovariateBound:
    """A purchase model fitted with covariates, bound to the covariates of a fixed set of customers.

    It has the :class:`~custscore.training.purchase_models.PurchaseModel` interface without
    the ``covariates`` argument: every prediction is for those customers, in that order
    (``(n, k)`` covariates, so ``frequency`` etc. must have ``n`` rows). Other attributes
    (``KEY``, ``params_``, ``variance_matrix_``, ...) are the model's; setting ``params_``
    (the CLV interval's shifted parameters) rebinds a copy of the model.
    """

    def __init__(self, model: PurchaseModel, covariates: pd.DataFrame) -> None:
        self.model, self.covariates = model, covariates

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("model", "covariates"):
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def params_(self) -> dict[str, float]:
        return self.model.params_

    @params_.setter
    def params_(self, value: dict[str, float]) -> None:
        self.model = copy.copy(self.model)
        self.model.params_ = value

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        return self.model.p_alive(frequency, recency, T, covariates=self.covariates)

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        return self.model.expected_purchases(t, frequency, recency, T, covariates=self.covariates)

    def p_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        return self.model.p_no_purchase(t, frequency, recency, T, covariates=self.covariates)

    def discounted_expected_purchases(self, step_ends: Any, discount_factors: Any, frequency: Any, recency: Any,
                                      T: Any) -> np.ndarray:
        return self.model.discounted_expected_purchases(step_ends, discount_factors, frequency, recency, T,
                                                        covariates=self.covariates)

    def purchase_pmf(self, t: Any, frequency: Any, recency: Any, T: Any, k_max: int) -> np.ndarray:
        return self.model.purchase_pmf(t, frequency, recency, T, k_max, covariates=self.covariates)

    def purchase_quantiles(self, t: Any, frequency: Any, recency: Any, T: Any,
                           levels: tuple[float, ...] = (0.1, 0.9)) -> list[np.ndarray]:
        return self.model.purchase_quantiles(t, frequency, recency, T, levels, covariates=self.covariates)


class CovariateEngine:
    """A feature engine (:class:`~custscore.features.customers.FeatureEngine`) whose per-customer
    frames carry the encoded covariates (:func:`attach_covariates`); everything else is ``engine``'s."""

    def __init__(self, engine: Any, encoded: pd.DataFrame, source: str, table: Optional[pd.DataFrame] = None) -> None:
        self.engine, self.encoded, self.source, self.table = engine, encoded, source, table

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("engine", "encoded", "source", "table", "attach"):
            raise AttributeError(name)
        return getattr(self.engine, name)

    def attach(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (customers of the wrapped engine) with the encoded covariates."""
        return attach_covariates(frame, self.encoded, self.source)

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        return self.attach(self.engine.customer_features(as_of, time_unit))

    def iter_customer_features(self, as_of: pd.Timestamp, time_unit: str) -> Iterator[pd.DataFrame]:
        """The engine's chunks (:func:`~custscore.features.engines.iter_customer_features`) with covariates."""
        for chunk in iter_customer_features(self.engine, as_of, time_unit):
            yield self.attach(chunk)


def covariate_engine(engine: Any, customers: pd.DataFrame, path: str | Path,
                     customer_col: str) -> tuple[CovariateEngine, CovariateEncoding, list[str]]:
    """Read the covariate file, learn its encoding on ``customers`` (the training customers at the
    cutoff, each of whom needs a row) and wrap ``engine`` so its frames carry the covariates.

    Returns ``(engine, encoding, warnings)``, the engine's ``table`` the whole file's
    raw rows; errors as :func:`read_covariates`, :func:`fit_encoding` and :func:`attach_covariates`.
    """
    source = str(path)
    table = read_covariates(path, customer_col)
    attach_covariates(customers[[]], table[[ROW_COLUMN]], source)  # every training customer has a row
    training = table.loc[customers.index]
    encoding, warnings = fit_encoding(training, source)
    return CovariateEngine(engine, encoding.transform(training, source), source, table), encoding, warnings
