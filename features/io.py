"""Read, validate and normalise a transaction log.

Every other module of :mod:`custscore.features` works on the *normalised* frame this
module returns: exactly the columns ``customer_id`` (str), ``ts`` (``datetime64[ns]``,
timezone-naive) and ``amount`` (float64), sorted by ``(customer_id, ts)``, plus the
optional ``discount`` and ``arrears`` (float64, >= 0) when the ColumnMap names them.
All problems with the user's data raise :class:`~custscore.errors.CustscoreError` with a
one-line message naming the file, the 1-based data row (header not counted), the column
and the offending value.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.column_hints import column_kind, suggest_options
from custscore.features.netting import checked_units
from custscore.features.row_keys import KeyedRows, row_label

#: Columns of a normalised transaction frame, in order.
TX_COLUMNS = ("customer_id", "ts", "amount")
#: Optional columns of a normalised frame (after TX_COLUMNS, in this order), present only
#: when the ColumnMap field of the same name is set.
OPTIONAL_TX_COLUMNS = ("discount", "arrears")
#: The byte order mark some spreadsheet programs write at the start of UTF-8 files.
BOM = "\ufeff"
#: Text read as a discount flag (any case, surrounding blanks ignored).
FLAG_TEXT = {"true": 1.0, "false": 0.0}

_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_VALUE_CHARS = 60

# Bounds of datetime64[ns]; dates outside them cannot be represented.
_TS_MIN = pd.Timestamp("1677-09-22")
_TS_MAX = pd.Timestamp("2262-04-11")


def _show(value: Any) -> str:
    """One-line, length-capped repr of an offending value."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)  # repr escapes newlines and tabs, so the message stays one line
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def _row_error(
    source: str, bad: np.ndarray, missing: np.ndarray, rows: np.ndarray, column: str,
    missing_what: str, bad_what: str, values: pd.Series,
) -> CustscoreError:
    """Error naming the first bad row, its value (unless missing) and how many rows are bad."""
    positions = np.flatnonzero(bad | missing)
    first = int(positions[0])
    msg = f"{source}: row {row_label(rows[first])}: column {column!r}: "
    msg += missing_what if missing[first] else f"{bad_what} {_show(values.iloc[first])}"
    if len(positions) > 1:
        msg += f" ({len(positions)} rows affected)"
    return CustscoreError(msg)


def _customer_ids(col: pd.Series, name: str, source: str, rows: np.ndarray) -> pd.Series:
    """Customer ids as str, leading zeros kept; integer-valued numbers lose no '.0'."""
    if col.dtype == object:
        nested = col.map(lambda v: isinstance(v, (dict, list, tuple, np.ndarray))).to_numpy(dtype=bool)
        if nested.any():
            raise _row_error(source, nested, np.zeros_like(nested), rows, name, "",
                             "customer id must be text or a whole number, not a struct or list:", col)
    missing = col.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
    if numeric and missing.any():
        raise _row_error(source, np.zeros_like(missing), missing, rows, name, "missing customer id", "", col)
    if numeric and pd.api.types.is_integer_dtype(col.dtype):
        ids = col.astype("int64").astype(str)
    elif numeric and pd.api.types.is_float_dtype(col.dtype):
        values = col.to_numpy(dtype="float64")
        whole = np.isfinite(values) & (np.floor(values) == values)
        ids = pd.Series(values.astype("int64"), index=col.index).astype(str) if whole.all() else col.astype(str)
    else:
        ids = (col.where(~missing, "") if missing.any() else col).astype(str)
    ids = ids.str.strip()
    empty = (ids == "").to_numpy() & ~missing
    if missing.any() or empty.any():
        raise _row_error(source, empty, missing, rows, name, "missing customer id", "empty customer id", col)
    return ids


# A UTC offset or Z after a time of day (a date alone never carries a zone).
_TZ_SUFFIX = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"


def _parse_text_dates(text: pd.Series, date_format: str | None, name: str, source: str,
                      rows: np.ndarray) -> pd.Series:
    """ISO 8601 (or ``date_format``) strings -> naive datetimes; NaT where unparseable.

    Timezone-aware values are converted to UTC (the day is the UTC day); a column mixing
    aware and naive values is refused, since the naive ones have no defined zone.
    """
    fmt = date_format or "ISO8601"
    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    except ValueError:  # "Mixed timezones detected": aware with several offsets, or aware + naive
        aware = text.astype(str).str.contains(_TZ_SUFFIX, regex=True).to_numpy() & text.notna().to_numpy()
        naive = ~aware & text.notna().to_numpy()
        if aware.any() and naive.any():
            first_aware, first_naive = row_label(rows[np.argmax(aware)]), row_label(rows[np.argmax(naive)])
            raise CustscoreError(
                f"{source}: column {name!r} mixes timezone-aware dates (row {first_aware}: "
                f"{_show(text.iloc[np.argmax(aware)])}) and naive dates (row {first_naive}: "
                f"{_show(text.iloc[np.argmax(naive)])}); use one convention")
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _timestamps(col: pd.Series, name: str, source: str, rows: np.ndarray,
                date_format: str | None = None) -> pd.Series:
    """Parse dates to naive datetime64[ns]; aware values are converted to UTC first.

    Text must be ISO 8601 (``YYYY-MM-DD`` with an optional time and offset) unless
    ``date_format`` (strftime codes, e.g. ``%d/%m/%Y``) is given: ambiguous forms such as
    ``01/02/2020`` are refused rather than guessed.
    """
    missing = col.isna().to_numpy()
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(col.dtype):
        parsed = col
    else:
        text = col
        if pd.api.types.is_numeric_dtype(col.dtype) and not missing.any():
            # e.g. 19970101 read as a number: parse its digits, not as epoch nanoseconds
            if pd.api.types.is_float_dtype(col.dtype) and (col == col.round()).all():
                text = col.astype("int64")
            text = text.astype(str)
            if date_format is None:
                date_format = "%Y%m%d"
        parsed = _parse_text_dates(text, date_format, name, source, rows)
    bad = parsed.isna().to_numpy() & ~missing
    if missing.any() or bad.any():
        expected = (f"format {date_format}" if date_format else
                    "ISO 8601 YYYY-MM-DD[ HH:MM:SS]; for other formats pass --date-format, e.g. %d/%m/%Y")
        raise _row_error(source, bad, missing, rows, name, "missing date",
                         f"cannot parse date (expected {expected}):", col)
    out_of_range = ((parsed < _TS_MIN) | (parsed > _TS_MAX)).to_numpy()
    if out_of_range.any():
        raise _row_error(source, out_of_range, np.zeros_like(out_of_range), rows, name, "", "date out of range 1677-2262:", col)
    return parsed.astype("datetime64[ns]")


#: An amount written with a decimal comma (``29,33``, ``-1234,5``).
_DECIMAL_COMMA = r"^\s*[-+]?\d+,\d+\s*$"
#: What to pass for such amounts (named in the error).
DECIMAL_COMMA_HINT = "looks like a decimal comma: pass --decimal ',' (and --csv-sep ';' if fields are separated by ';')"


def _amounts(col: pd.Series, name: str, source: str, rows: np.ndarray, columns: ColumnMap) -> pd.Series:
    """Amounts as float64; missing, non-numeric and infinite values are errors, and so are
    amounts too large for exact netting (:func:`custscore.features.netting.checked_units`).

    Text with ``columns.decimal`` ``,`` reads ``29,33`` as 29.33; with ``.`` such text is
    refused with a hint naming ``--decimal``.
    """
    text = not pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
    values = col.astype(object).where(col.isna(), col.astype(str).str.replace(",", ".", regex=False)) \
        if text and columns.decimal == "," else col
    try:
        numbers = _numbers(values, name, source, rows, "amount")
    except CustscoreError as exc:
        comma = text and columns.decimal == "." and col.astype(str).str.match(_DECIMAL_COMMA).fillna(False).any()
        if comma:
            raise CustscoreError(f"{exc} ({DECIMAL_COMMA_HINT})") from exc
        raise
    checked_units(numbers.to_numpy(), columns.amount_decimals, source, name, rows)
    return numbers


def _numbers(col: pd.Series, name: str, source: str, rows: np.ndarray, what: str,
             non_negative: bool = False, flags: bool = False) -> pd.Series:
    """Values of column ``what`` as float64; missing, non-numeric, infinite (and negative) ones are errors.

    With ``flags``, booleans and the text ``true``/``false`` (any case) read as 1/0.
    """
    missing = col.isna().to_numpy()
    if pd.api.types.is_bool_dtype(col.dtype) and not flags:
        bad = np.ones(len(col), dtype=bool)
        raise _row_error(source, bad, np.zeros_like(bad), rows, name, "", f"{what} must be a number, got", col)
    values = col
    if flags and (pd.api.types.is_bool_dtype(col.dtype) or not pd.api.types.is_numeric_dtype(col.dtype)):
        values = col.astype(object)
        text = values.astype(str).str.strip().str.lower()
        values = values.where(~text.isin(list(FLAG_TEXT)), text.map(FLAG_TEXT))
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    ok = np.isfinite(numbers.to_numpy())
    if non_negative:
        ok &= numbers.to_numpy() >= 0
    bad = ~ok & ~missing
    if missing.any() or bad.any():
        expected = "a finite number >= 0" if non_negative else "a finite number"
        raise _row_error(source, bad, missing, rows, name, f"missing {what}", f"{what} is not {expected}:", col)
    return numbers


def _optional_columns(frame: pd.DataFrame, columns: ColumnMap, source: str, rows: np.ndarray) -> dict[str, Any]:
    """The named optional columns (:data:`OPTIONAL_TX_COLUMNS`), validated: numbers >= 0.

    ``discount`` also takes booleans / ``true``-``false`` text as a flag.
    """
    return {what: _numbers(frame[getattr(columns, what)], getattr(columns, what), source, rows, what,
                           non_negative=True, flags=what == "discount").array
            for what in optional_columns(columns)}


def optional_columns(columns: ColumnMap) -> tuple[str, ...]:
    """Which of :data:`OPTIONAL_TX_COLUMNS` ``columns`` names (normalised names, in order).

    >>> optional_columns(ColumnMap(arrears="overdue"))
    ('arrears',)
    """
    return tuple(what for what in OPTIONAL_TX_COLUMNS if getattr(columns, what) is not None)


def optional_column_names(columns: ColumnMap) -> tuple[str, ...]:
    """The user's names of the optional columns ``columns`` names (discount, then arrears)."""
    return tuple(getattr(columns, what) for what in optional_columns(columns))


def check_columns(found: Sequence[Any], needed: Sequence[str], source: str, unique: bool = True,
                  roles: Optional[Mapping[str, str]] = None, types: Optional[Mapping[str, Any]] = None) -> None:
    """Raise unless every ``needed`` name is among ``found`` (and, if ``unique``, only once).

    Shared by every reader (pandas, Arrow, DuckDB, Spark) and by the feature functions, so a
    missing column reads the same whatever found it. ``roles`` (needed name -> ColumnMap
    field) adds the option probably meant (``did you mean --amount-col total?``, see
    :mod:`custscore.features.column_hints`), helped by ``types`` (found name -> type) if given.
    """
    found = list(found)
    missing = [c for c in needed if c not in found]
    if missing:
        msg = f"{source}: missing column(s) {missing}; columns found: {[str(c) for c in found]}"
        if roles:
            kinds = {str(name): column_kind(t) for name, t in (types or {}).items()}
            hints = suggest_options([(roles[c], c) for c in missing if c in roles], found, kinds,
                                    taken=[c for c in needed if c not in missing])
            msg += f"; did you mean {' '.join(hints)}?" if hints else ""
        raise CustscoreError(msg)
    duplicated = [c for c in needed if found.count(c) > 1] if unique else []
    if duplicated:
        raise CustscoreError(f"{source}: duplicate column(s) {duplicated}")


def check_log_columns(found: Sequence[Any], columns: ColumnMap, source: str,
                      types: Optional[Mapping[str, Any]] = None) -> None:
    """:func:`check_columns` for a transaction log read with ``columns``: every column of
    :func:`log_column_names`, a missing one with the option probably meant."""
    names = log_column_names(columns)
    fields = ("customer", "date", *(("amount",) if columns.has_amounts else ()), *optional_columns(columns))
    check_columns(found, names, source, roles=dict(zip(names, fields)), types=types)


def log_column_names(columns: ColumnMap) -> tuple[str, ...]:
    """The user's names of the columns a log must have: customer, date, amount (unless
    ``columns`` has none), then the optional columns it names."""
    amount = (columns.amount,) if columns.has_amounts else ()
    return (columns.customer, columns.date, *amount, *optional_column_names(columns))


def _normalise(frame: pd.DataFrame, columns: ColumnMap, source: str, rows: np.ndarray) -> pd.DataFrame:
    check_log_columns(frame.columns, columns, source, types=frame.dtypes.to_dict())
    if len(frame) == 0:
        raise CustscoreError(f"{source}: no transactions")
    out = pd.DataFrame(
        {
            "customer_id": _customer_ids(frame[columns.customer], columns.customer, source, rows).array,
            "ts": _timestamps(frame[columns.date], columns.date, source, rows, columns.date_format).array,
            "amount": (_amounts(frame[columns.amount], columns.amount, source, rows, columns).array
                       if columns.has_amounts else np.zeros(len(frame))),
            **_optional_columns(frame, columns, source, rows),
        }
    )
    # Amount as the last key: same-day sums then add up in one order whatever the row
    # order of the file, so scores are bit-identical for shuffled inputs.
    out = out.sort_values(["customer_id", "ts", "amount"], kind="stable").reset_index(drop=True)
    return out


def normalise_transactions(
    frame: pd.DataFrame, columns: ColumnMap = ColumnMap(), source: str = "transactions"
) -> pd.DataFrame:
    """Validate a raw transaction log and return a new normalised frame.

    Output: columns ``customer_id`` (str, leading zeros kept, surrounding blanks
    stripped), ``ts`` (``datetime64[ns]``, naive; aware inputs converted to UTC),
    ``amount`` (float64; negative values, i.e. returns, are allowed; 0.0 on every row when
    ``columns.amount`` is None, a log without amounts), sorted by
    ``(customer_id, ts, amount)`` with a fresh index, then ``discount`` and ``arrears``
    (float64 >= 0) when ``columns`` names them. The input frame is not modified.
    Numeric date columns are read as digits (``19970101`` -> 1997-01-01), not as epochs.

    Errors name ``source``, the 1-based data row, the column and the value.

    >>> raw = pd.DataFrame({"customer_id": ["007", "007", "01"],
    ...                     "date": ["1997-01-02", "1997-01-01 10:30", "1997-01-05"],
    ...                     "amount": ["3.5", 2, -1]})
    >>> out = normalise_transactions(raw)
    >>> out["customer_id"].tolist(), out["ts"].dt.strftime("%Y-%m-%d %H:%M").tolist(), out["amount"].tolist()
    (['007', '007', '01'], ['1997-01-01 10:30', '1997-01-02 00:00', '1997-01-05 00:00'], [2.0, 3.5, -1.0])
    """
    return _normalise(frame, columns, source, np.arange(1, len(frame) + 1))


def normalise_keyed(frame: pd.DataFrame, columns: ColumnMap, source: str) -> pd.DataFrame:
    """:func:`normalise_transactions` of a database result: errors name a row by its number
    in the result and its customer id (:class:`~custscore.features.row_keys.KeyedRows`)."""
    check_log_columns(frame.columns, columns, source, types=frame.dtypes.to_dict())
    rows = KeyedRows(np.arange(1, len(frame) + 1), frame[columns.customer], columns.customer)
    return _normalise(frame, columns, source, rows)


def _suffix_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    supported = ", ".join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)
    raise CustscoreError(f"{path}: unsupported file type (expected one of {supported})")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"


def _read_csv(path: Path, columns: ColumnMap, sep: str) -> pd.DataFrame:
    # Ids and dates as text: keeps leading zeros and lets the date parser see the digits;
    # amounts too when they carry a decimal comma (features.io parses them). Blank lines
    # are kept (as all-NaN rows) so row numbers match the file. A UTF-8 BOM is skipped.
    text = [columns.customer, columns.date] + ([columns.amount] if columns.has_amounts and columns.decimal == ","
                                               else [])
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)  # a row longer than the header
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype={name: str for name in text},
            skip_blank_lines=False,
            index_col=False,
            encoding="utf-8-sig" if codecs.lookup(columns.encoding).name == "utf-8" else columns.encoding,
        )
    return frame.rename(columns=lambda name: name.lstrip(BOM) if isinstance(name, str) else name)


def header_fields(line: str) -> tuple[list[str], str]:
    """(column names, delimiter) of a CSV header line: comma, or ``;``/tab when the line holds one."""
    line = line.lstrip(BOM)
    names = next(csv.reader([line]), [""])
    if len(names) == 1:
        for sep in (";", "\t"):
            if sep in names[0]:
                return next(csv.reader([line], delimiter=sep)), sep
    return names, ","


def csv_separator(path: Path, columns: ColumnMap) -> str:
    """The field separator of the CSV at ``path``: ``columns.csv_sep``, else sniffed from its
    header line (:func:`header_fields`); comma when the first line cannot be read (the
    reader then says why). Shared by every engine."""
    if columns.csv_sep is not None:
        return columns.csv_sep
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=columns.encoding, newline="") as handle:
            line = handle.readline()
    except Exception:  # decoding, truncated gzip, ...: the reader reports it
        return ","
    return header_fields(line.rstrip("\r\n"))[1]


def _open_text(path: Path, columns: ColumnMap):
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    return opener(path, "rt", encoding=columns.encoding, newline="")


def check_csv_shape(path: Path, columns: ColumnMap, sep: str) -> None:
    """Refuse a CSV whose header repeats a name (pandas would read ``amount.1``), naming it.
    Shared by the pandas and DuckDB readers."""
    try:
        with _open_text(path, columns) as handle:
            names = next(csv.reader(handle, delimiter=sep), [])
    except Exception:  # decoding, truncated gzip, ...: the reader reports it
        return
    names = [n.lstrip(BOM) if i == 0 else n for i, n in enumerate(names)]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CustscoreError(f"{path}: duplicate column name(s) {duplicated} in the header; rename them")


def longer_row_error(path: Path, columns: ColumnMap, sep: str) -> CustscoreError | None:
    """The error for the first data row with more fields than the header, or None."""
    try:
        with _open_text(path, columns) as handle:
            reader = csv.reader(handle, delimiter=sep)
            width = len(next(reader, []))
            for row_number, fields in enumerate(reader, start=1):
                if len(fields) > width:
                    return CustscoreError(f"{path}: row {row_number} has more fields than the header "
                                          f"({len(fields)} > {width}); quote values that hold {sep!r} "
                                          "(e.g. an unquoted 1,234.50)")
    except Exception:
        return None
    return None


def read_table_file(path: Path, read_csv: Callable[[Path], pd.DataFrame], encoding: str,
                    what: str = "file") -> pd.DataFrame:
    """A CSV (read by ``read_csv``) or Parquet file by its suffix; every reader failure one line.

    Empty, undecodable (in ``encoding``), truncated or corrupt files (``.gz``, Parquet)
    become a :class:`CustscoreError` naming ``path`` (``what`` names the kind of file).
    """
    try:
        return read_csv(path) if _suffix_kind(path) == "csv" else pd.read_parquet(path)
    except CustscoreError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise CustscoreError(f"{path}: empty {what}") from exc
    except UnicodeDecodeError as exc:
        bad_byte = exc.object[exc.start:exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
        raise CustscoreError(f"{path}: not valid {encoding} text (byte 0x{bad_byte}); pass --encoding "
                             "with the file's encoding (e.g. latin-1, cp1252)") from exc
    except (OSError, ValueError, UnicodeError, EOFError, zlib.error, pd.errors.ParserError,
            pd.errors.ParserWarning) as exc:  # truncated or corrupt .gz / Parquet included
        raise CustscoreError(f"{path}: cannot read {what} ({_one_line(exc)})") from exc
    except Exception as exc:  # pyarrow errors and other reader failures
        if type(exc).__module__.startswith(("pyarrow", "fastparquet")):
            raise CustscoreError(f"{path}: cannot read {what} ({_one_line(exc)})") from exc
        raise


def read_transactions(path: str | os.PathLike, columns: ColumnMap = ColumnMap()) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet (``.parquet``, ``.pq``) log.

    CSV files are separated by ``columns.csv_sep``, or by default comma-separated; if that
    yields a single column whose header holds a ``;`` or a tab, the file is re-read with
    that delimiter. A UTF-8 byte order mark is skipped; CRLF line ends are fine. Blank lines are skipped but
    counted, so error row numbers are data rows as in the file. Returns
    :func:`normalise_transactions` of the content.
    """
    path = Path(path)
    if not path.exists():
        raise CustscoreError(f"{path}: file not found")

    def read_csv(path: Path) -> pd.DataFrame:
        sep = csv_separator(path, columns)
        check_csv_shape(path, columns, sep)
        try:
            return _read_csv(path, columns, sep)
        except (pd.errors.ParserError, pd.errors.ParserWarning):
            longer = longer_row_error(path, columns, sep)
            if longer is not None:
                raise longer from None
            raise

    kind = _suffix_kind(path)
    frame = read_table_file(path, read_csv, columns.encoding)
    rows = np.arange(1, len(frame) + 1)
    if kind == "csv" and len(frame):
        blank = frame.isna().all(axis=1).to_numpy()
        if blank.any():
            keep = ~blank
            frame = frame.loc[keep]
            rows = rows[keep]
    return _normalise(frame, columns, str(path), rows)
