"""Load a custscore model by MLflow URI through the checked, data-only loader.

A registry alias is resolved ONCE per load (``models:/NAME@alias`` -> version number),
and that one resolution gives both the files loaded (``models:/NAME/VERSION``) and the
label (``NAME/VERSION``), so an alias moving during a load cannot mix two versions.
The SHA-256 of the model's manifest recorded in its MLflow run is checked before any
model file is read (:func:`custscore.training.bundle.load_scorer`). A local model folder
is read where it is, without MLflow (which is imported only for a URI it resolves: it
takes a second or two to import).
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from custscore.errors import CustscoreError
from custscore.training.bundle import MANIFEST_PARAM, load_model_dir
from custscore.training.scorer import CustomerScorer

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")


@dataclass(frozen=True)
class ModelSource:
    """Where one load reads from: ``uri`` to download, its ``label`` (or None) and its run."""

    uri: str
    label: Optional[str]
    run_id: Optional[str]


def resolve_model_uri(model_uri: str, client: "Optional[MlflowClient]" = None) -> ModelSource:
    """``models:/NAME@alias`` and ``models:/NAME/V`` -> ``models:/NAME/V`` with label ``NAME/V``.

    ``runs:/RUN/...`` keeps its URI (label None: the scorer's run id); any other URI (a
    local folder) has no run to check against.
    """
    match = _REGISTRY_URI.match(model_uri)
    if not match:
        run = _RUN_URI.match(model_uri)
        return ModelSource(model_uri, None, run["run_id"] if run else None)
    client = client or _store_client(model_uri)
    name = match["name"]
    try:
        version = (client.get_model_version_by_alias(name, match["alias"]) if match["alias"]
                   else client.get_model_version(name, match["version"]))
    except Exception as exc:  # MlflowException, connection errors: all mean "no such model here"
        raise _cannot_load(model_uri, exc) from exc
    return ModelSource(f"models:/{name}/{version.version}", f"{name}/{version.version}", version.run_id)


def load_scorer_from_uri(model_uri: str) -> tuple[CustomerScorer, str]:
    """Load the custscore model at ``model_uri``; return the scorer and its version label.

    The label is ``NAME/VERSION`` for a registry URI (``models:/NAME@alias`` or
    ``models:/NAME/3``), else the training run id. Raises :class:`CustscoreError` (one
    line naming ``model_uri``) when the model cannot be fetched or its files do not verify.
    """
    if is_local_folder(model_uri):
        scorer = load_model_dir(model_uri, repr(model_uri))
        return scorer, scorer.model_version
    import mlflow

    client = _store_client(model_uri) if _looks_up(model_uri) else None
    source = resolve_model_uri(model_uri, client)
    recorded = _recorded_manifest_sha256(model_uri, source, client)
    with tempfile.TemporaryDirectory(prefix="custscore-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=source.uri, dst_path=tmp)
        except Exception as exc:  # MlflowException, OSError, ...
            raise _cannot_load(model_uri, exc) from exc
        scorer = load_model_dir(local, repr(model_uri), recorded)
    return scorer, source.label or scorer.model_version


def _looks_up(model_uri: str) -> bool:
    """True for a URI MLflow looks up in the tracking store (``models:/``, ``runs:/``), not a folder."""
    return bool(_REGISTRY_URI.match(model_uri) or _RUN_URI.match(model_uri))


def is_local_folder(model_uri: str) -> bool:
    """True for a model URI that is a folder on this machine (a path, no ``scheme:/``): read without MLflow."""
    return not _looks_up(model_uri) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", model_uri) is None \
        and Path(model_uri).is_dir()


def _store_client(model_uri: str) -> "MlflowClient":
    """A client of the current tracking store, refused before MLflow creates a missing SQLite file."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from custscore.training.tracking import missing_store

    why = missing_store(mlflow.get_tracking_uri())
    if why is not None:
        raise _cannot_load(model_uri, why)
    return MlflowClient()


def _recorded_manifest_sha256(model_uri: str, source: ModelSource, client: "Optional[MlflowClient]") -> Optional[str]:
    """The manifest hash the run recorded; "" when it recorded none, None without a run (a local folder)."""
    if source.run_id is None or client is None:
        return None
    try:
        params = client.get_run(source.run_id).data.params
    except Exception as exc:
        raise _cannot_load(model_uri, exc) from exc
    if MANIFEST_PARAM not in params:  # a model of an older custscore, or files not logged by custscore
        return ""
    return params[MANIFEST_PARAM]


def _cannot_load(model_uri: str, exc: BaseException | str) -> CustscoreError:
    """One line naming the model, the tracking store it was looked up in (unless a local
    folder) and the first line of the reason."""
    import mlflow

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    store = f" from tracking store {mlflow.get_tracking_uri()}" if _looks_up(model_uri) else ""
    return CustscoreError(f"cannot load model {model_uri!r}{store}: {text}")
