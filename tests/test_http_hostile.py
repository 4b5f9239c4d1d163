"""The HTTP server against hostile clients: stalled and slow connections, huge headers, headers.

Each test starts a real uvicorn server (``custscore.serving.http.uvicorn_config``, the
settings of ``custscore serve``) in a thread on 127.0.0.1 with short timeouts, and talks
to it over raw sockets, so what is checked is what a client on the wire sees.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Iterator

import pytest

from custscore.config import ServeConfig
from custscore.serving.http import create_app, uvicorn_config
from custscore.serving.model_holder import LoadedModel, load_model
from custscore.training.tracking import use_tracking

URI = "models:/custscore-test@champion"
#: Short limits so the tests take seconds; the defaults are the ServeConfig fields.
FAST = dict(header_timeout_s=1.0, body_timeout_s=1.0, keep_alive_timeout_s=1.0)


@pytest.fixture(scope="module")
def model(trained) -> LoadedModel:
    use_tracking(trained["config"].tracking_uri)
    return load_model(URI)


@contextlib.contextmanager
def serving(model: LoadedModel, **settings) -> Iterator[tuple[str, int]]:
    """A uvicorn server with ``custscore serve``'s settings in a thread; yields its address."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServeConfig(port=port, **{**FAST, **settings})
    server = uvicorn.Server(uvicorn_config(create_app(URI, config, model=model), config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _get(address: tuple[str, int], path: str, extra_headers: bytes = b"") -> tuple[int, dict, bytes]:
    """Status, headers and body of ``GET path`` on a new connection (closed after it)."""
    with _connect(address) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     + extra_headers + b"\r\n")
        raw = _read_response(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True when the server closes ``sock`` (after any answer) within ``within_s`` seconds."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
    except socket.timeout:
        return False
    except ConnectionResetError:
        pass
    return True


def _health_seconds(address: tuple[str, int]) -> float:
    start = time.perf_counter()
    status, _, _ = _get(address, "/health")
    assert status == 200
    return time.perf_counter() - start


def _health_limit(address: tuple[str, int]) -> float:
    """Seconds /health may take under attack: 0.5 s, or 4x its idle time on a loaded machine.

    The idle time is the fastest of three requests before the attack, measured in the same run,
    so a busy machine (a 1.3 s answer was seen at load 7 on 2 cores) does not fail a server that
    is as responsive as it can be. On a quiet machine (idle answers of a few ms) the limit stays
    0.5 s, below the 1 s timeouts after which a server blocked by the stalls would answer."""
    return max(0.5, 4 * min(_health_seconds(address) for _ in range(3)))


def test_300_stalled_connections_are_shed_within_the_timeouts(model):
    """Nothing sent, half a head, or a head and half its body: all closed within about a second."""
    body = json.dumps({"as_of": "1997-09-30", "customers": []}).encode()
    stalls = [b"",
              b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Ty",
              b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]]
    with serving(model) as address:
        limit = _health_limit(address)
        sockets = []
        for i in range(300):
            sock = _connect(address)
            if stalls[i % 3]:
                sock.sendall(stalls[i % 3])
            sockets.append(sock)
        assert _health_seconds(address) < limit  # the server keeps answering meanwhile
        start = time.monotonic()
        shed = [_closed_by_server(sock, within_s=max(0.1, start + 3.0 - time.monotonic())) for sock in sockets]
        assert sum(shed) == 300, [i % 3 for i, s in enumerate(shed) if not s][:10]
        for sock in sockets:
            sock.close()
        assert _health_seconds(address) < limit


def test_a_pausing_body_gets_408(model):
    with serving(model) as address, _connect(address) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"as_of\"")
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"nothing came for 1 s" in answer


def test_idle_keep_alive_connection_is_closed(model):
    with serving(model) as address, _connect(address) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        start = time.monotonic()
        assert _closed_by_server(sock, within_s=5)
        assert 0.8 < time.monotonic() - start < 3


def test_connections_over_the_limit_are_closed_at_once(model):
    with serving(model, max_connections=5) as address:
        held = [_connect(address) for _ in range(5)]
        time.sleep(0.2)
        extra = _connect(address)
        assert _closed_by_server(extra, within_s=0.5)
        extra.close()
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert _health_seconds(address) < 0.5


def test_headers_over_the_limit_get_431_and_health_stays_fast(model):
    with serving(model) as address:
        status, headers, body = _get(address, "/health", b"X-Big: " + b"a" * 17_000 + b"\r\n")
        assert status == 431 and json.loads(body) == {"error": "request headers larger than 16384 bytes"}
        assert headers["x-content-type-options"] == "nosniff"
        status, _, _ = _get(address, "/health", b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 90) for i in range(150)))
        assert status == 200  # about 14 KB in 150 headers: within the limit
        # a 100 MB header, streamed: answered after the first ~16 KiB, /health meanwhile fast
        with _connect(address) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            sent, answered = 0, b""
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while sent < 100 * 2**20:
                    sock.sendall(b"c" * 65536)
                    sent += 65536
            answered = _read_response(sock)
        assert answered.startswith(b"HTTP/1.1 431 "), answered[:100]
        assert sent < 4 * 2**20, sent
        assert _health_seconds(address) < 0.5


def test_responses_carry_nosniff_and_no_server_header(model):
    with serving(model) as address:
        for path in ("/health", "/version", "/no-such-route"):
            status, headers, _ = _get(address, path)
            assert "server" not in headers, (path, headers)
            assert headers["x-content-type-options"] == "nosniff", (path, headers)
        with _connect(address) as sock:  # uvicorn's own 400 too
            sock.sendall(b"NOT HTTP\r\n\r\n")
            answer = _read_response(sock).lower()
        assert answer.startswith(b"http/1.1 400 ") and b"x-content-type-options: nosniff" in answer
        assert b"server: uvicorn" not in answer


class _Broken:
    def __getattr__(self, name):
        raise RuntimeError("secret internal detail")


def test_a_500_writes_one_json_log_line_and_no_server_traceback(model):
    import dataclasses
    import logging

    broken = LoadedModel(scorer=dataclasses.replace(model.scorer, purchase_model=_Broken()), label="broken/1",
                         model_uri=URI, loaded_at="now")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    body = json.dumps({"as_of": "1997-09-30", "customers": [{"customer_id": "c1", "transactions": [
        {"date": "1997-01-02", "amount": 10.0}]}]}).encode()
    with serving(broken) as address:
        loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "custscore.http")]
        for logger in loggers:
            logger.addHandler(handler)
        try:
            with _connect(address) as sock:
                sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                answer = _read_response(sock)
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
    assert answer.startswith(b"HTTP/1.1 500 ") and b"secret" not in answer
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["custscore.http"], [r.getMessage()[:80] for r in errors]
    assert errors[0].exc_info is None and "\n" not in errors[0].getMessage()
