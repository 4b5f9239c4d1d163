"""The customer look-up page of ``custscore serve --scores``: JSON routes and a real browser.

Truth is the score file and the log read again with pandas here (value at risk =
churn_probability x future_value, sorted largest first; purchases netted per day by a
groupby), never the page's own code. The browser test drives the system Chromium with
Playwright against a real ``custscore serve`` process.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from custscore.config import ScoreConfig, ServeConfig
from custscore.serving.customer_table import load_customer_table
from custscore.serving.http import create_app, uvicorn_config
from custscore.serving.model_holder import LoadedModel, load_model
from custscore.training.tracking import use_tracking

from conftest import run_cli, screenshot_folder

URI = "models:/custscore-test@champion"
AS_OF = "1997-09-30"
#: A customer id that runs script if a page ever inserts it as HTML.
HOSTILE = "<img src=x onerror=window.__xss=1>&amp;\"'"
#: The system Chromium (never `playwright install`): Debian's path, else the one on PATH.
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else (shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def files(trained, cdnow_sample_csv, tmp_path_factory) -> dict[str, Path]:
    """The CDNOW sample plus a customer with a hostile id (the busiest customer's purchases), scored."""
    from custscore.serving.batch import score_file
    folder = tmp_path_factory.mktemp("lookup")
    log = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    busiest = log["customer_id"].value_counts().idxmax()
    log = pd.concat([log, log[log["customer_id"] == busiest].assign(customer_id=HOSTILE)], ignore_index=True)
    log.to_csv(folder / "log.csv", index=False)
    use_tracking(trained["config"].tracking_uri)
    mlflow.set_registry_uri(trained["config"].tracking_uri)
    score_file(URI, folder / "log.csv", folder / "scores.csv", ScoreConfig(as_of=AS_OF))
    return {"log": folder / "log.csv", "scores": folder / "scores.csv", "folder": folder}


@pytest.fixture(scope="module")
def truth(files) -> pd.DataFrame:
    """The score file read independently, sorted as the page sorts: value at risk, largest first, then id."""
    scores = pd.read_csv(files["scores"], dtype={"customer_id": str}, keep_default_na=False,
                         na_values={c: [""] for c in ("clv", "future_value", "p_alive", "churn_probability")})
    scores["value_at_risk"] = scores["churn_probability"] * scores["future_value"]
    return scores.sort_values(["value_at_risk", "customer_id"], ascending=[False, True]).reset_index(drop=True)


@pytest.fixture(scope="module")
def model(trained) -> LoadedModel:
    use_tracking(trained["config"].tracking_uri)
    return load_model(URI)


@pytest.fixture(scope="module")
def client(files, model):
    table = load_customer_table(files["scores"], files["log"])
    with TestClient(create_app(URI, ServeConfig(), model=model, customers=table)) as c:
        yield c


def test_table_is_paged_filtered_and_sorted_on_the_server(client, truth):
    first = client.get("/customers/api/table").json()
    assert first["total"] == len(truth) == 2358 and first["page_size"] == 50 and first["pages"] == 48
    assert [r["customer_id"] for r in first["rows"]] == truth["customer_id"].head(50).tolist()
    second = client.get("/customers/api/table", params={"page": 2, "page_size": 7}).json()
    assert [r["customer_id"] for r in second["rows"]] == truth["customer_id"].iloc[7:14].tolist()
    row = second["rows"][0]
    want = truth.iloc[7]
    assert row["value_at_risk"] == pytest.approx(want["value_at_risk"], rel=1e-12)
    assert row["clv"] == pytest.approx(want["clv"], rel=1e-12) and row["reason_1"] == want["reason_1"]

    iv = client.get("/customers/api/table", params={"segment": "IV", "page_size": 500}).json()
    assert iv["total"] == int((truth["value_class"] == "IV").sum()) > 0
    assert [r["customer_id"] for r in iv["rows"]] == truth.loc[truth["value_class"] == "IV", "customer_id"].head(
        500).tolist()
    action = truth["retention_policy"].value_counts().index[0]
    assert client.get("/customers/api/table", params={"action": action}).json()["total"] == \
        int((truth["retention_policy"] == action).sum())
    # needs-action = the customers of actions.csv: an alert, partial churn or a class-I cause to act on
    needing = truth["alert"] | truth["partial_churn"] | truth["class_i_cause"].isin(["poor credit", "price-sensitive"])
    assert client.get("/customers/api/table", params={"risk": "needs-action"}).json()["total"] == int(needing.sum())
    high = client.get("/customers/api/table", params={"risk": "high"}).json()["total"]
    low = client.get("/customers/api/table", params={"risk": "low"}).json()["total"]
    assert high == int((truth["churn_probability"] >= 0.5).sum()) and high + low == len(truth)

    search = client.get("/customers/api/table", params={"q": "0004"}).json()
    assert sorted(r["customer_id"] for r in search["rows"]) == sorted(
        c for c in truth["customer_id"] if "0004" in c)
    assert [r["customer_id"] for r in client.get("/customers/api/table", params={"q": "<IMG"}).json()["rows"]] == \
        [HOSTILE]
    by_id = client.get("/customers/api/table", params={"sort": "customer_id", "page_size": 5}).json()
    assert [r["customer_id"] for r in by_id["rows"]] == sorted(truth["customer_id"])[:5]
    by_churn = client.get("/customers/api/table", params={"sort": "churn_probability", "page_size": 500}).json()
    churn = [r["churn_probability"] for r in by_churn["rows"]]
    assert churn == sorted(churn, reverse=True) and churn[0] == pytest.approx(truth["churn_probability"].max())
    last = client.get("/customers/api/table", params={"page": 10**6}).json()  # past the end: the last page
    assert last["page"] == 48 and len(last["rows"]) == len(truth) - 47 * 50


@pytest.mark.parametrize("params, needle", [
    ({"page_size": 501}, "page_size"), ({"page": 0}, "page"), ({"sort": "nope"}, "sort"),
    ({"risk": "medium"}, "risk"), ({"q": "x" * 201}, "q")])
def test_bad_table_queries_are_422_naming_the_parameter(client, params, needle):
    answer = client.get("/customers/api/table", params=params)
    assert answer.status_code == 422 and needle in answer.json()["error"], answer.text


def test_one_customer_with_the_purchases_of_the_log(client, files, truth):
    log = pd.read_csv(files["log"], dtype={"customer_id": str})
    log["date"] = pd.to_datetime(log["date"])
    for customer_id in (truth["customer_id"].iloc[0], "00004", HOSTILE):
        answer = client.get("/customers/api/customer", params={"id": customer_id})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        body = answer.json()
        want = truth.set_index("customer_id").loc[customer_id]
        assert body["score"]["customer_id"] == customer_id
        assert body["score"]["p_alive"] == pytest.approx(want["p_alive"], rel=1e-12)
        days = log[log["customer_id"] == customer_id].groupby("date")["amount"].sum()
        assert [p["date"] for p in body["purchases"]] == [d.strftime("%Y-%m-%d") for d in days.index]
        np.testing.assert_allclose([p["amount"] for p in body["purchases"]], days.to_numpy(), rtol=1e-12)
    missing = client.get("/customers/api/customer", params={"id": "no-such-customer"})
    assert missing.status_code == 404 and missing.json() == {"error": "customer not in the scores file"}


class _Page(HTMLParser):
    """Ids of the inputs and selects, the label targets, the header cells and every URL of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls, self.labels, self.th, self.urls = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("input", "select"):
            self.controls.append(a.get("id"))
        if tag == "label":
            self.labels.add(a.get("for"))
        if tag == "th":
            self.th.append(a.get("scope"))
        self.urls += [a[k] for k in ("src", "href") if k in a]


def test_page_is_local_labelled_and_under_a_content_security_policy(client):
    page = client.get("/customers")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert client.get("/", follow_redirects=False).headers["location"] == "/customers"
    parsed = _Page()
    parsed.feed(page.text)
    assert parsed.controls and set(parsed.controls) <= parsed.labels  # every input has a label
    assert parsed.th and all(scope == "col" for scope in parsed.th)
    assert all(u.startswith(("/customers/assets/", "#")) or u == "data:," for u in parsed.urls), parsed.urls
    for url in parsed.urls:
        if url.startswith("/"):
            asset = client.get(url)
            assert asset.status_code == 200 and "content-security-policy" in asset.headers, url
            assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", asset.content), url  # no CDN
    script = client.get("/customers/assets/customers.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert client.get("/customers/assets/../http.py").status_code == 404
    assert client.get("/customers/assets/nope.js").status_code == 404


def test_routes_are_absent_without_scores(model):
    with TestClient(create_app(URI, ServeConfig(), model=model)) as c:
        assert c.get("/customers").status_code == 404 and c.get("/customers/api/table").status_code == 404


@pytest.mark.slow
def test_bad_scores_file_is_one_line_and_exit_2_before_the_model_loads(files, tmp_path):
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    no_sidecar = tmp_path / "scores.csv"
    shutil.copy(files["scores"], no_sidecar)
    for args, needle in (
            (["--scores", str(tmp_path / "nope.csv")], "nope.csv: file not found"),
            (["--scores", str(garbage)], "garbage.parquet: cannot read file"),
            (["--scores", str(no_sidecar)], "scores.csv.segments.json not found"),
            (["--scores", str(files["scores"]), "--transactions", str(tmp_path / "nolog.csv")], "nolog.csv: file not found"),
            (["--transactions", str(files["log"])], "--transactions: needs --scores")):
        proc = run_cli("serve", "--model", "models:/never-loaded@champion", "--port", "0", *args,
                       "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
        assert "cannot load model" not in proc.stderr


# --- the page in a real browser -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def _needs_browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium); the JSON route tests above still ran")
    return pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[dev]')")


def _screenshot(page, name: str) -> None:
    """Save the top of the page as NAME in :func:`conftest.screenshot_folder` when one is set."""
    folder = screenshot_folder()
    if folder is not None:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(folder / name))


def _pct(text: str) -> float:
    return float(text.replace(" %", "")) / 100


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _watch(page) -> list[str]:
    """Console errors and uncaught exceptions of ``page``, collected as they happen."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


#: Each element with text of its own: (its text colour, the first non-transparent background up its ancestors).
_COLOURS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || !el.getClientRects().length) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    let bg = 'rgba(0, 0, 0, 0)', up = el;
    while (up && /rgba\\(.*, 0\\)$/.test(bg = getComputedStyle(up).backgroundColor)) up = up.parentElement;
    out.push([getComputedStyle(el).color, up ? bg : 'rgb(255, 255, 255)', el.tagName + '#' + el.id]);
  }
  return out;
}"""


def _contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two CSS ``rgb(...)`` colours."""
    def luminance(css: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"\d+", css)[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _low_contrast(page) -> list[tuple]:
    pairs = page.evaluate(_COLOURS_JS)
    assert len(pairs) > 20
    return [(f, b, where, round(_contrast(f, b), 2)) for f, b, where in pairs if _contrast(f, b) < 4.5]


def _assert_contrast(page) -> None:
    """Every text on the page has contrast >= 4.5:1; a grey #aaa line added as a control is caught."""
    assert _low_contrast(page) == []
    page.evaluate("() => { const p = document.createElement('p'); p.id = 'control'; p.textContent = 'grey';"
                  " p.style.color = '#aaaaaa'; document.body.append(p); }")
    assert [where for _, _, where, _ in _low_contrast(page)] == ["P#control"]  # 2.32:1 on white
    page.evaluate("() => document.getElementById('control').remove()")


def _wait_text(page, selector: str, start: str) -> None:
    """Wait until the text of ``selector`` starts with ``start`` (through Playwright's own world:
    the page's Content-Security-Policy forbids evaluating strings)."""
    from playwright.sync_api import expect
    expect(page.locator(selector)).to_have_text(re.compile("^" + re.escape(start)), timeout=15_000)


def _shown(page, section: str) -> dict[str, str]:
    return {dd.get_attribute("data-field"): dd.inner_text() for dd in page.locator(f"#{section} dd").all()}


def _assert_numbers_match(shown: dict[str, str], want: pd.Series) -> None:
    """The numbers on the page are the score file's, rounded as shown (0.1 % and 2 decimals)."""
    assert _pct(shown["p_alive"]) == pytest.approx(want["p_alive"], abs=0.0005)
    assert _pct(shown["churn_probability"]) == pytest.approx(want["churn_probability"], abs=0.0005)
    assert _num(shown["expected_purchases"]) == pytest.approx(want["expected_purchases"], abs=0.005)
    assert _num(shown["clv"]) == pytest.approx(want["clv"], abs=0.005)


@pytest.mark.slow
def test_page_in_a_real_browser_against_custscore_serve(trained, files, truth, tmp_path):
    sync_api = _needs_browser()
    port = _free_port()
    server_log = tmp_path / "server.log"
    with open(server_log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "custscore.cli", "serve", "--model", URI, "--port", str(port),
                                 "--tracking-uri", trained["config"].tracking_uri, "--scores", str(files["scores"]),
                                 "--transactions", str(files["log"])], stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while "Uvicorn running" not in server_log.read_text() and "Application startup complete" not in \
                server_log.read_text():
            assert proc.poll() is None, server_log.read_text()
            assert time.monotonic() < deadline, server_log.read_text()
            time.sleep(0.1)
        with sync_api.sync_playwright() as p:
            browser = _browser(p)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1200})
                problems = _watch(page)
                # load: the first page of the table is the top 50 by value at risk
                page.goto(base + "/")
                page.wait_for_selector("body[data-ready=yes]")
                assert page.url == base + "/customers"
                ids = page.locator("#customers tbody th button").all_inner_texts()
                assert ids == truth["customer_id"].head(50).tolist()
                assert "2,358 customers match." in page.inner_text("#count")
                assert f"as of {AS_OF}" in page.inner_text("#context")

                # filter by segment and risk (select, by keyboard-reachable controls)
                page.select_option("#segment", "IV")
                _wait_text(page, "#count", f"{int((truth['value_class'] == 'IV').sum()):,} customer")
                segments = page.locator("#customers tbody td:nth-child(7)").all_inner_texts()
                assert segments and all(s.startswith("IV ") for s in segments)
                page.select_option("#risk", "high")
                both = truth[(truth["value_class"] == "IV") & (truth["churn_probability"] >= 0.5)]
                _wait_text(page, "#count", f"{len(both):,} customer")
                assert page.locator("#customers tbody th button").all_inner_texts() == \
                    both["customer_id"].head(50).tolist()
                page.click("#clear")
                _wait_text(page, "#count", "2,358")

                # search by keyboard: type the hostile id's start, Enter; it shows as text and runs nothing
                page.focus("#q")
                page.keyboard.type("<img src")
                page.keyboard.press("Enter")
                _wait_text(page, "#count", "1 customer")
                assert page.locator("#customers tbody th button").all_inner_texts() == [HOSTILE]
                page.keyboard.press("Tab")  # from the search box through the form to the customer's button
                for _ in range(12):
                    if page.evaluate("document.activeElement.classList.contains('open')"):
                        break
                    page.keyboard.press("Tab")
                focus = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                                      " return [s.outlineStyle, s.outlineWidth]; }")
                assert focus[0] == "solid" and float(focus[1].rstrip("px")) >= 2  # visible focus
                page.keyboard.press("Enter")
                page.wait_for_selector("#detail:not([hidden])")
                page.wait_for_selector("#live dd")
                assert page.inner_text("#detail-title") == f"Customer {HOSTILE}"
                assert page.evaluate("window.__xss") is None
                assert page.locator("#detail img, #customers img").count() == 0

                # open the busiest ordinary customer: numbers, reasons, action, timeline, live score
                page.fill("#q", "")
                page.keyboard.press("Enter")
                _wait_text(page, "#count", "2,358")
                customer = truth.iloc[0]
                page.click(f"#customers tbody th button[data-id='{customer['customer_id']}']")
                _wait_text(page, "#detail-title", f"Customer {customer['customer_id']}")
                page.wait_for_selector("#live dd")
                assert page.evaluate("document.activeElement.id") == "detail"  # focus moved to the customer
                _assert_numbers_match(_shown(page, "numbers"), customer)
                _assert_numbers_match(_shown(page, "live"), customer)  # POST /score agrees with the file
                shown = _shown(page, "numbers")
                assert _num(shown["value_at_risk"]) == pytest.approx(customer["value_at_risk"], abs=0.005)
                assert shown["value_class"] == f"{customer['value_class']} {customer['value_class_name']}"
                assert page.locator("#reasons li").all_inner_texts() == \
                    [customer[c] for c in ("reason_1", "reason_2", "reason_3") if customer[c]]
                assert page.inner_text("#action-text") == customer["retention_policy"]
                log = pd.read_csv(files["log"], dtype={"customer_id": str})
                n_days = log.loc[log["customer_id"] == customer["customer_id"], "date"].nunique()
                assert page.locator("#timeline svg circle").count() == n_days
                assert "purchase day(s) in the log" in page.inner_text("#timeline-note")
                _assert_contrast(page)  # the list and an open customer, as rendered
                _screenshot(page, "page-customer.png")
                page.keyboard.press("Escape")
                assert page.locator("#detail").is_hidden()
                assert problems == []
            finally:
                browser.close()
        # the server's hardening covers the page's routes: header limit (431), JSON access log
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.sendall(b"GET /customers/api/table HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            assert raw.recv(200).startswith(b"HTTP/1.1 431")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = server_log.read_text()
    assert "Traceback" not in text
    access = [json.loads(line) for line in text.splitlines() if '"event": "access"' in line]
    assert {(e["path"], e["status"]) for e in access} >= {("/customers", 200), ("/customers/api/table", 200),
                                                          ("/customers/api/customer", 200), ("/score", 200)}


@contextlib.contextmanager
def _serving(app) -> Iterator[str]:
    """``app`` behind uvicorn with ``custscore serve``'s settings in a thread; yields its base URL."""
    import uvicorn
    config = ServeConfig(port=_free_port())
    server = uvicorn.Server(uvicorn_config(app, config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.slow
def test_page_without_a_log_says_so_and_shows_a_clv_interval(model, files, truth, tmp_path):
    """Without --transactions: no history, no scoring again, said on the page; clv_p10/clv_p90 shown when present."""
    sync_api = _needs_browser()
    scores = pd.read_csv(files["scores"], dtype={"customer_id": str}, keep_default_na=False)
    scores = scores.assign(clv_p10=scores["clv"] * 0.5, clv_p90=scores["clv"] * 2.0)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    sidecar = json.loads(Path(f"{files['scores']}.segments.json").read_text())
    sidecar.pop("data_sha256", None)
    (tmp_path / "scores.csv.segments.json").write_text(json.dumps(sidecar))
    table = load_customer_table(tmp_path / "scores.csv")
    with _serving(create_app(URI, ServeConfig(), model=model, customers=table)) as base, \
            sync_api.sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page()
            problems = _watch(page)
            page.goto(base + "/customers")
            page.wait_for_selector("body[data-ready=yes]")
            assert "No transaction log was given" in page.inner_text("#log-note")
            customer = truth.iloc[3]
            page.click(f"#customers tbody th button[data-id='{customer['customer_id']}']")
            page.wait_for_selector("#detail:not([hidden])")
            shown = _shown(page, "numbers")
            _assert_numbers_match(shown, customer)
            low, high = (_num(t) for t in shown["clv_interval"].split(" to "))
            assert low == pytest.approx(customer["clv"] * 0.5, abs=0.005)
            assert high == pytest.approx(customer["clv"] * 2.0, abs=0.005)
            assert "without --transactions" in page.inner_text("#timeline-note")
            assert "Needs the transaction log" in page.inner_text("#live-note")
            assert page.locator("#timeline svg").count() == 0 and problems == []
        finally:
            browser.close()
