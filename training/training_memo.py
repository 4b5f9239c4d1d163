"""One training run's repeated questions, answered once: features by date, purchase fits by (model, date).

``train`` asks the log for the features at a date more than once, and fits the same
purchase model on them more than once: ``auto`` fits every candidate at ``R = cutoff - h``
(:mod:`custscore.training.purchase_choice`) and the churn examples of the full-horizon
window are built at ``cutoff - horizon``, the same date when ``h`` is the horizon
(:mod:`custscore.training.pipeline`). :class:`TrainingMemo` is a
:class:`~custscore.features.customers.FeatureEngine` over the run's engine that keeps the
last :data:`KEEP_FEATURES` feature frames and every purchase fit (a few numbers each), so
the second question costs nothing. It lives for one ``train_scorer`` call only.

The model choices are validated on a customer sample at scale
(:attr:`~custscore.config.TrainConfig.validation_sample`): :func:`validation_engine` gives
the engine seen through it (:class:`CustomerSample`), whose frames are cut to the sampled
customers as soon as they are computed, so the memo holds the sample, not every customer.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Optional, Union

import numpy as np
import pandas as pd

from custscore.errors import FitError
from custscore.features.customers import FeatureEngine
from custscore.features.lookup import index_positions, rows_in
from custscore.training.purchase_models import PurchaseModel
from custscore.training.sampling import sample_customers

#: Feature frames kept (a frame of a million customers is a few hundred MB).
KEEP_FEATURES = 2


class _OverEngine:
    """A feature engine over ``self.engine`` that answers every question but the features as it does."""

    engine: FeatureEngine

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.engine.date_range()

    def window_purchases(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self.engine.window_purchases(start, end)

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame:
        return self.engine.example_transactions(n_customers)


class TrainingMemo(_OverEngine):
    """A feature engine that remembers; see the module docstring. Frames are shared: callers must not modify them."""

    def __init__(self, engine: FeatureEngine,
                 known: Optional[dict[tuple[pd.Timestamp, str], pd.DataFrame]] = None) -> None:
        """``known``: frames the caller already has, by ``(as_of, time_unit)``."""
        self.engine = engine
        #: frames by (as_of, time_unit, sample name or None for every customer)
        self._features: OrderedDict[tuple[pd.Timestamp, str, Optional[str]], pd.DataFrame] = OrderedDict(
            ((pd.Timestamp(d), u, None), f) for (d, u), f in (known or {}).items())
        self._fits: dict[Hashable, PurchaseModel | FitError] = {}

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        return self.sample_features(as_of, time_unit, None)

    def sample_features(self, as_of: pd.Timestamp, time_unit: str,
                        sample: Optional["CustomerSample"]) -> pd.DataFrame:
        """The features at ``as_of`` of every customer, or of ``sample``'s only: cut from the full frame
        when it is kept, else computed for the sample (:meth:`CustomerSample.features_of`; the full
        frame is not kept then)."""
        key = (pd.Timestamp(as_of), time_unit, None if sample is None else sample.name)
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        full = self._features.get(key[:2] + (None,))
        if sample is None:  # not kept (it would have been returned above)
            frame = self.engine.customer_features(as_of, time_unit)
        elif full is not None:
            frame = sample.cut(full)
        else:
            frame = sample.features_of(self.engine, as_of, time_unit)
        self._features[key] = frame
        while len(self._features) > KEEP_FEATURES:
            self._features.popitem(last=False)
        return frame

    def keep_only(self, dates: Iterable[tuple[pd.Timestamp, str]]) -> None:
        """Forget every frame but the full ones at ``dates`` (``(as_of, time_unit)``): later steps ask for no other."""
        wanted = {(pd.Timestamp(d), u, None) for d, u in dates}
        for key in [k for k in self._features if k not in wanted]:
            del self._features[key]

    def purchase_fit(self, key: Hashable, fit: Callable[[], PurchaseModel]) -> PurchaseModel:
        """The model ``fit()`` returns for ``key`` (model, date, unit, penalizer, seed), fitted once; a
        :class:`FitError` is remembered and raised again."""
        if key not in self._fits:
            try:
                self._fits[key] = fit()
            except FitError as exc:
                self._fits[key] = exc
        found = self._fits[key]
        if isinstance(found, FitError):
            raise found
        return found


class CustomerSample(_OverEngine):
    """A feature engine over ``engine`` that knows only the customers ``customers`` (a
    :class:`~pandas.Index` of ids): its feature frames hold their rows only, and its purchase
    fits are remembered apart from the full-data ones (``name`` tells them apart)."""

    def __init__(self, engine: FeatureEngine, customers: pd.Index, name: str) -> None:
        self.engine = engine
        self.customers = customers
        self.name = name

    def rows(self, index: pd.Index) -> np.ndarray:
        """Boolean mask of the sampled customers in ``index`` (customer ids)."""
        # Arrow's hash lookup (features.lookup): 0.18 s against 2.55 s for ``Index.isin`` of a million text ids
        # in 250,000 (benchmarks/ORDERS_RESULTS.md run 19)
        return index_positions(self.customers, index) >= 0

    def cut(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` (indexed by customer id) of the sampled customers, in its order."""
        return rows_in(frame, self.customers)

    def features_of(self, engine: FeatureEngine, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        """``engine``'s features of the sampled customers: computed for them alone where the engine can
        (``customer_features_of``: the in-memory DuckDB engine gathers their purchases; at 5M customers
        the full frame is the peak of ``train``, benchmarks/ORDERS_RESULTS.md run 22), else cut from the
        full frame."""
        features_of = getattr(engine, "customer_features_of", None)
        if features_of is not None:
            return features_of(self.customers, as_of, time_unit)
        return self.cut(engine.customer_features(as_of, time_unit))

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        if isinstance(self.engine, TrainingMemo):
            return self.engine.sample_features(as_of, time_unit, self)
        return self.features_of(self.engine, as_of, time_unit)

    def purchase_fit(self, key: Hashable, fit: Callable[[], PurchaseModel]) -> PurchaseModel:
        return memo_fit(self.engine, (self.name, key), fit)


@dataclass(frozen=True)
class ValidationSample:
    """How many customers a model choice was validated on (``used``) of those known (``known``)."""

    used: int
    known: int

    @property
    def sampled(self) -> bool:
        return self.used < self.known

    def describe(self) -> str:
        """``250,000 of 1,000,000 customers`` (or ``all 3,000 customers``)."""
        return f"{self.used:,} of {self.known:,} customers" if self.sampled else f"all {self.known:,} customers"


def validation_engine(engine: FeatureEngine, as_of: pd.Timestamp, time_unit: str, size: int,
                      seed: int) -> tuple[Union[FeatureEngine, CustomerSample], ValidationSample]:
    """``engine`` seen through the customers a choice validated at ``as_of`` uses, and how many.

    Those are a seeded uniform sample (:func:`~custscore.training.sampling.sample_customers`)
    of ``size`` of the customers known at ``as_of`` when there are more, else all of them
    (``engine`` itself). The same ``as_of``, ``size`` and ``seed`` give the same sample; at
    earlier dates the sample's frames hold the sampled customers already known then.
    """
    known = engine.customer_features(as_of, time_unit).index
    ids = sample_customers(known, size, seed)
    if ids is None:
        return engine, ValidationSample(len(known), len(known))
    name = f"sample of {len(ids)} at {pd.Timestamp(as_of).date()} seed {seed}"
    return CustomerSample(engine, ids, name), ValidationSample(len(ids), len(known))


def memo_fit(engine: FeatureEngine, key: Hashable, fit: Callable[[], PurchaseModel]) -> PurchaseModel:
    """``fit()`` through the engine's memo when it is a :class:`TrainingMemo` (or a sample of one), else directly."""
    return engine.purchase_fit(key, fit) if isinstance(engine, (TrainingMemo, CustomerSample)) else fit()
