"""MLflow: one run per training with params, metrics, plots, tables and the pyfunc model.

Default store: ``sqlite:///mlflow.db`` with artifacts in ``./mlruns`` (no server).
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` points it elsewhere.

Several ``custscore train`` at once on one SQLite store: creating the store's tables, the
experiment and a registered version each hold an exclusive lock on ``<db>.lock`` beside
the database (:func:`store_lock`), so two first runs on a fresh store both succeed
instead of racing on ``CREATE TABLE``. Any MLflow error while logging is one line.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

import custscore
from custscore.config import DEFAULT_TRACKING_URI, TrainConfig
from custscore.errors import CustscoreError
from custscore.features.io import normalise_transactions
from custscore.training.covariate_file import covariates_of_rows
from custscore.training.bundle import MANIFEST_PARAM, PYFUNC_COLUMNS, save_scorer
from custscore.training.pipeline import TrainResult
from custscore.training.promotion import PromotionDecision
from custscore.training.segments import segment_settings

#: Alias given to a newly registered version.
CHAMPION_ALIAS = "champion"
#: Bounds on how long an unreachable tracking server can stall a command.
_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


@dataclass(frozen=True)
class LoggedModel:
    """A logged run's model. ``model_uri`` (``runs:/RUN/model``) loads in MLflow 3, where the
    files are a logged model (``mlruns/models/m-ID/artifacts`` beside the store) rather
    than run artifacts; a registered version has ``alias`` (champion or challenger)."""

    run_id: str
    model_uri: str
    registered_name: Optional[str] = None
    registered_version: Optional[str] = None
    alias: str = CHAMPION_ALIAS
    promotion_reason: str = ""

    @property
    def serving_uri(self) -> str:
        """The URI to score with: the version's alias when registered, else the run's model."""
        if self.registered_name:
            return f"models:/{self.registered_name}@{self.alias}"
        return self.model_uri


def resolve_tracking_uri(uri: Optional[str] = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else the local SQLite default."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def use_tracking(uri: Optional[str] = None) -> str:
    """Point MLflow at the tracking store (with bounded HTTP retries) and return its URI."""
    for key, value in _HTTP_LIMITS.items():
        os.environ.setdefault(key, value)
    resolved = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return resolved


#: Errors of the tracking store (MLflow's own, and SQLAlchemy's that MLflow lets through).
STORE_ERRORS = (MlflowException, SQLAlchemyError)


def sqlite_path(tracking_uri: str) -> Optional[Path]:
    """The database file of a ``sqlite:///PATH`` URI (relative to the current folder), else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///"):]).resolve()


def missing_store(tracking_uri: str) -> Optional[str]:
    """Why a model cannot be looked up in ``tracking_uri`` without creating it, or None.

    A ``sqlite:///`` store whose database file does not exist: MLflow would create an empty
    one (about 1 MB) on first use, so a lookup checks this first and touches nothing.
    """
    db = sqlite_path(tracking_uri)
    if db is None or db.is_file():
        return None
    return (f"no such file {db}; pass --tracking-uri sqlite:///PATH/mlflow.db with the store the model was "
            "trained into (the quickstart's is custscore-quickstart/mlflow.db)")


@contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<db>.lock`` for a SQLite store; nothing for other stores."""
    db = sqlite_path(tracking_uri)
    if db is None:
        yield
        return
    try:
        handle = open(db.with_name(db.name + ".lock"), "a")
    except OSError as exc:
        raise CustscoreError(f"MLflow tracking store {tracking_uri} is not usable: {exc.strerror} "
                             f"({db.parent})") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_experiment(name: str, tracking_uri: str) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        # Artifacts beside the database, absolute so runs from another folder still find them.
        db_path = Path(tracking_uri[len("sqlite:///"):]).resolve()
        location = (db_path.parent / "mlruns").as_uri()
    return client.create_experiment(name, artifact_location=location)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def model_params(result: TrainResult, config: TrainConfig) -> dict[str, object]:
    """The run's params: fitted parameters by their paper names plus the training config."""
    params: dict[str, object] = {}
    fits = result.purchase.fits if result.purchase is not None else {}
    for model in fits.values() or [result.scorer.purchase_model]:  # the reference BG/NBD unprefixed
        params.update({f"{model.PARAM_PREFIX}{k}": v for k, v in model.params_.items()})
    params.update(result.scorer.spend_params())
    encoding = result.scorer.covariate_encoding
    if encoding is not None:  # how the covariates were encoded: standardisation and reference levels
        params.update(encoding.params())
    params.update({k: v for k, v in config.as_params().items()
                   if k not in ("experiment", "tracking_uri", "register_as") and v is not None})
    params["purchase_model_requested"] = params.pop("purchase_model", config.purchase_model)
    params["purchase_model"] = result.scorer.purchase_model.KEY
    if result.purchase is not None:
        params["purchase_validation_days"] = result.purchase.validation_days
    for step, fit in (("purchase", result.purchase), ("churn", result.churn)):
        sample = getattr(fit, "validation_sample", None)
        if sample is not None:  # the customers the choice was validated on, of those known then
            params[f"{step}_validation_customers"] = sample.used
            params[f"{step}_validation_known_customers"] = sample.known
    params["n_customers"] = result.n_customers
    params["churn_model"] = result.scorer.churn_model
    classifier = result.churn.classifier if result.churn is not None else None
    params["churn_dropped_features"] = (",".join(classifier.dropped_features_) or "none") if classifier else "none"
    if result.scorer.segment_thresholds is not None:  # segment rules and fitted cut points
        settings = segment_settings(result.scorer.segment_config, result.scorer.segment_thresholds)
        params.update({f"segments_{k}": v for part in settings.values() for k, v in part.items()})
    params["custscore_version"] = custscore.__version__
    return params


#: Separator of the texts in the ``fit_warnings`` tag.
FIT_WARNINGS_SEPARATOR = " | "


def fit_warnings_tag(warnings: list[str]) -> str:
    """The ``fit_warnings`` tag value: the texts joined by " | ", or "none".

    >>> fit_warnings_tag([]), fit_warnings_tag(["a", "b"])
    ('none', 'a | b')
    """
    return FIT_WARNINGS_SEPARATOR.join(warnings) if warnings else "none"


def log_fit_warnings(warnings: list[str]) -> None:
    """Tag the active run with ``fit_warnings`` (MLflow tags hold up to 8,000 characters)."""
    mlflow.set_tag("fit_warnings", fit_warnings_tag(warnings)[:8000])


def prepare_experiment(config: TrainConfig) -> Optional[str]:
    """Point MLflow at the store and return the experiment id (created if needed).

    ``config`` is any settings object with ``tracking_uri`` and ``experiment`` (the train,
    evaluate and drift configs).

    Called before any fitting so an unreachable or broken store fails fast, within the
    bounded HTTP retries. ``None`` under ``mlflow run``, whose run (``MLFLOW_RUN_ID``)
    already exists and is logged into.
    """
    tracking_uri = use_tracking(config.tracking_uri)
    if os.environ.get("MLFLOW_RUN_ID"):
        return None
    try:
        with store_lock(tracking_uri):  # the first client creates the tables: one at a time
            return _ensure_experiment(config.experiment, tracking_uri)
    except STORE_ERRORS as exc:
        raise CustscoreError(f"MLflow tracking store {tracking_uri} is not usable: {_first_line(exc)}") from exc


def registered_champion(name: str) -> Optional[tuple[str, dict[str, str]]]:
    """(version, its run's params) of ``models:/NAME@champion``; None when there is none yet."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        return None
    return str(version.version), dict(client.get_run(version.run_id).data.params)


def log_training(result: TrainResult, config: TrainConfig, input_example: pd.DataFrame,
                 experiment_id: Optional[str] = None, decision: Optional[PromotionDecision] = None) -> LoggedModel:
    """Log one training run and the pyfunc model; register it when ``config.register_as``.

    ``input_example`` is a few raw transaction rows in the pyfunc's input format;
    ``experiment_id`` comes from :func:`prepare_experiment` (looked up when omitted).
    ``decision`` (:mod:`custscore.training.promotion`) gives the registered version's
    alias and its ``promotion.*`` tags; None = champion.
    """
    if experiment_id is None:
        experiment_id = prepare_experiment(config)
    try:
        return _log_training(result, config, input_example, experiment_id, decision)
    except STORE_ERRORS as exc:
        raise CustscoreError(f"MLflow tracking store {mlflow.get_tracking_uri()}: {_first_line(exc)}") from exc


def _log_training(result: TrainResult, config: TrainConfig, input_example: pd.DataFrame,
                  experiment_id: Optional[str], decision: Optional[PromotionDecision]) -> LoggedModel:
    with mlflow.start_run(experiment_id=experiment_id) as run:
        run_id = run.info.run_id
        result.scorer.model_version = run_id
        log_fit_warnings(result.warnings)
        mlflow.log_params(model_params(result, config))
        mlflow.set_tag("churn_model_reason", result.churn.selection.reason if result.churn else "")
        if result.purchase is not None:
            mlflow.set_tag("purchase_model_reason", result.purchase.reason[:8000])
            mlflow.log_table(result.purchase.table, "tables/purchase_models.json")
        if result.holdout is not None:
            for name, fig in result.holdout.figures.items():
                mlflow.log_figure(fig, f"plots/{name}")
            for name, table in result.holdout.tables.items():
                mlflow.log_table(table, f"tables/{name}.json")
        mlflow.log_dict(json.loads(json.dumps(_finite(result.metrics))), "metrics.json")
        output_example = result.scorer.score(
            normalise_transactions(input_example, PYFUNC_COLUMNS),
            covariates=covariates_of_rows(result.scorer.covariate_encoding, input_example, "input example"))
        with warnings.catch_warnings():  # the integer-columns hint: our outputs never hold NaN counts
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(input_example, output_example,
                                        params={"as_of": "", "horizon_days": int(config.horizon_days)})
        with tempfile.TemporaryDirectory() as tmp:
            # data-only model files; the manifest's SHA-256 is an (immutable) run param that
            # loading checks, and MLflow loads them through custscore's installed loader_module
            folder = os.path.join(tmp, "scorer")
            mlflow.log_param(MANIFEST_PARAM, save_scorer(result.scorer, folder))
            info = mlflow.pyfunc.log_model(
                name="model", loader_module="custscore.training.bundle", data_path=folder,
                signature=signature, input_example=input_example,
                pip_requirements=_requirements(),
                metadata={"custscore_version": custscore.__version__, "time_unit": config.time_unit,
                          "cutoff": config.cutoff.date().isoformat(), "horizon_days": config.horizon_days},
            )
        # After the model, linked to it in one batch: logged before, MLflow 3's Model.log copies every run
        # metric to the model with one metric-history query each (mlflow/models/model.py, log_model_metrics_for_step)
        mlflow.log_metrics(_finite(result.metrics), model_id=info.model_id)
    model_uri = f"runs:/{run_id}/model"
    if not config.register_as:
        return LoggedModel(run_id=run_id, model_uri=model_uri)
    with store_lock(mlflow.get_tracking_uri()):  # concurrent registrations of one name get distinct versions
        version = mlflow.register_model(info.model_uri, config.register_as)
        client = MlflowClient()
        alias = decision.alias if decision is not None else CHAMPION_ALIAS
        client.set_registered_model_alias(config.register_as, alias, version.version)
        for key, value in (decision.tags if decision is not None else {}).items():
            client.set_model_version_tag(config.register_as, version.version, key, value)
    return LoggedModel(run_id=run_id, model_uri=model_uri, registered_name=config.register_as,
                       registered_version=str(version.version), alias=alias,
                       promotion_reason=decision.reason if decision is not None else "")


def log_params_beside(params: dict[str, object]) -> None:
    """``mlflow.log_params`` into the active run, keeping params it already holds.

    Under ``mlflow run`` the run already has the entry point's parameters (e.g. ``origins``
    = ``1``); a param with the same key and another value (the dates those origins are) is
    logged as ``KEY_used`` instead of failing.
    """
    held = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    mlflow.log_params({(f"{k}_used" if k in held and held[k] != str(v) else k): v for k, v in params.items()})


def model_link_tags(model_version: str) -> dict[str, str]:
    """Tags linking a run to the model that wrote a scores file (its sidecar's ``model_version``).

    ``NAME/VERSION`` (a registered version) gives ``model_name``, ``model_version`` and,
    when the registry knows it, ``model_run_id``; anything else is a training run id.
    """
    name, _, number = model_version.rpartition("/")
    if not (name and number.isdigit()):
        return {"model_version": model_version, "model_run_id": model_version}
    tags = {"model_name": name, "model_version": number}
    try:
        tags["model_run_id"] = MlflowClient().get_model_version(name, number).run_id
    except Exception:  # another store than the model's: the name and number still link it
        pass
    return tags


def tag_model_version(link: dict[str, str], key: str, value: str) -> None:
    """Set tag ``key`` on the registered version ``link`` names (:func:`model_link_tags`), if any."""
    if "model_name" in link:
        try:
            MlflowClient().set_model_version_tag(link["model_name"], link["model_version"], key, value)
        except Exception:  # a version of another store: the run's tags still link the two
            pass


def log_report_run(kind: str, experiment_id: Optional[str], *, params: dict, metrics: dict[str, float],
                   tags: dict[str, str], figures: dict, tables: dict[str, pd.DataFrame], record: dict) -> str:
    """One MLflow run of a lifecycle command (``evaluate``, ``drift``); returns its id.

    Tag ``custscore.kind`` = ``kind``; params are logged as ``KIND.NAME`` (under ``mlflow
    run`` the run already holds the entry point's parameters, some with other values such
    as ``''`` for "not given"); ``record`` (the command's JSON output) is logged as
    ``KIND.json``, figures under ``plots/``, tables under ``tables/``.
    """
    with mlflow.start_run(experiment_id=experiment_id, run_name=kind) as run:
        mlflow.set_tags({"custscore.kind": kind, **tags})
        mlflow.log_params({f"{kind}.{k}": v for k, v in params.items() if v is not None})
        mlflow.log_metrics(_finite(metrics))
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"plots/{name}")
        for name, table in tables.items():
            mlflow.log_table(table, f"tables/{name}.json")
        mlflow.log_dict(record, f"{kind}.json")
        return run.info.run_id


def _requirements() -> list[str]:
    import numpy
    import pyarrow
    import scipy
    import sklearn
    return [f"custscore=={custscore.__version__}", f"mlflow=={mlflow.__version__}",
            f"pandas=={pd.__version__}", f"numpy=={numpy.__version__}", f"scipy=={scipy.__version__}",
            f"scikit-learn=={sklearn.__version__}", f"pyarrow=={pyarrow.__version__}"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
