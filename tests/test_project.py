"""Project wiring: MLproject entry points, import boundaries, the quickstart command."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, run_cli
from custscore.cli import build_parser


def _entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


@pytest.mark.parametrize("name", ["train", "score", "quickstart"])
def test_mlproject_commands_parse_with_the_cli(name):
    entry = _entry_points()[name]
    values = {p: "x" for p in entry.get("parameters", {})}
    values.update({"horizon_days": "90", "options": "--time-unit W" if name == "train" else ""})
    command = entry["command"].format(**values)
    argv = shlex.split(command)
    assert argv[0] == "custscore"
    args = build_parser().parse_args(argv[1:])
    assert args.command == name


def test_mlproject_defines_no_default_of_its_own():
    """Defaults live once, in custscore/config.py: MLproject passes options through."""
    for name, entry in _entry_points().items():
        for param, spec in entry.get("parameters", {}).items():
            if isinstance(spec, dict) and "default" in spec:
                assert param == "options" and spec["default"] == "", (name, param)


def test_training_never_imports_serving():
    code = ("import sys, custscore.training.train, custscore.training.tracking, custscore.training.pipeline;"
            "print([m for m in sys.modules if m.startswith('custscore.serving')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_quickstart_runs_offline_and_prints_the_comparison(tmp_path):
    proc = run_cli("quickstart", "--workdir", str(tmp_path / "qs"), env={"MLFLOW_TRACKING_URI": ""})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^r\s+0\.24\d\s+0\.243", out, re.M), out
    assert "holdout purchases over 273 days: predicted 165" in out and "actual 1882" in out
    assert "churn_classifier" in out and "baseline_bgnbd_expected_purchases" in out
    assert "models:/custscore@champion" in out
    assert (tmp_path / "qs" / "scores.csv").exists() and (tmp_path / "qs" / "mlflow.db").exists()
    assert "Traceback" not in proc.stderr
    _printed_next_commands_work(out, tmp_path)


def _printed_next_commands_work(out: str, tmp_path) -> None:
    """The quickstart's last lines are commands that run as printed from another folder."""
    import shlex

    import pandas as pd

    from custscore.cli import build_parser

    lines = out[out.index("\nnext (from any folder):\n"):].strip().splitlines()[1:]
    commands = [shlex.split(line) for line in lines]
    assert [c[:2] for c in commands] == [["custscore", "score"], ["custscore", "report"], ["custscore", "serve"]]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in commands[:2]:  # serve runs until stopped: its arguments are parsed below
        proc = run_cli(*command[1:], cwd=elsewhere, env={"MLFLOW_TRACKING_URI": ""})
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
    assert list(elsewhere.iterdir()) == []  # everything lands in the quickstart's folder
    scores = pd.read_csv(tmp_path / "qs" / "scores-1998-06-30.csv")
    assert len(scores) == 2357  # every customer of the CDNOW sample
    assert (tmp_path / "qs" / "report.html").exists()
    serve = build_parser().parse_args(commands[2][1:])
    assert serve.model == "models:/custscore@champion"
    assert serve.tracking_uri == f"sqlite:///{tmp_path / 'qs' / 'mlflow.db'}"
