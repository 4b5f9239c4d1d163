"""Load test of ``custscore serve`` on this machine (loopback only, bounded request count).

Starts ``custscore serve`` on 127.0.0.1 with a free port (or uses ``--url`` of a server
already on loopback), then:

1. sends ``--requests`` single-customer ``POST /score`` requests (CDNOW customers in
   turn) over ``--concurrency`` keep-alive connections driven by one asyncio loop, checks every
   answer (status 200, one score row for the customer asked) and prints errors, p50,
   p90, p99 and max latency in ms, the throughput and (for a server it started, on
   Linux) the server's CPU time per request;
2. sends ``--batch-repeats`` requests of ``--batch-customers`` customers each and prints
   their latencies in ms.

Without ``--model`` it first trains and registers a model on the CDNOW sample in a
temporary folder (about 15 s). Example:

    python benchmarks/http_load.py --requests 10000 --concurrency 8 --batch-customers 1000
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_demo_model(folder: Path) -> tuple[str, str]:
    """Train and register ``custscore-bench`` on the CDNOW sample; return (model URI, tracking URI)."""
    from custscore.config import TrainConfig
    from custscore.features.cdnow import load_cdnow_sample
    from custscore.training.train import train_file

    log = folder / "cdnow.csv"
    load_cdnow_sample().to_csv(log, index=False)
    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    config = TrainConfig(cutoff="1997-09-30", horizon_days=90, time_unit="W", tracking_uri=tracking,
                         register_as="custscore-bench", experiment="bench")
    train_file(log, config)
    return "models:/custscore-bench@champion", tracking


def customer_bodies(as_of: str) -> list[tuple[str, bytes]]:
    """One ``POST /score`` body per CDNOW customer with a purchase on or before ``as_of``."""
    from custscore.features.cdnow import load_cdnow_sample

    log = load_cdnow_sample()
    log = log[log["date"].astype(str) <= as_of]
    bodies = []
    for customer_id, rows in log.groupby("customer_id", sort=True):
        tx = [{"date": str(d)[:10], "amount": float(a)} for d, a in zip(rows["date"], rows["amount"])]
        body = {"as_of": as_of, "customers": [{"customer_id": str(customer_id), "transactions": tx}]}
        bodies.append((str(customer_id), json.dumps(body).encode()))
    return bodies


def scorer_cpu_ms(model_uri: str, tracking_uri: str | None, as_of: str,
                  bodies: list[tuple[str, bytes]], sizes=(1, 8, 256, 1000)) -> dict[str, dict[int, float]]:
    """CPU ms of one in-process scoring call per customer count (no HTTP), for both paths.

    ``pandas``: ``CustomerScorer.score`` on the customers' normalised transactions;
    ``fast``: the HTTP fast path (validated request -> JSON rows,
    :mod:`custscore.serving.fast_path`). Process time, not wall time, so other load on
    the machine inflates it less.
    """
    from custscore.config import ScoreConfig, ServeConfig
    from custscore.serving.model_source import load_scorer_from_uri
    from custscore.serving.fast_path import score_requests
    from custscore.serving.http_schemas import score_request_model
    from custscore.serving.score_json import columns_rows_json
    from custscore.training.tracking import use_tracking

    use_tracking(tracking_uri)
    scorer, _ = load_scorer_from_uri(model_uri)
    request_model = score_request_model(ServeConfig())
    config = ScoreConfig(as_of=as_of)
    out: dict[str, dict[int, float]] = {"pandas": {}, "fast": {}}
    for k in sizes:
        request = request_model.model_validate_json(batch_body(bodies, k, as_of))
        tx = request.transactions_frame()
        calls = {"pandas": lambda: scorer.score(tx, as_of=as_of),
                 "fast": lambda: columns_rows_json(*score_requests(scorer, [request], config))}
        for path, call in calls.items():
            call()
            start = time.process_time()
            for _ in range(10):
                call()
            out[path][k] = (time.process_time() - start) / 10 * 1000.0
    return out


def batch_body(bodies: list[tuple[str, bytes]], n_customers: int, as_of: str) -> bytes:
    customers = [json.loads(b)["customers"][0] for _, b in bodies[:n_customers]]
    return json.dumps({"as_of": as_of, "customers": customers}).encode()


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def _request_bytes(host: str, port: int, body: bytes) -> bytes:
    """One keep-alive ``POST /score`` request, encoded once before the run."""
    return (f"POST /score HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length (what uvicorn sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


def run_load(host: str, port: int, bodies: list[tuple[str, bytes]], n_requests: int,
             concurrency: int, timeout_s: float) -> dict:
    """``n_requests`` single-customer requests over ``concurrency`` keep-alive connections; latencies in ms.

    One asyncio event loop drives all connections with pre-encoded requests, so the
    client needs a fraction of the server's CPU per request (printed as ``client_cpu_ms``;
    a thread per connection with ``http.client`` spent about as much CPU as the server
    and, sharing the same cores, inflated the latencies it measured). Answers are checked
    after the run, outside the timed path.
    """
    import asyncio

    requests = [(customer_id, _request_bytes(host, port, body)) for customer_id, body in bodies]
    latencies: list[float] = []
    answers: list[tuple[int, str, int, bytes]] = []
    errors: list[str] = []
    counter = iter(range(n_requests))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                customer_id, request = requests[i % len(requests)]
                start = time.perf_counter()
                try:
                    writer.write(request)
                    status, data = await asyncio.wait_for(_read_response(reader), timeout_s)
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
                    errors.append(f"request {i}: {type(exc).__name__}: {exc}")
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append((time.perf_counter() - start) * 1000.0)
                answers.append((i, customer_id, status, data))
        finally:
            writer.close()

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        return time.perf_counter() - start

    cpu_start = time.process_time()
    elapsed = asyncio.run(run())
    client_cpu_ms = (time.process_time() - cpu_start) / n_requests * 1000.0
    for i, customer_id, status, data in answers:
        if status != 200:
            errors.append(f"request {i}: HTTP {status}: {data[:200]!r}")
            continue
        scores = json.loads(data)["scores"]
        if len(scores) != 1 or scores[0]["customer_id"] != customer_id:
            errors.append(f"request {i}: wrong answer for {customer_id}")
    qs = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": n_requests, "errors": len(errors), "first_errors": errors[:5],
            "p50_ms": qs[49], "p90_ms": qs[89], "p99_ms": qs[98], "max_ms": max(latencies),
            "throughput_rps": n_requests / elapsed, "seconds": elapsed, "client_cpu_ms": client_cpu_ms}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(model: str, tracking: str | None, host: str, port: int, log_path: Path):
    """``custscore serve`` in a subprocess on ``host:port`` (loopback); its output goes to ``log_path``."""
    if host not in LOOPBACK:
        raise SystemExit("the server is started on loopback only")
    cmd = [sys.executable, "-m", "custscore.cli", "serve", "--model", model, "--host", host,
           "--port", str(port)] + (["--tracking-uri", tracking] if tracking else [])
    server_log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT,
                            env={**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"})
    return proc, server_log


def stop_server(proc: subprocess.Popen, server_log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    server_log.close()


def wait_ready(host: str, port: int, timeout_s: float, proc: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout_s} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model URI (default: train one on CDNOW in a temporary folder)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI of --model")
    parser.add_argument("--url", help="an already running server on loopback, e.g. http://127.0.0.1:8000")
    parser.add_argument("--as-of", default="1997-09-30")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-customers", type=int, default=1_000)
    parser.add_argument("--batch-repeats", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    args = parser.parse_args(argv)
    if not 0 < args.requests <= 1_000_000 or not 0 < args.concurrency <= 64:
        parser.error("--requests must be in 1..1,000,000 and --concurrency in 1..64")

    proc = None
    with tempfile.TemporaryDirectory(prefix="custscore-bench-") as tmp:
        if args.url:
            parts = urlsplit(args.url)
            if parts.hostname not in LOOPBACK:
                parser.error("--url must be on loopback (127.0.0.1, localhost or ::1)")
            host, port = parts.hostname, parts.port or 80
        else:
            model, tracking = (args.model, args.tracking_uri) if args.model else train_demo_model(Path(tmp))
            cpu = scorer_cpu_ms(model, tracking, args.as_of, customer_bodies(args.as_of))
            for path, per_size in cpu.items():
                print(f"scorer CPU per call, in process, {path} path: "
                      + ", ".join(f"{k} customers {ms:.1f} ms" for k, ms in per_size.items()))
            host, port = "127.0.0.1", free_port()
            proc, server_log = start_server(model, tracking, host, port, Path(tmp) / "server.log")
        try:
            wait_ready(host, port, 120, proc)
            bodies = customer_bodies(args.as_of)
            print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
            warm = run_load(host, port, bodies, min(200, args.requests), args.concurrency, args.timeout)
            if warm["errors"]:
                print("warm-up failed:", *warm["first_errors"], sep="\n  ")
                return 1
            cpu_before = process_cpu_seconds(proc.pid) if proc is not None else None
            result = run_load(host, port, bodies, args.requests, args.concurrency, args.timeout)
            cpu_after = process_cpu_seconds(proc.pid) if proc is not None else None
            print(f"single-customer: {result['requests']} requests, concurrency {args.concurrency}, "
                  f"errors {result['errors']}, p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
                  f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, "
                  f"{result['throughput_rps']:.0f} requests/s")
            print(f"load client CPU per request: {result['client_cpu_ms']:.3f} ms (this process, the asyncio loop)")
            if cpu_before is not None and cpu_after is not None:
                per_request_ms = (cpu_after - cpu_before) / args.requests * 1000
                print(f"server CPU per single-customer request: {per_request_ms:.2f} ms (user + system time of "
                      f"the server process; other load on the machine inflates it less than latency)")
            for line in result["first_errors"]:
                print("  ", line)
            body = batch_body(bodies, args.batch_customers, args.as_of)
            conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
            times, batch_errors = [], 0
            for _ in range(args.batch_repeats):
                start = time.perf_counter()
                status, data = post(conn, body)
                times.append((time.perf_counter() - start) * 1000.0)
                if status != 200 or len(json.loads(data)["scores"]) != args.batch_customers:
                    batch_errors += 1
            conn.close()
            print(f"batch of {args.batch_customers} customers ({len(body):,} bytes): {args.batch_repeats} requests, "
                  f"errors {batch_errors}, median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, "
                  f"max {max(times):.1f} ms")
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            return 1 if result["errors"] or batch_errors else 0
        finally:
            if proc is not None:
                stop_server(proc, server_log)


if __name__ == "__main__":
    sys.exit(main())
