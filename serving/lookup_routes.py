"""The customer look-up page of ``custscore serve --scores FILE``: one HTML page, its script and
style (files of this package, ``serving/static/``: no CDN, no build step) and three
read-only JSON routes the page reads.

- ``GET /customers``: the page (``GET /`` redirects to it).
- ``GET /customers/api/meta``: the score file's settings and the filter choices.
- ``GET /customers/api/table``: one page of customers (search, filters, sort), paged on
  the server so a score file of millions of rows never goes to the browser whole.
- ``GET /customers/api/customer?id=ID``: one customer's scores and purchases (from
  ``--transactions``). The page then scores the customer again through ``POST /score``.

The page writes every value with ``textContent`` (never as HTML), and its responses carry
a Content-Security-Policy allowing only this server's own script and style, so a
customer id such as ``<img src=x onerror=...>`` shows as text.
"""
from __future__ import annotations

from importlib import resources
from typing import Literal, Optional

from fastapi import FastAPI, Query
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from custscore.config import ServeConfig
from custscore.serving.customer_table import MAX_QUERY_CHARS, RISKS, SORTS, CustomerTable
from custscore.serving.http_answers import CUSTOMER_RESPONSES, META_RESPONSES, TABLE_RESPONSES
from custscore.serving.score_json import json_response

PAGE = "/customers"
#: Assets of the page: file name in ``serving/static`` -> media type.
ASSETS = {"customers.js": "text/javascript; charset=utf-8", "customers.css": "text/css; charset=utf-8"}
#: Headers of the page and its assets: only this server's script, style and API.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
#: Customer data is not kept in caches.
API_HEADERS = {"Cache-Control": "no-store"}
RiskChoice = Literal[("",) + tuple(RISKS)]  # type: ignore[valid-type]
SortChoice = Literal[SORTS]  # type: ignore[valid-type]


def static_file(name: str) -> bytes:
    """A file of ``serving/static`` (package data)."""
    return resources.files("custscore.serving").joinpath("static", name).read_bytes()


def add_customer_page(app: FastAPI, table: CustomerTable, config: ServeConfig) -> None:
    """Add the look-up page and its JSON routes for ``table`` to ``app``."""
    page = static_file("customers.html")
    assets = {name: static_file(name) for name in ASSETS}

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(PAGE, status_code=307)

    @app.get(PAGE, include_in_schema=False)
    async def customers_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @app.get(PAGE + "/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise StarletteHTTPException(404, f"no asset {name!r}")
        return Response(assets[name], media_type=ASSETS[name], headers=PAGE_HEADERS)

    @app.get(PAGE + "/api/meta", tags=["customer page"], responses=META_RESPONSES)
    def meta() -> Response:
        """The score file's date, horizon and model, and the choices of the page's filters."""
        return json_response(table.meta(), headers=API_HEADERS)

    @app.get(PAGE + "/api/table", tags=["customer page"], responses=TABLE_RESPONSES)
    def customers_table(
            q: str = Query("", max_length=MAX_QUERY_CHARS, description="part of the customer id (any case)"),
            segment: str = Query("", max_length=MAX_QUERY_CHARS, description="value class (IV, III, II, I)"),
            action: str = Query("", max_length=MAX_QUERY_CHARS, description="recommended action (retention policy)"),
            risk: RiskChoice = Query("", description="needs-action, high or low"),
            sort: SortChoice = Query("value_at_risk"),
            page: int = Query(1, ge=1, le=10**9),
            page_size: Optional[int] = Query(None, ge=1, le=config.lookup_max_page_size)) -> Response:
        """One page of the customers matching the search and filters, sorted (value at risk: largest first)."""
        answer = table.query(q, segment, action, risk, sort, page, page_size or config.lookup_page_size)
        return json_response(answer, headers=API_HEADERS)

    @app.get(PAGE + "/api/customer", tags=["customer page"], responses=CUSTOMER_RESPONSES)
    def customer(id: str = Query(..., min_length=1, max_length=1000)) -> Response:  # noqa: A002 - the query name
        """Every score column of one customer and its purchases per day (null without ``--transactions``)."""
        answer = table.customer(id)
        if answer is None:
            raise StarletteHTTPException(404, "customer not in the scores file")
        return json_response(answer, headers=API_HEADERS)
