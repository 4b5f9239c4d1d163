"""Every class of bad input: a one-line error naming the problem, exit 2, nothing written.

Each case is also a row of the "Bad input" table in docs/inputs.md; the last test checks
that the table quotes the message each case really produces.
"""
from __future__ import annotations

import re
import sqlite3
from contextlib import closing

import pandas as pd
import pytest

from conftest import REPO, cli

HEADER = "customer_id,date,amount\n"
GOOD_ROWS = "00001,2020-01-01,10\n00001,2020-02-01,5\n00002,2020-01-05,7\n"

# name -> (file content (str or bytes) or a writer, extra CLI args, message fragment)
CASES = {
    "missing column": (f"customer_id,date,total\n1,2020-01-01,3\n", [],
                       "missing column(s) ['amount']; columns found: ['customer_id', 'date', 'total']; "
                       "did you mean --amount-col total?"),
    "misnamed column option": (HEADER + GOOD_ROWS, ["--amount-col", "value"],
                               "missing column(s) ['value']; columns found: ['customer_id', 'date', 'amount']; "
                               "did you mean --amount-col amount?"),
    "empty file": ("", [], "empty file"),
    "header only": (HEADER, [], "no transactions"),
    "unparseable date": (HEADER + "1,2020-13-45,3\n", [], "row 1: column 'date': cannot parse date"),
    "ambiguous date format": (HEADER + "1,2020-01-01,3\n1,01/02/2020,4\n", [],
                              "row 2: column 'date': cannot parse date (expected ISO 8601"),
    "aware and naive dates mixed": (HEADER + "1,2020-01-01T10:00:00+02:00,3\n1,2020-01-05,4\n", [],
                                    "mixes timezone-aware dates (row 1"),
    "missing amount": (HEADER + "1,2020-01-01,\n", [], "row 1: column 'amount': missing amount"),
    "non-numeric amount": (HEADER + "1,2020-01-01,12 EUR\n", [], "amount is not a finite number: '12 EUR'"),
    "missing customer id": (HEADER + ",2020-01-01,3\n", [], "row 1: column 'customer_id': missing customer id"),
    "wrong encoding": ("customer_id,date,amount\nJos\xe9,2020-01-01,3\n".encode("latin-1"), [],
                       "not valid utf-8 text (byte 0xe9); pass --encoding"),
    "unsupported file type": (None, [], "unsupported file type"),
    "missing file": (None, [], "file not found"),
    "cutoff before all data": (HEADER + GOOD_ROWS, ["--cutoff", "1990-01-01"],
                               "cutoff 1990-01-01 is before the first transaction (2020-01-01)"),
    "cutoff after all data": (HEADER + GOOD_ROWS, ["--cutoff", "2021-01-01"],
                              "cutoff 2021-01-01 is after the last transaction (2020-02-01)"),
    "horizon before all data": (HEADER + GOOD_ROWS, ["--horizon-days", "365"],
                                "cutoff minus horizon (2019-01-25) is before the first transaction"),
    "zero horizon": (HEADER + GOOD_ROWS, ["--horizon-days", "0"], "horizon_days: must be a whole number of days > 0"),
    "negative horizon": (HEADER + GOOD_ROWS, ["--horizon-days", "-5"], "horizon_days: must be a whole number of days > 0"),
    "horizon too long": (HEADER + GOOD_ROWS, ["--horizon-days", "10000000"],
                         "horizon_days: must be at most 3660 days (10 years), got 10000000"),
    "date out of range": (HEADER + GOOD_ROWS, ["--cutoff", "2262-04-12"],
                          "cutoff: date '2262-04-12' is outside the supported range 1677-09-22 to 2262-04-10"),
    "bad discount rate": (HEADER + GOOD_ROWS, ["--discount-rate", "1.5"], "discount_rate: must be in [0, 1)"),
    "no repeat purchases": (HEADER + "".join(f"{i:05d},2020-01-{1 + i % 28:02d},5\n" for i in range(40)), [],
                            "no customer has a repeat purchase"),
    "one customer only": (HEADER + "7,2020-01-01,3\n7,2020-01-10,4\n7,2020-02-01,5\n", [],
                          "cannot fit BG/NBD: need at least 10 customers, got 1"),
    "parquet with wrong dtypes": ("parquet", [], "row 1: column 'date': cannot parse date"),
    "missing discount column": (HEADER + GOOD_ROWS, ["--discount-col", "discount"],
                                "missing column(s) ['discount']"),
    "non-numeric discount": ("customer_id,date,amount,discount\n1,2020-01-01,3,10%\n", ["--discount-col", "discount"],
                             "row 1: column 'discount': discount is not a finite number >= 0: '10%'"),
    "negative arrears": ("customer_id,date,amount,arrears\n1,2020-01-01,3,-5\n", ["--arrears-col", "arrears"],
                         "row 1: column 'arrears': arrears is not a finite number >= 0: -5"),
    "decimal comma": ("customer_id;date;amount\n1;2020-01-01;29,33\n", [],
                      "amount is not a finite number: '29,33' (looks like a decimal comma: pass --decimal ','"),
    "duplicated column name": ("customer_id,date,amount,amount\n1,2020-01-01,1,2\n", [],
                               "duplicate column name(s) ['amount'] in the header"),
    "row longer than the header": (HEADER + "1,2020-01-01,1,234.50\n1,2020-01-02,5\n", [],
                                   "row 1 has more fields than the header (4 > 3)"),
    "truncated `.csv.gz`": ("gz", [], "cannot read file (EOFError"),
    "unknown encoding": (HEADER + GOOD_ROWS, ["--encoding", "no-such-enc"], "encoding: unknown text encoding 'no-such-enc'"),
    "unknown date directive": (HEADER + GOOD_ROWS, ["--date-format", "%Q"], "date_format: unknown strftime directive '%Q'"),
    "amount too large to net exactly": (HEADER + "1,2020-01-01,1e12\n", [],
                                        "row 1: column 'amount': amount 1000000000000.0 is too large for "
                                        "--amount-decimals 4"),
    "struct or list customer id": ("struct-parquet", [], "row 1: column 'customer_id': customer id must be text or "
                                                         "a whole number, not a struct or list"),
    "truncated Parquet": ("truncated-parquet", [], "cannot read file (ArrowInvalid"),
    "amounts whose sum could overflow": (HEADER + "".join(f"{i % 20},2020-01-{1 + i % 28:02d},9e11\n"
                                                          for i in range(600)), [],
                                         "the amounts add up to more than 2**62 units of 10**-4"),
    # --covariates FILE: ("covariates", file content) beside a good log of 12 customers
    "covariates: missing customer": (("covariates", "customer_id,age\n" + "".join(
        f"{i:05d},{30 + i}\n" for i in range(1, 12))), ["--covariates", "{covariates}"],
        "no covariates for customer '00012' (1 of 12 customers missing)"),
    "covariates: duplicate id": (("covariates", "customer_id,age\n00001,30\n" + "".join(
        f"{i:05d},{30 + i}\n" for i in range(1, 13))), ["--covariates", "{covariates}"],
        "row 2: column 'customer_id': duplicate customer id '00001' (also row 1)"),
    "covariates: text in a numeric column": (("covariates", "customer_id,age\n" + "".join(
        f"{i:05d},{'abc' if i == 3 else 30 + i}\n" for i in range(1, 13))), ["--covariates", "{covariates}"],
        "row 3 (customer '00003'): column 'age': not a finite number: 'abc'"),
    "covariates: no id column": (("covariates", "id,age\n1,30\n"), ["--covariates", "{covariates}"],
                                 "no customer id column 'customer_id'"),
    "covariates: missing file": (HEADER + GOOD_ROWS, ["--covariates", "nope.csv"], "covariate file not found"),
}


def _write(tmp_path, name: str, content):
    if isinstance(content, tuple):  # ("covariates", text): a good log of 12 customers and the covariate file
        (tmp_path / "covariates.csv").write_text(content[1])
        path = tmp_path / "log.csv"
        path.write_text(HEADER + "".join(f"{i:05d},2020-01-0{1 + i % 5},5\n{i:05d},2020-01-2{1 + i % 5},6\n"
                                         for i in range(1, 13)))
        return path
    if name == "unsupported file type":
        path = tmp_path / "log.xlsx"
        path.write_text("x")
        return path
    if name == "missing file":
        return tmp_path / "nope.csv"
    if content == "gz":
        import gzip

        path = tmp_path / "log.csv.gz"
        path.write_bytes(gzip.compress((HEADER + GOOD_ROWS * 200).encode())[:40])
        return path
    if content == "struct-parquet":  # ids as {"a": 1}: refused, not turned into text
        path = tmp_path / "log.parquet"
        pd.DataFrame({"customer_id": [{"a": 1}, {"a": 2}], "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                      "amount": [1.0, 2.0]}).to_parquet(path)
        return path
    if content == "truncated-parquet":  # the first half of a valid file
        path = tmp_path / "log.parquet"
        pd.DataFrame({"customer_id": [f"{i % 30:05d}" for i in range(3000)], "amount": 10.0,
                      "date": pd.date_range("2020-01-01", periods=3000, freq="h")}).to_parquet(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return path
    if content == "parquet":
        path = tmp_path / "log.parquet"
        pd.DataFrame({"customer_id": ["1", "2"], "date": [1.5, 2.5], "amount": [1.0, 2.0]}).to_parquet(path)
        return path
    path = tmp_path / "log.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_one_line_and_exit_2(tmp_path, new_store, name):
    content, extra, fragment = CASES[name]
    path = _write(tmp_path, name, content)
    args = {"--cutoff": "2020-01-25", "--horizon-days": "10"}
    for key, value in zip(extra[::2], extra[1::2]):
        args[key] = value.replace("{covariates}", str(tmp_path / "covariates.csv"))
    argv = ["train", "--transactions", str(path), "--tracking-uri", new_store(tmp_path)]
    for key, value in args.items():
        argv += [key, value]
    proc = cli(*argv)
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert fragment in err, err
    assert not (tmp_path / "mlruns").exists()  # nothing logged
    with closing(sqlite3.connect(tmp_path / "mlflow.db")) as db:  # nor in the store
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_docs_table_quotes_each_message():
    page = (REPO / "docs" / "inputs.md").read_text()
    section = page[page.index("## Bad input"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    for name, (_, _, fragment) in CASES.items():
        row = re.search(rf"^\| {re.escape(name)} \|.*$", section, re.M)
        assert row, f"docs/inputs.md bad-input table has no row {name!r}"
        assert fragment.replace("|", "\\|") in row.group(0), (name, row.group(0))
