"""Score validated HTTP requests through the numpy fast path, several requests in one call.

Small requests (the micro-batched single-customer lookups of a CRM screen) skip pandas:
the validated request objects become flat arrays
(:mod:`custscore.features.small_features`) and the score rows are assembled by
:func:`custscore.training.small_scores.score_small` with the loaded scorer's own fitted
objects. The rows equal :meth:`CustomerScorer.score` (tested to 1e-9 on every column).
Larger calls, and a model the fast path cannot serve (:func:`fast_path_blocker`), keep
the pandas path.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from custscore.config import ScoreConfig
from custscore.features.small_features import EPOCH_ORDINAL, feature_names, merge_days, small_customer_features
from custscore.serving.http_schemas import ScoreRequest
from custscore.training.scorer import CustomerScorer
from custscore.training.small_scores import score_small_columns, unsupported_reason

def fast_path_blocker(scorer: CustomerScorer) -> Optional[str]:
    """Why requests to ``scorer`` must take the pandas path, or None when the fast path serves them."""
    return unsupported_reason(scorer, frozenset(feature_names(scorer.time_unit)))


def request_arrays(requests: Sequence[ScoreRequest]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Customer ids and the flat ``(codes, days, amounts)`` of the fast path's features.

    Customers are numbered request after request, each request's customers sorted by
    id; each customer's transactions sorted by time, then amount (the order of
    :func:`custscore.features.io.normalise_transactions`). ``days`` are whole days since
    1970-01-01 of the UTC date-times.
    """
    ids: list[str] = []
    codes: list[int] = []
    days: list[int] = []
    amounts: list[float] = []
    for request in requests:
        for customer in sorted(request.customers, key=lambda c: c.customer_id):
            code = len(ids)
            ids.append(customer.customer_id)
            for when, amount in sorted((tx.date, tx.spend) for tx in customer.transactions):
                codes.append(code)
                days.append(when.toordinal() - EPOCH_ORDINAL)
                amounts.append(amount)
    return (ids, np.array(codes, dtype="int64"), np.array(days, dtype="int64"),
            np.array(amounts, dtype="float64"))


def score_requests(scorer: CustomerScorer, requests: Sequence[ScoreRequest], config: ScoreConfig,
                   version_label: Optional[str] = None) -> tuple[dict[str, np.ndarray], list[int]]:
    """Score columns of all the requests' customers in one call, and each request's row range.

    Rows ``bounds[i]`` to ``bounds[i + 1]`` (exclusive) are request ``i``'s customers,
    sorted by id. Every request is scored at ``config.as_of`` over
    ``config.horizon_days``; the rows equal ``score_transactions(scorer, ...,
    version_label)`` of each request's transactions.
    """
    ids, codes, days, amounts = request_arrays(requests)
    purchases = merge_days(codes, days, amounts, scorer.amount_decimals)  # netted as in training
    features = small_customer_features(purchases, config.as_of, scorer.time_unit)
    columns = score_small_columns(scorer, np.asarray(ids, dtype=object)[features.customers], features.columns,
                                  config.as_of, config.horizon_days, version_label)
    first_codes = np.cumsum([0] + [len(r.customers) for r in requests])
    return columns, np.searchsorted(features.customers, first_codes).tolist()
