"""conftest.cli (custscore.cli.main in the test process) gives what a user's process gives (run_cli)."""
from __future__ import annotations

import re

import pytest

from conftest import cli, run_cli

LOG = "customer_id,date,amount\n00001,2020-01-01,10\n00001,2020-02-01,5\n00002,2020-01-05,7\n"


def _run(runner, folder, argv) -> tuple:
    """``runner(*argv)`` in a new ``folder`` holding log.csv: exit status, stdout, stderr (timings masked)."""
    folder.mkdir()
    (folder / "log.csv").write_text(LOG)
    proc = runner(*argv, cwd=folder)
    mask = lambda text: re.sub(r"\d+(\.\d+)? s\b|[\d,]+ rows/s", "T", text)  # noqa: E731
    return proc.returncode, mask(proc.stdout), mask(proc.stderr)


@pytest.mark.parametrize("argv", [
    ["rfm", "--transactions", "log.csv", "--as-of", "2020-03-01", "--output", "rfm.csv"],  # exit 0, one stdout line
    ["rfm", "--transactions", "log.csv", "--as-of", "2262-04-12", "--output", "rfm.csv"],  # CustscoreError: exit 2
    ["rfm", "--transactions", "log.csv", "--as-of"],  # argparse usage error: exit 2, usage on stderr
    ["train", "--help"],  # argparse --help: exit 0, 80 columns wide on stdout
    # a new store is created (MLflow's INFO lines are hidden at the CLI's level) before the error
    ["train", "--transactions", "log.csv", "--cutoff", "2020-01-25", "--horizon-days", "10", "--covariates", "no.csv",
     "--tracking-uri", "sqlite:///mlflow.db"],
], ids=["ok", "one-line-error", "usage-error", "help", "new-store"])
def test_in_process_runs_match_the_subprocess(tmp_path, argv):
    in_process = _run(cli, tmp_path / "in-process", argv)
    assert in_process == _run(run_cli, tmp_path / "subprocess", argv)
    assert in_process[0] in (0, 2) and "Traceback" not in in_process[2]
