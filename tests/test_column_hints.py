"""A missing column's error names the option the user probably meant, the same on every engine.

The expected hints are what a person reading each header would type (written by hand),
not the code's output.
"""
from __future__ import annotations

import pandas as pd
import pytest

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.duckdb_engine import DuckDBEngine
from custscore.features.io import read_transactions

VALUES = ["1", "2020-01-01", "3", "0"]


def _error(read, path, columns=ColumnMap()) -> str:
    with pytest.raises(CustscoreError) as info:
        read(path, columns)
    return str(info.value)


@pytest.mark.parametrize("header, columns, hint", [
    ("customer_id,date,total", ColumnMap(), "did you mean --amount-col total?"),
    ("customer_id,date,revenue", ColumnMap(), "did you mean --amount-col revenue?"),
    ("customer_id,date,Sales", ColumnMap(), "did you mean --amount-col Sales?"),
    ("customer_id,date,amt", ColumnMap(), "did you mean --amount-col amt?"),
    ("client,day,price", ColumnMap(), "did you mean --customer-col client --date-col day --amount-col price?"),
    ("user_id,order_date,value", ColumnMap(), "did you mean --customer-col user_id --date-col order_date "
                                              "--amount-col value?"),
    ("account,timestamp,amount", ColumnMap(), "did you mean --customer-col account --date-col timestamp?"),
    ("customerid,date,amount", ColumnMap(), "did you mean --customer-col customerid?"),  # a typo: difflib
    ("customer_id,date,amount", ColumnMap(amount="value"), "did you mean --amount-col amount?"),  # a wrong option
    ("customer_id,date,amount,promo", ColumnMap(discount="discount"), "did you mean --discount-col promo?"),
])
def test_hint_names_the_option_on_pandas_and_duckdb(tmp_path, header, columns, hint):
    path = tmp_path / "log.csv"
    path.write_text(header + "\n" + ",".join(VALUES[:header.count(",") + 1]) + "\n")
    expected = _error(read_transactions, path, columns)
    assert expected.endswith("; " + hint), expected
    assert expected.startswith(f"{path}: missing column(s) ")
    assert _error(DuckDBEngine, path, columns) == expected


@pytest.mark.parametrize("header", ["a,b,c", "customer_id,date,note_text"])
def test_no_hint_when_nothing_looks_like_the_column(tmp_path, header):
    path = tmp_path / "log.csv"
    path.write_text(header + "\n1,2020-01-01,hello\n")
    message = _error(read_transactions, path)
    assert "missing column(s)" in message and "did you mean" not in message
    assert _error(DuckDBEngine, path) == message


def test_a_column_already_read_for_another_field_is_not_offered(tmp_path):
    path = tmp_path / "log.csv"  # "date" is the date column; the amount is not there at all
    path.write_text("customer_id,date\n1,2020-01-01\n")
    assert "did you mean" not in _error(read_transactions, path)


def _parquet(tmp_path, **columns) -> str:
    path = tmp_path / "log.parquet"
    pd.DataFrame(columns).to_parquet(path)
    return path


def test_parquet_types_pick_and_exclude_columns_on_every_engine(tmp_path):
    ids, days = ["1", "2"], pd.to_datetime(["2020-01-01", "2020-01-02"])
    # no name matches; "x" is the only number, so it is the amount
    path = _parquet(tmp_path, customer_id=ids, date=days, note=["a", "b"], x=[1.5, 2.0])
    messages = {_error(read, path) for read in (read_transactions, DuckDBEngine)}
    assert len(messages) == 1
    assert messages.pop().endswith("; did you mean --amount-col x?")
    # "value_date" holds the word "value", but it is a date column: never an amount
    path = _parquet(tmp_path, customer_id=ids, date=days, value_date=days)
    for read in (read_transactions, DuckDBEngine):
        assert "did you mean" not in _error(read, path)
    # the only date-typed column is the date
    path = _parquet(tmp_path, customer_id=ids, when=days, amount=[1.0, 2.0])
    for read in (read_transactions, DuckDBEngine):
        assert _error(read, path).endswith("; did you mean --date-col when?")
