"""Batch scoring: load a model by MLflow URI, score a transaction log, write atomically."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TextIO

import pandas as pd

from custscore.config import ColumnMap, ScoreConfig
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine
from custscore.features.database import SPARK_REFUSED, DatabaseLog
from custscore.features.engines import iter_customer_features, open_engine
from custscore.training.covariate_file import read_covariates
from custscore.training.covariates import CovariateEngine
from custscore.serving.chunked_output import open_table_writer
from custscore.serving.db_output import DatabaseOutput, check_database_output
from custscore.serving.output import check_not_inputs, check_output_folder, check_output_path
from custscore.serving.sidecar import sidecar_bytes, sidecar_path
from custscore.training.scorer import CustomerScorer
from custscore.training.segments import apply_overrides


@dataclass(frozen=True)
class ScoreRun:
    """What a batch scoring run wrote: ``n_customers`` rows to ``output`` in ``seconds`` (wall clock).

    ``len(run)`` is the number of customers scored.
    """

    output: "Path | DatabaseOutput"
    n_customers: int
    seconds: float
    #: texts of the ``warning:`` lines the CLI prints (without the prefix): the model's fit
    #: warnings, then those of this run
    warnings: tuple[str, ...] = ()

    @property
    def rows_per_second(self) -> float:
        return self.n_customers / self.seconds if self.seconds > 0 else float("inf")

    def __len__(self) -> int:
        return self.n_customers


class _Progress:
    """One self-overwriting status line on ``stream``, shown only when it is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()

    def update(self, n_rows: int) -> None:
        if self.enabled:
            rate = n_rows / max(time.perf_counter() - self.start, 1e-9)
            self.stream.write(f"\rscoring: {n_rows:,} customers ({rate:,.0f}/s)")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


#: ``score_file(tracking_uri=...)``'s default: MLflow stays pointed where the caller pointed it.
KEEP_TRACKING: object = object()


def score_file(model_uri: str, transactions_path: str | os.PathLike, output_path: str | os.PathLike,
               config: ScoreConfig, tracking_uri: "Optional[str] | object" = KEEP_TRACKING) -> ScoreRun:
    """Score the log at ``transactions_path`` and write one row per customer to ``output_path``.

    The log is read by the engine ``config.engine`` selects; customers are scored and
    written in chunks (bounded memory with the DuckDB engine), atomically. The segment
    settings used go to the sidecar ``<name>.segments.json`` beside it, published with
    the scores (both or neither). A progress line goes to stderr when it is a terminal.
    The log may be a database table or query (:class:`~custscore.features.database.DatabaseLog`)
    and the output a table (:class:`~custscore.serving.db_output.DatabaseOutput`: one
    transaction, the settings in its companion table). ``tracking_uri`` (None: the default
    store, ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``) points MLflow at the model's
    store once the paths are checked, so a bad path never imports MLflow; a local model folder
    is read without MLflow.
    """
    output = check_score_paths(output_path, transactions_path, config)
    if config.engine == "spark" and isinstance(transactions_path, DatabaseLog):
        raise CustscoreError(f"{transactions_path}: {SPARK_REFUSED}")
    if config.engine == "spark" and config.covariates is not None:
        raise CustscoreError("--covariates: not supported with --engine spark; use another engine")
    from custscore.serving.model_source import is_local_folder, load_scorer_from_uri  # MLflow only when used

    if tracking_uri is not KEEP_TRACKING and not is_local_folder(model_uri):  # a folder needs no store
        from custscore.training.tracking import use_tracking

        use_tracking(tracking_uri)
    if config.engine == "spark":  # scores on the executors, writes a Parquet dataset
        from custscore.serving.spark_batch import score_file_spark

        return score_file_spark(model_uri, transactions_path, output_path, config)
    start = time.perf_counter()
    overrides = read_segment_overrides(config)
    scorer, label = load_scorer_from_uri(model_uri)
    scorer = with_segment_overrides(scorer, overrides)
    columns, warnings = netting_columns(scorer, config)
    config = dataclasses.replace(config, columns=columns)
    covariates = None if config.covariates is None else read_covariates(config.covariates, columns.customer)
    encoded = scorer.encode_covariates(covariates, str(config.covariates))  # checked before the log is read
    engine = open_engine(transactions_path, columns, config.engine)
    if encoded is not None:
        engine = CovariateEngine(engine, encoded, str(config.covariates))
    n_customers, _ = score_engine(scorer, engine, output_path, config, label, _Progress(), with_sidecar=True)
    return ScoreRun(output, n_customers, time.perf_counter() - start, tuple(scorer.fit_warnings) + warnings)


def check_score_paths(output_path: "str | os.PathLike | DatabaseOutput", transactions_path: str | os.PathLike,
                      config: ScoreConfig) -> "Path | DatabaseOutput":
    """Before any work: the scores and their sidecar can be written and are none of the inputs.

    The sidecar may be the ``--segments`` file (passing a run's sidecar back to reproduce it).
    A database output (:class:`~custscore.serving.db_output.DatabaseOutput`) must be reachable.
    """
    if isinstance(output_path, DatabaseOutput):
        if config.engine == "spark":
            raise CustscoreError(f"--output {output_path}: --engine spark writes Parquet files only; "
                                 "use another engine for a database output")
        return check_database_output(output_path, transactions_path)
    target = check_output_path(output_path, folder_ok=config.engine == "spark")
    sidecar = check_output_folder(sidecar_path(target), "--output sidecar")
    check_not_inputs({"--output": target}, {"--transactions": transactions_path, "--segments": config.segments_file,
                                            "--covariates": config.covariates})
    check_not_inputs({"--output sidecar": sidecar}, {"--transactions": transactions_path})
    return target


def netting_columns(scorer: CustomerScorer, config: ScoreConfig) -> tuple[ColumnMap, tuple[str, ...]]:
    """The columns to read the log with, netting days at the model's precision unless told otherwise.

    ``config.amount_decimals`` of None takes ``scorer.amount_decimals`` (the training
    log's); an explicit different value is used and reported in the returned warnings.
    """
    trained = scorer.amount_decimals
    if config.amount_decimals is None:
        return dataclasses.replace(config.columns, amount_decimals=trained), ()
    if config.amount_decimals == trained:
        return config.columns, ()
    return config.columns, (f"--amount-decimals {config.amount_decimals} differs from the model's {trained}: "
                            f"days net in units of 10**-{config.amount_decimals}, not as in training, so day "
                            "amounts (spend, zero-spend and return-only days) can differ from what the model "
                            "learned; omit --amount-decimals to use the model's",)


def read_segment_overrides(config: ScoreConfig) -> dict:
    """Segment settings to replace the model's: ``--segments FILE.json`` then ``--margin``.

    The file holds setting names and values, flat or nested like a sidecar
    (``{"config": {...}, "thresholds": {...}}``), so a previous run's sidecar can be passed
    back to reproduce its segments.
    """
    overrides: dict = {}
    if config.segments_file is not None:
        path = Path(config.segments_file)
        try:
            overrides.update(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise CustscoreError(f"--segments {path}: file not found") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            raise CustscoreError(f"--segments {path}: not a JSON object of settings ({exc})") from exc
        if not isinstance(overrides, dict):
            raise CustscoreError(f"--segments {path}: not a JSON object of settings")
        overrides = {k: v for k, v in overrides.items() if k in ("config", "thresholds") or k not in _SIDECAR_ONLY}
    if config.margin_rate is not None:
        overrides["margin_rate"] = config.margin_rate
    return overrides


#: Sidecar entries that describe a run rather than set a segment rule.
_SIDECAR_ONLY = ("n_customers", "as_of", "horizon_days", "discount_rate", "model_version", "churn_model",
                 "optional_columns", "data_sha256", "has_amounts")


def with_segment_overrides(scorer: CustomerScorer, overrides: dict) -> CustomerScorer:
    """A copy of ``scorer`` whose segment config/thresholds have ``overrides`` applied."""
    if not overrides:
        return scorer
    if scorer.segment_thresholds is None:
        raise CustscoreError("this model has no segment thresholds (trained before segments existed); retrain it")
    config, thresholds = apply_overrides(scorer.segment_config, scorer.segment_thresholds, overrides)
    return dataclasses.replace(scorer, segment_config=config, segment_thresholds=thresholds)


def score_engine(scorer: CustomerScorer, engine: FeatureEngine, output_path: str | os.PathLike,
                 config: ScoreConfig, version_label: Optional[str] = None,
                 progress: Optional[_Progress] = None, with_sidecar: bool = False) -> tuple[int, pd.DataFrame]:
    """Score every customer of ``engine`` at ``config.as_of``, chunk by chunk, into ``output_path``.

    Chunks are consecutive customer ranges, so the file is sorted by ``customer_id``;
    each chunk goes through :meth:`CustomerScorer.score_customers`. Returns the number of
    rows written and the first one (a one-row frame). ``with_sidecar``: the sidecar
    (:mod:`custscore.serving.sidecar`) is published with the scores, both or neither.
    """
    as_of = config.as_of
    first_day, _ = engine.date_range()
    if as_of < first_day:
        raise CustscoreError(f"as_of {as_of.date()} is before the first transaction ({first_day.date()}): "
                             "nothing to score")
    progress = progress or _Progress(stream=None)
    first: Optional[pd.DataFrame] = None
    with open_table_writer(output_path) as writer:
        for features in iter_customer_features(engine, as_of, scorer.time_unit):
            if len(features) == 0:
                continue
            scores = _labelled(scorer.score_customers(features, as_of, config.horizon_days), version_label)
            writer.write(scores)
            first = scores.head(1) if first is None else first
            progress.update(writer.n_rows)
        if first is None:
            raise CustscoreError(f"as_of {as_of.date()}: no customer with a purchase on or before it")
        if with_sidecar:
            writer.close_with_sidecar(lambda sha256: sidecar_bytes(scorer, first, writer.n_rows, config.columns,
                                                                   data_sha256=sha256))
    progress.done()
    return writer.n_rows, first


def _labelled(scores: pd.DataFrame, version_label: Optional[str]) -> pd.DataFrame:
    """Scores with ``model_version`` set to ``version_label`` (when given)."""
    if version_label:
        scores["model_version"] = version_label
    return scores


def score_transactions(scorer: CustomerScorer, transactions: pd.DataFrame, config: ScoreConfig,
                       version_label: Optional[str] = None, covariates: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Score normalised transactions (and the customers' covariate table) with ``scorer`` at ``config.as_of``."""
    return _labelled(scorer.score(transactions, as_of=config.as_of, horizon_days=config.horizon_days,
                                  covariates=covariates, covariates_source="request"), version_label)
