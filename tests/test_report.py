"""The account-team report on CDNOW: numbers recomputed from the scores file, sidecar, browser."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from custscore.config import ScoreConfig
from custscore.errors import CustscoreError
from custscore.serving.report import write_report
from custscore.training.segments import SegmentConfig, SegmentThresholds

from conftest import cli, screenshot_folder

# One worker runs this module (--dist loadgroup in pyproject.toml): the scores and report (fixture
# `report_dir`) are made once.
pytestmark = pytest.mark.xdist_group("report")

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0")


@pytest.fixture(scope="module")
def report_dir(trained, cdnow_sample_csv, tmp_path_factory) -> Path:
    """Score CDNOW at the cutoff from the registry (writes the sidecar), then `custscore report`."""
    from custscore.serving.batch import score_file
    folder = tmp_path_factory.mktemp("report")
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    mlflow.set_registry_uri(trained["config"].tracking_uri)
    score_file("models:/custscore-test@champion", cdnow_sample_csv, folder / "scores.csv",
               ScoreConfig(as_of="1997-09-30"))
    proc = cli("report", "--scores", str(folder / "scores.csv"), "--output", str(folder / "report.html"))
    assert proc.returncode == 0, proc.stderr
    assert "customers needing action" in proc.stdout
    return folder


class _Tables(HTMLParser):
    """Cell texts of every <table id=...> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id, self._row, self._cell = None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None


def _printed(page: str, table_id: str) -> pd.DataFrame:
    parser = _Tables()
    parser.feed(page)
    header, *rows = parser.tables[table_id]
    return pd.DataFrame(rows, columns=header)


def _pct(text: str) -> float:
    return float(text.replace(" %", "")) / 100


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_value_matrix_and_pyramid_match_a_recomputation_from_the_scores_file(report_dir):
    scores = pd.read_csv(report_dir / "scores.csv", dtype={"customer_id": str})
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    n = len(scores)
    assert n == 2357

    matrix = _printed(page, "value-matrix").set_index("class")
    total_current, total_future = scores["current_value"].sum(), scores["future_value"].sum()
    for label, classes in {"IV": ["IV"], "III": ["III"], "II": ["II"], "I": ["I"],
                           "III+IV": ["III", "IV"], "I+II": ["I", "II"]}.items():
        part = scores[scores["value_class"].isin(classes)]
        row = matrix.loc[label]
        assert int(row["customers"]) == len(part), label
        assert _pct(row["share of customers"]) == pytest.approx(len(part) / n, abs=0.0005), label
        assert _pct(row["share of current value"]) == pytest.approx(part["current_value"].sum() / total_current,
                                                                   abs=0.0005), label
        assert _pct(row["share of future value"]) == pytest.approx(part["future_value"].sum() / total_future,
                                                                  abs=0.0005), label
        assert _number(row["current value"]) == pytest.approx(part["current_value"].sum(), abs=0.005), label
    assert matrix.loc["III+IV", "textbook share of customers"] == "20.0 %"
    assert matrix.loc["III+IV", "textbook share of value"] == "80.0 %"

    pyramid = _printed(page, "pyramid").set_index("tier")
    for tier in ("key", "potential", "regular"):
        part = scores[scores["pyramid_tier"] == tier]
        assert int(pyramid.loc[tier, "customers"]) == len(part)
        assert _pct(pyramid.loc[tier, "share of future value"]) == pytest.approx(
            part["future_value"].sum() / total_future, abs=0.0005)
    assert pyramid["textbook share of customers"].tolist() == ["5.0 %", "15.0 %", "80.0 %"]

    equity = _printed(page, "equity").set_index("value class")
    assert _number(equity.loc["total", "total"]) == pytest.approx(scores["clv"].sum(), abs=0.005)

    lifecycle = _printed(page, "lifecycle").set_index("stage")
    counts = scores["lifecycle_stage"].value_counts()
    assert {s: int(lifecycle.loc[s, "customers"]) for s in lifecycle.index} == \
        {s: int(counts.get(s, 0)) for s in lifecycle.index}


def test_actions_csv_sorted_by_value_at_risk(report_dir):
    scores = pd.read_csv(report_dir / "scores.csv", dtype={"customer_id": str})
    actions = pd.read_csv(report_dir / "actions.csv", dtype={"customer_id": str}, keep_default_na=False)
    needing = scores[scores["alert"] | scores["partial_churn"]]
    assert sorted(actions["customer_id"]) == sorted(needing["customer_id"])
    merged = actions.merge(scores[["customer_id", "churn_probability", "future_value"]], on="customer_id",
                           suffixes=("", "_scores"))
    # rounded for people (2 decimals, probabilities 3); the scores keep full precision
    np.testing.assert_allclose(merged["value_at_risk"],
                               merged["churn_probability_scores"] * merged["future_value_scores"], atol=0.005)
    np.testing.assert_allclose(merged["churn_probability"], merged["churn_probability_scores"], atol=0.0005)
    assert (merged["value_at_risk"] == merged["value_at_risk"].round(2)).all()
    assert actions["value_at_risk"].is_monotonic_decreasing
    assert (actions["reason"] != "").all()
    reasons = ["reason_1", "reason_2", "reason_3"]
    same = actions[["customer_id", *reasons]].merge(scores[["customer_id", *reasons]].fillna(""), on="customer_id",
                                                     suffixes=("", "_scores"))
    assert len(same) == len(actions) and (actions["reason_1"] != "").any()
    assert all((same[r] == same[f"{r}_scores"]).all() for r in reasons)
    partial = set(scores.loc[scores["partial_churn"], "customer_id"])
    assert all(("partial churn" in r) == (c in partial) for c, r in zip(actions["customer_id"], actions["reason"]))


def test_sidecar_records_every_threshold(report_dir, trained):
    sidecar = json.loads((report_dir / "scores.csv.segments.json").read_text())
    scorer = trained["result"].scorer
    assert set(sidecar["config"]) == {f.name for f in dataclasses.fields(SegmentConfig)}
    assert set(sidecar["thresholds"]) == {f.name for f in dataclasses.fields(SegmentThresholds)}
    want = dataclasses.asdict(scorer.segment_thresholds)
    assert sidecar["thresholds"].pop("gap_days") == pytest.approx(list(want.pop("gap_days")))  # JSON list
    assert sidecar["thresholds"] == pytest.approx(want)
    assert sidecar["as_of"] == "1997-09-30" and sidecar["horizon_days"] == 90 and sidecar["n_customers"] == 2357
    # The thresholds also reach the MLflow run as params.
    client = mlflow.tracking.MlflowClient(trained["config"].tracking_uri)
    params = client.get_run(trained["logged"].run_id).data.params
    assert float(params["segments_clv_key"]) == pytest.approx(scorer.segment_thresholds.clv_key)
    assert params["segments_tier_a_min"] == "11"


def test_pyfunc_gives_the_same_segments_as_batch(report_dir, trained, cdnow_sample_csv):
    batch = pd.read_csv(report_dir / "scores.csv", dtype={"customer_id": str}, keep_default_na=False)
    raw = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    model = mlflow.pyfunc.load_model("models:/custscore-test@champion")
    pyfunc = model.predict(raw.astype({"date": str}), params={"as_of": "1997-09-30"})
    for col in ("value_class", "pyramid_tier", "activity_tier", "lifecycle_stage", "alert_reason"):
        assert pyfunc[col].astype(str).tolist() == batch[col].astype(str).tolist(), col


def test_page_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert not re.search(r"https?://", page)
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_errors_name_the_file(tmp_path, report_dir):
    shutil.copy(report_dir / "scores.csv", tmp_path / "scores.csv")  # without its sidecar
    with pytest.raises(CustscoreError, match=r"scores\.csv\.segments\.json not found"):
        write_report(tmp_path / "scores.csv", tmp_path / "report.html")
    with pytest.raises(CustscoreError, match=r"\.html"):
        write_report(report_dir / "scores.csv", tmp_path / "report.pdf")
    proc = cli("report", "--scores", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "r.html"))
    assert proc.returncode == 2 and "nope.csv: file not found" in proc.stderr


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _render(browser: str, page: Path, shot: Path, profile: Path, height: int = 3000) -> list[str]:
    """Screenshot ``page``; return the console messages Chromium logged."""
    proc = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size=1200,{height}",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_in_headless_chromium_without_console_errors(report_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install -y chromium); the HTML checks above still ran")
    # Control: this Chromium reports console errors in the way we look for them.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefined_fn();</script></body></html>", encoding="utf-8")
    assert any("undefined_fn" in m for m in _render(browser, bad, tmp_path / "bad.png", tmp_path / "p1", 300))

    shot = tmp_path / "report.png"
    assert _render(browser, report_dir / "report.html", shot, tmp_path / "p2") == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a real page, not a blank one
    if screenshot_folder() is not None:
        shutil.copy(shot, screenshot_folder() / "report-cdnow.png")


def test_report_for_people_with_a_currency(report_dir, tmp_path):
    proc = cli("report", "--scores", str(report_dir / "scores.csv"), "--output", str(tmp_path / "r.html"),
               "--currency", "€:0")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    scores = pd.read_csv(report_dir / "scores.csv", dtype={"customer_id": str}, keep_default_na=False)
    sidecar = json.loads((report_dir / "scores.csv.segments.json").read_text())
    # horizon and discount rate in words, from the sidecar
    assert f"next {sidecar['horizon_days']} days" in page
    assert f"discounted at {100 * sidecar['discount_rate']:g} % a year" in page
    listed = _printed(page, "at-risk")
    assert len(listed) > 0
    by_id = scores.set_index("customer_id")
    for row in listed.itertuples(index=False):
        want = by_id.loc[row.customer]
        code, name = row._4.split(" ", 1)  # "value class": code then plain name
        assert code == want["value_class"] and name == want["value_class_name"]
        assert row._9 == want["retention_policy"] != ""  # the recommended action
        assert want["reason_1"] and want["reason_1"] in row.why  # the churn reasons are on the list
        assert row._1 == f"€{round(want['churn_probability'] * want['future_value']):,}"  # rounded, with symbol
    actions = pd.read_csv(tmp_path / "actions.csv")
    assert (actions["value_at_risk"] == actions["value_at_risk"].round(0)).all()
    # glossary, then the data scientist's settings folded away at the end
    assert page.index("<h2>Glossary</h2>") < page.index("<details>") < page.index('id="settings"') \
        < page.index("</details>")
    bad = cli("report", "--scores", str(report_dir / "scores.csv"), "--output", str(tmp_path / "b.html"),
              "--currency", "$:9")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--currency '$:9'" in bad.stderr
