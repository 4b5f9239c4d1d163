"""Request body of ``POST /score`` as pydantic models, with the limits of a ServeConfig.

Field constraints do the validation (dates as ISO text, amounts finite numbers >= 0,
non-empty customer ids); the cross-field rules (no transaction after ``as_of``, no
duplicate customer, total transactions, a customer's amounts summing to a finite number,
at most :data:`MAX_SPAN_DAYS` from first purchase to ``as_of``) run once per request in
:meth:`ScoreRequest.check_request`. The validated request becomes the normalised
transaction frame of :mod:`custscore.features.io` directly, without re-parsing text.
"""
from __future__ import annotations

import datetime as dt
import math
import sys
from typing import Annotated, Any, ClassVar, Optional, Union

import numpy as np
import pandas as pd
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StringConstraints,
                      ValidationInfo, model_validator)

from custscore.config import NS_PER_DAY, ServeConfig

# Dates must fit datetime64[ns] (1677-09-22 .. 2262-04-11); whole years inside that span.
_FIRST_YEAR, _LAST_YEAR = 1678, 2261
#: Days from a customer's first purchase to ``as_of`` at most: the longest nanosecond
#: time difference (int64) in whole days, 106,751.
MAX_SPAN_DAYS = (2**63 - 1) // NS_PER_DAY


def _text_only(value: object) -> object:
    """Refuse numbers for dates: pydantic would read 86400 as a Unix time."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date or date-time string, e.g. '1997-09-30' or '1997-09-30T14:05:00'")
    return value


def _in_range(value: dt.date) -> dt.date:
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        raise ValueError(f"year {value.year} is outside {_FIRST_YEAR}..{_LAST_YEAR}")
    return value


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """Aware date-times are converted to UTC and made naive, as batch scoring does."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return _in_range(value)


#: A purchase time: ISO date or date-time text; with an offset it is converted to UTC.
PurchaseTime = Annotated[dt.datetime, BeforeValidator(_text_only), AfterValidator(_naive_utc)]
#: A scoring day: ISO date text (``YYYY-MM-DD``), inclusive.
Day = Annotated[dt.date, BeforeValidator(_text_only), AfterValidator(_in_range)]
#: An amount: a JSON number, finite, >= 0 (refunds are not accepted over HTTP).
Amount = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
CustomerId = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=256)]
#: Covariates of one customer (a model trained with ``--covariates``): column -> a level (text)
#: or a number, e.g. ``{"region": "north", "age": 41}``; at most :data:`MAX_COVARIATES` columns.
MAX_COVARIATES = 100
CovariateValue = Union[Annotated[str, StringConstraints(strict=True, max_length=256)], StrictInt,
                       Annotated[float, Field(strict=True, allow_inf_nan=False)]]
Covariates = Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], CovariateValue],
                       Field(max_length=MAX_COVARIATES)]


class Transaction(BaseModel):
    """One purchase: when (``date``) and how much (``amount``, in the log's currency).

    ``amount`` may be left out only for a model trained without amounts (its value
    columns are null); a model trained with amounts needs it on every transaction.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: PurchaseTime
    # Absent -> None (the default is not validated); an explicit null is refused like any non-number.
    amount: Amount = Field(default=None, description="required when the model was trained with amounts")

    @property
    def spend(self) -> float:
        """The amount, 0.0 when absent (what the feature engines use for a log without amounts)."""
        return 0.0 if self.amount is None else self.amount


#: Validation context of a request to a model trained with / without amounts.
WITH_AMOUNTS: dict = {"has_amounts": True}
WITHOUT_AMOUNTS: dict = {"has_amounts": False}


def request_context(scorer: Any) -> dict:
    """The validation context of requests to ``scorer``: amounts needed, covariate columns (None: none)."""
    encoding = getattr(scorer, "covariate_encoding", None)
    return {**(WITH_AMOUNTS if getattr(scorer, "has_amounts", True) else WITHOUT_AMOUNTS),
            "covariates": None if encoding is None else tuple(encoding.columns)}


def _check_covariates(i: int, given: Optional[dict], wanted: Optional[tuple[str, ...]]) -> None:
    """A customer's covariates: exactly the model's columns, or none for a model without covariates."""
    if wanted is None:
        if given is not None:
            raise ValueError(f"customers[{i}].covariates: this model was trained without covariates; leave them out")
        return
    if given is None:
        raise ValueError(f"customers[{i}].covariates: required (this model was trained with covariates "
                         f"{list(wanted)})")
    missing = [c for c in wanted if c not in given]
    unknown = [c for c in given if c not in wanted]
    if missing or unknown:
        what = f"no {missing[0]!r}" if missing else f"unknown {unknown[0]!r}"
        raise ValueError(f"customers[{i}].covariates: {what} (this model was trained with covariates {list(wanted)})")


class ScoreRequest(BaseModel):
    """Base of the request model; :func:`score_request_model` adds the configured limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Transactions per request at most (set by :func:`score_request_model`).
    max_transactions_total: ClassVar[int] = 0

    @model_validator(mode="after")
    def check_request(self, info: ValidationInfo):
        """No duplicate customer, no purchase after ``as_of``, at most the total transactions.

        Amounts are required unless the validation context says ``has_amounts: False``.
        """
        needs_amounts = (info.context or WITH_AMOUNTS).get("has_amounts", True)
        covariates = (info.context or {}).get("covariates")
        seen: set[str] = set()
        total = 0
        as_of = self.as_of
        for i, customer in enumerate(self.customers):
            if customer.customer_id in seen:
                raise ValueError(f"customers[{i}]: duplicate customer_id {customer.customer_id!r}; "
                                 "send each customer once with all its transactions")
            seen.add(customer.customer_id)
            _check_covariates(i, customer.covariates, covariates)
            total += len(customer.transactions)
            first = as_of
            for j, tx in enumerate(customer.transactions):
                day = tx.date.date()
                if day > as_of:
                    raise ValueError(f"customers[{i}].transactions[{j}]: date {tx.date.isoformat()} is after "
                                     f"as_of {as_of.isoformat()}")
                if needs_amounts and tx.amount is None:
                    raise ValueError(f"customers[{i}].transactions[{j}].amount: required (this model was trained "
                                     "with amounts)")
                first = min(first, day)
            if (as_of - first).days > MAX_SPAN_DAYS:
                raise ValueError(f"customers[{i}]: first purchase {first.isoformat()} is {(as_of - first).days:,} "
                                 f"days before as_of {as_of.isoformat()}; at most {MAX_SPAN_DAYS:,} days (about "
                                 "292 years) fit the scores' nanosecond time arithmetic")
            if not math.isfinite(sum(tx.spend for tx in customer.transactions)):
                raise ValueError(f"customers[{i}]: amounts sum to more than {sys.float_info.max:.4g}; "
                                 "send them in a larger unit (e.g. thousands)")
        if total > self.max_transactions_total:
            raise ValueError(f"too many transactions in one request: {total} > {self.max_transactions_total}; "
                             "split the customers over several requests")
        return self

    def transactions_frame(self) -> pd.DataFrame:
        """The normalised transaction frame (``customer_id`` str, ``ts``, ``amount``) of the request.

        Sorted by ``(customer_id, ts, amount)`` like :func:`custscore.features.io.normalise_transactions`,
        so same-day sums add up in the same order as batch scoring (bit-identical scores).
        """
        ids, times, amounts = [], [], []
        for customer in self.customers:
            for tx in customer.transactions:
                ids.append(customer.customer_id)
                times.append(tx.date)
                amounts.append(tx.spend)
        frame = pd.DataFrame({"customer_id": pd.array(ids, dtype="str"),
                              "ts": np.array(times, dtype="datetime64[ns]"),
                              "amount": np.array(amounts, dtype="float64")})
        return frame.sort_values(["customer_id", "ts", "amount"], kind="stable", ignore_index=True)

    def covariates_table(self) -> Optional[pd.DataFrame]:
        """The customers' covariates as a table indexed by customer id (request order), or None without any.

        What :meth:`~custscore.training.scorer.CustomerScorer.score` takes; errors in its
        values (a level not seen in training, text for a number) name the customer.
        """
        if all(customer.covariates is None for customer in self.customers):
            return None
        rows = [customer.covariates or {} for customer in self.customers]
        index = pd.Index([customer.customer_id for customer in self.customers], name="customer_id")
        return pd.DataFrame(rows, index=index)


def score_request_model(config: ServeConfig) -> type[ScoreRequest]:
    """The ``POST /score`` body model with the limits of ``config``.

    ``horizon_days`` (days, optional: the model's horizon when absent) is bounded by
    ``config.max_horizon_days``.
    """

    class Customer(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        customer_id: CustomerId
        transactions: Annotated[list[Transaction],
                                Field(min_length=1, max_length=config.max_transactions_per_customer, fail_fast=True)]
        covariates: Optional[Covariates] = Field(
            default=None, description="the customer's covariates when the model was trained with --covariates, "
                                      "e.g. {\"region\": \"north\", \"age\": 41}; refused otherwise")

    class ScoreRequestBody(ScoreRequest):
        """Customers with their transactions, scored at ``as_of`` over ``horizon_days``."""

        customers: Annotated[list[Customer], Field(min_length=1, max_length=config.max_customers, fail_fast=True)]
        as_of: Day
        horizon_days: Optional[Annotated[int, Field(strict=True, gt=0, le=config.max_horizon_days)]] = None
        max_transactions_total: ClassVar[int] = config.max_transactions

    ScoreRequestBody.__name__ = "ScoreRequest"
    return ScoreRequestBody
