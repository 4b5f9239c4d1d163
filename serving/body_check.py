"""Validate large ``POST /score`` bodies in a separate process, so invalid ones never stall the server.

pydantic's JSON validation is one call into compiled code that holds the interpreter
lock from start to end: 0.4-0.7 s for a 15 MiB body on this machine, whether it runs on
the event loop or in a worker thread (measured: with a thread, single-customer p99 was
3.0 s while another client sent such bodies; ``benchmarks/HTTP_RESULTS.md``). A body of
at least ``ServeConfig.large_body_min_bytes`` is therefore validated first by a worker
process with the same request model; only a valid one is then parsed by the server
itself (in a worker thread; a large scoring call follows anyway), so a client sending
megabytes of invalid JSON costs the server's own process nothing but reading the bytes.

The worker runs at a lower CPU priority (``nice`` +10) and is started with ``spawn`` (no
fork of a process running threads) on first use or by :meth:`BodyChecker.warm`; if it
dies, the body is checked in the server itself and the next large body starts a new one.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Optional

from pydantic import ValidationError

from custscore.config import ServeConfig

#: Scheduling priority added to the worker process (POSIX ``nice``), so it yields the CPU.
WORKER_NICENESS = 10
#: Validation problems handed back from the worker at most (the answer lists 20).
MAX_ERRORS = 20

_request_model: Any = None  # the request model of the worker process


def _start_worker(config: ServeConfig) -> None:
    global _request_model
    if hasattr(os, "nice"):  # on a busy machine the server's own requests get the CPU first
        os.nice(WORKER_NICENESS)
    from custscore.serving.http_schemas import score_request_model
    _request_model = score_request_model(config)


def request_errors(model: Any, raw: bytes, context: Optional[dict] = None) -> Optional[tuple[list[dict], int]]:
    """None when ``raw`` is a valid request for ``model``, else its first errors and their count."""
    try:
        model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        return exc.errors(include_url=False, include_input=False)[:MAX_ERRORS], exc.error_count()
    return None


def _check(raw: bytes, context: Optional[dict]) -> Optional[tuple[list[dict], int]]:
    errors = request_errors(_request_model, raw, context)
    if errors is not None:  # ctx may hold exception objects: keep the answer picklable
        for error in errors[0]:
            if "ctx" in error:
                error["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
    return errors


class BodyChecker:
    """Validates request bodies in one worker process (:func:`request_errors` there)."""

    def __init__(self, config: ServeConfig) -> None:
        self._config = config
        self._pool: Optional[ProcessPoolExecutor] = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self._config,))
        return self._pool

    async def errors(self, raw: bytes, context: Optional[dict] = None) -> Optional[tuple[list[dict], int]]:
        """None when ``raw`` is a valid request, else its first errors (pydantic dicts) and their count."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), _check, raw, context)
        except BrokenProcessPool:  # the worker died (killed, out of memory): a new one next time
            self._pool = None
            raise

    def warm(self) -> None:
        """Start the worker now (it takes a few seconds to import) instead of on the first large body."""
        self._executor().submit(_check, b"{}", None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
