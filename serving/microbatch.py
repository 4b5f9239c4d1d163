"""Score concurrent HTTP requests together: one scorer call for many small requests.

A scorer call has a fixed cost whatever its size, so requests that arrive while a call
is running wait for it to end and are then scored together in the next call (no timer,
no added wait when idle). Every score column is a function of one customer's own
transactions, so scoring customers together or alone gives the same rows.

Small requests are combined into calls of at most ``fast_max_customers`` customers and
``fast_max_transactions`` transactions that take the numpy fast path
(:mod:`custscore.serving.fast_path`); larger requests are combined, up to
``max_customers``, into pandas calls (:meth:`CustomerScorer.score`), where customer ids
of different requests are kept apart by a per-request prefix removed from the output.

Fast-path calls run on the event loop itself: they take a few milliseconds of CPU that
holds the interpreter lock either way, and handing them to a thread cost more than the
call (the loop waited for the lock, up to the 5 ms switch interval, to answer). Pandas
calls (large requests) run in one worker thread, so the event loop keeps reading requests
while one runs.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

from custscore.config import ScoreConfig
from custscore.serving.batch import score_transactions
from custscore.serving.fast_path import score_requests
from custscore.serving.http_schemas import ScoreRequest
from custscore.serving.model_holder import LoadedModel
from custscore.serving.score_json import columns_rows_json, frame_rows_json

_PREFIX_DIGITS = 6


@dataclass
class _Job:
    model: LoadedModel
    request: ScoreRequest
    config: ScoreConfig
    future: asyncio.Future = field(repr=False)
    n_customers: int = 0
    n_transactions: int = 0

    def key(self) -> tuple:
        return id(self.model), self.config.as_of, self.config.horizon_days


@dataclass(frozen=True)
class _Limits:
    """Size of one combined call: fast-path calls, and pandas calls (customers only)."""

    max_customers: int
    fast_max_customers: int
    fast_max_transactions: int

    def is_small(self, n_customers: int, n_transactions: int) -> bool:
        return n_customers <= self.fast_max_customers and n_transactions <= self.fast_max_transactions


def score_one(model: LoadedModel, transactions: pd.DataFrame, config: ScoreConfig,
              covariates: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Score one request's normalised transactions (and its covariates): the batch-scoring path, same columns."""
    return score_transactions(model.scorer, transactions, config, model.label, covariates)


def score_together(jobs: list[_Job], limits: _Limits) -> list[str | BaseException]:
    """Score jobs sharing model, ``as_of`` and horizon in one call: each job's rows as JSON text.

    If the combined call fails, each job is scored alone so an error reaches only the
    request that caused it.
    """
    try:
        return _score_combined(jobs, limits)
    except Exception as exc:  # noqa: BLE001 - handed to the request, or each job rescored alone
        if len(jobs) == 1:
            return [exc]
        return [score_together([job], limits)[0] for job in jobs]


def takes_fast_path(jobs: list[_Job], limits: _Limits) -> bool:
    """True when the jobs (same model) are scored together by the numpy fast path."""
    return jobs[0].model.fast_path_blocker is None and limits.is_small(
        sum(j.n_customers for j in jobs), sum(j.n_transactions for j in jobs))


def _score_combined(jobs: list[_Job], limits: _Limits) -> list[str]:
    model, config = jobs[0].model, jobs[0].config
    if takes_fast_path(jobs, limits):
        columns, bounds = score_requests(model.scorer, [job.request for job in jobs], config, model.label)
        return columns_rows_json(columns, bounds)
    if len(jobs) == 1:
        request = jobs[0].request
        return [frame_rows_json(score_one(model, request.transactions_frame(), config, request.covariates_table()))]
    frames, tables = [], []
    for i, job in enumerate(jobs):
        tx = job.request.transactions_frame()
        frames.append(tx.assign(customer_id=f"{i:0{_PREFIX_DIGITS}d}:" + tx["customer_id"]))
        table = job.request.covariates_table()
        if table is not None:
            tables.append(table.set_axis(f"{i:0{_PREFIX_DIGITS}d}:" + table.index, axis=0))
    covariates = pd.concat(tables) if tables else None
    scores = score_one(model, pd.concat(frames, ignore_index=True), config, covariates)
    ids = scores["customer_id"]
    owner = ids.str.slice(0, _PREFIX_DIGITS).astype("int64").to_numpy()
    scores["customer_id"] = ids.str.slice(_PREFIX_DIGITS + 1)
    return [frame_rows_json(scores[owner == i]) for i in range(len(jobs))]


class MicroBatcher:
    """Queue of scoring requests, served in combined calls (fast path on the loop, pandas in a thread).

    ``max_customers`` caps the customers of one combined pandas call (1 = never
    combine); calls within ``fast_max_customers`` customers and ``fast_max_transactions``
    transactions take the fast path (0 = never). ``max_wait_ms``: after a call, wait up to
    this long (milliseconds) for as many requests as that call served before starting the
    next one (the clients just answered usually come back at once); 0 = never wait. The
    first request after an idle spell never waits.
    """

    def __init__(self, max_customers: int, fast_max_customers: int = 0, fast_max_transactions: int = 0,
                 max_wait_ms: float = 0.0) -> None:
        self.limits = _Limits(max_customers, fast_max_customers, fast_max_transactions)
        self.max_wait_ms = max_wait_ms
        self._pending: list[_Job] = []
        self._runner: Optional[asyncio.Task] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custscore-score")
        self._wanted = 0  # pending jobs that end the current wait
        self._arrived: Optional[asyncio.Event] = None

    async def score(self, model: LoadedModel, request: ScoreRequest, config: ScoreConfig) -> str:
        """Scores of one validated request computed with ``model``: a JSON array, one object per customer.

        Objects are sorted by ``customer_id`` and carry the batch score columns.
        """
        loop = asyncio.get_running_loop()
        job = _Job(model, request, config, loop.create_future(), n_customers=len(request.customers),
                   n_transactions=sum(len(c.transactions) for c in request.customers))
        self._pending.append(job)
        if self._arrived is not None and len(self._pending) >= self._wanted:
            self._arrived.set()
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._drain())
        return await job.future

    async def _gather(self, wanted: int) -> None:
        """Wait up to ``max_wait_ms`` until ``wanted`` jobs are pending."""
        self._wanted, self._arrived = wanted, asyncio.Event()
        try:
            await asyncio.wait_for(self._arrived.wait(), self.max_wait_ms / 1000.0)
        except asyncio.TimeoutError:
            pass
        finally:
            self._arrived = None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take(self) -> list[_Job]:
        """The oldest job plus the later ones it can be scored with.

        Small jobs (within the fast-path limits) go with small ones up to those limits,
        larger jobs with larger ones up to ``max_customers`` customers.
        """
        limits = self.limits
        first = self._pending[0]
        small = limits.is_small(first.n_customers, first.n_transactions)
        taken, kept = [first], []
        customers, transactions = first.n_customers, first.n_transactions
        for job in self._pending[1:]:
            fits = (limits.is_small(customers + job.n_customers, transactions + job.n_transactions) if small
                    else customers + job.n_customers <= limits.max_customers
                    and not limits.is_small(job.n_customers, job.n_transactions))
            if job.key() == first.key() and fits:
                taken.append(job)
                customers += job.n_customers
                transactions += job.n_transactions
            else:
                kept.append(job)
        self._pending = kept
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        served = 0  # jobs of the call that just ended (0: woken after an idle spell)
        while True:
            if served and self.max_wait_ms > 0 and len(self._pending) < served:
                await self._gather(served)
            if not self._pending:
                return
            jobs = self._take()
            inline = takes_fast_path(jobs, self.limits)
            try:
                if inline:  # a few milliseconds: on the loop (module doc)
                    results = score_together(jobs, self.limits)
                else:
                    results = await loop.run_in_executor(self._executor, score_together, jobs, self.limits)
            except Exception as exc:  # noqa: BLE001 - a bug here must not leave requests waiting
                results = [exc] * len(jobs)
            for job, result in zip(jobs, results):
                if job.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
            served = len(jobs)
            if inline:
                await asyncio.sleep(0)  # let the answered requests send their responses
