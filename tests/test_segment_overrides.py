"""`custscore score --margin/--segments`: the model's segment settings replaced, and recorded."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import cli


def _score(trained, csv, out, *extra):
    return cli("score", "--model", "models:/custscore-test@champion", "--transactions", str(csv),
               "--as-of", "1997-09-30", "--output", str(out), "--tracking-uri", trained["config"].tracking_uri,
               *extra)


@pytest.mark.slow
def test_margin_and_settings_file_override_the_model(trained, cdnow_sample_csv, tmp_path):
    base = tmp_path / "base.csv"
    assert _score(trained, cdnow_sample_csv, base).returncode == 0
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"alert_churn_probability": 0.9, "thresholds": {"current_spend_high": 50.0}}))
    out = tmp_path / "scores.csv"
    proc = _score(trained, cdnow_sample_csv, out, "--margin", "0.3", "--segments", str(settings))
    assert proc.returncode == 0, proc.stderr
    a = pd.read_csv(base, dtype={"customer_id": str})
    b = pd.read_csv(out, dtype={"customer_id": str})
    pd.testing.assert_series_equal(b["current_value"], 0.3 * a["current_value"], check_names=False)
    # the class follows the new cut on 365-day spend (value_class III/IV = high current value)
    assert ((b["spend_365d"] > 50.0) == b["value_class"].isin(["III", "IV"])).all()
    sidecar = json.loads((tmp_path / "scores.csv.segments.json").read_text())
    assert sidecar["config"]["margin_rate"] == 0.3 and sidecar["config"]["alert_churn_probability"] == 0.9
    assert sidecar["thresholds"]["current_spend_high"] == 50.0 and sidecar["n_customers"] == 2357
    # passing a run's sidecar back reproduces its segments
    again = tmp_path / "again.csv"
    assert _score(trained, cdnow_sample_csv, again, "--segments", str(tmp_path / "scores.csv.segments.json")).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(again, dtype={"customer_id": str}), b)


def test_bad_settings_are_one_line_errors(trained, cdnow_sample_csv, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"no_such_setting": 1}))
    proc = _score(trained, cdnow_sample_csv, tmp_path / "o.csv", "--segments", str(bad))
    assert proc.returncode == 2 and "unknown setting(s) ['no_such_setting']" in proc.stderr
    proc = _score(trained, cdnow_sample_csv, tmp_path / "o.csv", "--margin", "1.5")
    assert proc.returncode == 2 and "margin_rate: must be in (0, 1]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
