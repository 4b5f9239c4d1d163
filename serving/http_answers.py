"""Answers of the HTTP API as pydantic models: their schemas document the routes in the OpenAPI.

The routes write their JSON themselves (faster than validating their own output); these
models only describe it, and the API fuzzer (``tests/test_http_fuzz.py``) checks every
answer against them.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    """One validation problem: where (``customers[0].transactions[2].amount``) and what."""

    loc: str
    msg: str


class ErrorAnswer(BaseModel):
    """Every error: one line, and for invalid requests the first problems."""

    error: str
    detail: Optional[list[ErrorDetail]] = None


class ScoreAnswer(BaseModel):
    """``POST /score``: one row per customer, sorted by ``customer_id``, with the batch score columns."""

    model_version: str
    n_customers: int
    scores: list[dict[str, Any]]


class HealthAnswer(BaseModel):
    """``GET /health``: ``ready``, or ``degraded`` (the last reload failed; ``reason``) while the old model serves."""

    status: Literal["ready", "degraded"]
    model_version: str
    reason: Optional[str] = None


class ReloadAnswer(BaseModel):
    """``POST /admin/reload``: the version served before and now."""

    status: Literal["reloaded"]
    previous: Optional[str]
    current: str
    loaded_at: str


class TableAnswer(BaseModel):
    """``GET /customers/api/table``: one page of customers (the page's columns) and the counts."""

    total: int
    page: int
    pages: int
    page_size: int
    rows: list[dict[str, Any]]


class Purchase(BaseModel):
    """One day of a customer's purchases in ``--transactions`` (the day's rows netted)."""

    date: str
    amount: float


class CustomerAnswer(BaseModel):
    """``GET /customers/api/customer``: every score column, and the purchases (null without a log)."""

    score: dict[str, Any]
    purchases: Optional[list[Purchase]]


def _errors(*statuses: int) -> dict[int, dict[str, Any]]:
    return {status: {"model": ErrorAnswer, "description": ERROR_MEANINGS[status]} for status in statuses}


#: What each error status of the API means.
ERROR_MEANINGS = {
    400: "malformed JSON",
    401: "missing or wrong admin token (Authorization: Bearer TOKEN)",
    404: "no such customer in the score file",
    408: "the request body paused longer than the body timeout (connection closed)",
    413: "request body over the size limit",
    422: "invalid request: a field, a cross-field rule or the data (the message names the place)",
    431: "request headers over the size limit (answered by the server, connection closed)",
    500: "internal server error (details in the server log only)",
    503: "model not loaded (loading, or the first load failed), or a reload failed",
}

#: ``responses=`` of each route for FastAPI.
SCORE_RESPONSES = {200: {"model": ScoreAnswer}, **_errors(400, 408, 413, 422, 431, 500, 503)}
HEALTH_RESPONSES = {200: {"model": HealthAnswer}, **_errors(431, 503)}
VERSION_RESPONSES = {200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **_errors(431, 503)}
RELOAD_RESPONSES = {200: {"model": ReloadAnswer}, **_errors(401, 431, 503)}
META_RESPONSES = {200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **_errors(431)}
TABLE_RESPONSES = {200: {"model": TableAnswer}, **_errors(422, 431)}
CUSTOMER_RESPONSES = {200: {"model": CustomerAnswer}, **_errors(404, 422, 431)}
