"""One training run computes each date's features and each (model, date) purchase fit once."""
from __future__ import annotations

from collections import Counter

import pandas as pd

from custscore.config import TrainConfig
from custscore.features.customers import PandasEngine
from custscore.features.io import normalise_transactions
from custscore.training import purchase_choice
from custscore.training.pipeline import train_scorer


class CountingEngine(PandasEngine):
    """The pandas engine, counting feature passes per (date, unit)."""

    def __init__(self, tx: pd.DataFrame) -> None:
        super().__init__(tx)
        self.passes: Counter = Counter()

    def customer_features(self, as_of, time_unit):
        self.passes[(pd.Timestamp(as_of), time_unit)] += 1
        return super().customer_features(as_of, time_unit)


def test_auto_training_asks_each_date_and_fit_once(monkeypatch):
    from custscore.training.simulate import simulate_transactions
    tx = normalise_transactions(simulate_transactions(3_000, start="2020-01-01", end="2021-06-30", seed=3,
                                                      r=0.8, alpha=25.0, a=0.8, b=2.5, p=6.0, q=3.7, v=15.0))
    fits: Counter = Counter()
    real_fit = purchase_choice.fit_purchase_model

    def counting_fit(key, rfm, *args, **kwargs):
        fits[(key, len(rfm), int(rfm["frequency"].sum()))] += 1
        return real_fit(key, rfm, *args, **kwargs)

    monkeypatch.setattr(purchase_choice, "fit_purchase_model", counting_fit)
    engine = CountingEngine(tx)
    config = TrainConfig(cutoff="2021-04-01", horizon_days=60, purchase_model="auto")
    result = train_scorer(engine, config)
    assert result.purchase.validation_days == 60  # the candidates were validated at cutoff - 60 days ...
    # ... which is also the churn examples' reference date: one feature pass per date, one fit per model and date
    assert max(engine.passes.values()) == 1, engine.passes
    assert pd.Timestamp("2021-04-01") - pd.Timedelta(days=60) in {d for d, _ in engine.passes}
    assert max(fits.values()) == 1, fits
