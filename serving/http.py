"""The HTTP API: FastAPI app factory and the ``custscore serve`` runner (uvicorn).

Routes only parse, call the scorer and serialise. They serve the same
:class:`~custscore.training.scorer.CustomerScorer` that batch scoring and the MLflow
pyfunc load from the same URI: small calls through the numpy fast path
(:mod:`custscore.serving.fast_path`, the scorer's own fitted models, tested equal), larger
ones through :func:`~custscore.serving.batch.score_transactions`, so HTTP and batch
scores cannot disagree.

- ``POST /score``: customers with their transactions, ``as_of`` and optional
  ``horizon_days`` (days) -> ``{"model_version": ..., "scores": [one object per customer]}``
  with the batch score columns; NaN becomes ``null``.
- ``GET /health``: 200 once the model is loaded, 503 before.
- ``GET /version``: model name, version, run id, fitted parameters, training cutoff.
- ``POST /admin/reload`` (and SIGHUP under ``custscore serve``): load the URI again, e.g.
  after the registry alias moved; the old model serves until the new one is loaded.

Errors are JSON ``{"error": "...", "detail": [...]}``: 400 malformed JSON, 413 body too
large, 422 invalid fields or data, 503 model not loaded, 500 without any trace.
"""

import asyncio
import contextlib
import functools
import gc
import hmac
import json
import logging
import re
import signal
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Optional

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from custscore.config import ScoreConfig, ServeConfig, is_loopback
from custscore.errors import CustscoreError
from custscore.serving.body_check import BodyChecker
from custscore.serving.customer_table import CustomerTable, load_customer_table
from custscore.serving.docs_ui import add_offline_docs
from custscore.serving.http_answers import HEALTH_RESPONSES, RELOAD_RESPONSES, SCORE_RESPONSES, VERSION_RESPONSES
from custscore.serving.http_protocol import guarded_protocol
from custscore.serving.http_schemas import ScoreRequest, request_context, score_request_model
from custscore.serving.lookup_routes import add_customer_page
from custscore.serving.microbatch import MicroBatcher
from custscore.serving.middleware import (ACCESS_LOGGER, AccessLogMiddleware, BodyLimitMiddleware,
                                         InternalErrorMiddleware)
from custscore.serving.model_holder import LoadedModel, ModelHolder, load_model
from custscore.serving.score_json import json_response, score_answer

#: Logger of server events (loads, reloads, internal errors), one JSON object per line.
SERVER_LOGGER = "custscore.http"
#: Validation problems listed in one error response at most.
_MAX_DETAILS = 20

log = logging.getLogger(SERVER_LOGGER)


def _log_event(level: int, event: str, **fields: Any) -> None:
    log.log(level, json.dumps({"event": event, **fields}, default=str))


def _log_internal_error(scope: dict, exc: BaseException) -> None:
    """One JSON line (the traceback inside it) per internal error."""
    _log_event(logging.ERROR, "internal_error", path=scope.get("path"), error=f"{type(exc).__name__}: {exc}",
               traceback="".join(traceback.format_exception(exc)))


#: An absolute file path (POSIX, ``file:``/``sqlite:`` URI or Windows drive), not a
#: ``models:/NAME`` or ``runs:/ID/model`` URI.
_ABSOLUTE_PATH = re.compile(r"(?:(?<![\w:])(?:(?:file|sqlite):)?/+(?:[^/\s'\"]+/)+|\b[A-Za-z]:[\\/])"
                            r"[^\s'\"]*?(?=[:;,.)]?(?:[\s'\"]|$))")


def public_text(message: str) -> str:
    """``message`` without absolute file paths (the server log keeps them), as one line.

    >>> public_text("cannot load model 'runs:/abc/model': [Errno 2] No such file: '/srv/mlruns/1/abc/model.json'")
    "cannot load model 'runs:/abc/model': [Errno 2] No such file: '<path>'"
    """
    return _ABSOLUTE_PATH.sub("<path>", " ".join(message.split()))


def _error(status: int, message: str, detail: Optional[list] = None) -> Response:
    payload: dict[str, Any] = {"error": public_text(message)}
    if detail:
        payload["detail"] = detail
    return json_response(payload, status)


def _location(loc: tuple) -> str:
    """``("body", "customers", 0, "transactions", 2, "amount")`` -> ``customers[0].transactions[2].amount``."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _validation_response(errors: list, count: Optional[int] = None) -> Response:
    """400 for malformed JSON, else 422 naming the first invalid field (pydantic error dicts).

    ``count``: how many problems there are in all (default: ``len(errors)``).
    """
    count = len(errors) if count is None else count
    if any(e.get("type") == "json_invalid" for e in errors):
        where = next(e for e in errors if e.get("type") == "json_invalid")
        return _error(400, f"malformed JSON: {where.get('ctx', {}).get('error', where.get('msg'))}")
    detail = [{"loc": _location(tuple(e.get("loc", ()))), "msg": str(e.get("msg", "")).removeprefix("Value error, ")}
              for e in errors[:_MAX_DETAILS]]
    first = detail[0]
    where = f"{first['loc']}: " if first["loc"] else ""
    more = f" (and {count - 1} more)" if count > 1 else ""
    return _error(422, f"invalid request: {where}{first['msg']}{more}", detail)


def create_app(model_uri: str, config: ServeConfig = ServeConfig(), *, model: Optional[LoadedModel] = None,
               loader: Callable[[str], LoadedModel] = load_model,
               customers: Optional[CustomerTable] = None) -> FastAPI:
    """The HTTP app scoring with the model at ``model_uri``.

    The model is loaded once at start-up (in the background, ``/health`` answers 503
    until it is ready) unless an already loaded ``model`` is given. ``loader`` loads a
    URI (replaceable in tests). With ``customers`` (a score file) the app also serves
    the customer look-up page (:mod:`custscore.serving.lookup_routes`).
    """
    holder = ModelHolder(model_uri, loader)
    holder.current = model
    batcher = MicroBatcher(config.microbatch_max_customers, config.fast_path_max_customers,
                           config.fast_path_max_transactions, config.microbatch_wait_ms)
    request_model = score_request_model(config)
    parser_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custscore-parse")
    tasks: set[asyncio.Task] = set()

    checker = BodyChecker(config)

    def parse_body(raw: bytes, context: dict) -> ScoreRequest | Response:
        """The validated request, or the 400/422 answer to it."""
        try:
            return request_model.model_validate_json(raw, context=context)
        except ValidationError as exc:
            return _validation_response(exc.errors(include_url=False, include_input=False), exc.error_count())

    def reload_in_background() -> None:
        task = asyncio.ensure_future(_reload_logged())
        tasks.add(task)
        task.add_done_callback(_forget)

    def _forget(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a failed load is logged and shown by /health, not re-raised

    async def _reload_logged() -> Optional[LoadedModel]:
        previous = holder.current.label if holder.current else None
        _log_event(logging.INFO, "model_loading", model_uri=model_uri, serving=previous)
        try:
            loaded = await holder.reload()
        except CustscoreError:
            _log_event(logging.ERROR, "model_load_failed", model_uri=model_uri, error=holder.last_error,
                       serving=previous)
            raise
        _log_event(logging.INFO, "model_loaded", model_uri=model_uri, version=loaded.label, previous=previous)
        return loaded

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if holder.current is None:
            reload_in_background()
        sighup = hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread()
        if sighup:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_in_background)
        try:
            yield
        finally:
            if sighup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            for task in list(tasks):
                task.cancel()
            batcher.close()
            parser_thread.shutdown(wait=False, cancel_futures=True)
            checker.close()

    # FastAPI's built-in OpenTelemetry hooks are off: the server writes its own JSON access
    # log, and asking the (unconfigured) providers on every request cost ~5 % of its CPU.
    app = FastAPI(title="custscore", version=_package_version(), lifespan=lifespan,
                  summary="Churn and lifetime-value scores of customers from their transactions.",
                  telemetry={"tracing": False, "metrics": False, "logs": False}, docs_url=None, redoc_url=None)
    add_offline_docs(app)
    app.state.holder = holder
    app.state.body_checker = checker

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        return _validation_response(list(exc.errors()))

    @app.exception_handler(CustscoreError)
    async def on_user_error(request: Request, exc: CustscoreError) -> Response:
        return _error(422, " ".join(str(exc).split()))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    def ready_model() -> LoadedModel:
        if holder.current is None:
            reason = f"model failed to load: {holder.last_error}" if holder.last_error else "model is loading"
            raise StarletteHTTPException(503, reason)
        return holder.current

    @app.get("/health", responses=HEALTH_RESPONSES)
    async def health() -> Response:
        """200 ``{"status": "ready"}`` once the model is loaded, 503 before.

        After a failed reload the old model still serves: 200 ``{"status": "degraded",
        "reason": ...}`` until a reload succeeds.
        """
        current = ready_model()
        if holder.last_error is not None:
            return json_response({"status": "degraded", "model_version": current.label,
                                   "reason": public_text(f"reload failed: {holder.last_error}")})
        return json_response({"status": "ready", "model_version": current.label})

    @app.get("/version", responses=VERSION_RESPONSES)
    async def version() -> Response:
        """Model name, version, run id, fitted parameters and training cutoff."""
        return json_response(ready_model().describe())

    @functools.lru_cache(maxsize=256)
    def score_config(as_of, horizon_days: Optional[int]) -> ScoreConfig:
        return ScoreConfig(as_of=as_of, horizon_days=horizon_days)

    @app.post("/score", openapi_extra=_request_body_openapi(app, request_model), responses=SCORE_RESPONSES)
    async def score(request: Request) -> Response:
        """Score each customer at ``as_of`` (inclusive) over ``horizon_days``."""
        # The body is parsed and validated in one step by pydantic's JSON parser instead of
        # FastAPI's body dependency (json.loads, then validation of the Python objects):
        # same checks and messages, less server CPU per small request.
        current = ready_model()
        raw = await request.body()
        context = request_context(current.scorer)
        if len(raw) < config.large_body_min_bytes:
            body = parse_body(raw, context)
        else:  # megabytes of JSON hold the interpreter lock for a long time: checked in another process
            with contextlib.suppress(BrokenProcessPool):  # else (the checker died) checked here
                errors = await checker.errors(raw, context)
                if errors is not None:
                    return _validation_response(*errors)
            body = await asyncio.get_running_loop().run_in_executor(parser_thread, parse_body, raw, context)
        if isinstance(body, Response):
            return body
        rows = await batcher.score(current, body, score_config(body.as_of, body.horizon_days))
        return Response(score_answer(rows, len(body.customers), current.label), media_type="application/json")

    if config.admin_token is not None:
        expected = f"Bearer {config.admin_token}".encode()

        @app.post("/admin/reload", responses=RELOAD_RESPONSES)
        async def reload(request: Request) -> Response:
            """Load the model URI again (e.g. the alias moved); the old model serves meanwhile.

            Needs ``Authorization: Bearer TOKEN`` (the server's admin token): 401 without it.
            """
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                return _error(401, "admin token required: send 'Authorization: Bearer TOKEN'")
            previous = holder.current.label if holder.current else None
            try:
                loaded = await _reload_logged()
            except CustscoreError:
                return _error(503, f"reload failed: {holder.last_error}; still serving {previous}")
            return json_response({"status": "reloaded", "previous": previous, "current": loaded.label,
                                   "loaded_at": loaded.loaded_at})

    if customers is not None:
        add_customer_page(app, customers, config)

    app.add_middleware(InternalErrorMiddleware, on_error=_log_internal_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s)
    app.add_middleware(AccessLogMiddleware)
    return app


def _request_body_openapi(app: FastAPI, model: type) -> dict:
    """OpenAPI ``requestBody`` of a route that validates its raw body with ``model`` itself.

    The model's nested schemas (customers, transactions) are added to the app's
    ``components/schemas``, where the body schema refers to them.
    """
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    default_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            default_openapi().setdefault("components", {}).setdefault("schemas", {}).update(nested)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _package_version() -> str:
    import custscore
    return custscore.__version__


def configure_logging() -> None:
    """Access and server logs as one JSON object per line on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in (ACCESS_LOGGER, SERVER_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def exposure_summary(app: FastAPI, config: ServeConfig) -> str:
    """One line saying what the server exposes: address, reach, routes and whether reload is on."""
    reach = "this machine only" if is_loopback(config.host) else "REACHABLE FROM OTHER MACHINES (--allow-remote)"
    routes = sorted(f"{method} {route.path}" for route in app.routes
                    for method in (getattr(route, "methods", None) or ()) if method != "HEAD")
    reload = ("POST /admin/reload enabled (bearer token)" if config.admin_token is not None
              else "POST /admin/reload disabled (no admin token; SIGHUP reloads)")
    return (f"custscore serve: http://{config.host}:{config.port} ({reach}); routes: {', '.join(routes)}; "
            f"{reload}")


def freeze_startup_objects() -> None:
    """Move every object alive after start-up out of the garbage collector's reach.

    The imported libraries and the loaded model are ~220,000 tracked objects; a full
    collection walks them all (130-160 ms measured in such a process on this machine),
    stalling every request in flight. Frozen, they are never walked again; objects made
    later (requests, a reloaded model) are collected as usual.
    """
    gc.collect()
    gc.freeze()


def uvicorn_config(app: FastAPI, config: ServeConfig) -> uvicorn.Config:
    """uvicorn settings of ``custscore serve``: the guarded httptools protocol, timeouts, headers.

    No ``server: uvicorn`` header; every response, uvicorn's own 400/431 included, carries
    ``X-Content-Type-Options: nosniff``.
    """
    return uvicorn.Config(app, host=config.host, port=config.port, access_log=False, lifespan="on",
                          log_level="info", http=guarded_protocol(config),  # type: ignore[arg-type]
                          timeout_keep_alive=config.keep_alive_timeout_s, server_header=False,
                          headers=[("X-Content-Type-Options", "nosniff")])


def run_server(model_uri: str, config: ServeConfig = ServeConfig()) -> None:
    """Read ``config.scores_file`` (and its log) and load the model (a bad file or URI raises
    CustscoreError before binding), then serve until stopped."""
    customers = (load_customer_table(config.scores_file, config.transactions_file, config.columns, None)
                 if config.scores_file is not None else None)
    model = load_model(model_uri)
    if customers is not None:  # the log's days netted as the model nets them (unless told otherwise)
        customers = customers.at_precision(model.scorer.amount_decimals if config.amount_decimals is None
                                           else config.amount_decimals)
    configure_logging()
    app = create_app(model_uri, config, model=model, customers=customers)
    server = uvicorn.Server(uvicorn_config(app, config))
    app.state.body_checker.warm()
    print(exposure_summary(app, config), file=sys.stderr, flush=True)
    freeze_startup_objects()
    server.run()
    if not server.started:
        raise CustscoreError(f"could not serve on {config.host}:{config.port} (see the log above)")
