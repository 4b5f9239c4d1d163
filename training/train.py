"""``custscore train``: read a log, fit the scorer, log it to MLflow (and register it)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from custscore.config import TrainConfig
from custscore.features.customers import PandasEngine
from custscore.features.io import read_transactions

if TYPE_CHECKING:
    from custscore.training.pipeline import TrainResult
    from custscore.training.tracking import LoggedModel


def train_file(transactions_path: str | os.PathLike, config: TrainConfig) -> tuple["TrainResult", "LoggedModel"]:
    """Train on the log at ``transactions_path`` and log the run; return both results.

    The log is read and validated before MLflow and scikit-learn are imported, so bad
    input fails in well under a second.
    """
    engine = PandasEngine(read_transactions(transactions_path, config.columns))
    from custscore.training.pipeline import train_scorer
    from custscore.training.tracking import log_training, use_tracking

    use_tracking(config.tracking_uri)
    result = train_scorer(engine, config)
    logged = log_training(result, config, engine.example_transactions())
    return result, logged
