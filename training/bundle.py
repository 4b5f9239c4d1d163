"""The scorer as one MLflow pyfunc model: save/load with a format check, and the wrapper.

The pyfunc's input is transaction rows with columns ``customer_id`` (string), ``date``
(string, ISO date or date-time) and ``amount`` (double); its params are ``as_of``
(ISO date; empty = the last transaction day in the input) and ``horizon_days``
(0 = the horizon the model was trained with); its output is one row per customer
(:data:`~custscore.training.scorer.SCORE_COLUMNS`).
"""
from __future__ import annotations

import os


import joblib
import mlflow.pyfunc
import pandas as pd

import custscore
from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.io import normalise_transactions
from custscore.training.scorer import CustomerScorer

#: Bumped whenever a saved scorer can no longer be read by this code.
FORMAT_VERSION = 2
#: Column names of the pyfunc input (the CLI maps the user's names onto these).
PYFUNC_COLUMNS = ColumnMap(customer="customer_id", date="date", amount="amount")
SCORER_ARTIFACT = "scorer"


def save_scorer(scorer: CustomerScorer, path: str) -> str:
    """Write ``scorer`` with its format and package versions to ``path`` (joblib)."""
    joblib.dump({"format_version": FORMAT_VERSION, "custscore_version": custscore.__version__,
                 "scorer": scorer}, path)
    return path


def load_scorer(path: str) -> CustomerScorer:
    """Read a scorer written by :func:`save_scorer`; refuse an incompatible format."""
    payload = joblib.load(path)
    found = payload.get("format_version") if isinstance(payload, dict) else None
    if found != FORMAT_VERSION:
        written_by = payload.get("custscore_version", "unknown") if isinstance(payload, dict) else "unknown"
        raise CustscoreError(
            f"model format {found} (written by custscore {written_by}) cannot be read by custscore "
            f"{custscore.__version__} (format {FORMAT_VERSION}); retrain the model with this version")
    return payload["scorer"]


class ScorerModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper around a :class:`CustomerScorer` stored as an artifact."""

    # The signature is given explicitly when logging; MLflow's type-hint validation would
    # turn millions of input rows into Python objects (and warns when predict has no hints).
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        self.scorer = load_scorer(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context, model_input, params=None):
        params = params or {}
        tx = normalise_transactions(pd.DataFrame(model_input), PYFUNC_COLUMNS)
        as_of = params.get("as_of") or None
        horizon = params.get("horizon_days") or None
        return self.scorer.score(tx, as_of=as_of, horizon_days=horizon)


#: Models-from-code entry point logged with the model (no pickled Python object).
PYFUNC_ENTRY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyfunc_entry.py")
