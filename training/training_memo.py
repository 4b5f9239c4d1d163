"""One training run's repeated questions, answered once: features by date, purchase fits by (model, date).

``train`` asks the log for the features at a date more than once, and fits the same
purchase model on them more than once: ``auto`` fits every candidate at ``R = cutoff - h``
(:mod:`custscore.training.purchase_choice`) and the churn examples of the full-horizon
window are built at ``cutoff - horizon``, the same date when ``h`` is the horizon
(:mod:`custscore.training.pipeline`). :class:`TrainingMemo` is a
:class:`~custscore.features.customers.FeatureEngine` over the run's engine that keeps the
last :data:`KEEP_FEATURES` feature frames and every purchase fit (a few numbers each), so
the second question costs nothing. It lives for one ``train_scorer`` call only.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable, Optional

import pandas as pd

from custscore.errors import FitError
from custscore.features.customers import FeatureEngine
from custscore.training.purchase_models import PurchaseModel

#: Feature frames kept (a frame of a million customers is a few hundred MB).
KEEP_FEATURES = 2


class TrainingMemo:
    """A feature engine that remembers; see the module docstring. Frames are shared: callers must not modify them."""

    def __init__(self, engine: FeatureEngine,
                 known: Optional[dict[tuple[pd.Timestamp, str], pd.DataFrame]] = None) -> None:
        """``known``: frames the caller already has, by ``(as_of, time_unit)``."""
        self.engine = engine
        self._features: OrderedDict[tuple[pd.Timestamp, str], pd.DataFrame] = OrderedDict(
            ((pd.Timestamp(d), u), f) for (d, u), f in (known or {}).items())
        self._fits: dict[Hashable, PurchaseModel | FitError] = {}

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.engine.date_range()

    def window_purchases(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self.engine.window_purchases(start, end)

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame:
        return self.engine.example_transactions(n_customers)

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        key = (pd.Timestamp(as_of), time_unit)
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        frame = self.engine.customer_features(as_of, time_unit)
        self._features[key] = frame
        while len(self._features) > KEEP_FEATURES:
            self._features.popitem(last=False)
        return frame

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


def memo_fit(engine: FeatureEngine, key: Hashable, fit: Callable[[], PurchaseModel]) -> PurchaseModel:
    """``fit()`` through the engine's memo when it is a :class:`TrainingMemo`, else directly."""
    return engine.purchase_fit(key, fit) if isinstance(engine, TrainingMemo) else fit()
