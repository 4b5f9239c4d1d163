"""The segment settings used for a scores file, in a JSON sidecar beside it.

``scores.csv`` -> ``scores.csv.segments.json`` (each output its own: ``scores.parquet``
beside it gets ``scores.parquet.segments.json``): every rule parameter and value cut point the
segment columns were computed with, plus the scoring date, horizon and model version,
so a report can be reproduced (or the same settings passed again), and which optional
log columns (discount, arrears) were read: without them the class-I causes
"price-sensitive" and "poor credit" are never asserted. ``data_sha256`` is the SHA-256 of
the scores file it was published with (:func:`custscore.atomic.publish_together`); a
reader warns when the scores file no longer matches. Sidecars of older versions
(``scores.segments.json``, shared by every suffix) are still read, with a warning.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from custscore.config import ColumnMap
from custscore.atomic import sha256_of
from custscore.errors import CustscoreError, warn
from custscore.features.io import OPTIONAL_TX_COLUMNS
from custscore.serving.output import write_text_atomic
from custscore.training.scorer import CustomerScorer
from custscore.training.segments import segment_settings

SIDECAR_SUFFIX = ".segments.json"


def sidecar_path(scores_path: str | os.PathLike) -> Path:
    """``scores.csv`` -> ``scores.csv.segments.json`` in the same folder.

    >>> sidecar_path("out/scores.csv").as_posix()
    'out/scores.csv.segments.json'
    """
    path = Path(scores_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def legacy_sidecar_path(scores_path: str | os.PathLike) -> Path:
    """The name before each output had its own: ``scores.csv`` -> ``scores.segments.json``."""
    path = Path(scores_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def sidecar_record(scorer: CustomerScorer, scores: pd.DataFrame, n_customers: Optional[int] = None,
                   columns: Optional[ColumnMap] = None, data_sha256: Optional[str] = None) -> dict[str, Any]:
    """What the sidecar holds: settings of the scores (first row) and the segment settings.

    ``n_customers`` defaults to ``len(scores)``; chunked writers pass the first chunk and the total.
    ``optional_columns`` names the log's discount / arrears columns read (null: not read).
    ``data_sha256`` (of the scores file) is recorded when given.
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
        "churn_model": str(getattr(scorer, "churn_model", "classifier")),
        "optional_columns": {what: getattr(columns or ColumnMap(), what) for what in OPTIONAL_TX_COLUMNS},
        # False: the model was trained without amounts; segments rank by purchases, value is NaN
        "has_amounts": bool(scorer.has_amounts),
    }
    record.update(segment_settings(scorer.segment_config, scorer.segment_thresholds))
    if data_sha256 is not None:
        record["data_sha256"] = data_sha256
    return record


def sidecar_bytes(scorer: CustomerScorer, scores: pd.DataFrame, n_customers: Optional[int] = None,
                  columns: Optional[ColumnMap] = None, data_sha256: Optional[str] = None) -> bytes:
    """:func:`sidecar_record` as the sidecar file's bytes (indented JSON, UTF-8)."""
    record = sidecar_record(scorer, scores, n_customers, columns, data_sha256)
    return (json.dumps(record, indent=2, sort_keys=False) + "\n").encode("utf-8")


def write_sidecar(scorer: CustomerScorer, scores: pd.DataFrame, scores_path: str | os.PathLike,
                  n_customers: Optional[int] = None, columns: Optional[ColumnMap] = None) -> Path:
    """Write :func:`sidecar_record` next to ``scores_path`` atomically (on its own, without a checksum)."""
    text = sidecar_bytes(scorer, scores, n_customers, columns).decode("utf-8")
    return write_text_atomic(text, sidecar_path(scores_path))


def read_sidecar(scores_path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of ``scores_path``; a missing or unreadable one is a user error.

    Falls back to :func:`legacy_sidecar_path` with a warning; warns when the scores file
    is not the one the sidecar was published with (``data_sha256``).
    """
    path = sidecar_path(scores_path)
    legacy = legacy_sidecar_path(scores_path)
    if not path.exists() and legacy.is_file():
        warn(f"{scores_path}: reading segment settings from {legacy}, the name older versions shared between "
             f"scores files of one stem; score again to get {path.name}")
        path = legacy
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CustscoreError(f"--scores {scores_path}: segment settings {path} not found "
                             "(written by `custscore score` beside the scores)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CustscoreError(f"{path}: not valid JSON: {exc}") from exc
    expected = record.get("data_sha256") if isinstance(record, dict) else None
    if expected is not None and Path(scores_path).is_file() and sha256_of(scores_path) != expected:
        warn(f"{scores_path} is not the file {path.name} was written with (changed since, or an interrupted "
             "`custscore score`): its settings may not be those of these scores")
    return record
