"""``custscore train``: read a log, fit the scorer, log it to MLflow (and register it)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from custscore.config import TrainConfig
from custscore.features.engines import open_engine
from custscore.training.cutoff_check import check_dates

if TYPE_CHECKING:
    from custscore.training.pipeline import TrainResult
    from custscore.training.tracking import LoggedModel


def train_file(transactions_path: str | os.PathLike, config: TrainConfig) -> tuple["TrainResult", "LoggedModel"]:
    """Train on the log at ``transactions_path`` and log the run; return both results.

    With ``config.register_as`` the new version's alias comes from the promotion gate
    (:mod:`custscore.training.promotion`). The log is read and validated (by the engine ``config.engine`` selects, see
    :func:`custscore.features.engines.open_engine`) before MLflow and scikit-learn are
    imported, so bad input fails in well under a second.
    """
    engine = open_engine(transactions_path, config.columns, config.engine)
    dates = check_dates(engine, config)  # a cutoff outside the log fails before the store is opened (or created)
    from custscore.training.pipeline import train_scorer
    from custscore.training.promotion import promotion_decision
    from custscore.training.tracking import log_training, prepare_experiment, registered_champion

    experiment_id = prepare_experiment(config)  # an unusable store fails before any fitting
    result = train_scorer(engine, config, dates)
    decision = None
    if config.register_as:  # the gate reads the log only up to the cutoff
        champion = registered_champion(config.register_as) if config.promote == "auto" else None
        decision = promotion_decision(engine, config, champion)
    example = engine.example_transactions()
    if result.covariates is not None:  # the pyfunc takes each customer's covariates on its rows
        columns = result.scorer.covariate_encoding.columns
        example = example.merge(result.covariates[columns], left_on="customer_id", right_index=True, how="left")
    logged = log_training(result, config, example, experiment_id, decision)
    return result, logged
