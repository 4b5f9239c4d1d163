"""The scorer as model files that are data, never code, and its MLflow pyfunc.

A saved scorer is a folder of three files (format :data:`FORMAT_VERSION`):

- ``scorer.json``: format and custscore versions and the object tree of the scorer
  (:mod:`custscore.training.codec`, classes from :data:`MODEL_CLASSES` only);
- ``arrays.npz``: the tree's numpy arrays, read with ``allow_pickle=False``;
- ``manifest.json``: format version and the SHA-256 of the two files above.

:func:`load_scorer` checks the manifest (and, when given, its own SHA-256 recorded in
the MLflow run) and every file's SHA-256 BEFORE parsing anything, and refuses an old
(pickled) format, a changed or missing file or an unknown class with one line naming the
model. Nothing on the load path unpickles or imports code from the model folder.

The pyfunc is logged with ``loader_module`` (this module, :func:`_load_pyfunc`): MLflow
imports the installed custscore and calls the same checked loader. Its input is
transaction rows with columns ``customer_id`` (string), ``date`` (string, ISO date or
date-time) and ``amount`` (double); its params are ``as_of`` (ISO date; empty = the last
transaction day in the input) and ``horizon_days`` (0 = the horizon the model was
trained with); its output is one row per customer
(:data:`~custscore.training.scorer.SCORE_COLUMNS`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

import custscore
from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.io import normalise_transactions
from custscore.training import codec
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.calibration import ProbabilityCalibrator
from custscore.training.churn import ChurnClassifier
from custscore.training.churn_select import BaselineChurnModel
from custscore.training.covariate_file import CovariateEncoding, covariates_of_rows
from custscore.training.gamma_gamma import GammaGammaModel
from custscore.training.mbgnbd import ModifiedBetaGeoModel
from custscore.training.paretonbd import ParetoNBDModel
from custscore.training.scorer import CustomerScorer
from custscore.training.segments import SegmentConfig, SegmentThresholds
from custscore.training.spend import ObservedMeanSpend

#: Bumped whenever a saved scorer can no longer be read by this code (2 was a joblib pickle).
FORMAT_VERSION = 4  # 4: CustomerScorer.purchase_model (any purchase model) replaced .bgnbd
#: Column names of the pyfunc input (the CLI maps the user's names onto these).
PYFUNC_COLUMNS = ColumnMap(customer="customer_id", date="date", amount="amount")
#: The classes a model file may name: everything reachable from a fitted CustomerScorer.
MODEL_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    CustomerScorer, BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel, GammaGammaModel, ObservedMeanSpend, ChurnClassifier, BaselineChurnModel,
    ProbabilityCalibrator, SegmentConfig, SegmentThresholds, CovariateEncoding)}
TREE_FILE, ARRAYS_FILE, MANIFEST_FILE = "scorer.json", "arrays.npz", "manifest.json"
#: The scorer folder inside a logged MLflow model (MLflow copies ``data_path`` to ``data/``).
MODEL_SCORER_DIR = os.path.join("data", "scorer")
#: MLflow run param holding the SHA-256 of the model's ``manifest.json``.
MANIFEST_PARAM = "model_manifest_sha256"
#: File names of pickled scorers of format 2 and before: refused, never opened.
_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_scorer(scorer: CustomerScorer, folder: str | os.PathLike) -> str:
    """Write ``scorer`` as the three files into ``folder`` (created); return the manifest's SHA-256.

    Raises ``TypeError`` naming the attribute when the scorer holds anything but plain data.
    """
    tree, arrays = codec.encode(scorer, MODEL_CLASSES)
    doc = {"format_version": FORMAT_VERSION, "custscore_version": custscore.__version__, "scorer": tree}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files = {TREE_FILE: json.dumps(doc, allow_nan=False).encode("utf-8"), ARRAYS_FILE: buffer.getvalue()}
    manifest = json.dumps({"format_version": FORMAT_VERSION, "custscore_version": custscore.__version__,
                           "sha256": {name: sha256(data) for name, data in files.items()}},
                          indent=1, allow_nan=False).encode("utf-8")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {**files, MANIFEST_FILE: manifest}.items():
        (folder / name).write_bytes(data)
    return sha256(manifest)


def load_scorer(folder: str | os.PathLike, source: Optional[str] = None,
                manifest_sha256: Optional[str] = None) -> CustomerScorer:
    """Read a scorer written by :func:`save_scorer`, verifying every file before parsing it.

    ``source`` names the model in errors (default: the folder); ``manifest_sha256`` is the
    hash recorded in the MLflow run, checked when given ("" = the run recorded none:
    refused). Raises :class:`CustscoreError`.
    """
    folder = Path(folder)
    source = source or str(folder)
    manifest_bytes = _read(folder / MANIFEST_FILE, source, folder)
    if manifest_sha256 == "":
        raise _refused(source, f"its MLflow run recorded no {MANIFEST_PARAM}, so its files cannot be verified; "
                               "log the model with custscore train")
    if manifest_sha256 is not None and sha256(manifest_bytes) != manifest_sha256:
        raise _refused(source, f"{MANIFEST_FILE} has SHA-256 {sha256(manifest_bytes)[:16]}..., not the "
                               f"{manifest_sha256[:16]}... recorded when the model was logged")
    manifest = _json(manifest_bytes, source, MANIFEST_FILE)
    _check_format(manifest, source)
    recorded = manifest.get("sha256") if isinstance(manifest.get("sha256"), dict) else {}
    data = {}
    for name in (TREE_FILE, ARRAYS_FILE):
        data[name] = _read(folder / name, source, folder)
        if sha256(data[name]) != recorded.get(name):
            raise _refused(source, f"{name} has SHA-256 {sha256(data[name])[:16]}..., not the "
                                   f"{str(recorded.get(name))[:16]}... of its manifest; the file was changed")
    doc = _json(data[TREE_FILE], source, TREE_FILE)
    _check_format(doc, source)
    try:
        with np.load(io.BytesIO(data[ARRAYS_FILE]), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        scorer = codec.decode(doc.get("scorer"), arrays, MODEL_CLASSES)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise _refused(source, f"not a custscore model file ({_first_line(exc)})") from exc
    if not isinstance(scorer, CustomerScorer):
        raise _refused(source, f"{TREE_FILE} holds a {type(scorer).__name__}, not a CustomerScorer")
    return scorer


def load_model_dir(model_dir: str | os.PathLike, source: str,
                   manifest_sha256: Optional[str] = None) -> CustomerScorer:
    """The scorer of a downloaded MLflow model folder (its ``data/scorer``), checked as :func:`load_scorer`."""
    return load_scorer(Path(model_dir) / MODEL_SCORER_DIR, source, manifest_sha256)


def _read(path: Path, source: str, folder: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        root = folder.parent.parent if folder.parent.name == "data" else folder
        if any(p.suffix in _PICKLE_SUFFIXES for p in root.rglob("*") if p.is_file()):
            raise _refused(source, f"old model format (a pickled scorer, format {FORMAT_VERSION - 1} or before), "
                                   "which is never loaded because a pickle can run code; retrain the model with "
                                   f"custscore {custscore.__version__}") from None
        raise _refused(source, f"{path.name} is missing; not a custscore model of format {FORMAT_VERSION}") from None
    except OSError as exc:
        raise _refused(source, f"cannot read {path.name}: {_first_line(exc)}") from exc


def _json(data: bytes, source: str, name: str) -> dict:
    def no_constants(text: str) -> Any:
        raise ValueError(f"{text} is not allowed")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refused(source, f"{name} is not JSON ({_first_line(exc)})") from exc
    if not isinstance(doc, dict):
        raise _refused(source, f"{name} is not a JSON object")
    return doc


def _check_format(doc: dict, source: str) -> None:
    found = doc.get("format_version")
    if found != FORMAT_VERSION:
        raise _refused(source, f"format {found} (written by custscore {doc.get('custscore_version', 'unknown')})"
                               f" cannot be read by custscore {custscore.__version__} (format {FORMAT_VERSION}); "
                               "retrain the model with this version")


def _refused(source: str, reason: str) -> CustscoreError:
    return CustscoreError(f"model {source}: {reason}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ScorerModel:
    """What MLflow's ``pyfunc.load_model`` returns the predictions of: a loaded scorer."""

    def __init__(self, scorer: CustomerScorer) -> None:
        self.scorer = scorer

    def predict(self, model_input, params: Optional[dict] = None) -> pd.DataFrame:
        params = params or {}
        tx = normalise_transactions(pd.DataFrame(model_input), PYFUNC_COLUMNS)
        as_of = params.get("as_of") or None
        horizon = params.get("horizon_days") or None
        covariates = covariates_of_rows(self.scorer.covariate_encoding, pd.DataFrame(model_input), "model input")
        return self.scorer.score(tx, as_of=as_of, horizon_days=horizon, covariates=covariates)


def _load_pyfunc(data_path: str) -> ScorerModel:
    """MLflow's ``loader_module`` hook: ``data_path`` is the model's ``data/scorer`` folder."""
    return ScorerModel(load_scorer(data_path))
