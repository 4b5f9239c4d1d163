"""The segment settings used for a scores file, in a JSON sidecar beside it.

``scores.csv`` -> ``scores.segments.json``: every rule parameter and value cut point the
segment columns were computed with, plus the scoring date, horizon and model version,
so a report can be reproduced (or the same settings passed again), and which optional
log columns (discount, arrears) were read: without them the class-I causes
"price-sensitive" and "poor credit" are never asserted.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.io import OPTIONAL_TX_COLUMNS
from custscore.serving.output import write_text_atomic
from custscore.training.scorer import CustomerScorer
from custscore.training.segments import segment_settings

SIDECAR_SUFFIX = ".segments.json"


def sidecar_path(scores_path: str | os.PathLike) -> Path:
    """``scores.csv`` or ``scores.parquet`` -> ``scores.segments.json`` in the same folder.

    >>> sidecar_path("out/scores.csv").as_posix()
    'out/scores.segments.json'
    """
    path = Path(scores_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def sidecar_record(scorer: CustomerScorer, scores: pd.DataFrame, n_customers: Optional[int] = None,
                   columns: Optional[ColumnMap] = None) -> dict[str, Any]:
    """What the sidecar holds: settings of the scores (first row) and the segment settings.

    ``n_customers`` defaults to ``len(scores)``; chunked writers pass the first chunk and the total.
    ``optional_columns`` names the log's discount / arrears columns read (null: not read).
    """
    if scorer.segment_thresholds is None:
        raise CustscoreError("this scorer has no segment thresholds (trained before segments existed); retrain it")
    first = scores.iloc[0] if len(scores) else {}
    record: dict[str, Any] = {
        "n_customers": int(len(scores) if n_customers is None else n_customers),
        "as_of": str(first.get("as_of", "")),
        "horizon_days": int(first.get("horizon_days", scorer.horizon_days)),
        "discount_rate": float(scorer.discount_rate),
        "model_version": str(first.get("model_version", scorer.model_version)),
        "optional_columns": {what: getattr(columns or ColumnMap(), what) for what in OPTIONAL_TX_COLUMNS},
        # False: the model was trained without amounts; segments rank by purchases, value is NaN
        "has_amounts": bool(scorer.has_amounts),
    }
    record.update(segment_settings(scorer.segment_config, scorer.segment_thresholds))
    return record


def write_sidecar(scorer: CustomerScorer, scores: pd.DataFrame, scores_path: str | os.PathLike,
                  n_customers: Optional[int] = None, columns: Optional[ColumnMap] = None) -> Path:
    """Write :func:`sidecar_record` next to ``scores_path`` atomically."""
    text = json.dumps(sidecar_record(scorer, scores, n_customers, columns), indent=2, sort_keys=False) + "\n"
    return write_text_atomic(text, sidecar_path(scores_path))


def read_sidecar(scores_path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of ``scores_path``; a missing or unreadable one is a user error."""
    path = sidecar_path(scores_path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CustscoreError(f"--scores {scores_path}: segment settings {path} not found "
                             "(written by `custscore score` beside the scores)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CustscoreError(f"{path}: not valid JSON: {exc}") from exc
