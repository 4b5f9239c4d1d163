"""The ``custscore`` command: parses arguments and calls the library; holds no logic.

User errors (:class:`~custscore.errors.CustscoreError`) become one line on stderr and
exit status 2. SIGTERM is turned into an exception (:class:`Terminated`) so the clean-ups
of half-written outputs run; the command then exits 143 (128 + 15), Ctrl-C 130.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from typing import Optional, Sequence

from custscore.config import (ADMIN_TOKEN_ENV, CHURN_CALIBRATION_METHODS, CHURN_WINDOWS, DRIFT_EXIT_STATUS, ENGINES,
                              PROMOTE_CHOICES, PURCHASE_MODEL_CHOICES, BacktestConfig, ColumnMap, DriftConfig,
                              EvaluateConfig, ScoreConfig, ServeConfig, TrainConfig)
from custscore.errors import CustscoreError, warn_all
from custscore.threads import one_blas_thread


def _default(cls, name: str):
    """The dataclass default of ``cls.name``: each default is defined once, in config.py."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _optional_int(text: str) -> Optional[int]:
    """An int option whose empty value (MLproject's default ``''``) means "not given"."""
    return None if text == "" else int(text)


def _optional_str(text: str) -> Optional[str]:
    """A text option whose empty value (MLproject's default ``''``) means "not given"."""
    return text or None


def _optional_float(text: str) -> Optional[float]:
    """A number option whose empty value (MLproject's default ``''``) means "not given"."""
    return None if text == "" else float(text)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _add_columns(parser: argparse.ArgumentParser, scoring: bool = False) -> None:
    """Options of the log's columns; ``scoring``: ``--amount-decimals`` defaults to the model's."""
    g = parser.add_argument_group("transaction-log columns")
    g.add_argument("--customer-col", default=_default(ColumnMap, "customer"), help="customer id column (read as text)")
    g.add_argument("--date-col", default=_default(ColumnMap, "date"), help="purchase date or date-time column")
    g.add_argument("--amount-col", default=_default(ColumnMap, "amount"),
                   help="purchase amount column, or none for a log without amounts (every purchase counts, "
                        "spend is 0)")
    g.add_argument("--date-format", type=_optional_str, default=_default(ColumnMap, "date_format"),
                   help="strftime format of the dates, e.g. %%d/%%m/%%Y (default: ISO 8601 only)")
    g.add_argument("--encoding", default=_default(ColumnMap, "encoding"), help="CSV text encoding (default %(default)s)")
    g.add_argument("--csv-sep", type=_optional_str, default=_default(ColumnMap, "csv_sep"),
                   help="CSV field separator, e.g. ';' (default: comma, or ; or tab when the header holds one)")
    g.add_argument("--decimal", default=_default(ColumnMap, "decimal"),
                   help="decimal mark of CSV amounts: . or , (default %(default)s)")
    decimals_default = "the model's, as in training" if scoring else "%(default)s"
    g.add_argument("--amount-decimals", type=_optional_int,
                   default=_default(ScoreConfig if scoring else ColumnMap, "amount_decimals"),
                   help="decimals kept when a day's rows are netted: amounts count as whole units of "
                        f"10**-D, summed exactly (default: {decimals_default})")
    g.add_argument("--discount-col", type=_optional_str, default=_default(ColumnMap, "discount"),
                   help="optional: discount amount or 0/1 flag per row (> 0 = bought on discount)")
    g.add_argument("--arrears-col", type=_optional_str, default=_default(ColumnMap, "arrears"),
                   help="optional: the customer's arrears on that row's day (amount overdue or days, >= 0)")


def _columns(args: argparse.Namespace) -> ColumnMap:
    amount = None if args.amount_col.lower() == "none" else args.amount_col
    decimals = {} if args.amount_decimals is None else {"amount_decimals": args.amount_decimals}
    return ColumnMap(customer=args.customer_col, date=args.date_col, amount=amount,
                     date_format=args.date_format, encoding=args.encoding,
                     discount=args.discount_col, arrears=args.arrears_col, **decimals,
                     csv_sep=_separator(args.csv_sep), decimal=args.decimal)


#: ``--transactions`` of every command that reads a log.
_LOG_HELP = "transaction log (.csv, .csv.gz or .parquet), or a database URL with --table/--query"


def _add_database(parser) -> None:
    """``--table`` / ``--query`` for a ``--transactions`` database URL."""
    from custscore.features.database import DatabaseLog

    where = ("when --transactions is a database URL (postgresql://USER@HOST/DB or sqlite:///FILE.db; the [db] "
             "extra; password from the URL, $PGPASSWORD or $PGPASSFILE)")
    parser.add_argument("--table", type=_optional_str, default=_default(DatabaseLog, "table"),
                        help=f"table (or SCHEMA.TABLE) holding the log, {where}")
    parser.add_argument("--query", type=_optional_str, default=_default(DatabaseLog, "query"),
                        help="SQL query returning the log, instead of --table")


def _transactions(args: argparse.Namespace):
    """The ``--transactions`` log: a path, or a database table/query."""
    from custscore.features.database import log_source

    return log_source(args.transactions, args.table, args.query)


def _score_output(args: argparse.Namespace):
    """``--output``: a path, or a database table (URL + ``--output-table``)."""
    from custscore.serving.db_output import output_target

    return output_target(args.output, args.output_table)


def _separator(text: Optional[str]) -> Optional[str]:
    """``--csv-sep``: the character itself, or ``\\t`` / ``tab`` for a tab."""
    return "\t" if text in ("\\t", "tab") else text


def _add_engine(parser: argparse.ArgumentParser, cls) -> None:
    parser.add_argument("--engine", choices=list(ENGINES), default=_default(cls, "engine"),
                        help="feature engine: pandas (in memory, the reference), duckdb (CSV and Parquet, in "
                             "memory when the log fits, else out of core), spark (needs the [spark] extra; score "
                             "writes Parquet) or auto (pandas for small files, duckdb for large ones) "
                             "(default %(default)s)")


def _add_tracking(parser: argparse.ArgumentParser, cls=None) -> None:
    """``--tracking-uri`` (its default from ``cls`` when the command has a config dataclass)."""
    parser.add_argument("--tracking-uri", type=_optional_str, default=_default(cls, "tracking_uri") if cls else None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")


def _add_churn(parser: argparse.ArgumentParser, cls) -> None:
    parser.add_argument("--churn-calibration", choices=list(CHURN_CALIBRATION_METHODS),
                        default=_default(cls, "churn_calibration"),
                        help="churn probability calibration: sigmoid-latest = Platt scaling on the latest "
                             "full-horizon window; sigmoid/isotonic = classifier fitted one horizon earlier, "
                             "calibrated on the latest window; none (default %(default)s)")
    parser.add_argument("--churn-windows", choices=list(CHURN_WINDOWS), default=_default(cls, "churn_windows"),
                        help="churn training windows: single (cutoff - horizon), stacked (plus a 2/3-horizon "
                             "window ending at the cutoff) or auto (stacked for horizons of 180 days or more) "
                             "(default %(default)s)")


def _add_penalizers(parser: argparse.ArgumentParser, cls) -> None:
    parser.add_argument("--purchase-model", choices=list(PURCHASE_MODEL_CHOICES), default=_default(cls, "purchase_model"),
                        help="model of repeat purchases: bgnbd (BG/NBD), mbgnbd (MBG/NBD), pnbd (Pareto/NBD) or "
                             "auto = the one predicting purchases best over a span before the cutoff "
                             "(default %(default)s)")
    parser.add_argument("--bgnbd-penalizer", type=float, default=_default(cls, "bgnbd_penalizer"),
                        help="L2 penalty on the purchase model's parameters (default %(default)s)")
    parser.add_argument("--gg-penalizer", type=float, default=_default(cls, "gg_penalizer"),
                        help="L2 penalty on the Gamma-Gamma parameters (default %(default)s)")
    parser.add_argument("--penalizer", type=_optional_float, default=_default(cls, "penalizer"),
                        help="shortcut: the same L2 penalty on both models (a model's own option wins)")


def _add_covariates(parser: argparse.ArgumentParser, cls) -> None:
    parser.add_argument("--covariates", type=_optional_str, default=_default(cls, "covariates"),
                        help="time-invariant covariates of the purchase model (BG/NBD, Pareto/NBD): CSV or Parquet, "
                             "one row per customer, the customer id column plus numeric or categorical columns "
                             "(default: none)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custscore", description="Customer churn and lifetime-value scoring.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="fit the purchase models, Gamma-Gamma and the churn classifier; log to MLflow")
    data = train.add_argument_group("data", "the log and the calibration / holdout split")
    data.add_argument("--transactions", required=True, help=_LOG_HELP)
    data.add_argument("--cutoff", required=True, help="last day of the calibration period, inclusive (YYYY-MM-DD)")
    data.add_argument("--horizon-days", type=int, required=True, help="churn and CLV horizon in days")
    data.add_argument("--holdout-end", type=_optional_str, default=_default(TrainConfig, "holdout_end"),
                      help="last day of the evaluation holdout (default: last day in the log)")
    _add_engine(data, TrainConfig)
    _add_database(data)
    _add_columns(train)
    model = train.add_argument_group("model", "purchase model + Gamma-Gamma lifetime-value models")
    model.add_argument("--time-unit", choices=["D", "W"], default=_default(TrainConfig, "time_unit"),
                       help="unit of the BG/NBD parameters: days or weeks (default %(default)s)")
    model.add_argument("--discount-rate", type=float, default=_default(TrainConfig, "discount_rate"),
                       help="yearly discount rate for CLV (default %(default)s)")
    _add_penalizers(model, TrainConfig)
    _add_covariates(model, TrainConfig)
    model.add_argument("--seed", type=int, default=_default(TrainConfig, "seed"),
                       help="random seed of the model fits and the churn-model bootstrap (default %(default)s)")
    _add_churn(train.add_argument_group("churn", "the churn classifier"), TrainConfig)
    model.add_argument("--validation-sample", type=int, default=_default(TrainConfig, "validation_sample"),
                       help="customers the purchase-model and churn-model choices are validated on: a seeded "
                            "uniform sample of this many when there are more, 0 = all; the shipped models use "
                            "every customer (default %(default)s)")
    tracking = train.add_argument_group("tracking", "MLflow run and model registry")
    _add_tracking(tracking, TrainConfig)
    tracking.add_argument("--experiment", default=_default(TrainConfig, "experiment"),
                          help="MLflow experiment name (default %(default)s)")
    tracking.add_argument("--register-as", type=_optional_str, default=_default(TrainConfig, "register_as"),
                          help="register the model under this name (alias from --promote)")
    tracking.add_argument("--promote", choices=list(PROMOTE_CHOICES), default=_default(TrainConfig, "promote"),
                          help="alias of the registered version: auto = champion unless a backtest before the "
                               "cutoff finds it worse than the champion beyond noise (then challenger); always "
                               "= champion; never = challenger (default %(default)s)")

    score = sub.add_parser("score", help="score a transaction log with a logged or registered model")
    score.add_argument("--model", required=True, help="MLflow model URI: runs:/ID/model, models:/NAME@champion, ...")
    score.add_argument("--transactions", required=True, help=_LOG_HELP)
    score.add_argument("--as-of", required=True, help="scoring date, inclusive; later transactions are ignored")
    score.add_argument("--output", required=True, help="scores file (.csv or .parquet), written atomically, "
                       "or a database URL with --output-table")
    score.add_argument("--output-table", type=_optional_str, default=None,
                       help="table (or SCHEMA.TABLE) for the scores when --output is a database URL: a rerun "
                            "replaces its (as_of, model_version) rows in one transaction; segment settings go "
                            "to TABLE_segments")
    score.add_argument("--horizon-days", type=_optional_int, default=_default(ScoreConfig, "horizon_days"),
                       help="horizon for churn and CLV (default: the model's)")
    score.add_argument("--margin", type=_optional_float, default=_default(ScoreConfig, "margin_rate"),
                       help="contribution per unit of revenue in (0, 1] for current/future value "
                            "(default: the model's, 1 = revenue)")
    score.add_argument("--segments", type=_optional_str, default=_default(ScoreConfig, "segments_file"),
                       help="JSON of segment settings replacing the model's (e.g. an earlier "
                            "scores.csv.segments.json sidecar, or {\"alert_churn_probability\": 0.7})")
    score.add_argument("--covariates", type=_optional_str, default=_default(ScoreConfig, "covariates"),
                       help="covariate file of a model trained with --covariates (same columns, a row per "
                            "customer scored) (default: none)")
    _add_columns(score, scoring=True)
    _add_database(score)
    _add_engine(score, ScoreConfig)
    _add_tracking(score)

    back = sub.add_parser("backtest", help="rolling-origin backtest: model vs baselines with bootstrap intervals")
    back.add_argument("--transactions", required=True, help=_LOG_HELP)
    back.add_argument("--horizon-days", type=int, required=True, help="churn and CLV horizon in days")
    back.add_argument("--cutoffs", type=_optional_str, default=None, help="origins as comma-separated dates YYYY-MM-DD,...")
    back.add_argument("--origins", type=_optional_int, default=_default(BacktestConfig, "n_origins"),
                      help="number of rolling origins, the last one horizon-days before the log ends")
    back.add_argument("--step-days", type=_optional_int, default=_default(BacktestConfig, "step_days"),
                      help="days between rolling origins")
    back.add_argument("--time-unit", choices=["D", "W"], default=_default(BacktestConfig, "time_unit"),
                      help="unit of the BG/NBD parameters: days or weeks (default %(default)s)")
    back.add_argument("--discount-rate", type=float, default=_default(BacktestConfig, "discount_rate"),
                      help="yearly discount rate for CLV (default %(default)s)")
    _add_penalizers(back, BacktestConfig)
    _add_covariates(back, BacktestConfig)
    back.add_argument("--seed", type=int, default=_default(BacktestConfig, "seed"))
    _add_churn(back, BacktestConfig)
    back.add_argument("--n-bootstrap", type=int, default=_default(BacktestConfig, "n_bootstrap"),
                      help="bootstrap resamples of customers for the intervals (default %(default)s)")
    back.add_argument("--output-dir", default=_default(BacktestConfig, "output_dir"),
                      help="folder for the metrics tables (CSV, JSON) and PNG plots (default %(default)s)")
    back.add_argument("--experiment", default=_default(BacktestConfig, "experiment"), help="MLflow experiment name")
    _add_columns(back)
    _add_database(back)
    _add_tracking(back)

    serve = sub.add_parser("serve", help="score customers over HTTP (FastAPI + uvicorn) with a logged or registered model")
    serve.add_argument("--model", required=True, help="MLflow model URI: models:/NAME@champion, runs:/ID/model, ...")
    serve.add_argument("--host", default=_default(ServeConfig, "host"),
                       help="address to bind (default %(default)s: this machine only)")
    serve.add_argument("--port", type=int, default=_default(ServeConfig, "port"), help="TCP port (default %(default)s)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a --host other machines reach (e.g. 0.0.0.0); put TLS and authentication in front")
    serve.add_argument("--admin-token", default=os.environ.get(ADMIN_TOKEN_ENV, _default(ServeConfig, "admin_token")),
                       help=f"enable POST /admin/reload for clients sending 'Authorization: Bearer TOKEN' "
                            f"(default: ${ADMIN_TOKEN_ENV}, which keeps the token out of the process list; "
                            f"without a token the route is absent and only SIGHUP reloads)")
    page = serve.add_argument_group("customer look-up page", "a web page at /customers to search the customers "
                                    "of a score file (with --scores)")
    page.add_argument("--scores", type=_optional_str, default=_default(ServeConfig, "scores_file"),
                      help="scores file from `custscore score` (its sidecar NAME.segments.json beside it): serve "
                           "the look-up page for its customers")
    page.add_argument("--transactions", type=_optional_str, default=_default(ServeConfig, "transactions_file"),
                      help="transaction log (.csv, .csv.gz or .parquet): each customer's purchase history on the "
                           "page and scoring them again on demand (without it the page says so)")
    _add_columns(serve, scoring=True)
    _add_tracking(serve)

    rfm = sub.add_parser("rfm", help="BTYD summary (frequency, recency, T, monetary value) of every customer")
    rfm.add_argument("--transactions", required=True, help=_LOG_HELP)
    rfm.add_argument("--as-of", required=True, help="cutoff, inclusive; later transactions are ignored (YYYY-MM-DD)")
    rfm.add_argument("--output", required=True, help="summary file (.csv or .parquet), written atomically")
    rfm.add_argument("--time-unit", choices=["D", "W"], default="D",
                     help="unit of recency and T: days or weeks (default %(default)s)")
    _add_columns(rfm)
    _add_database(rfm)
    _add_engine(rfm, ScoreConfig)

    report = sub.add_parser("report", help="HTML report (value matrix, pyramid, alerts) and actions.csv from scores")
    report.add_argument("--scores", required=True,
                        help="scores file from `custscore score` (its sidecar NAME.segments.json beside it)")
    report.add_argument("--output", required=True, help="report file (.html), self-contained, written atomically")
    report.add_argument("--actions", type=_optional_str, default=None,
                        help="customers needing action, by value at risk (default: actions.csv beside --output)")
    report.add_argument("--currency", default=None,
                        help="money as SYMBOL[:DECIMALS] in the page and actions.csv, e.g. '$' or 'EUR :0' "
                             "(default: no symbol, 2 decimals; the scores keep full precision)")

    evaluate = sub.add_parser("evaluate", help="realised accuracy of earlier scores against the log as it is now")
    evaluate.add_argument("--scores", required=True,
                          help="scores file from `custscore score` (its sidecar gives as-of, horizon and model)")
    evaluate.add_argument("--transactions", required=True, help=f"the log now: {_LOG_HELP}")
    evaluate.add_argument("--horizon-days", type=_optional_int, default=_default(EvaluateConfig, "horizon_days"),
                          help="days after the scoring date to evaluate (default: the scores' horizon)")
    evaluate.add_argument("--partial", nargs="?", const="yes", choices=["yes", "no"],
                          default=_yes_no(_default(EvaluateConfig, "partial")),
                          help="when the log does not cover the whole horizon yet, evaluate the days it "
                               "covers instead of refusing (default %(default)s)")
    evaluate.add_argument("--output-dir", default=_default(EvaluateConfig, "output_dir"),
                          help="folder for evaluation.html and evaluation.json (default %(default)s)")
    evaluate.add_argument("--experiment", default=_default(EvaluateConfig, "experiment"),
                          help="MLflow experiment name (default %(default)s)")
    _add_columns(evaluate)
    _add_database(evaluate)
    _add_engine(evaluate, EvaluateConfig)
    _add_tracking(evaluate)

    drift = sub.add_parser("drift", help="drift between two scoring runs (PSI, segment shares, migration); "
                                         f"exit {DRIFT_EXIT_STATUS} when a threshold is crossed")
    drift.add_argument("--reference", required=True, help="earlier scores file from `custscore score`")
    drift.add_argument("--current", required=True, help="later scores file from `custscore score`")
    drift.add_argument("--psi-threshold", type=float, default=_default(DriftConfig, "psi_threshold"),
                       help=f"a PSI at or above this exits {DRIFT_EXIT_STATUS} (default %(default)s)")
    drift.add_argument("--psi-warn", type=float, default=_default(DriftConfig, "psi_warn"),
                       help="a PSI at or above this is reported as moderate (default %(default)s)")
    drift.add_argument("--share-threshold", type=float, default=_default(DriftConfig, "share_threshold"),
                       help=f"a segment's share of customers moving by more than this exits {DRIFT_EXIT_STATUS} "
                            "(default %(default)s)")
    drift.add_argument("--output-dir", default=_default(DriftConfig, "output_dir"),
                       help="folder for drift.html and drift.json (default %(default)s)")
    drift.add_argument("--experiment", default=_default(DriftConfig, "experiment"),
                       help="MLflow experiment name (default %(default)s)")
    drift.add_argument("--tracking-uri", type=_optional_str, default=_default(DriftConfig, "tracking_uri"),
                       help="MLflow tracking URI; an MLflow run is logged only when given")

    quick = sub.add_parser("quickstart", help="train, register and score on the embedded CDNOW sample")
    quick.add_argument("--workdir", default="custscore-quickstart",
                       help="folder for the demo log, MLflow store and scores (default %(default)s)")
    _add_tracking(quick)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one command; returns the exit status (0, or 3 when ``drift`` crosses a threshold)."""
    if args.command == "train":
        config = TrainConfig(cutoff=args.cutoff, horizon_days=args.horizon_days, time_unit=args.time_unit,
                             discount_rate=args.discount_rate, holdout_end=args.holdout_end,
                             bgnbd_penalizer=args.bgnbd_penalizer, gg_penalizer=args.gg_penalizer,
                             penalizer=args.penalizer, seed=args.seed, churn_calibration=args.churn_calibration,
                             churn_windows=args.churn_windows, experiment=args.experiment,
                             tracking_uri=args.tracking_uri, register_as=args.register_as,
                             columns=_columns(args), engine=args.engine, promote=args.promote,
                             purchase_model=args.purchase_model, covariates=args.covariates,
                             validation_sample=args.validation_sample)
        from custscore.training.train import train_file
        from custscore.training.summary import format_training_summary

        result, logged = train_file(_transactions(args), config)
        print(format_training_summary(result, logged))
        warn_all(result.warnings)
    elif args.command == "score":
        config = ScoreConfig(as_of=args.as_of, horizon_days=args.horizon_days, columns=_columns(args),
                             engine=args.engine, margin_rate=args.margin, segments_file=args.segments,
                             amount_decimals=args.amount_decimals, covariates=args.covariates)
        from custscore.serving.batch import score_file

        scores = score_file(args.model, _transactions(args), _score_output(args), config, args.tracking_uri)
        print(f"scored {len(scores)} customers as of {config.as_of.date()} -> {scores.output} "
              f"({scores.rows_per_second:,.0f} rows/s, {scores.seconds:.1f} s)")
        warn_all(scores.warnings)
    elif args.command == "backtest":
        config = BacktestConfig(cutoffs=args.cutoffs or (), n_origins=args.origins, step_days=args.step_days,
                                horizon_days=args.horizon_days, time_unit=args.time_unit,
                                discount_rate=args.discount_rate, bgnbd_penalizer=args.bgnbd_penalizer,
                                gg_penalizer=args.gg_penalizer, penalizer=args.penalizer, seed=args.seed,
                                churn_calibration=args.churn_calibration, churn_windows=args.churn_windows,
                                n_bootstrap=args.n_bootstrap, output_dir=args.output_dir,
                                experiment=args.experiment, tracking_uri=args.tracking_uri, columns=_columns(args),
                                purchase_model=args.purchase_model, covariates=args.covariates)
        from custscore.training.backtest import backtest_warnings, format_comparison
        from custscore.training.backtest_report import backtest_file

        result, run_id = backtest_file(_transactions(args), config)
        print(format_comparison(result))
        warn_all(backtest_warnings(result))
        print(f"tables and plots: {config.output_dir}/  MLflow parent run: {run_id}")
    elif args.command == "serve":
        config = ServeConfig(host=args.host, port=args.port, allow_remote=args.allow_remote,
                             admin_token=args.admin_token or None, scores_file=args.scores,
                             transactions_file=args.transactions, columns=_columns(args),
                             amount_decimals=args.amount_decimals)
        from custscore.serving.http import run_server
        from custscore.training.tracking import use_tracking

        use_tracking(args.tracking_uri)
        run_server(args.model, config)
    elif args.command == "rfm":
        import time

        from custscore.features.engines import open_engine, rfm_table
        from custscore.serving.output import check_output_path, write_table_atomic

        transactions = _transactions(args)
        check_output_path(args.output, inputs={"--transactions": transactions})
        start = time.perf_counter()
        summary = rfm_table(open_engine(transactions, _columns(args), args.engine), args.as_of, args.time_unit)
        write_table_atomic(summary.reset_index(), args.output)
        print(f"{len(summary)} customers as of {args.as_of} -> {args.output} ({time.perf_counter() - start:.1f} s)")
    elif args.command == "report":
        from custscore.serving.report import write_report

        page, actions, n_actions = write_report(args.scores, args.output, args.actions, args.currency)
        print(f"report -> {page}; {n_actions} customers needing action -> {actions}")
    elif args.command == "evaluate":
        config = EvaluateConfig(horizon_days=args.horizon_days, partial=args.partial == "yes",
                                output_dir=args.output_dir, experiment=args.experiment,
                                tracking_uri=args.tracking_uri, columns=_columns(args), engine=args.engine)
        from custscore.serving.evaluation import evaluate_file, format_evaluation

        evaluation = evaluate_file(args.scores, _transactions(args), config)
        for text in evaluation.warnings:
            print(f"warning: {text}", file=sys.stderr)
        print(format_evaluation(evaluation))
    elif args.command == "drift":
        config = DriftConfig(psi_threshold=args.psi_threshold, psi_warn=args.psi_warn,
                             share_threshold=args.share_threshold, output_dir=args.output_dir,
                             experiment=args.experiment, tracking_uri=args.tracking_uri)
        from custscore.serving.drift_report import drift_files, format_drift

        drift_run = drift_files(args.reference, args.current, config)
        print(format_drift(drift_run))
        return DRIFT_EXIT_STATUS if drift_run.crossed else 0
    elif args.command == "quickstart":
        from custscore.quickstart import run_quickstart

        run_quickstart(args.workdir, tracking_uri=args.tracking_uri)
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so temporary files are removed."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    # The CLI prints its own summary; MLflow's INFO chatter would bury it (warnings still
    # show; set MLFLOW_LOGGING_LEVEL=INFO to see it). Read by MLflow when it is imported.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        with one_blas_thread():  # the whole command: custscore's own threads are the parallelism
            status = run(args)
    except CustscoreError as exc:
        message = " ".join(str(exc).split())
        print(f"custscore {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Terminated:
        print("custscore: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("custscore: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return status


if __name__ == "__main__":
    sys.exit(main())
