"""HTTP API: scores equal batch scores, validation answers 4xx, reload keeps serving.

Truth for the scores is batch scoring of the whole CDNOW log (all 2,357 customers in one
call) with the same registered model; the HTTP request carries only the customers asked.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from custscore.config import ScoreConfig, ServeConfig
from custscore.errors import CustscoreError
from custscore.features.io import read_transactions
from custscore.serving.batch import score_transactions
from custscore.serving.http import create_app
from custscore.serving.http_schemas import score_request_model
from custscore.serving.microbatch import MicroBatcher
from custscore.serving.model_holder import LoadedModel, load_model
from custscore.training.tracking import use_tracking

AS_OF = "1997-09-30"
URI = "models:/custscore-test@champion"
TOKEN = "test-admin-token-0123456789"
ADMIN = ServeConfig(admin_token=TOKEN)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def model(trained) -> LoadedModel:
    use_tracking(trained["config"].tracking_uri)
    return load_model(URI)


@pytest.fixture(scope="module")
def log(cdnow_sample_csv) -> pd.DataFrame:
    return read_transactions(cdnow_sample_csv)


@pytest.fixture(scope="module")
def batch_scores(model, log) -> pd.DataFrame:
    scores = score_transactions(model.scorer, log, ScoreConfig(as_of=AS_OF), model.label)
    return scores.set_index("customer_id")


@pytest.fixture()
def client(model):
    with TestClient(create_app(URI, ServeConfig(), model=model), raise_server_exceptions=False) as c:
        yield c


def _customer(log: pd.DataFrame, customer_id: str, as_of: str = AS_OF) -> dict:
    rows = log[(log["customer_id"] == customer_id) & (log["ts"] <= pd.Timestamp(as_of))]
    return {"customer_id": customer_id,
            "transactions": [{"date": ts.strftime("%Y-%m-%d"), "amount": float(a)}
                             for ts, a in zip(rows["ts"], rows["amount"])]}


def _pick_customers(log: pd.DataFrame) -> list[str]:
    """One-purchase, two-purchase and the most active customer before AS_OF, plus 00004."""
    counts = log[log["ts"] <= pd.Timestamp(AS_OF)].groupby("customer_id").size()
    return sorted({counts[counts == 1].index[0], counts[counts == 2].index[0], counts.idxmax(), "00004"})


def _assert_rows_equal(rows: list[dict], expected: pd.DataFrame) -> None:
    assert [r["customer_id"] for r in rows] == list(expected.index)
    for row in rows:
        truth = expected.loc[row["customer_id"]]
        assert set(row) == {"customer_id", *expected.columns}
        for column, want in truth.items():
            got = row[column]
            if isinstance(want, (float, np.floating)) and math.isnan(want):
                assert got is None, column
            elif isinstance(want, (int, float, np.integer, np.floating)) and not isinstance(want, (bool, np.bool_)):
                assert abs(got - float(want)) <= 1e-9 * max(1.0, abs(float(want))), (column, got, want)
            else:
                assert got == (want.item() if hasattr(want, "item") else want), (column, got, want)


def test_one_request_equals_batch_scores(client, log, batch_scores):
    ids = _pick_customers(log)
    for customer_id in ids:
        response = client.post("/score", json={"as_of": AS_OF, "customers": [_customer(log, customer_id)]})
        assert response.status_code == 200, response.text
        _assert_rows_equal(response.json()["scores"], batch_scores.loc[[customer_id]])
    many = client.post("/score", json={"as_of": AS_OF, "customers": [_customer(log, c) for c in reversed(ids)]})
    assert many.status_code == 200
    assert many.json()["n_customers"] == len(ids)
    assert any(row["reason_1"] for row in many.json()["scores"])  # the reasons travel in the JSON
    _assert_rows_equal(many.json()["scores"], batch_scores.loc[ids])


def test_pandas_path_for_large_requests_gives_the_same_rows(model, log, batch_scores):
    """Over the fast-path limits (here 2 customers) a request takes the pandas path: same rows."""
    ids = _pick_customers(log)
    config = ServeConfig(fast_path_max_customers=2)
    with TestClient(create_app(URI, config, model=model)) as c:
        small = c.post("/score", json={"as_of": AS_OF, "customers": [_customer(log, i) for i in ids[:2]]})
        large = c.post("/score", json={"as_of": AS_OF, "customers": [_customer(log, i) for i in ids]})
    _assert_rows_equal(small.json()["scores"], batch_scores.loc[ids[:2]])
    _assert_rows_equal(large.json()["scores"], batch_scores.loc[ids])


def test_horizon_days_and_datetimes_with_offsets(client, log, model):
    customer = _customer(log, "00004")
    for tx in customer["transactions"]:  # 23:30 at UTC-2 is 01:30 UTC the next day
        tx["date"] = (pd.Timestamp(tx["date"]) - pd.Timedelta(days=1)).strftime("%Y-%m-%dT23:30:00-02:00")
    response = client.post("/score", json={"as_of": AS_OF, "horizon_days": 30, "customers": [customer]})
    assert response.status_code == 200, response.text
    truth = score_transactions(model.scorer, log[log["customer_id"] == "00004"],
                               ScoreConfig(as_of=AS_OF, horizon_days=30), model.label).set_index("customer_id")
    _assert_rows_equal(response.json()["scores"], truth)
    assert response.json()["scores"][0]["horizon_days"] == 30


@pytest.mark.parametrize("fast_max_customers", [0, 100], ids=["pandas-path", "fast-path"])
def test_concurrent_requests_are_scored_as_if_alone(model, log, batch_scores, fast_max_customers):
    """Requests combined in one scorer call, even with the same customer id, get their own rows."""
    ids = _pick_customers(log)
    request_model = score_request_model(ServeConfig())
    requests = [request_model.model_validate({"as_of": AS_OF,
                                              "customers": [{**_customer(log, c), "customer_id": "same-id"}]})
                for c in ids]
    config = ScoreConfig(as_of=AS_OF)

    async def run() -> list[str]:
        batcher = MicroBatcher(max_customers=100, fast_max_customers=fast_max_customers, fast_max_transactions=10_000)
        try:
            return await asyncio.gather(*[batcher.score(model, request, config) for request in requests])
        finally:
            batcher.close()

    for customer_id, rows in zip(ids, asyncio.run(run())):
        expected = batch_scores.loc[[customer_id]].rename(index={customer_id: "same-id"})
        _assert_rows_equal(json.loads(rows), expected)


def test_microbatch_wait_ends_when_the_requests_arrive(model, log):
    """With a long wait, a lone request and a client sending one request after another never wait it out."""
    request_model = score_request_model(ServeConfig())
    request = request_model.model_validate({"as_of": AS_OF, "customers": [_customer(log, "00004")]})
    config = ScoreConfig(as_of=AS_OF)

    async def run() -> list[float]:
        batcher = MicroBatcher(max_customers=100, fast_max_customers=100, fast_max_transactions=10_000,
                               max_wait_ms=1000)
        seconds = []
        try:
            for _ in range(3):
                start = time.perf_counter()
                await batcher.score(model, request, config)
                seconds.append(time.perf_counter() - start)
        finally:
            batcher.close()
        return seconds

    assert max(asyncio.run(run())) < 0.5


@pytest.mark.parametrize("field, value", [("microbatch_wait_ms", -1), ("microbatch_wait_ms", 5000),
                                          ("fast_path_max_customers", -1), ("fast_path_max_transactions", 2.5)])
def test_serve_config_refuses_bad_batching_settings(field, value):
    with pytest.raises(CustscoreError, match=field):
        ServeConfig(**{field: value})


def test_health_and_version(client, trained, model):
    assert client.get("/health").json() == {"status": "ready", "model_version": model.label}
    info = client.get("/version").json()
    logged = trained["logged"]
    assert info["model_name"] == "custscore-test"
    assert info["model_version"] == logged.registered_version
    assert info["run_id"] == logged.run_id
    assert info["training_cutoff"] == "1997-09-30"
    assert info["time_unit"] == "W" and info["horizon_days"] == 90
    assert info["fast_path"] == "on"
    assert info["fitted_params"]["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)  # Fader, Hardie & Lee 2005
    assert info["fitted_params"]["gamma_gamma"]["p"] == pytest.approx(6.25, rel=0.03)


GOOD_TX = [{"date": "1997-01-02", "amount": 10.0}, {"date": "1997-03-04", "amount": 5.5}]


def _body(**changes) -> dict:
    body = {"as_of": AS_OF, "customers": [{"customer_id": "c1", "transactions": GOOD_TX}]}
    body.update(changes)
    return body


def _tx(**changes) -> dict:
    return _body(customers=[{"customer_id": "c1", "transactions": [{**GOOD_TX[0], **changes}]}])


@pytest.mark.parametrize("body, needles", [
    ({"customers": _body()["customers"]}, ["as_of", "required"]),
    (_body(customers=[{"customer_id": "c1"}]), ["customers[0].transactions", "required"]),
    (_body(customers=[{"customer_id": "  ", "transactions": GOOD_TX}]), ["customer_id", "at least 1"]),
    (_body(customers=[]), ["customers", "at least 1"]),
    (_tx(date="1997-02-30"), ["customers[0].transactions[0].date"]),
    (_tx(date="02/01/1997"), ["customers[0].transactions[0].date"]),
    (_tx(date=852163200), ["customers[0].transactions[0].date", "iso 8601"]),
    (_tx(amount=-5.0), ["customers[0].transactions[0].amount", "greater than or equal to 0"]),
    (_tx(amount="12.5"), ["customers[0].transactions[0].amount", "valid number"]),
    (_tx(amount=True), ["customers[0].transactions[0].amount", "valid number"]),
    (_tx(amount=None), ["customers[0].transactions[0].amount", "valid number"]),
    (_tx(date="1997-10-01"), ["customers[0].transactions[0]", "after as_of 1997-09-30"]),
    (_body(as_of="not a date"), ["as_of"]),
    (_body(horizon_days=0), ["horizon_days", "greater than 0"]),
    (_body(horizon_days=10 ** 9), ["horizon_days", "less than or equal to 3660"]),
    (_body(customers=[{"customer_id": "c1", "transactions": GOOD_TX}] * 2), ["duplicate customer_id 'c1'"]),
    (_body(horizon_day=30), ["horizon_day", "extra"]),
], ids=["no-as_of", "no-transactions", "blank-id", "no-customers", "impossible-date", "non-iso-date",
        "number-date", "negative-amount", "text-amount", "bool-amount", "null-amount", "date-after-as_of",
        "bad-as_of", "zero-horizon", "huge-horizon", "duplicate-customer", "unknown-field"])
def test_invalid_requests_get_422_naming_the_field(client, body, needles):
    response = client.post("/score", json=body)
    assert response.status_code == 422, response.text
    message = response.json()["error"].lower()
    assert "\n" not in message
    for needle in needles:
        assert needle.lower() in message, (needle, message)


def test_malformed_json_is_400(client):
    for raw in (b'{"as_of": "1997-09-30", "customers": [', b"not json", b"\xff\xfe"):
        response = client.post("/score", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"].startswith("malformed JSON")


def test_request_limits(model):
    config = ServeConfig(max_customers=2, max_transactions_per_customer=3, max_transactions=4, max_body_bytes=600)
    with TestClient(create_app(URI, config, model=model)) as c:
        three = [{"customer_id": f"c{i}", "transactions": GOOD_TX[:1]} for i in range(3)]
        assert "at most 2" in c.post("/score", json=_body(customers=three)).json()["error"]
        long = [{"customer_id": "c1", "transactions": [GOOD_TX[0]] * 4}]
        assert "at most 3" in c.post("/score", json=_body(customers=long)).json()["error"]
        total = [{"customer_id": f"c{i}", "transactions": GOOD_TX + GOOD_TX[:1]} for i in range(2)]
        response = c.post("/score", json=_body(customers=total))
        assert response.status_code == 422 and "too many transactions in one request: 6 > 4" in response.text
        big = json.dumps(_body(customers=[{"customer_id": "x" * 700, "transactions": GOOD_TX}])).encode()
        assert c.post("/score", content=big, headers={"content-type": "application/json"}).status_code == 413
        chunked = c.post("/score", content=iter([big[:300], big[300:]]), headers={"content-type": "application/json"})
        assert chunked.status_code == 413 and "larger than 600 bytes" in chunked.json()["error"]
        assert c.post("/score", json=_body()).status_code == 200


class _BrokenModel:
    """A fitted model whose every method fails with a detail that must not reach the client."""

    def __getattr__(self, name):
        raise RuntimeError("secret internal detail")


@pytest.mark.parametrize("fast_max_customers", [0, 100], ids=["pandas-path", "fast-path"])
def test_internal_error_is_500_without_trace(model, caplog, fast_max_customers):
    broken = LoadedModel(scorer=dataclasses.replace(model.scorer, purchase_model=_BrokenModel()), label="broken/1",
                         model_uri=URI, loaded_at="now")
    config = ServeConfig(fast_path_max_customers=fast_max_customers)
    with TestClient(create_app(URI, config, model=broken), raise_server_exceptions=False) as c:
        with caplog.at_level(logging.ERROR, logger="custscore.http"):
            response = c.post("/score", json=_body())
    assert response.status_code == 500
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.json() == {"error": "internal server error (logged on the server)"}
    logged = [r.getMessage() for r in caplog.records if r.name == "custscore.http"]
    assert len(logged) == 1 and "\n" not in logged[0] and "secret internal detail" in logged[0]
    assert json.loads(logged[0])["event"] == "internal_error"
    # the app handles it: nothing reaches the server (uvicorn would print a second, multi-line traceback)
    with TestClient(create_app(URI, config, model=broken), raise_server_exceptions=True) as c:
        assert c.post("/score", json=_body()).status_code == 500


def test_access_log_is_json_with_latency(client, caplog):
    with caplog.at_level(logging.INFO, logger="custscore.access"):
        client.post("/score", json=_body())
        client.post("/score", json=_body(customers=[]))
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "custscore.access"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [("POST", "/score", 200), ("POST", "/score", 422)]
    assert all(e["latency_ms"] > 0 and e["bytes_out"] > 0 for e in entries)


def test_not_ready_until_loaded_and_reload_keeps_old_model_serving(model):
    """/health is 503 while loading; during a reload the old model answers; then the new one."""
    gates = [threading.Event(), threading.Event()]
    labels = iter(["first/1", "second/2"])

    def slow_loader(uri: str) -> LoadedModel:
        label = next(labels)
        gates[0 if label == "first/1" else 1].wait(timeout=30)
        return LoadedModel(scorer=model.scorer, label=label, model_uri=uri, loaded_at="now")

    with TestClient(create_app(URI, ADMIN, loader=slow_loader)) as c:
        assert c.get("/health").status_code == 503
        assert c.post("/score", json=_body()).json() == {"error": "model is loading"}
        gates[0].set()
        _wait_for(lambda: c.get("/health").status_code == 200)
        assert c.post("/score", json=_body()).json()["model_version"] == "first/1"
        reload_answer = {}
        thread = threading.Thread(target=lambda: reload_answer.update(c.post("/admin/reload", headers=AUTH).json()))
        thread.start()
        for _ in range(5):  # the reload is blocked: the old model keeps answering
            response = c.post("/score", json=_body())
            assert response.status_code == 200 and response.json()["model_version"] == "first/1"
        gates[1].set()
        thread.join(timeout=30)
        assert reload_answer == {"status": "reloaded", "previous": "first/1", "current": "second/2",
                                 "loaded_at": "now"}
        assert c.post("/score", json=_body()).json()["scores"][0]["model_version"] == "second/2"


SECRET_PATH = "/srv/private/mlruns/1/0123abcd/artifacts/model/scorer.json"


def test_failed_reload_keeps_serving_and_health_says_degraded(model, caplog):
    outcomes = iter([CustscoreError(f"cannot load model {URI!r}: [Errno 2] No such file: '{SECRET_PATH}'"), model])

    def flaky(uri: str) -> LoadedModel:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with TestClient(create_app(URI, ADMIN, model=model, loader=flaky)) as c:
        assert c.get("/health").json() == {"status": "ready", "model_version": model.label}
        with caplog.at_level(logging.ERROR, logger="custscore.http"):
            response = c.post("/admin/reload", headers=AUTH)
        assert response.status_code == 503
        assert response.json()["error"] == (f"reload failed: cannot load model {URI!r}: [Errno 2] No such file: "
                                            f"'<path>'; still serving {model.label}")
        assert any(SECRET_PATH in r.getMessage() for r in caplog.records)  # the log keeps the path
        assert c.post("/score", json=_body()).status_code == 200
        health = c.get("/health")
        assert health.status_code == 200 and SECRET_PATH not in health.text
        assert health.json() == {"status": "degraded", "model_version": model.label,
                                 "reason": f"reload failed: cannot load model {URI!r}: [Errno 2] No such file: "
                                           "'<path>'"}
        assert c.post("/admin/reload", headers=AUTH).status_code == 200
        assert c.get("/health").json() == {"status": "ready", "model_version": model.label}


def test_503_bodies_show_no_absolute_paths():
    def failing(uri: str) -> LoadedModel:
        raise CustscoreError(f"cannot load model {uri!r}: store sqlite:////srv/private/mlflow.db: {SECRET_PATH}")

    with TestClient(create_app(URI, ServeConfig(), loader=failing)) as c:
        _wait_for(lambda: "failed" in c.get("/health").text)
        for response in (c.get("/health"), c.get("/version"), c.post("/score", json=_body())):
            assert response.status_code == 503
            assert "/srv/private" not in response.text, response.text
            assert response.json() == {"error": f"model failed to load: cannot load model {URI!r}: store <path>: "
                                                "<path>"}


def test_failed_first_load_is_not_ready():
    def failing(uri: str) -> LoadedModel:
        raise CustscoreError(f"cannot load model {uri!r}: gone")

    with TestClient(create_app(URI, ServeConfig(), loader=failing)) as c:
        _wait_for(lambda: "failed" in c.get("/health").text)
        response = c.get("/health")
        assert response.status_code == 503
        assert response.json() == {"error": f"model failed to load: cannot load model {URI!r}: gone"}


def test_reload_from_the_registry(model):
    with TestClient(create_app(URI, ADMIN, model=model)) as c:
        response = c.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["current"] == model.label


def test_reload_route_is_absent_without_a_token(client):
    assert client.post("/admin/reload").status_code == 404
    assert client.post("/admin/reload", headers=AUTH).status_code == 404


def test_reload_needs_the_bearer_token(model):
    """A web page (any Origin, text/plain, no credentials) or a wrong token cannot reload."""
    loads = []

    def loader(uri: str) -> LoadedModel:
        loads.append(uri)
        return model

    with TestClient(create_app(URI, ADMIN, model=model, loader=loader)) as c:
        for headers in ({}, {"Origin": "https://evil.example", "Content-Type": "text/plain"},
                        {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"},
                        {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": "Basic " + TOKEN}):
            response = c.post("/admin/reload", headers=headers, content=b"x")
            assert response.status_code == 401, (headers, response.text)
            assert "Bearer" in response.json()["error"]
        assert loads == []
        assert c.post("/admin/reload", headers=AUTH).status_code == 200
    assert loads == [URI]


def test_admin_token_from_the_environment(monkeypatch):
    from custscore.cli import build_parser
    monkeypatch.setenv("CUSTSCORE_ADMIN_TOKEN", TOKEN)
    assert build_parser().parse_args(["serve", "--model", URI]).admin_token == TOKEN
    monkeypatch.delenv("CUSTSCORE_ADMIN_TOKEN")
    assert build_parser().parse_args(["serve", "--model", URI]).admin_token is None


@pytest.mark.parametrize("token", ["short", "has a space in the token", "tab\tinside-the-token-1234"])
def test_weak_admin_tokens_are_refused(token):
    with pytest.raises(CustscoreError, match="admin token"):
        ServeConfig(admin_token=token)
    assert TOKEN not in repr(ADMIN)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.org"])
def test_remote_host_needs_allow_remote(host):
    with pytest.raises(CustscoreError, match="--allow-remote"):
        ServeConfig(host=host)
    assert ServeConfig(host=host, allow_remote=True).host == host
    for local in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        assert ServeConfig(host=local).host == local


def test_serve_on_a_remote_host_without_the_flag_is_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "custscore.cli", "serve", "--model", URI, "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("custscore serve: error: host '0.0.0.0' is reachable from other machines")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_startup_line_says_what_is_exposed(model):
    from custscore.serving.http import exposure_summary
    closed = exposure_summary(create_app(URI, ServeConfig(), model=model), ServeConfig())
    assert closed.startswith("custscore serve: http://127.0.0.1:8000 (this machine only); routes: ")
    assert "POST /score" in closed and "GET /health" in closed and "POST /admin/reload" not in closed.split(";")[1]
    assert closed.endswith("POST /admin/reload disabled (no admin token; SIGHUP reloads)")
    remote = ServeConfig(host="0.0.0.0", allow_remote=True, admin_token=TOKEN)
    opened = exposure_summary(create_app(URI, remote, model=model), remote)
    assert "REACHABLE FROM OTHER MACHINES" in opened and "POST /admin/reload enabled" in opened
    assert TOKEN not in opened


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_real_uvicorn_process_equals_batch_and_reloads_on_sighup(trained, log, batch_scores, tmp_path):
    port = _free_port()
    server_log = tmp_path / "server.log"
    with open(server_log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "custscore.cli", "serve", "--model", URI, "--port", str(port),
                                 "--tracking-uri", trained["config"].tracking_uri], stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, server_log.read_text()
            try:
                return _http("GET", f"{base}/health")[0] == 200
            except OSError:
                return False

        _wait_for(ready, timeout_s=90)
        ids = _pick_customers(log)
        status, answer = _http("POST", f"{base}/score", {"as_of": AS_OF, "customers": [_customer(log, c) for c in ids]})
        assert status == 200
        _assert_rows_equal(answer["scores"], batch_scores.loc[ids])
        assert _http("POST", f"{base}/score", _tx(amount=-1))[0] == 422
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: server_log.read_text().count('"event": "model_loaded"') == 1)
        assert _http("POST", f"{base}/score", _body())[0] == 200
        access = [json.loads(line) for line in server_log.read_text().splitlines() if '"event": "access"' in line]
        assert {e["status"] for e in access} >= {200, 422} and all("latency_ms" in e for e in access)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = server_log.read_text()
    assert "Traceback" not in text
    exposed = [line for line in text.splitlines() if line.startswith("custscore serve: http://")]
    assert exposed == [f"custscore serve: http://127.0.0.1:{port} (this machine only); routes: " + exposed[0].split(
        "routes: ")[1]] and exposed[0].endswith("POST /admin/reload disabled (no admin token; SIGHUP reloads)")


def test_serve_with_a_bad_model_uri_is_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "custscore.cli", "serve", "--model", "models:/nope@champion",
                           "--port", str(_free_port()), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("custscore serve: error: cannot load model 'models:/nope@champion'")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_large_bodies_are_checked_in_another_process_with_the_same_answers(model, log, batch_scores):
    """Over ``large_body_min_bytes`` the worker process validates: same 400/422 messages, valid ones score."""
    small_config = ServeConfig()
    large_config = ServeConfig(large_body_min_bytes=100)
    negative = _tx(amount=-5.0)
    negative["customers"] += [{"customer_id": f"c{i}", "transactions": [{"date": "1997-01-02", "amount": -1.0}]}
                              for i in range(2, 40)]
    bad_bodies = [json.dumps(negative).encode(), json.dumps(_body())[:-3].encode(),
                  json.dumps(_body(horizon_days=0)).encode()]
    answers = {}
    for name, config in (("small", small_config), ("large", large_config)):
        with TestClient(create_app(URI, config, model=model)) as c:
            answers[name] = [(r.status_code, r.json()) for r in
                             (c.post("/score", content=raw, headers={"content-type": "application/json"})
                              for raw in bad_bodies)]
            if name == "large":
                assert c.app.state.body_checker._pool is not None  # the worker process answered
                ids = _pick_customers(log)
                good = c.post("/score", json={"as_of": AS_OF, "customers": [_customer(log, i) for i in ids]})
                assert good.status_code == 200
                _assert_rows_equal(good.json()["scores"], batch_scores.loc[ids])
    assert answers["small"] == answers["large"]
    assert [status for status, _ in answers["large"]] == [422, 400, 422]
    assert answers["large"][0][1]["error"].startswith(
        "invalid request: customers[0].transactions[0].amount: Input should be greater than or equal to 0")


def _both_paths(model, body: dict) -> list[tuple[int, dict]]:
    """Answers of the fast path (small request) and the pandas path (fast path off) to ``body``."""
    answers = []
    for fast_max_customers in (256, 0):
        with TestClient(create_app(URI, ServeConfig(fast_path_max_customers=fast_max_customers), model=model),
                        raise_server_exceptions=False) as c:
            response = c.post("/score", json=body)
            answers.append((response.status_code, response.json()))
    return answers


@pytest.mark.parametrize("transactions, needle", [
    ([{"date": "1997-01-02", "amount": 1e308}, {"date": "1997-01-02", "amount": 1e308}],
     "customers[0]: amounts sum to more than 1.798e+308; send them in a larger unit"),
    ([{"date": "1997-01-02", "amount": 1e308}, {"date": "1997-03-02", "amount": 1e308}],
     "customers[0]: amounts sum to more than 1.798e+308"),
], ids=["same-day", "two-days"])
def test_amounts_summing_to_infinity_are_the_same_422_on_both_paths(model, transactions, needle):
    body = _body(customers=[{"customer_id": "c1", "transactions": transactions}])
    fast, pandas_path = _both_paths(model, body)
    assert fast == pandas_path
    status, answer = fast
    assert status == 422 and needle in answer["error"] and "\n" not in answer["error"]


def test_a_span_longer_than_nanoseconds_hold_is_the_same_422_on_both_paths(model):
    """106,751 days (2**63 ns) from first purchase to as_of score on both paths; one day more is 422."""
    as_of = pd.Timestamp("2261-12-31")
    answers = {}
    for span in (106_751, 106_752, (as_of - pd.Timestamp("1678-01-01")).days):
        first = (as_of - pd.Timedelta(days=span)).strftime("%Y-%m-%d")
        body = {"as_of": "2261-12-31", "customers": [{"customer_id": "c1", "transactions": [
            {"date": first, "amount": 1.0}, {"date": "2261-12-31T23:59:59", "amount": 2.0}]}]}
        answers[span] = _both_paths(model, body)
    assert [status for status, _ in answers[106_751]] == [200, 200]
    assert answers[106_751][0][1]["scores"][0]["tenure_days"] == 106_751
    for span in (106_752, 213_300):  # 213,300 days: 1678-01-01 to 2261-12-31
        fast, pandas_path = answers[span]
        assert fast == pandas_path and fast[0] == 422
        assert fast[1]["error"].startswith(f"invalid request: customers[0]: first purchase ")
        assert f"is {span:,} days before as_of 2261-12-31; at most 106,751 days" in fast[1]["error"]


def test_docs_page_loads_only_local_assets(client):
    import re as regex
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = regex.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and not [u for u in urls if "://" in u or u.startswith("//")], urls
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"] and len(script.content) > 100_000
    from swagger_ui_bundle import swagger_ui_path
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert "swagger-ui-5." in str(swagger_ui_path)  # Swagger UI 4 cannot read OpenAPI 3.1
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


def test_amounts_may_be_left_out_only_for_a_model_without_amounts(model, log, batch_scores):
    """A model trained with amounts: 422 naming the transaction; flagged ``has_amounts = False``: accepted."""
    one_purchase = [{"date": "1997-01-02"}]
    body = _body(customers=[{"customer_id": "c1", "transactions": one_purchase}])
    for fast_max_customers, large_body_min_bytes in ((256, 2**16), (0, 2**16), (256, 10)):
        config = ServeConfig(fast_path_max_customers=fast_max_customers, large_body_min_bytes=large_body_min_bytes)
        with TestClient(create_app(URI, config, model=model)) as c:
            response = c.post("/score", json=body)
        assert response.status_code == 422
        assert response.json()["error"] == ("invalid request: customers[0].transactions[0].amount: required (this "
                                            "model was trained with amounts)")
    without = dataclasses.replace(model.scorer)
    without.has_amounts = False  # the attribute of CustomerScorer for models trained without amounts
    no_amounts = LoadedModel(scorer=without, label=model.label, model_uri=URI, loaded_at="now")
    for fast_max_customers in (256, 0):
        with TestClient(create_app(URI, ServeConfig(fast_path_max_customers=fast_max_customers),
                                   model=no_amounts)) as c:
            response = c.post("/score", json=body)
        assert response.status_code == 200, response.text
        row = response.json()["scores"][0]
        assert row["frequency"] == 0 and row["tenure_days"] == (pd.Timestamp(AS_OF) - pd.Timestamp("1997-01-02")).days
    with TestClient(create_app(URI, ServeConfig(), model=model)) as c:  # explicit null stays an error
        assert "valid number" in c.post("/score", json=_tx(amount=None)).json()["error"]
