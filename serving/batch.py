"""Batch scoring: load a model by MLflow URI, score a transaction log, write atomically."""
from __future__ import annotations

import os
import re
from typing import Optional

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from custscore.config import ScoreConfig
from custscore.errors import CustscoreError
from custscore.features.io import read_transactions
from custscore.serving.output import check_output_path, write_table_atomic
from custscore.training.scorer import CustomerScorer

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def load_scorer_from_uri(model_uri: str) -> tuple[CustomerScorer, str]:
    """Load the custscore pyfunc at ``model_uri``; return the scorer and its version label.

    The label is ``NAME/VERSION`` for a registry URI (``models:/NAME@alias`` or
    ``models:/NAME/3``), else the training run id.
    """
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except CustscoreError:
        raise
    except Exception as exc:  # MlflowException, OSError, ...: all mean "no such model here"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CustscoreError(f"cannot load model {model_uri!r}: {text}") from exc
    python_model = model.unwrap_python_model()
    scorer = getattr(python_model, "scorer", None)
    if not isinstance(scorer, CustomerScorer):
        raise CustscoreError(f"model {model_uri!r} is not a custscore scorer")
    return scorer, _version_label(model_uri, scorer)


def _version_label(model_uri: str, scorer: CustomerScorer) -> str:
    match = _REGISTRY_URI.match(model_uri)
    if not match:
        return scorer.model_version
    name = match["name"]
    if match["version"]:
        return f"{name}/{match['version']}"
    try:
        return f"{name}/{MlflowClient().get_model_version_by_alias(name, match['alias']).version}"
    except Exception:  # the model loaded, so the label is cosmetic: fall back to the run id
        return scorer.model_version


def score_file(model_uri: str, transactions_path: str | os.PathLike, output_path: str | os.PathLike,
               config: ScoreConfig) -> pd.DataFrame:
    """Score the log at ``transactions_path`` and write one row per customer to ``output_path``."""
    check_output_path(output_path)
    scorer, label = load_scorer_from_uri(model_uri)
    transactions = read_transactions(transactions_path, config.columns)
    scores = score_transactions(scorer, transactions, config, label)
    write_table_atomic(scores, output_path)
    return scores


def score_transactions(scorer: CustomerScorer, transactions: pd.DataFrame, config: ScoreConfig,
                       version_label: Optional[str] = None) -> pd.DataFrame:
    """Score normalised transactions with ``scorer`` at ``config.as_of``."""
    scores = scorer.score(transactions, as_of=config.as_of, horizon_days=config.horizon_days)
    if version_label:
        scores["model_version"] = version_label
    return scores
