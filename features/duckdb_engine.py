"""The DuckDB feature engine: large CSV/Parquet logs without loading them into pandas.

DuckDB does the heavy, memory-hungry part out of core (with a memory limit, spilling
to a temporary folder), in two passes over the log: one streaming check of every row,
then the per-day merge straight from the parsed rows (``days``: one row per customer and
day, netted exactly). A CSV is read with its amounts and ISO dates typed by DuckDB's CSV
reader when it can (dates in the strict format of the first one, so a column it reads has
no zone; others, e.g. with UTC offsets, are parsed as text).

Two modes, chosen from the row count of the check pass (:class:`DuckDBSettings`'
``in_memory_bytes``):

- in memory (the log fits): the parsed rows are fetched ONCE, grouped by customer (sorted by a
  hash of the id and the day, or in file order for a customer-grouped Parquet file), then merged
  per day and put in id order in numpy into the coded arrays
  (:class:`custscore.features.coded_arrays.CodedArrays`, :meth:`DuckDBEngine._grouped_rows`);
  DuckDB keeps no table and hands its memory back, and every question is answered from the
  arrays;
- out of core: the per-day merge is a DuckDB table (``days``). ``rfm_summary`` is one sorted
  query over it added up by :func:`custscore.features.rfm.btyd_from_runs`. For the other
  feature questions customers get an integer code in ``customer_id`` order on first use, so
  the per-day purchases are a compact ``(code, date, amount)`` table.

Either way the features are answered chunk by chunk (contiguous customer-code ranges of at
most ``rows_per_chunk`` purchase rows) by the *same* pure functions the pandas engine uses
(:class:`custscore.features.coded_engine.CodedPurchasesEngine`), so the engines agree to
the last digit by construction and each feature is defined once.

Validation: every row is checked in SQL; if any is wrong, the offending rows (with
their row numbers) go through :mod:`custscore.features.io`'s own validator, so the
one-line message is the pandas engine's word for word. Differences: CSV row numbers do
not count blank lines, and a few ISO 8601 forms pandas accepts (``19970105``,
``1997-01-05T10``) are refused with a message pointing
to ``--engine pandas``. A zone name after the time (``Europe/Paris``, ``EST``, ``UTC``) is
refused as pandas refuses it, though DuckDB's casts would read (or silently drop) it.
"""
from __future__ import annotations

import contextlib
import mmap
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custscore.config import DAYS_PER_UNIT, ColumnMap, parse_date
from custscore.errors import CustscoreError
from custscore.features.coded_arrays import CodedArrays, grouped_days
from custscore.features.coded_engine import CodedPurchasesEngine
from custscore.features.days import day_dates as _dates, day_number_of
from custscore.features.engines import in_memory_rows
from custscore.features.io import (_TS_MAX, _TS_MIN, _TZ_SUFFIX, FLAG_TEXT, _normalise, _one_line, _show, _suffix_kind,
                                   check_csv_shape, check_log_columns, csv_separator,
                                   longer_row_error, optional_columns)
from custscore.features.memory import release_free_memory
from custscore.features.netting import MAX_TOTAL_UNITS, too_large_sql, total_error, units_amount_sql, units_sql
from custscore.features.periods import ARREARS, DISCOUNTED
from custscore.features.rfm import btyd_from_runs, duration_columns, rfm_frame, run_numbers
from custscore.features.row_keys import KeyedRows

# pandas' default missing-value markers (read_csv na_values), so both engines agree on
# which CSV fields are missing.
_NA_STRINGS = ('', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN',
               '<NA>', 'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null')
_WHITESPACE = " \t\n\r\x0b\x0c"
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE")
_EXAMPLE_CUSTOMERS = 10
_MAX_PROBLEM_ROWS = 1_000_000
_FETCH_ROWS = 1 << 20  # rows per Arrow batch of the in-memory fetch
#: Text dates DuckDB's naive TIMESTAMP cast reads exactly, as features.io does: ISO date (or
#: with slashes, 2020/01/05), optional time (RE2 syntax); matched after trimming blanks.
_NAIVE_ISO = r"\d{4}(?:-\d{1,2}-\d{1,2}|/\d{1,2}/\d{1,2})(?:[ T](?:[01]?\d|2[0-3]):\d\d(?::\d\d(?:\.\d+)?)?)?"
#: The shapes the CSV reader may parse itself (:func:`_strict_iso_format`): regex -> strptime format.
_STRICT_ISO = ((re.compile(r"\d{4}-\d\d-\d\d"), "%Y-%m-%d"),
               (re.compile(r"\d{4}-\d\d-\d\d([ T])\d\d:\d\d"), "%Y-%m-%d{}%H:%M"),
               (re.compile(r"\d{4}-\d\d-\d\d([ T])\d\d:\d\d:\d\d"), "%Y-%m-%d{}%H:%M:%S"),
               (re.compile(r"\d{4}-\d\d-\d\d([ T])\d\d:\d\d:\d\d\.\d{1,6}"), "%Y-%m-%d{}%H:%M:%S.%f"))


def _strict_iso_format(value: str) -> Optional[str]:
    """The strptime format of a naive ISO date-time like ``value``, or None (other shapes, zones).

    DuckDB's strptime refuses trailing text, so a column read in this format has no offset,
    Z or zone name in any row.

    >>> _strict_iso_format("2021-01-01 00:00:13.000"), _strict_iso_format("2021-01-01T10:00Z")
    ('%Y-%m-%d %H:%M:%S.%f', None)
    """
    for pattern, fmt in _STRICT_ISO:
        match = pattern.fullmatch(str(value))
        if match:
            return fmt.format(*match.groups())
    return None


@dataclass(frozen=True)
class DuckDBSettings:
    """Resources for :class:`DuckDBEngine`.

    ``memory_limit`` caps DuckDB's own memory (it spills to ``temp_directory`` above it;
    ``None`` there means a fresh folder under the system temp dir, removed on close);
    ``threads`` of ``None`` means one per core; ``rows_per_chunk`` bounds the purchase
    rows (customer-days) handed to numpy at once, and so the pandas-side memory.
    ``in_memory_bytes``: the memory (bytes) the per-day purchases may take in numpy, estimated
    per transaction as :func:`custscore.features.engines.in_memory_rows` does; a log within it
    is answered in memory (:class:`~custscore.features.coded_arrays.CodedArrays`), a larger one
    out of core in SQL. ``None``: half the memory available (out of core where unknown); 0:
    always out of core.
    """

    memory_limit: str = "4GB"
    threads: Optional[int] = None
    temp_directory: Optional[str] = None
    rows_per_chunk: int = 4_000_000
    in_memory_bytes: Optional[int] = None

    def __post_init__(self) -> None:
        if isinstance(self.rows_per_chunk, bool) or not isinstance(self.rows_per_chunk, int) or self.rows_per_chunk <= 0:
            raise CustscoreError(f"rows_per_chunk: must be a whole number > 0, got {self.rows_per_chunk!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads <= 0):
            raise CustscoreError(f"threads: must be a whole number > 0, got {self.threads!r}")
        if self.in_memory_bytes is not None and (isinstance(self.in_memory_bytes, bool)
                                                 or not isinstance(self.in_memory_bytes, int) or self.in_memory_bytes < 0):
            raise CustscoreError(f"in_memory_bytes: must be a whole number >= 0, got {self.in_memory_bytes!r}")


def _one_row(con: duckdb.DuckDBPyConnection, sql: str) -> Optional[tuple]:
    """The first row of ``sql`` (None if none), its result read to the end: DuckDB refuses a new
    relation on the connection while a result is unfinished (``fetchone`` leaves it so)."""
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else None


def _quote(text: str) -> str:
    """SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    """SQL quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _day(ts: pd.Timestamp) -> str:
    return f"DATE {_quote(ts.date().isoformat())}"


class DuckDBEngine(CodedPurchasesEngine):
    """Feature engine over a CSV or Parquet log, executed by DuckDB (see the module doc).

    Implements :class:`custscore.features.customers.FeatureEngine`; the file is read,
    validated and merged per day once, in the constructor. In memory (:attr:`in_memory`) the
    questions go to the coded arrays, else to SQL.
    """

    def __init__(self, path: str | Path, columns: ColumnMap = ColumnMap(),
                 settings: DuckDBSettings = DuckDBSettings()) -> None:
        self.path = Path(path)
        self.source = str(self.path)
        if not self.path.exists():
            raise CustscoreError(f"{self.path}: file not found")
        kind = _suffix_kind(self.path)
        self._start(columns, settings)
        try:
            self._load(kind)
        except duckdb.Error as exc:
            longer = longer_row_error(self.path, columns, csv_separator(self.path, columns)) if kind == "csv" else None
            if longer is not None:
                raise longer from None
            raise CustscoreError(f"{self.path}: cannot read file ({_one_line(exc)})") from exc

    @classmethod
    def from_arrow(cls, data: "pa.RecordBatchReader | pa.Table", columns: ColumnMap, source: str,
                   settings: DuckDBSettings = DuckDBSettings()) -> "DuckDBEngine":
        """The engine over a log in Arrow (a database result): a table, or a stream of record
        batches loaded batch by batch (DuckDB spills above its memory limit). Errors name
        ``source`` and a row by its number in the stream and its customer id."""
        engine = cls.__new__(cls)
        engine.path = None
        engine.source = source
        engine._start(columns, settings)
        engine._arrow = data
        try:
            engine._load("arrow")
        except duckdb.Error as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, CustscoreError):  # the stream's own error (e.g. the connection dropped)
                raise cause from None
            raise CustscoreError(f"{source}: cannot read ({_one_line(exc)})") from exc
        finally:
            engine._arrow = None
        return engine

    def _start(self, columns: ColumnMap, settings: DuckDBSettings) -> None:
        self.columns = columns
        self.settings = settings
        self.rows_per_chunk = settings.rows_per_chunk
        self._optional = _Optional(columns)
        temp_dir = settings.temp_directory or tempfile.mkdtemp(prefix="custscore-duckdb-")
        if settings.temp_directory is None:
            self._cleanup = weakref.finalize(self, shutil.rmtree, temp_dir, True)
        config = {"memory_limit": settings.memory_limit, "temp_directory": temp_dir}
        if settings.threads is not None:
            config["threads"] = settings.threads
        self._con = duckdb.connect(":memory:", config=config)
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("SET preserve_insertion_order = false")  # on where order matters (_ordered)
        self._con.execute("SET enable_progress_bar = false")

    # ------------------------------------------------------------------ loading
    def _csv_source(self, delim: str, declared: Optional[dict[str, str]] = None,
                    timestamp_format: Optional[str] = None) -> str:
        """The CSV as text columns; with ``declared`` (column -> DuckDB type), read as those types by
        the CSV reader itself, TIMESTAMP columns in ``timestamp_format`` (the fast paths of
        :meth:`_checked_rows`; a value it cannot read fails the statement)."""
        nulls = ", ".join(_quote(s) for s in _NA_STRINGS)
        if declared is None:
            types = "all_varchar = true"
        else:
            types = "columns = {" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in declared.items()) + "}"
            if timestamp_format:
                types += f", timestampformat = {_quote(timestamp_format)}"
        return (f"read_csv({_quote(self.path)}, {types}, header = true, delim = {_quote(delim)}, "
                f"quote = '\"', escape = '\"', encoding = {_quote(self.columns.encoding)}, nullstr = [{nulls}])")

    def _typed_csv_sources(self, found: list[str]) -> list[tuple[str, dict[str, str]]]:
        """The fast paths' relations and column types, fastest first (the rest of the columns text).

        Amounts DOUBLE when they are written with a decimal point and the header names are
        distinct (parsing text amounts in SQL, row by row, costs several times the read; the CSV
        reader parses them while it reads); ISO dates also TIMESTAMP, read by the reader in the
        strict format of the first date (:func:`_strict_iso_format`), when no ``date_format`` is
        given: the reader then refuses any other shape, so a column it reads carries no zone (a
        naive cast would drop an offset or a zone name silently). Empty where none applies.
        """
        cols = self.columns
        if len(set(found)) != len(found):
            return []
        text = {name: "VARCHAR" for name in found}
        amounts = dict(text)
        if cols.has_amounts and cols.decimal == "." and cols.amount in found and not self._grouped_digits(text):
            amounts[cols.amount] = "DOUBLE"
        first = None
        if not cols.date_format:
            with self._ordered():  # the file's first date, not any date
                first = _one_row(self._con, f"SELECT {_ident(cols.date)} FROM {self._csv_source(self._csv_sep)} "
                                 f"WHERE {_ident(cols.date)} IS NOT NULL LIMIT 1")
        fmt = _strict_iso_format(first[0]) if first else None
        candidates = [({**amounts, cols.date: "TIMESTAMP"}, fmt)] if fmt else []
        candidates.append((amounts, None))
        return [(self._csv_source(self._csv_sep, declared, fmt), declared)
                for declared, fmt in candidates if declared != text]

    def _grouped_digits(self, text: dict[str, str]) -> bool:
        """Whether an amount is written with ``_`` (``1_000.5``: the CSV reader's DOUBLE reads it, pandas
        refuses it, so such a log is read as text and the row named). Looked for in SQL (1.1 s on the
        10.6M-row CSV) only when a line after the header holds a ``_`` at all, a byte search (0.15 s)."""
        if not self.path.name.lower().endswith(".gz"):  # the bytes of a compressed file tell nothing
            with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data.find(b"_", data.find(b"\n") + 1) < 0:  # after the header (customer_id)
                    return False
        amount = _ident(self.columns.amount)
        return bool(_one_row(self._con, f"SELECT coalesce(bool_or(contains({amount}, '_')), false) "
                                        f"FROM {self._csv_source(self._csv_sep, text)}")[0])

    def _source(self, kind: str) -> tuple[str, str]:
        """(relation SQL, SQL of the same relation with a 1-based ``__row`` column)."""
        source = self.source
        if kind == "arrow":  # loaded once, batch by batch, in stream order (_ordered)
            self._con.register("arrow_log", self._arrow)
            with self._ordered():
                self._con.execute("CREATE TEMP TABLE raw_log AS SELECT * FROM arrow_log")
            self._con.unregister("arrow_log")
            return "raw_log", "(SELECT *, rowid + 1 AS __row FROM raw_log)"
        if kind == "parquet":
            rel = f"read_parquet({_quote(self.path)})"
            numbered = f"(SELECT *, file_row_number + 1 AS __row FROM read_parquet({_quote(self.path)}, file_row_number = true))"
            return rel, numbered
        if self.path.stat().st_size == 0:
            raise CustscoreError(f"{source}: empty file")
        sep = csv_separator(self.path, self.columns)
        check_csv_shape(self.path, self.columns, sep)
        self._csv_sep = sep
        rel = self._csv_source(sep)
        return rel, f"(SELECT *, row_number() OVER () AS __row FROM {rel})"

    def _load(self, kind: str) -> None:
        source = self.source
        rel, numbered = self._source(kind)
        described = self._con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        found = [row[0] for row in described]
        types = {row[0]: row[1] for row in described}
        cols = self.columns
        try:
            check_log_columns(found, cols, source, types=types)
        except CustscoreError:  # a longer row can make DuckDB take the header for data
            longer = longer_row_error(self.path, cols, csv_separator(self.path, cols)) if kind == "csv" else None
            if longer is not None:
                raise longer from None
            raise
        if not self._con.execute(f"SELECT 1 FROM {rel} LIMIT 1").fetchall():  # stops at the first row
            raise CustscoreError(f"{source}: no transactions")

        self._rel, self._numbered, self._text_parse = rel, numbered, _ColumnSql(self._con, rel, cols, types)
        budget = in_memory_rows(self.settings.in_memory_bytes)
        fits = budget is not None and self._rows_estimate(kind, rel) <= budget
        rows, flags, table = self._checked_rows(kind, rel, found, fetch=fits)
        if table is not None and kind != "arrow":  # before the arrays are built: a lower peak (measured)
            self._release_buffers()
        with self._ordered():  # row numbers
            error = _problem(self._con, numbered, self._text_parse, cols, source, flags, keyed=kind == "arrow")
        if error is not None:
            raise error
        if flags[3] > MAX_TOTAL_UNITS:
            raise total_error(self.source, cols.amount_decimals)
        self._coded: Optional[tuple[pd.Index, np.ndarray]] = None
        self._examples: Optional[pd.DataFrame] = None
        self._memory: Optional[CodedArrays] = None
        if table is not None:
            self._memory = self._in_memory(table)
            del table
        else:
            self._con.execute(f"CREATE TEMP TABLE days AS SELECT customer_id, CAST(ts AS DATE) AS date, "
                              f"CAST(sum(units) AS BIGINT) AS units{self._optional.per_day} FROM ({rows}) "
                              "GROUP BY customer_id, CAST(ts AS DATE)")
            self._con.execute(f"CREATE TEMP VIEW purchase_days AS SELECT customer_id, date, "
                              f"{units_amount_sql('units', cols.amount_decimals)} AS amount"
                              f"{self._optional.day_columns} FROM days WHERE units >= 0")
        if kind == "arrow":  # the stream cannot be read again: take the examples now
            self._example_rows()
            self._con.execute("DROP TABLE raw_log")
            if self._memory is not None:
                self._release_buffers()
        if self._memory is not None:
            release_free_memory()  # the fetch's and the merge's freed buffers (module features.memory)

    def _release_buffers(self) -> None:
        """Hand DuckDB's buffers back to the system when it holds no table: a lower memory limit for a
        moment frees them (RSS 1.19 GB -> 0.47 GB after the sorted fetch of 10.6M rows, measured)."""
        self._con.execute("SET memory_limit = '64MB'")
        self._con.execute(f"SET memory_limit = {_quote(self.settings.memory_limit)}")

    def _rows_estimate(self, kind: str, rel: str) -> int:
        """The log's rows: counted for Parquet (from its footer) and streams (loaded), estimated for a CSV."""
        if kind == "csv":
            return _csv_rows_estimate(self.path)
        return int(_one_row(self._con, f"SELECT count(*) FROM {rel}")[0])

    def _grouped_rows(self, rows: str, bad: str) -> tuple[tuple, pa.Table]:
        """The check of :meth:`_checked_rows` and, in the same pass, the parsed rows fetched grouped
        by customer: customer_id, date, units, the optional per-row values.

        A Parquet log whose row groups hold increasing id ranges (:func:`parquet_grouped_by`) is
        read in file order; any other log is sorted by (a hash of the
        id, day), an integer sort: by the text id it took twice as long, and the file order of a
        customer-sorted log half as long again (benchmarks/ORDERS_RESULTS.md run 24).
        :meth:`_in_memory` puts the customers in id order (and handles a log the statistics misjudged).
        Checking the rows in the same pass saves a read of the log (run 18); reading the result
        batch by batch, not as one table, lowers the peak (run 24)."""
        per_row = "".join(f", {expr} AS {name}" for name, expr in self._optional.per_row.items())
        in_file_order = self.path is not None and parquet_grouped_by(self.path, self.columns.customer)
        query = (f"SELECT customer_id, CAST(ts AS DATE) AS date, units{per_row}, ({bad}) AS bad, aware FROM ({rows})"
                 + ("" if in_file_order else " ORDER BY hash(customer_id), date"))
        batches, any_bad, any_aware, any_naive, total = [], False, False, False, 0.0
        with self._ordered() if in_file_order else contextlib.nullcontext():
            reader = self._con.sql(query).to_arrow_reader(_FETCH_ROWS)
            for batch in reader:
                aware = batch.column("aware")
                any_bad = any_bad or bool(pc.any(batch.column("bad")).as_py())
                any_aware = any_aware or bool(pc.any(aware).as_py())
                any_naive = any_naive or bool(pc.any(pc.invert(aware)).as_py())
                total += pc.sum(pc.abs(batch.column("units").cast(pa.float64(), safe=False))).as_py() or 0.0
                batches.append(batch.drop_columns(["bad", "aware"]))
        table = pa.Table.from_batches(batches, schema=pa.schema([f for f in reader.schema if f.name not in ("bad", "aware")]))
        return (any_bad, any_aware, any_naive, total, table.num_rows), table

    def _in_memory(self, table: pa.Table) -> CodedArrays:
        """The coded arrays of the grouped parsed rows (:meth:`_grouped_rows`), merged per day in numpy
        and put in id order (:func:`~custscore.features.coded_arrays.grouped_days`: int64 units
        summed exactly, return-only days dropped, so bit for bit the out-of-core ``purchase_days``)."""
        ids = table.column("customer_id")
        day = table.column("date").cast(pa.int32()).to_numpy()
        units = table.column("units").to_numpy()
        maxima = {name: table.column(name).to_numpy() for name in self._optional.day}
        del table
        ids, code, day, amount, maxima = grouped_days(ids, day, units, self.columns.amount_decimals, maxima)
        return CodedArrays(ids, code, day, amount, self._optional.day_frame_columns(maxima), self.rows_per_chunk)

    @property
    def in_memory(self) -> bool:
        """Whether the features are answered from numpy arrays (the log fit in memory), not out of core."""
        return self._memory is not None

    def _checked_rows(self, kind: str, rel: str, found: list[str],
                      fetch: bool) -> tuple[str, tuple, Optional[pa.Table]]:
        """The parsed rows' SQL (:meth:`_rows_sql`) and their check, one streaming pass over the log:
        (any row features.io refuses, any with / without a UTC offset, the sum of ``|units|``, the rows);
        with ``fetch``, the same pass also fetches the rows grouped by customer (:meth:`_grouped_rows`), else None.

        A CSV is first read with its amounts and ISO dates typed by the CSV reader
        (:meth:`_typed_csv_sources`, fastest first); if a value does not read as declared the
        pass fails and the next, finally the all-text relation ``rel``, is read instead, so a bad
        value is named exactly as before (``_problem`` re-reads the text)."""
        candidates = [(_ColumnSql(self._con, typed_rel, self.columns, typed_types), typed_rel)
                      for typed_rel, typed_types in (self._typed_csv_sources(found) if kind == "csv" else ())]
        for parse, source in candidates + [(self._text_parse, rel)]:
            rows = self._rows_sql(parse, source)
            bad = _bad("customer_id", "ts", "amount", self.columns.amount_decimals, tuple(parse.optional))
            check = (f"SELECT coalesce(bool_or({bad}), false), coalesce(bool_or(aware), false), "
                     f"coalesce(bool_or(NOT aware), false), coalesce(sum(abs(CAST(units AS DOUBLE))), 0), count(*) "
                     f"FROM ({rows})")
            try:
                if fetch:
                    return (rows, *self._grouped_rows(rows, bad))
                return rows, _one_row(self._con, check), None
            except duckdb.Error:
                if source == rel:
                    raise

    def _rows_sql(self, parse: "_ColumnSql", rel: str) -> str:
        """SQL of the log's parsed rows: customer_id, ts, amount, optional columns, ``aware`` and ``units``.

        :mod:`custscore.features.netting` in SQL: each row's BIGINT units (NULL where the amount
        cannot be netted, a row the check refuses); ``days`` sums them per customer and day (exact,
        order-free), a day is a purchase when its units are >= 0 (the ``purchase_days`` view), its
        amount the units divided back, so bit-identical to the pandas engine's.
        """
        units = units_sql(parse.amount, self.columns.amount_decimals, exact=False)
        return (f"SELECT {parse.customer} AS customer_id, {parse.ts} AS ts, {parse.amount} AS amount"
                f"{parse.optional_select}, {parse.aware} AS aware, {units} AS units FROM {rel}")

    def _codes(self) -> tuple[pd.Index, np.ndarray]:
        """(customer ids by code, rows before code k), building the coded ``purchases`` table on first use.

        ``purchases`` (code, date, amount, optional per-day columns): the purchase days with each
        customer's code (0.. in ``customer_id`` order), sorted; only the chunked feature questions need it.
        """
        if self._coded is None:
            con = self._con
            con.execute("CREATE TEMP TABLE customers AS SELECT customer_id, "
                        "(row_number() OVER (ORDER BY customer_id) - 1)::INTEGER AS code "
                        "FROM (SELECT DISTINCT customer_id FROM days)")
            with self._ordered():
                con.execute(f"CREATE TEMP TABLE purchases AS SELECT c.code, d.date, d.amount"
                            f"{self._optional.day_columns_of('d.')} FROM purchase_days d JOIN customers c "
                            "USING (customer_id) ORDER BY c.code, d.date")
                ids = con.sql("SELECT customer_id FROM customers ORDER BY code").to_arrow_table().column(0)
            ids = pd.Index(ids.to_pandas(), name="customer_id")
            self._coded = ids, self._cumulative_rows("purchases", len(ids))
        return self._coded

    @property
    def _ids(self) -> pd.Index:
        return self._memory._ids if self._memory is not None else self._codes()[0]

    @property
    def _rows_before(self) -> np.ndarray:
        return self._memory._rows_before if self._memory is not None else self._codes()[1]

    def _ordered(self) -> "_InsertionOrder":
        """Context in which DuckDB keeps the row order (row numbers, sorted tables); off elsewhere (memory)."""
        return _InsertionOrder(self._con)

    def _cumulative_rows(self, table: str, n_customers: int) -> np.ndarray:
        """Rows of ``table`` with a code below k, for k = 0 .. n_customers."""
        counts = self._con.execute(f"SELECT code, count(*) AS n FROM {table} GROUP BY code").fetchnumpy()
        rows = np.zeros(n_customers, dtype=np.int64)
        rows[counts["code"]] = counts["n"]
        return np.concatenate(([0], np.cumsum(rows)))

    def close(self) -> None:
        """Release DuckDB's memory and temporary folder."""
        self._con.close()
        if getattr(self, "_cleanup", None) is not None:
            self._cleanup()

    # ------------------------------------------------------------------ chunks
    def _purchases(self, lo: int, hi: int, after: Optional[pd.Timestamp], until: pd.Timestamp) -> pd.DataFrame:
        """Per-day purchases of codes in [lo, hi) with after < date <= until; customer_id = code."""
        if self._memory is not None:
            return self._memory._purchases(lo, hi, after, until)
        self._codes()
        where = f"code >= {lo} AND code < {hi} AND date <= {_day(until)}"
        if after is not None:
            where += f" AND date > {_day(after)}"
        got = self._con.execute(f"SELECT code, CAST(date AS TIMESTAMP_NS) AS date, amount{self._optional.day_columns} "
                                f"FROM purchases WHERE {where} ORDER BY code, date").fetchnumpy()
        return pd.DataFrame({"customer_id": got["code"].astype(np.int64),
                             "date": got["date"].astype("datetime64[ns]"),
                             "amount": got["amount"].astype(np.float64),
                             **self._optional.day_frame_columns(got)})

    # ------------------------------------------------------------------ FeatureEngine
    def customer_features_of(self, customers: pd.Index, as_of: Any, time_unit: str) -> pd.DataFrame:
        """:meth:`CodedPurchasesEngine.customer_features_of`: those customers' purchases alone in memory."""
        if self._memory is not None:
            return self._memory.customer_features_of(customers, as_of, time_unit)
        return super().customer_features_of(customers, as_of, time_unit)

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        if self._memory is not None:
            return self._memory.date_range()
        first, last = _one_row(self._con, "SELECT min(date), max(date) FROM purchase_days")
        return pd.Timestamp(first).as_unit("ns"), pd.Timestamp(last).as_unit("ns")

    def rfm_summary(self, cutoff: Any, time_unit: str = "D") -> pd.DataFrame:
        """:func:`custscore.features.rfm.rfm_summary` of the whole log, bit for bit, without chunks.

        SQL filters, counts and sorts: the customers with a purchase day on or before ``cutoff``
        (sorted, with their number of days), then the days' numbers and amounts in (customer, day)
        order; :func:`~custscore.features.rfm.btyd_from_runs` adds them up in that order, so the
        float sums are the pandas engine's (DuckDB's ``sum`` adds in no fixed order, and its ordered
        ``sum(... ORDER BY date)`` measured twice as slow as this sort and fetch).
        """
        if self._memory is not None:
            return self._memory.rfm_summary(cutoff, time_unit)
        cutoff = parse_date(cutoff, "cutoff")
        duration_columns(time_unit)  # an unknown unit is refused before any work
        until = f"date <= {_day(cutoff)}"
        customers = self._con.sql(f"SELECT customer_id, count(*) AS n FROM purchase_days WHERE {until} "
                                  "GROUP BY customer_id ORDER BY customer_id").to_arrow_table()
        with self._ordered():
            rows = self._con.execute(f"SELECT date - DATE '1970-01-01' AS day, amount FROM purchase_days "
                                     f"WHERE {until} ORDER BY customer_id, date").fetchnumpy()
        count = customers.column("n").to_numpy()
        starts = (np.cumsum(count) - count).astype(np.int64)
        day = np.asarray(rows["day"], dtype=np.int64)
        runs = run_numbers(starts, len(day))
        out = btyd_from_runs(runs, starts, day, np.asarray(rows["amount"], dtype=np.float64),
                             float(day_number_of(cutoff)), DAYS_PER_UNIT[time_unit])
        index = pd.Index(customers.column("customer_id").to_pandas(), name="customer_id")
        return rfm_frame(out, _dates(day[starts]), _dates(day[out["last_row"]]), index, time_unit)

    def _example_rows(self) -> pd.DataFrame:
        """Raw rows (customer_id, ISO date, amount) of the first customers by id (at most 10), in
        (id, time, amount) order as features.io sorts them.

        Read again from the log on first use (a CSV or Parquet file; a stream's are taken while loading)."""
        if self._examples is None:
            sql = self._text_parse
            first = (", ".join(_quote(i) for i in self._memory._ids[:_EXAMPLE_CUSTOMERS]) if self._memory is not None
                     else f"SELECT DISTINCT customer_id FROM days ORDER BY customer_id LIMIT {_EXAMPLE_CUSTOMERS}")
            # filtered on the id before the other columns are parsed; rows equal in (id, time, amount) are
            # equal in the output, so no row numbers (an ordered, numbered scan of the whole log) are needed
            rows = self._con.execute(
                f"SELECT customer_id, strftime(ts, '%Y-%m-%d') AS date, amount FROM (SELECT {sql.customer} "
                f"AS customer_id, {sql.ts} AS ts, {sql.amount} AS amount FROM {self._rel} "
                f"WHERE {sql.customer} IN ({first})) ORDER BY customer_id, ts, amount").fetchnumpy()
            self._examples = pd.DataFrame({"customer_id": rows["customer_id"].astype(str),
                                           "date": rows["date"].astype(str),
                                           "amount": rows["amount"].astype(float)})
        return self._examples


def parquet_grouped_by(path: Path, column: str) -> bool:
    """Whether the Parquet file at ``path`` is grouped by ``column`` as far as its footer tells: its
    name ends ``.parquet``/``.parq``, it has two or more row groups, each with the column's minimum and
    maximum, none below the previous group's maximum (a customer may span two groups). False where it
    cannot tell."""
    import pyarrow.parquet as pq

    if _suffix_kind(path) != "parquet":
        return False
    try:
        meta = pq.ParquetFile(path).metadata
        index = meta.schema.names.index(column)
        stats = [meta.row_group(k).column(index).statistics for k in range(meta.num_row_groups)]
        if len(stats) < 2 or any(s is None or not s.has_min_max for s in stats):
            return False
        return all(later.min >= earlier.max for earlier, later in zip(stats, stats[1:]))
    except Exception:  # not readable or not comparable here: sorted by hash, as any log
        return False


def _csv_rows_estimate(path: Path, sample_bytes: int = 2**20) -> int:
    """The data rows of a CSV file: counted when it is at most ``sample_bytes`` long, else its size
    times the lines per byte of its first ``sample_bytes`` (quoted line breaks count as rows)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(sample_bytes)
    if len(head) >= size:
        return max(head.count(b"\n") + (not head.endswith(b"\n")) - 1, 0)
    return int(np.ceil(size * head.count(b"\n") / len(head)))


class _InsertionOrder:
    """``with``: ``preserve_insertion_order`` on inside, off again after (see :meth:`DuckDBEngine._ordered`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __enter__(self) -> None:
        self._con.execute("SET preserve_insertion_order = true")

    def __exit__(self, *exc: object) -> None:
        self._con.execute("SET preserve_insertion_order = false")


class _ColumnSql:
    """SQL expressions parsing the three raw columns by their DuckDB type.

    ``customer`` -> VARCHAR (trimmed; integer-valued numbers without ``.0``), ``ts`` ->
    naive TIMESTAMP (aware values converted to UTC), ``amount`` -> DOUBLE; an expression
    is NULL where the value cannot be parsed. ``aware`` is TRUE for text dates carrying a
    UTC offset or Z (a column may not mix them with naive dates, as in features.io); other
    text dates are read only in plain ISO form (:data:`_NAIVE_ISO`), so a zone name is refused
    as pandas refuses it.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, rel: str, cols: ColumnMap, types: dict[str, str]) -> None:
        c, d = _ident(cols.customer), _ident(cols.date)
        a = _ident(cols.amount) if cols.has_amounts else None
        ctype, dtype = types[cols.customer], types[cols.date]
        atype = types[cols.amount] if cols.has_amounts else None

        if ctype.startswith(("STRUCT", "MAP", "UNION")) or ctype.endswith("]"):
            raise CustscoreError(f"column {cols.customer!r}: customer id must be text or a whole number, "
                                 f"not a struct or list ({ctype})")
        if ctype.startswith(_INTEGER_TYPES):
            self.customer = f"CAST({c} AS VARCHAR)"
        elif ctype in _FLOAT_TYPES:
            whole = _one_row(con, f"SELECT coalesce(bool_and(isfinite({c}) AND floor({c}) = {c}), true) "
                             f"FROM {rel}")[0]
            self.customer = f"CAST(CAST({c} AS BIGINT) AS VARCHAR)" if whole else f"CAST({c} AS VARCHAR)"
        else:  # trim only ids that start or end with a control character or blank (trim with a set is slow)
            text = f"CAST({c} AS VARCHAR)"
            self.customer = (f"CASE WHEN ascii({text}) <= 32 OR ascii({text}[-1]) <= 32 "
                             f"THEN trim({text}, {_quote(_WHITESPACE)}) ELSE {text} END")

        self.aware = "false"
        if dtype.startswith(("TIMESTAMP", "DATE")):
            self.ts = f"CAST({d} AS TIMESTAMP)"
        elif dtype.startswith(_INTEGER_TYPES) or dtype in _FLOAT_TYPES:  # e.g. 19970101: parse the digits
            digits = f"CAST(CAST({d} AS BIGINT) AS VARCHAR)"
            if dtype in _FLOAT_TYPES:
                digits = f"CASE WHEN {d} = round({d}) THEN {digits} END"
            self.ts = f"try_strptime({digits}, {_quote(cols.date_format or '%Y%m%d')})"
        elif cols.date_format:
            self.ts = f"try_strptime(CAST({d} AS VARCHAR), {_quote(cols.date_format)})"
        else:
            text = f"trim(CAST({d} AS VARCHAR), {_quote(_WHITESPACE)})"  # features.io reads " 2020-01-05"
            # features.io's own test for an offset or Z; a naive value must be plain ISO, since
            # DuckDB's casts ignore what follows a valid time (a zone name, "xyz") or, naive, the offset.
            self.aware = f"regexp_matches({text}, {_quote(_TZ_SUFFIX)})"
            self.ts = (f"CASE WHEN regexp_matches({text}, '[ T]24:') THEN NULL "  # DuckDB reads hour 24, pandas not
                       f"WHEN {self.aware} THEN CAST(try_cast({text} AS TIMESTAMPTZ) AS TIMESTAMP) "
                       f"WHEN regexp_full_match({text}, {_quote(_NAIVE_ISO)}) THEN try_cast({text} AS TIMESTAMP) END")

        if a is None:  # a log without amounts: every row 0.0
            self.amount = "CAST(0.0 AS DOUBLE)"
        elif atype == "BOOLEAN":
            self.amount = "CAST(NULL AS DOUBLE)"
        elif atype.startswith(("VARCHAR", "BLOB")):
            text = f"trim(CAST({a} AS VARCHAR), {_quote(_WHITESPACE)})"
            if cols.decimal == ",":  # features.io: 29,33 reads as 29.33
                text = f"replace({text}, ',', '.')"
            self.amount = _text_number(text)
        else:
            self.amount = f"try_cast({a} AS DOUBLE)"
        self.raw = f"{c}, {d}" + (f", {a}" if a is not None else "")
        # The optional columns (discount, arrears) when named: numbers, discount also a flag.
        self.optional = {what: _number_sql(_ident(getattr(cols, what)), types[getattr(cols, what)], what == "discount")
                         for what in optional_columns(cols)}
        self.optional_select = "".join(f", {expr} AS {what}" for what, expr in self.optional.items())
        self.raw += "".join(f", {_ident(getattr(cols, what))}" for what in self.optional)
        self.optional_text = {getattr(cols, what) for what in self.optional
                              if types[getattr(cols, what)].startswith("VARCHAR")}


def _bad(customer: str, ts: str, amount: str, decimals: int, optional: tuple[str, ...] = ()) -> str:
    """SQL condition: a row features.io would refuse (given the parsed values; ``optional`` >= 0;
    amounts too large for exact netting at ``decimals``)."""
    return (f"{customer} IS NULL OR {customer} = '' OR {ts} IS NULL OR {ts} < TIMESTAMP {_quote(_TS_MIN)} "
            f"OR {ts} > TIMESTAMP {_quote(_TS_MAX)} OR {amount} IS NULL OR NOT isfinite({amount}) "
            f"OR {too_large_sql(amount, decimals)}"
            + "".join(f" OR {v} IS NULL OR NOT isfinite({v}) OR {v} < 0" for v in optional))


def _problem(con: duckdb.DuckDBPyConnection, numbered: str, sql: _ColumnSql, columns: ColumnMap,
             source: str, flags: tuple, keyed: bool = False) -> Optional[CustscoreError]:
    """The features.io error for the log, or None if every row is valid.

    ``flags`` are :meth:`DuckDBEngine._checked_rows`' check of every row; only when something
    is wrong are the offending rows (at most ``_MAX_PROBLEM_ROWS``, with their 1-based row
    numbers) handed to features.io's own validator, so the message is the pandas engine's,
    word for word. ``keyed``: rows are named by number and customer id
    (:class:`~custscore.features.row_keys.KeyedRows`).
    """
    any_bad, any_aware, any_naive = flags[:3]
    mixed = any_aware and any_naive
    if not any_bad and not mixed:
        return None
    bad = _bad(sql.customer, sql.ts, sql.amount, columns.amount_decimals, tuple(sql.optional.values()))
    extra = ""
    if mixed:
        first_aware, first_naive = _one_row(con, f"SELECT min(__row) FILTER (WHERE {sql.aware}), "
                                            f"min(__row) FILTER (WHERE NOT {sql.aware}) FROM {numbered}")
        extra = f" OR __row IN ({int(first_aware)}, {int(first_naive)})"
    rows = con.execute(f"SELECT __row, {sql.raw} FROM {numbered} WHERE {bad}{extra} "
                       f"ORDER BY __row LIMIT {_MAX_PROBLEM_ROWS}").df()
    _numeric_like_pandas(con, numbered, rows, sql)
    try:
        numbers = rows["__row"].to_numpy()
        names = KeyedRows(numbers, rows[columns.customer], columns.customer) if keyed else numbers
        _normalise(rows.drop(columns="__row"), columns, source, names)
    except CustscoreError as exc:
        return exc
    first = rows.iloc[0]
    return CustscoreError(f"{source}: row {int(first['__row'])}: the DuckDB engine cannot read "
                          f"{_show(tuple(first.drop('__row')))}; use --engine pandas")


# ---------------------------------------------------------------------- optional columns
def _number_sql(column: str, sql_type: str, flags: bool) -> str:
    """SQL parsing an optional column to DOUBLE as features.io does (NULL where it cannot).

    With ``flags`` (the discount column), booleans and ``true``/``false`` text read as 1/0.
    """
    if sql_type == "BOOLEAN":
        return f"CAST({column} AS DOUBLE)" if flags else "CAST(NULL AS DOUBLE)"
    if not sql_type.startswith(("VARCHAR", "BLOB")):
        return f"try_cast({column} AS DOUBLE)"
    text = f"trim(CAST({column} AS VARCHAR), {_quote(_WHITESPACE)})"
    if not flags:
        return _text_number(text)
    cases = " ".join(f"WHEN {_quote(word)} THEN {value}" for word, value in FLAG_TEXT.items())
    return f"CASE lower({text}) {cases} ELSE {_text_number(text)} END"


def _text_number(text: str) -> str:
    """SQL: the DOUBLE a text number reads as, NULL where features.io refuses it. DuckDB's cast also
    reads digits grouped with ``_`` (``1_000.5``), which pandas refuses."""
    return f"CASE WHEN contains({text}, '_') THEN NULL ELSE try_cast({text} AS DOUBLE) END"


def _numeric_like_pandas(con: duckdb.DuckDBPyConnection, numbered: str, rows: pd.DataFrame, sql: _ColumnSql) -> None:
    """Turn the text of optional CSV columns that pandas would read as numbers into numbers, in place.

    pandas' CSV reader types a column holding only numbers as int64 (no missing value, all
    whole) or float64, so features.io shows ``-2`` where DuckDB's text would show ``'-2'``.
    """
    for name in (name for name in rows.columns if name in sql.optional_text):
        text = f"trim({_ident(name)}, {_quote(_WHITESPACE)})"
        n, n_set, n_float, n_int = _one_row(
            con, f"SELECT count(*), count({_ident(name)}), count(try_cast({text} AS DOUBLE)), "
                 f"count(try_cast({text} AS BIGINT)) FROM {numbered}")
        if n_set and n_float == n_set:
            numbers = pd.to_numeric(rows[name].str.strip())
            rows[name] = numbers.astype("int64") if n_int == n_set == n else numbers.astype("float64")


class _Optional:
    """SQL and frame pieces carrying the optional columns (discount, arrears) through the engine.

    Per day (features.periods' rule), the largest of a per-row value: ``discounted`` = 1 when a non-negative row of the day
    has discount > 0, ``arrears`` = the day's largest arrears. Every piece is empty when
    the ColumnMap names neither column, so the engine's tables are then as without them.
    """

    def __init__(self, columns: ColumnMap) -> None:
        self.tx = optional_columns(columns)
        rules = {"discount": (DISCOUNTED, "CASE WHEN amount >= 0 AND discount > 0 THEN 1 ELSE 0 END"),
                 "arrears": (ARREARS, "arrears")}
        #: Per parsed row, the value whose largest over the day is the day's (name -> SQL).
        self.per_row = {rules[what][0]: rules[what][1] for what in self.tx}
        self.day = tuple(self.per_row)
        self.per_day = "".join(f", max({expr}) AS {name}" for name, expr in self.per_row.items())
        self.day_columns = self.day_columns_of("")

    def day_columns_of(self, prefix: str) -> str:
        """``, d.discounted, d.arrears`` (the present ones) for a per-day table alias ``prefix``."""
        return "".join(f", {prefix}{name}" for name in self.day)

    def day_frame_columns(self, got: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The per-day optional columns of a fetched result, typed as merge_periods types them."""
        types = {DISCOUNTED: np.int64, ARREARS: np.float64}
        return {name: got[name].astype(types[name]) for name in self.day}
