"""Does the log cover the training dates? Checked before anything expensive (imports, the tracking store, fits)."""
from __future__ import annotations

import pandas as pd

from custscore.config import TrainConfig
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine


def check_dates(engine: FeatureEngine, config: TrainConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The log's ``(first_day, last_day)``, after checking that the cutoff and the cutoff minus the
    horizon fall inside it (:class:`CustscoreError` otherwise). Cheap: ``train`` calls it before
    it opens the tracking store."""
    first_day, last_day = engine.date_range()
    cutoff = config.cutoff
    if cutoff < first_day:
        raise CustscoreError(f"cutoff {cutoff.date()} is before the first transaction ({first_day.date()})")
    if cutoff > last_day:
        # Days after the log ends would look like days without purchases: churn labels and
        # T would be silently wrong.
        raise CustscoreError(f"cutoff {cutoff.date()} is after the last transaction ({last_day.date()}): the log "
                             f"does not cover those days; use --cutoff {last_day.date()} or earlier")
    reference = config.reference_date
    if reference < first_day:
        raise CustscoreError(
            f"cutoff minus horizon ({reference.date()}) is before the first transaction ({first_day.date()}): "
            "no history to learn churn from; use a later cutoff or a shorter --horizon-days")
    return first_day, last_day
