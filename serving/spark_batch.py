"""Batch scoring on Spark: features by the Spark engine, scores by ``mapInPandas``, Parquet out.

The per-customer features are a Spark DataFrame (:meth:`SparkEngine.customer_features_df`,
one row per customer, partitioned by ``customer_id`` by its ``groupBy``); each Arrow
batch of customers goes through :meth:`CustomerScorer.score_customers`, the only place
models are applied, on the executors. Every score is a row-wise function of one
customer's features and fixed fitted numbers, so batches give the same rows as one big
frame. The output is a Parquet dataset (a folder of part files, sorted by
``customer_id`` across the files in name order) written to a temporary folder beside
``--output`` and renamed onto it at the end; ``pandas.read_parquet`` reads it as one table.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd

from custscore.config import ScoreConfig
from custscore.errors import CustscoreError
from custscore.features.spark_engine import SparkEngine, _indexed
from custscore.serving.batch import ScoreRun, netting_columns, read_segment_overrides, with_segment_overrides
from custscore.serving.model_source import load_scorer_from_uri
from custscore.serving.output import check_output_path
from custscore.serving.sidecar import write_sidecar
from custscore.training.scorer import CustomerScorer

_DATE_COLUMNS = ("first_purchase", "last_purchase")


def _scores(scorer: CustomerScorer, features: pd.DataFrame, config: ScoreConfig,
            version_label: Optional[str]) -> pd.DataFrame:
    """Scores of one batch of customer features (a frame with a ``customer_id`` column)."""
    scores = scorer.score_customers(_indexed(features, _DATE_COLUMNS), config.as_of, config.horizon_days)
    if version_label:
        scores["model_version"] = version_label
    return scores


def score_engine_spark(scorer: CustomerScorer, engine: SparkEngine, output_path: str | os.PathLike,
                       config: ScoreConfig, version_label: Optional[str] = None,
                       with_sidecar: bool = False) -> tuple[int, pd.DataFrame]:
    """Score every customer of ``engine`` at ``config.as_of`` into the Parquet dataset ``output_path``.

    Returns the number of rows written and the first row (a one-row frame). ``with_sidecar``:
    the sidecar is renamed into place just before the dataset (metadata first, as
    :func:`custscore.atomic.publish_together`; a folder has no checksum).
    """
    target = _check_parquet(output_path)
    as_of = config.as_of
    first_day, _ = engine.date_range()
    if as_of < first_day:
        raise CustscoreError(f"as_of {as_of.date()} is before the first transaction ({first_day.date()}): "
                             "nothing to score")
    features = engine.customer_features_df(as_of, scorer.time_unit)
    sample = features.limit(1).toPandas()
    # Output schema: the scores of one customer, scored on the driver.
    schema = engine.spark.createDataFrame(_scores(scorer, sample, config, version_label)).schema

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch):
                yield _scores(scorer, batch, config, version_label)

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Sorted before scoring: mapInPandas keeps the order, and the sort's sampling pass
        # then recomputes only the features, not the scores.
        features.orderBy("customer_id").mapInPandas(score, schema).write.parquet(str(tmp))
        written = engine.spark.read.parquet(str(tmp))
        n_rows, first = written.count(), written.limit(1).toPandas()
        if with_sidecar:
            write_sidecar(scorer, first, output_path, n_customers=n_rows, columns=config.columns)
        _replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return n_rows, first


def score_file_spark(model_uri: str, transactions_path: str | os.PathLike, output_path: str | os.PathLike,
                     config: ScoreConfig) -> ScoreRun:
    """``custscore score --engine spark``: read and score with Spark, write Parquet + the sidecar."""
    start = time.perf_counter()
    _check_parquet(output_path)
    overrides = read_segment_overrides(config)  # --segments / --margin, as on the other engines
    scorer, label = load_scorer_from_uri(model_uri)
    scorer = with_segment_overrides(scorer, overrides)
    columns, warnings = netting_columns(scorer, config)
    engine = SparkEngine(transactions_path, columns)
    try:
        n_rows, _ = score_engine_spark(scorer, engine, output_path, config, label, with_sidecar=True)
    finally:
        engine.close()
    return ScoreRun(Path(output_path), n_rows, time.perf_counter() - start, tuple(scorer.fit_warnings) + warnings)


def _check_parquet(output_path: str | os.PathLike) -> Path:
    target = check_output_path(output_path, folder_ok=True)
    if target.suffix.lower() != ".parquet":
        raise CustscoreError(f"--output {target}: --engine spark writes Parquet; use a name ending in .parquet")
    return target


def _replace(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` at ``target``, replacing a previous file or folder there."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    os.replace(target, old)
    os.replace(tmp, target)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()
