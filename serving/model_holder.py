"""The model an HTTP server scores with, and its reload without downtime.

:class:`ModelHolder` keeps the loaded model; :meth:`ModelHolder.reload` loads the URI
again in a worker thread (so a registry alias that moved resolves to the new version)
and swaps it in only once it is fully loaded: the old model serves until then, and a
failed reload leaves it serving.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

import custscore
from custscore.errors import CustscoreError
from custscore.serving.model_source import load_scorer_from_uri
from custscore.serving.fast_path import fast_path_blocker
from custscore.training.scorer import CustomerScorer

_REGISTRY_LABEL = re.compile(r"^(?P<name>[^/]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class LoadedModel:
    """A scorer with where it came from: URI, version label (``NAME/VERSION`` or run id)."""

    scorer: CustomerScorer
    label: str
    model_uri: str
    loaded_at: str

    @functools.cached_property
    def fast_path_blocker(self) -> Optional[str]:
        """Why this model's small requests take the pandas path, or None (they take the fast path)."""
        return fast_path_blocker(self.scorer)

    def describe(self) -> dict[str, Any]:
        """What ``GET /version`` shows: registry name and version, run id, fitted parameters.

        ``training_cutoff`` is the last calibration day; ``horizon_days`` the default
        horizon in days; ``discount_rate`` yearly; ``purchase_model`` names the model of
        repeat purchases, whose parameters are under that name (rates in ``time_unit``);
        ``fast_path`` is ``on`` or why small requests take the pandas path; ``covariates`` the
        columns each customer's ``covariates`` must have (``[]``: none); ``fit_warnings``
        what the training data could not tell (texts, see :class:`CustomerScorer`).
        """
        scorer = self.scorer
        match = _REGISTRY_LABEL.match(self.label) if self.model_uri.startswith("models:/") else None
        return {
            "model_uri": self.model_uri,
            "model_name": match["name"] if match else None,
            "model_version": match["version"] if match else None,
            "version_label": self.label,
            "run_id": scorer.model_version or None,
            "training_cutoff": scorer.cutoff.date().isoformat(),
            "time_unit": scorer.time_unit,
            "horizon_days": int(scorer.horizon_days),
            "discount_rate": float(scorer.discount_rate),
            "purchase_model": scorer.purchase_model.KEY,
            "fitted_params": {
                scorer.purchase_model.KEY: {k: float(v) for k, v in scorer.purchase_model.params_.items()},
                "gamma_gamma": scorer.spend_params(),
            },
            "has_amounts": bool(scorer.has_amounts),
            "covariates": [] if scorer.covariate_encoding is None else list(scorer.covariate_encoding.columns),
            "fit_warnings": list(scorer.fit_warnings),
            "loaded_at": self.loaded_at,
            "fast_path": self.fast_path_blocker or "on",
            "custscore_version": custscore.__version__,
        }


def load_model(model_uri: str) -> LoadedModel:
    """Load the custscore model at ``model_uri`` (raises CustscoreError when it cannot)."""
    scorer, label = load_scorer_from_uri(model_uri)
    loaded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return LoadedModel(scorer=scorer, label=label, model_uri=model_uri, loaded_at=loaded_at)


class ModelHolder:
    """The current model of a server; ``None`` until the first load has finished."""

    def __init__(self, model_uri: str, loader: Callable[[str], LoadedModel] = load_model) -> None:
        self.model_uri = model_uri
        self.current: Optional[LoadedModel] = None
        #: One-line reason of the last failed load, None after a successful one.
        self.last_error: Optional[str] = None
        self._loader = loader
        self._running: Optional[asyncio.Task] = None

    async def reload(self) -> LoadedModel:
        """Load the URI again and swap the model in; concurrent calls share one load.

        Raises CustscoreError when loading fails; the previous model keeps serving.
        """
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._load())
        return await asyncio.shield(self._running)

    async def _load(self) -> LoadedModel:
        try:
            model = await asyncio.to_thread(self._loader, self.model_uri)
        except CustscoreError as exc:
            self.last_error = " ".join(str(exc).split())
            raise
        self.current = model
        self.last_error = None
        return model
