"""Tests for custscore.features.io: normalisation and every user-error message."""
from __future__ import annotations

import doctest
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.io import TX_COLUMNS, normalise_transactions, read_transactions


def _raw(**overrides) -> pd.DataFrame:
    data = {
        "customer_id": ["00002", "00001", "00001"],
        "date": ["1997-01-03", "1997-01-02 10:00", "1997-01-01"],
        "amount": [1.5, 2.0, -3.0],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def _error(func, *args, **kwargs) -> str:
    with pytest.raises(CustscoreError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_normalise_columns_dtypes_order_and_leading_zeros():
    raw = _raw()
    before = raw.copy()
    out = normalise_transactions(raw)
    pd.testing.assert_frame_equal(raw, before)  # input untouched
    assert tuple(out.columns) == TX_COLUMNS
    assert out["customer_id"].tolist() == ["00001", "00001", "00002"]
    assert all(type(v) is str for v in out["customer_id"])
    assert out["ts"].dtype == "datetime64[ns]"
    assert out["ts"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-02 10:00"), pd.Timestamp("1997-01-03")]
    assert out["amount"].dtype == "float64"
    assert out["amount"].tolist() == [-3.0, 2.0, 1.5]
    assert out.index.tolist() == [0, 1, 2]


def test_normalise_user_column_names_and_extra_columns():
    raw = pd.DataFrame({"cust": ["7"], "when": ["2020-05-01"], "value": ["12.5"], "other": [1]})
    out = normalise_transactions(raw, ColumnMap(customer="cust", date="when", amount="value"))
    assert tuple(out.columns) == TX_COLUMNS
    assert out.iloc[0].tolist() == ["7", pd.Timestamp("2020-05-01"), 12.5]


def test_normalise_integer_ids_and_numeric_dates():
    raw = pd.DataFrame({"customer_id": [12, 3], "date": [19970101, 19970215], "amount": [1, 2]})
    out = normalise_transactions(raw)
    assert out["customer_id"].tolist() == ["12", "3"]
    assert out["ts"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-02-15")]
    floats = normalise_transactions(raw.astype({"customer_id": "float64"}))
    assert floats["customer_id"].tolist() == ["12", "3"]  # no ".0"


def test_normalise_timezones_converted_to_utc_naive():
    aware = pd.DataFrame(
        {
            "customer_id": ["a", "a"],
            "date": pd.to_datetime(["2020-01-01 01:00", "2020-01-02 12:00"]).tz_localize("Europe/Berlin"),
            "amount": [1.0, 1.0],
        }
    )
    out = normalise_transactions(aware)
    assert out["ts"].dt.tz is None
    assert out["ts"].tolist() == [pd.Timestamp("2020-01-01 00:00"), pd.Timestamp("2020-01-02 11:00")]
    strings = _raw(date=["2020-01-01T23:30:00-02:00", "2020-01-01T05:00:00Z", "2020-06-01 05:00+01:00"])
    out = normalise_transactions(strings)
    # sorted by (customer_id, ts): "00001" has rows 2 and 3, "00002" row 1
    assert out["ts"].tolist() == [pd.Timestamp("2020-01-01 05:00"), pd.Timestamp("2020-06-01 04:00"),
                                  pd.Timestamp("2020-01-02 01:30")]


def test_mixing_aware_and_naive_dates_is_refused():
    message = _error(normalise_transactions, _raw(date=["2020-01-01T23:30:00-02:00", "2020-01-01", "2020-01-01 05:00"]))
    assert "mixes timezone-aware dates (row 1" in message and "naive dates (row 2" in message


def test_ambiguous_date_format_is_refused_unless_declared():
    raw = _raw(date=["2020-01-01", "01/02/2020", "2020-01-03"])
    message = _error(normalise_transactions, raw)
    assert "row 2" in message and "'01/02/2020'" in message and "--date-format" in message
    from custscore.config import ColumnMap
    out = normalise_transactions(_raw(date=["01/02/2020", "31/12/2020", "05/01/2021"]),
                                 ColumnMap(date_format="%d/%m/%Y"))
    assert sorted(out["ts"].dt.strftime("%Y-%m-%d")) == ["2020-02-01", "2020-12-31", "2021-01-05"]


def test_normalise_stable_sort_for_equal_keys():
    raw = pd.DataFrame({"customer_id": ["b", "a", "a"], "date": ["2020-01-01"] * 3, "amount": [1.0, 2.0, 3.0]})
    assert normalise_transactions(raw)["amount"].tolist() == [2.0, 3.0, 1.0]


def test_error_missing_columns_names_them_and_lists_found():
    message = _error(normalise_transactions, pd.DataFrame({"customer_id": ["a"], "when": ["2020-01-01"]}))
    assert "'date'" in message and "'amount'" in message
    assert "columns found" in message and "when" in message


def test_error_empty_frame():
    message = _error(normalise_transactions, _raw().iloc[:0])
    assert "no transactions" in message


@pytest.mark.parametrize("bad", [None, "", "   "])
def test_error_missing_or_empty_customer_id(bad):
    message = _error(normalise_transactions, _raw(customer_id=["00001", bad, "00002"]))
    assert "row 2" in message and "'customer_id'" in message and "customer id" in message


def test_error_unparseable_date_names_row_column_value():
    message = _error(normalise_transactions, _raw(date=["1997-01-01", "1997-01-02", "not a date"]), source="log.csv")
    assert message.startswith("log.csv: row 3:")
    assert "'date'" in message and "'not a date'" in message


def test_error_missing_date():
    message = _error(normalise_transactions, _raw(date=["1997-01-01", None, "1997-01-02"]))
    assert "row 2" in message and "'date'" in message and "missing" in message


def test_error_value_with_newline_stays_one_line():
    message = _error(normalise_transactions, _raw(date=["1997-01-01", "bad\ndate", "1997-01-02"]))
    assert "row 2" in message and "'bad\\ndate'" in message


def test_error_non_numeric_amount_names_row_column_value():
    message = _error(normalise_transactions, _raw(amount=["1.0", "2,5", "3"]))
    assert "row 2" in message and "'amount'" in message and "'2,5'" in message


def test_error_nan_amount():
    message = _error(normalise_transactions, _raw(amount=[1.0, 2.0, np.nan]))
    assert "row 3" in message and "'amount'" in message and "missing" in message


def test_error_counts_affected_rows():
    message = _error(normalise_transactions, _raw(amount=["x", "2", "y"]))
    assert "row 1" in message and "2 rows affected" in message


# ----------------------------------------------------------------------------- files


CSV = "customer_id,date,amount\n00001,1997-01-01,10.0\n00002,19970102,5\n00001,1997-01-03 10:00,-2.5\n"


def test_read_csv_keeps_leading_zeros(tmp_path: Path):
    path = tmp_path / "log.csv"
    path.write_text(CSV)
    out = read_transactions(path)
    assert out["customer_id"].tolist() == ["00001", "00001", "00002"]
    assert out["ts"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-03 10:00"), pd.Timestamp("1997-01-02")]
    assert out["amount"].tolist() == [10.0, -2.5, 5.0]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_read_csv_semicolon_and_tab_fallback(tmp_path: Path, sep: str):
    path = tmp_path / "log.txt"
    path.write_text(CSV.replace(",", sep))
    assert read_transactions(path)["customer_id"].tolist() == ["00001", "00001", "00002"]


def test_read_csv_gz_and_parquet(tmp_path: Path):
    gz = tmp_path / "log.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(CSV)
    from_csv = read_transactions(gz)
    pq = tmp_path / "log.parquet"
    pd.DataFrame({"cid": ["00001", "00002", "00001"], "d": pd.to_datetime(["1997-01-01 00:00", "1997-01-02 00:00", "1997-01-03 10:00"]),
                  "a": [10.0, 5.0, -2.5]}).to_parquet(pq)
    from_pq = read_transactions(pq, ColumnMap(customer="cid", date="d", amount="a"))
    pd.testing.assert_frame_equal(from_csv, from_pq, check_dtype=False)


def test_read_csv_row_numbers_count_blank_lines(tmp_path: Path):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date,amount\na,2020-01-01,1\n\nb,2020-01-02,oops\n")
    message = _error(read_transactions, path)
    assert message.startswith(f"{path}: row 3:") and "'oops'" in message


def test_read_errors(tmp_path: Path):
    assert "file not found" in _error(read_transactions, tmp_path / "nope.csv")
    bad_suffix = tmp_path / "log.xlsx"
    bad_suffix.write_text("x")
    assert "unsupported file type" in _error(read_transactions, bad_suffix)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert _error(read_transactions, empty) == f"{empty}: empty file"
    header = tmp_path / "header.csv"
    header.write_text("customer_id,date,amount\n")
    assert _error(read_transactions, header) == f"{header}: no transactions"
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,date,amount\n1,2020-01-01,1\n")
    message = _error(read_transactions, wrong)
    assert "'customer_id'" in message and "columns found" in message
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    assert "cannot read file" in _error(read_transactions, broken)


# ----------------------------------------------------------------------------- package


def test_doctests_of_features_modules():
    import custscore.features.activity as activity
    import custscore.features.coded_arrays as coded_arrays
    import custscore.features.engines as engines
    import custscore.features.io as io
    import custscore.features.lookup as lookup
    import custscore.features.periods as periods
    import custscore.features.rfm as rfm
    import custscore.features.runs as runs

    for module in (io, periods, rfm, activity, coded_arrays, engines, runs, lookup):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_features_import_boundaries():
    code = (
        "import sys, custscore.features, custscore.features.cdnow as c; c.load_cdnow_sample();"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'lifetimes'"
        " or m.startswith(('custscore.training', 'custscore.serving'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


SPREADSHEET = "\ufeffcustomer_id;date;amount\r\n00001;2020-01-01;29,33\r\n00001;2020-01-05;10\r\n00002;2020-01-02;-1,5\r\n" \
              "00002;2020-01-02;3,25\r\n"
PLAIN = "customer_id,date,amount\n00001,2020-01-01,29.33\n00001,2020-01-05,10\n00002,2020-01-02,-1.5\n" \
        "00002,2020-01-02,3.25\n"


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_spreadsheet_csv_with_bom_crlf_semicolons_and_decimal_commas_reads_like_the_plain_csv(tmp_path, engine):
    from custscore.features.engines import open_engine

    sheet, plain = tmp_path / "sheet.csv", tmp_path / "plain.csv"
    sheet.write_bytes(SPREADSHEET.encode("utf-8"))
    plain.write_text(PLAIN)
    expected = open_engine(plain, ColumnMap(), "pandas").customer_features(pd.Timestamp("2020-01-10"), "D")
    got = open_engine(sheet, ColumnMap(csv_sep=";", decimal=","), engine).customer_features(
        pd.Timestamp("2020-01-10"), "D")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.loc["00002", "frequency"] == 0 and got.loc["00001", "monetary_value"] == 10.0
    # without the options: the error points to them
    message = _error(open_engine, sheet, ColumnMap(), engine)
    assert "amount is not a finite number: '29,33'" in message
    assert "looks like a decimal comma: pass --decimal ','" in message and "--csv-sep ';'" in message


def test_bom_is_skipped_in_header_names_and_csv_options_are_checked(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffcustomer_id,date,amount\r\n1,2020-01-01,3\r\n".encode("utf-8"))
    assert read_transactions(path)["amount"].tolist() == [3.0]
    assert "csv_sep: must be one character" in _error(ColumnMap, csv_sep=";;")
    assert "decimal: must be one of ['.', ',']" in _error(ColumnMap, decimal=";")
    assert "csv_sep and decimal must differ" in _error(ColumnMap, csv_sep=",", decimal=",")


BAD_FILES = {
    "duplicate column": ("dup.csv", "customer_id,date,amount,amount\n1,2020-01-01,1,2\n",
                         "duplicate column name(s) ['amount'] in the header"),
    "longer row first": ("extra.csv", "customer_id,date,amount\n1,2020-01-01,1,234.50\n2,2020-01-02,5\n",
                         "row 1 has more fields than the header (4 > 3)"),
    "longer row later": ("extra2.csv", "customer_id,date,amount\n2,2020-01-02,5\n1,2020-01-01,1,234.50\n",
                         "row 2 has more fields than the header (4 > 3)"),
}


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_csv_shapes_name_the_column_or_row(tmp_path, engine, case):
    from custscore.features.engines import open_engine

    name, content, fragment = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(content)
    assert fragment in _error(open_engine, path, ColumnMap(), engine)


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_truncated_gzip_and_parquet_and_nested_ids_are_one_line_errors(tmp_path, engine):
    from custscore.features.engines import open_engine

    good = tmp_path / "ok.csv.gz"
    with gzip.open(good, "wt") as handle:
        handle.write("customer_id,date,amount\n" + "".join(f"{i},2020-01-0{1 + i % 9},5\n" for i in range(500)))
    truncated = tmp_path / "t.csv.gz"
    truncated.write_bytes(good.read_bytes()[:60])
    frame = pd.DataFrame({"customer_id": ["1"] * 50, "date": pd.date_range("2020-01-01", periods=50), "amount": 1.0})
    frame.to_parquet(tmp_path / "p.parquet")
    (tmp_path / "t.parquet").write_bytes((tmp_path / "p.parquet").read_bytes()[:300])
    for path in (truncated, tmp_path / "t.parquet"):
        assert "cannot read file" in _error(open_engine, path, ColumnMap(), engine)
    nested = tmp_path / "nested.parquet"
    pd.DataFrame({"customer_id": [{"a": 1}, {"a": 2}], "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                  "amount": [1.0, 2.0]}).to_parquet(nested)
    assert "customer id must be text or a whole number, not a struct or list" in _error(
        open_engine, nested, ColumnMap(), engine)


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_ids_differing_by_surrounding_blanks_are_one_customer_on_every_engine(tmp_path, engine):
    from custscore.features.engines import open_engine, rfm_table

    path = tmp_path / "ids.parquet"
    pd.DataFrame({"customer_id": [" 1 ", "1", "2"], "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-05"]),
                  "amount": [5.0, 6.0, 7.0]}).to_parquet(path)
    got = rfm_table(open_engine(path, ColumnMap(), engine), "2020-03-01")
    assert got.index.tolist() == ["1", "2"] and got["frequency"].tolist() == [1, 0]


def test_bad_options_and_a_292_year_span_are_one_line_errors(tmp_path):
    assert "encoding: unknown text encoding 'no-such-enc'" in _error(ColumnMap, encoding="no-such-enc")
    assert "date_format: unknown strftime directive '%Q'" in _error(ColumnMap, date_format="%Q")
    assert ColumnMap(date_format="%d/%m/%Y %H:%M:%S%z").date_format
    from custscore.config import parse_date
    from custscore.features.engines import open_engine

    assert "outside the supported range 1677-09-22 to 2262-04-10" in _error(parse_date, "2262-04-12", "as_of")
    path = tmp_path / "span.csv"
    path.write_text("customer_id,date,amount\n1,1677-09-22,1\n2,2262-04-09,1\n")
    features = open_engine(path, ColumnMap(), "pandas").customer_features(pd.Timestamp("2262-04-10"), "D")
    assert features.loc["1", "tenure_days"] == (pd.Timestamp("2262-04-10") - pd.Timestamp("1677-09-22")).days == 213_501


@pytest.mark.slow
def test_a_spreadsheet_export_of_cdnow_trains_with_csv_sep_and_decimal(tmp_path, trained, new_store):
    """Issue #14: a ``;``-separated, decimal-comma CSV with a BOM and CRLF trains with
    ``--csv-sep ';' --decimal ','`` to the very BG/NBD fit of the plain CSV (the session's model)."""
    from mlflow.tracking import MlflowClient

    from conftest import cli
    from custscore.features.cdnow import load_cdnow_sample

    log = load_cdnow_sample()
    sheet = tmp_path / "cdnow_sheet.csv"
    text = log.to_csv(sep=";", decimal=",", index=False, lineterminator="\r\n")
    sheet.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert "29,33" in text
    config = trained["config"]
    uri = new_store(tmp_path)
    proc = cli("train", "--transactions", str(sheet), "--cutoff", "1997-09-30", "--holdout-end", "1998-06-30",
               "--horizon-days", "90", "--time-unit", config.time_unit, "--csv-sep", ";", "--decimal", ",",
               "--tracking-uri", uri, "--experiment", "sheet")
    assert proc.returncode == 0, proc.stderr
    run_id = next(line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("run id:"))
    params = MlflowClient(tracking_uri=uri).get_run(run_id).data.params
    for name, value in trained["result"].scorer.purchase_model.params_.items():
        assert float(params[name]) == pytest.approx(value, rel=1e-12), name
