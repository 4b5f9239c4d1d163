"""Bad input on the command line: one line naming the problem, exit status 2, no traceback."""
from __future__ import annotations

import pytest

from conftest import cli

GOOD = "customer_id,date,amount\n00001,2020-01-01,10\n00001,2020-02-01,5\n00002,2020-01-05,7\n"


def _train(tmp_path, new_store, content: str | None, *extra: str):
    log = tmp_path / "log.csv"
    if content is not None:
        log.write_text(content)
    return cli("train", "--transactions", str(log), "--cutoff", "2020-03-01", "--horizon-days", "30",
               "--tracking-uri", new_store(tmp_path), *extra)


def _assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle.lower() in err.lower(), (needle, err)


@pytest.mark.parametrize("content, needles", [
    ("customer_id,date,total\n1,2020-01-01,3\n", ["amount", "missing"]),
    ("customer_id,date,amount\n1,2020-01-01,3\n2,not-a-date,4\n", ["date", "not-a-date", "row 2"]),
    ("", ["empty"]),
    ("customer_id,date,amount\n", ["no transactions"]),
    ("customer_id,date,amount\n1,2020-01-01,3\n2,2020-01-02,abc\n", ["amount", "abc", "row 2"]),
], ids=["missing-column", "bad-date", "empty-file", "header-only", "non-numeric-amount"])
def test_bad_transaction_log(tmp_path, new_store, content, needles):
    _assert_one_line_error(_train(tmp_path, new_store, content), *needles)


def test_missing_file(tmp_path, new_store):
    _assert_one_line_error(_train(tmp_path, new_store, None), "not found")


def test_cutoff_before_all_data(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(GOOD)
    proc = cli("train", "--transactions", str(log), "--cutoff", "1990-01-01", "--horizon-days", "30",
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    _assert_one_line_error(proc, "cutoff 1990-01-01", "before the first transaction")
    assert not (tmp_path / "mlflow.db").exists()  # checked before the tracking store is opened


def test_bad_cutoff_string(tmp_path):
    proc = cli("train", "--transactions", "x.csv", "--cutoff", "yesterday-ish", "--horizon-days", "30")
    _assert_one_line_error(proc, "cutoff", "yesterday-ish")


def test_non_positive_horizon(tmp_path):
    proc = cli("train", "--transactions", "x.csv", "--cutoff", "2020-01-01", "--horizon-days", "0")
    _assert_one_line_error(proc, "horizon_days")


def test_unknown_model_uri(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(GOOD)
    proc = cli("score", "--model", "runs:/0123456789abcdef/model", "--transactions", str(log),
               "--as-of", "2020-03-01", "--output", str(tmp_path / "out.csv"),
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    _assert_one_line_error(proc, "cannot load model", "runs:/0123456789abcdef/model")
    assert not (tmp_path / "out.csv").exists()


def test_bad_output_suffix(tmp_path):
    proc = cli("score", "--model", "runs:/x/model", "--transactions", "x.csv", "--as-of", "2020-03-01",
               "--output", str(tmp_path / "out.xlsx"))
    _assert_one_line_error(proc, "--output", ".xlsx")


@pytest.mark.parametrize("command", ["train", "score", "backtest"])
def test_horizon_has_one_upper_bound_everywhere(tmp_path, command):
    from custscore.config import MAX_HORIZON_DAYS, ServeConfig
    assert ServeConfig().max_horizon_days == MAX_HORIZON_DAYS == 3660  # the HTTP API's bound, defined once
    argv = {"train": ["--transactions", "x.csv", "--cutoff", "2020-01-01"],
            "score": ["--model", "runs:/x/model", "--transactions", "x.csv", "--as-of", "2020-01-01",
                      "--output", str(tmp_path / "s.csv")],
            "backtest": ["--transactions", "x.csv", "--origins", "2", "--step-days", "30"]}[command]
    _assert_one_line_error(cli(command, *argv, "--horizon-days", "10000000"),
                           "horizon_days: must be at most 3660 days", "10000000")
    if command != "backtest":  # the bound itself is allowed (then the missing file or model is the error)
        proc = cli(command, *argv, "--horizon-days", "3660")
        _assert_one_line_error(proc)
        assert "horizon_days" not in proc.stderr


@pytest.mark.parametrize("as_of", ["2262-04-12", "2262-04-11", "1677-09-21", "9999-12-31"])
def test_as_of_beyond_representable_dates(tmp_path, as_of):
    log = tmp_path / "log.csv"
    log.write_text(GOOD)
    for command in ("score", "rfm"):
        extra = ["--model", "runs:/x/model"] if command == "score" else []
        proc = cli(command, *extra, "--transactions", str(log), "--as-of", as_of, "--output", str(tmp_path / "s.csv"))
        _assert_one_line_error(proc, f"as_of: date '{as_of}' is outside the supported range 1677-09-22 to 2262-04-10")
