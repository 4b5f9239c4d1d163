"""uvicorn's HTTP protocol (httptools parser) with the limits a server facing hostile clients needs.

uvicorn bounds neither the time a client takes to send a request's head (request line
and headers) nor its size: a connection that sends nothing, or half a head, stays open
forever, and a 100 MB header is read into memory on the event loop. This subclass of
uvicorn's :class:`HttpToolsProtocol` adds, per connection:

- a head deadline: the head must be complete ``header_timeout_s`` seconds after the
  connection opened (first request) or after its first byte arrived (later requests on
  a keep-alive connection), else the connection is closed;
- a head size limit: more than ``max_header_bytes`` of request line and headers gets
  ``431 Request Header Fields Too Large`` and the connection is closed, before the rest
  is read;
- a connection limit: connections beyond ``max_connections`` are closed at once.

Body pauses are bounded by :class:`custscore.serving.middleware.BodyLimitMiddleware`;
idle keep-alive connections by uvicorn's own ``timeout_keep_alive``. The protocol is
pinned to httptools (uvicorn's h11 protocol answers 400, not 431, above its
``h11_max_incomplete_event_size``, and has no head deadline either).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from custscore.config import ServeConfig

#: Bytes a header line adds besides its name and value (``": "`` and ``"\r\n"``).
_HEADER_LINE_OVERHEAD = 4


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a head over the limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline, a head size limit and a connection limit.

    The limits are class attributes, set by :func:`guarded_protocol` from a ServeConfig.
    """

    header_timeout_s: float = ServeConfig.header_timeout_s
    max_header_bytes: int = ServeConfig.max_header_bytes
    max_connections: int = ServeConfig.max_connections

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: Optional[asyncio.TimerHandle] = None
        self._in_head = False
        self._head_raw = 0  # bytes received while a head is incomplete (bounds the parser's buffer)
        self._head_size = 0  # request line and header bytes of the current head
        self._head_rejected = False

    # connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._head_rejected:
                self._send_431()
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        if self._in_head and self._head_raw > self.max_header_bytes:
            self._send_431()

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_raw, self._head_size = True, 0, 0
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + _HEADER_LINE_OVERHEAD

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        if self._head_size > self.max_header_bytes:
            self._head_rejected = True
            raise _HeadTooLarge()
        super().on_headers_complete()

    # limits

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _send_431(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        body = json.dumps({"error": f"request headers larger than {self.max_header_bytes} bytes"}).encode()
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                 b"connection: close\r\n", b"\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def guarded_protocol(config: ServeConfig) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting with the limits of ``config``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {
        "header_timeout_s": float(config.header_timeout_s),
        "max_header_bytes": config.max_header_bytes,
        "max_connections": config.max_connections,
    })
