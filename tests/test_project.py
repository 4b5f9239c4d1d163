"""Project wiring: MLproject entry points, import boundaries, the quickstart command."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import yaml

import mlproject_spec
from conftest import REPO, cli
from custscore.cli import build_parser


def _entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


def test_mlproject_is_the_rendering_of_the_cli_options():
    """One parameter per CLI option, defaults from config.py: regenerate with tests/mlproject_spec.py."""
    assert (REPO / "MLproject").read_text() == mlproject_spec.render()
    for name, entry in _entry_points().items():
        options = {a.option_strings[-1] for a in mlproject_spec._subparser(name)._actions if a.option_strings}
        original = {v: k for k, v in mlproject_spec.RENAMED.items()}  # parameter -> option it stands for
        assert {"--" + original.get(p, p).replace("_", "-") for p in entry["parameters"]} == options - {"--help"}


@pytest.mark.parametrize("name", mlproject_spec.ENTRY_POINTS)
def test_mlproject_defaults_parse_as_the_cli_defaults(name):
    """Every default MLflow passes (quoted one word each, '' for "not given") parses to the CLI's own default."""
    entry = _entry_points()[name]
    required = {p: "1997-09-30" if p in ("cutoff", "as_of") else "90" if p == "horizon_days" else "x"
                for p, spec in entry["parameters"].items() if not isinstance(spec, dict)}
    values = {p: spec["default"] for p, spec in entry["parameters"].items() if isinstance(spec, dict)}
    command = entry["command"].format(**{p: shlex.quote(v) for p, v in {**required, **values}.items()})
    argv = shlex.split(command)
    assert argv[:2] == ["custscore", name]
    parser = build_parser()
    plain = [a for p, v in required.items() for a in ("--" + p.replace("_", "-"), v)]
    assert vars(parser.parse_args(argv[1:])) == vars(parser.parse_args([name, *plain]))


def test_training_never_imports_serving():
    code = ("import sys, custscore.training.train, custscore.training.tracking, custscore.training.pipeline;"
            "print([m for m in sys.modules if m.startswith('custscore.serving')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_quickstart_runs_offline_and_prints_the_comparison(tmp_path):
    proc = cli("quickstart", "--workdir", str(tmp_path / "qs"), env={"MLFLOW_TRACKING_URI": ""})
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
        proc = cli(*command[1:], cwd=elsewhere, env={"MLFLOW_TRACKING_URI": ""})
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
    assert list(elsewhere.iterdir()) == []  # everything lands in the quickstart's folder
    scores = pd.read_csv(tmp_path / "qs" / "scores-1998-06-30.csv")
    assert len(scores) == 2357  # every customer of the CDNOW sample
    assert (tmp_path / "qs" / "report.html").exists()
    serve = build_parser().parse_args(commands[2][1:])
    assert serve.model == "models:/custscore@champion"
    assert serve.tracking_uri == f"sqlite:///{tmp_path / 'qs' / 'mlflow.db'}"
