"""ASGI middleware of the HTTP API: request-body limits, internal errors, JSON access logs.

All are plain ASGI middleware (no per-request task), so they add microseconds.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Logger of the access log: one JSON object per request on one line.
ACCESS_LOGGER = "custscore.access"


async def _send_json(send: Send, status: int, payload: dict[str, Any], close: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _within(awaitable: Awaitable[Message], seconds: float) -> Message:
    """``await awaitable``, raising asyncio.TimeoutError after ``seconds``."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class BodyLimitMiddleware:
    """Read the whole request body before the app sees it, within a size and a pause limit.

    413 to a body over ``max_bytes`` (declared or streamed); 408 (and the connection is
    closed) when the client sends nothing for ``timeout_s`` seconds between two chunks,
    like nginx's ``client_body_timeout``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = {"error": f"request body larger than {self.max_bytes} bytes; split the customers over "
                              "several requests"}
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, too_large)
            return
        # Read the whole body here (it is small by construction) and replay it to the app.
        chunks, received = [], 0
        while True:
            try:
                message = await _within(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                await _send_json(send, 408, {"error": f"request body not received: nothing came for "
                                                      f"{self.timeout_s:g} s"}, close=True)
                return
            if message["type"] != "http.request":  # client disconnected
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class InternalErrorMiddleware:
    """Answer 500 ``{"error": ...}`` to an exception the app did not handle, and report it once.

    ``on_error(scope, exc)`` logs it. The exception goes no further: Starlette's own
    handler of last resort re-raises to the server, and uvicorn then prints a multi-line
    traceback besides the application's log line.
    """

    def __init__(self, app: ASGIApp, on_error: Callable[[Scope, BaseException], None]) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the handler of last resort
            self.on_error(scope, exc)
            if not started:
                await _send_json(send, 500, {"error": "internal server error (logged on the server)"})


class AccessLogMiddleware:
    """Log one JSON line per HTTP request: method, path, status, latency in ms, bytes out."""

    def __init__(self, app: ASGIApp, logger_name: str = ACCESS_LOGGER) -> None:
        self.app = app
        self.logger = logging.getLogger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        sent = 0

        async def logging_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            if self.logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                self.logger.info(json.dumps({
                    "event": "access",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "client": f"{client[0]}:{client[1]}" if client else None,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
                    "bytes_out": sent,
                }))
