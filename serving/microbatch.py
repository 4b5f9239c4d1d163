"""Score concurrent HTTP requests together: one scorer call for many small requests.

A scorer call costs about the same for 1 or 1,000 customers on small inputs (pandas
overhead dominates), so requests that arrive while a call is running wait for it to end
and are then scored together in the next call (no timer, no added wait when idle).
Every score column is a function of one customer's own transactions, so scoring
customers together or alone gives the same rows. Customer ids of different requests
are kept apart by a per-request prefix that is removed from the output.

The scorer runs in one worker thread, so the event loop keeps reading requests.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

from custscore.config import ScoreConfig
from custscore.serving.batch import score_transactions
from custscore.serving.model_holder import LoadedModel

_PREFIX_DIGITS = 6


@dataclass
class _Job:
    model: LoadedModel
    transactions: pd.DataFrame
    n_customers: int
    config: ScoreConfig
    future: asyncio.Future = field(repr=False)

    def key(self) -> tuple:
        return id(self.model), self.config.as_of, self.config.horizon_days


def score_one(model: LoadedModel, transactions: pd.DataFrame, config: ScoreConfig) -> pd.DataFrame:
    """Score one request's normalised transactions: the batch-scoring path, same columns."""
    return score_transactions(model.scorer, transactions, config, model.label)


def score_together(jobs: list[_Job]) -> list[pd.DataFrame | BaseException]:
    """Score jobs sharing model, ``as_of`` and horizon in one call; split the rows back.

    If the combined call fails, each job is scored alone so an error reaches only the
    request that caused it.
    """
    if len(jobs) == 1:
        return [_guarded(jobs[0])]
    frames = []
    for i, job in enumerate(jobs):
        tx = job.transactions
        frames.append(tx.assign(customer_id=f"{i:0{_PREFIX_DIGITS}d}:" + tx["customer_id"]))
    try:
        scores = score_one(jobs[0].model, pd.concat(frames, ignore_index=True), jobs[0].config)
    except Exception:  # noqa: BLE001 - rescored one by one below, each error to its own request
        return [_guarded(job) for job in jobs]
    ids = scores["customer_id"]
    owner = ids.str.slice(0, _PREFIX_DIGITS).astype("int64").to_numpy()
    scores["customer_id"] = ids.str.slice(_PREFIX_DIGITS + 1)
    return [scores[owner == i].reset_index(drop=True) for i in range(len(jobs))]


def _guarded(job: _Job) -> pd.DataFrame | BaseException:
    try:
        return score_one(job.model, job.transactions, job.config)
    except Exception as exc:  # noqa: BLE001 - handed to the request's own future
        return exc


class MicroBatcher:
    """Queue of scoring requests served by one worker thread, in combined calls.

    ``max_customers`` caps the customers of one combined call (1 = never combine).
    """

    def __init__(self, max_customers: int) -> None:
        self.max_customers = max_customers
        self._pending: list[_Job] = []
        self._runner: Optional[asyncio.Task] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custscore-score")

    async def score(self, model: LoadedModel, transactions: pd.DataFrame, n_customers: int,
                    config: ScoreConfig) -> pd.DataFrame:
        """Scores of one request (rows sorted by customer_id), computed with ``model``."""
        loop = asyncio.get_running_loop()
        job = _Job(model, transactions, n_customers, config, loop.create_future())
        self._pending.append(job)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._drain())
        return await job.future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take(self) -> list[_Job]:
        """The oldest job plus the later ones it can be scored with, up to max_customers."""
        first = self._pending[0]
        taken, kept, customers = [first], [], first.n_customers
        for job in self._pending[1:]:
            if job.key() == first.key() and customers + job.n_customers <= self.max_customers:
                taken.append(job)
                customers += job.n_customers
            else:
                kept.append(job)
        self._pending = kept
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            jobs = self._take()
            try:
                results = await loop.run_in_executor(self._executor, score_together, jobs)
            except Exception as exc:  # noqa: BLE001 - a bug here must not leave requests waiting
                results = [exc] * len(jobs)
            for job, result in zip(jobs, results):
                if job.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
