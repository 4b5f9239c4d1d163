"""Scores written to a database table, one transaction per run (``--output URL --output-table T``).

A run is the rows of one ``(as_of, model_version)``; each row is keyed by
``(customer_id, as_of, model_version)`` (a unique index). :class:`DatabaseTableWriter`
has the interface of :class:`~custscore.serving.chunked_output.ChunkedTableWriter`: in one
transaction it deletes the run's earlier rows, inserts the new ones chunk by chunk
(Arrow bulk ingestion through ADBC: ``COPY`` on PostgreSQL) and writes the segment
settings (the sidecar JSON files get beside a scores file) to the companion table
``T_segments``, keyed by ``(as_of, model_version)``; then commits. Readers see the old
rows or the new ones, never a mix; a job killed before the commit leaves the old ones.

The tables are created when missing, with the score columns' types as ADBC maps them
(``DOUBLE PRECISION``, ``BIGINT``, ``TEXT``, ``BOOLEAN``, ``TIMESTAMP`` on PostgreSQL;
``REAL``, ``INTEGER``, ``TEXT`` on SQLite), plus the unique index.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
import pyarrow as pa

from custscore.errors import CustscoreError
from custscore.features.database import (DatabaseLog, connect, dialect_of, driver_message, is_database_url,
                                         quote_ident, quote_table, redact_url)
from custscore.serving.chunked_output import TableWriter

#: Suffix of the companion table holding each run's segment settings.
SEGMENTS_TABLE_SUFFIX = "_segments"
#: Test hook: when set to a file path, the writer creates that file just before COMMIT and
#: waits (tests kill it there to show an interrupted run leaves the previous rows).
HOOK_BEFORE_COMMIT = "CUSTSCORE_TEST_HOOK_BEFORE_COMMIT"
#: The columns of a run's key, after ``customer_id``.
RUN_KEY = ("as_of", "model_version")


@dataclass(frozen=True)
class DatabaseOutput:
    """A scores table: ``url`` plus ``table`` (NAME or SCHEMA.NAME); ``str()`` is its redacted label."""

    url: str = field(repr=False)  # may hold a password: repr() and str() never show it
    table: str = ""

    def __post_init__(self) -> None:
        quote_table(self.table, "--output-table")

    def __str__(self) -> str:
        return f"{redact_url(self.url)} table {self.table}"

    @property
    def segments_table(self) -> str:
        return self.table + SEGMENTS_TABLE_SUFFIX


def output_target(output: str, output_table: Optional[str]) -> "str | DatabaseOutput":
    """``--output`` with ``--output-table``: a :class:`DatabaseOutput` for a URL, else the path."""
    if is_database_url(output):
        if output_table is None:
            raise CustscoreError(f"--output {redact_url(output)}: a database output needs --output-table NAME")
        return DatabaseOutput(output, output_table)
    if output_table is not None:
        raise CustscoreError("--output-table needs --output to be a database URL (postgresql://... or sqlite:///...)")
    return output


def check_database_output(target: DatabaseOutput, transactions: Any = None) -> DatabaseOutput:
    """Before any work: the database can be reached and the scores table is not the input table."""
    if (isinstance(transactions, DatabaseLog) and transactions.table is not None
            and transactions.url == target.url and transactions.table == target.table):
        raise CustscoreError(f"--output-table {target.table} is the --table of --transactions; refusing to "
                             "overwrite the log: choose another table")
    connect(target.url, must_exist=False).close()
    return target


def _split(table: str) -> tuple[Optional[str], str]:
    """``schema.name`` -> (schema, name); ``name`` -> (None, name)."""
    schema, _, name = table.rpartition(".")
    return (schema or None), name


class DatabaseTableWriter(TableWriter):
    """Context manager writing a run's score chunks into ``target`` in one transaction (module doc)."""

    def __init__(self, target: DatabaseOutput) -> None:
        self.target = target
        self.n_rows = 0
        self.closed = False
        self._con = connect(target.url, must_exist=False)
        self._cursor = self._con.cursor()
        self._exists = self._table_exists(target.table)
        self._con.rollback()  # the check itself opens no lasting transaction
        self._runs: set[tuple[str, str, str]] = set()  # (table, as_of, model_version) deleted

    def _fail(self, what: str, exc: BaseException) -> CustscoreError:
        return CustscoreError(f"{self.target}: cannot {what} ({driver_message(exc, self.target.url)})")

    def _table_exists(self, table: str) -> bool:
        schema, name = _split(table)
        if dialect_of(self.target.url) == "sqlite":
            self._cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        else:
            self._cursor.execute("SELECT to_regclass($1) IS NOT NULL", (quote_table(table),))
        return bool(self._cursor.fetchone()[0])

    def _ingest(self, table: str, data: pa.Table, exists: bool) -> None:
        schema, name = _split(table)
        self._cursor.adbc_ingest(name, data, mode="append" if exists else "create", db_schema_name=schema)

    def _delete_runs(self, table: str, frame: pd.DataFrame) -> None:
        """Delete the earlier rows of the runs ``frame`` holds (each run once per job)."""
        runs = frame[list(RUN_KEY)].drop_duplicates().astype(str).itertuples(index=False, name=None)
        mark = "?" if dialect_of(self.target.url) == "sqlite" else "$"
        for as_of, version in runs:
            if (table, as_of, version) in self._runs:
                continue
            self._runs.add((table, as_of, version))
            where = f"{quote_ident('as_of')} = {_param(mark, 1)} AND {quote_ident('model_version')} = {_param(mark, 2)}"
            self._cursor.execute(f"DELETE FROM {quote_table(table)} WHERE {where}", (as_of, version))

    def write(self, frame: pd.DataFrame) -> None:
        """Append a chunk of scores (same columns as the first) inside the run's transaction."""
        data = pa.Table.from_pandas(frame, preserve_index=False)
        try:
            if self._exists:
                self._delete_runs(self.target.table, _as_text(frame))
            self._ingest(self.target.table, data, self._exists)
            if not self._exists:
                self._create_index(self.target.table, ("customer_id", *RUN_KEY))
                self._exists = True
                self._runs.update((self.target.table, *key) for key in
                                  _as_text(frame).drop_duplicates().itertuples(index=False, name=None))
        except CustscoreError:
            raise
        except Exception as exc:
            raise self._fail("write the scores", exc) from exc
        self.n_rows += len(frame)

    def _create_index(self, table: str, key: tuple[str, ...]) -> None:
        _, name = _split(table)
        index = quote_ident(f"{name}_key")
        self._cursor.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {quote_table(table)} "
                             f"({', '.join(quote_ident(c) for c in key)})")

    def close_with_sidecar(self, sidecar: Callable[[Optional[str]], bytes]) -> DatabaseOutput:
        """Write the run's segment settings (``sidecar(None)``, the sidecar JSON) to the companion
        table, then commit the scores and the settings together."""
        record = json.loads(sidecar(None))
        row = pd.DataFrame({"as_of": [str(record["as_of"])], "model_version": [str(record["model_version"])],
                            "n_customers": [int(record["n_customers"])],
                            "settings": [json.dumps(record, sort_keys=False)]})
        table = self.target.segments_table
        try:
            exists = self._table_exists(table)
            if exists:
                self._delete_runs(table, row)
            self._ingest(table, pa.Table.from_pandas(row, preserve_index=False), exists)
            if not exists:
                self._create_index(table, RUN_KEY)
        except Exception as exc:
            self.abort()
            raise self._fail("write the segment settings", exc) from exc
        return self.close()

    def close(self) -> DatabaseOutput:
        """Commit the run (the previous rows of its runs are replaced); closing twice is a no-op."""
        if self.closed:
            return self.target
        try:
            _hook_before_commit()
            self._con.commit()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, Exception):
                raise self._fail("commit the scores", exc) from exc
            raise
        self.closed = True
        self._con.close()
        return self.target

    def abort(self) -> None:
        """Roll back: the table keeps the previous rows (or stays absent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._con.rollback()
        finally:
            self._con.close()


def _param(mark: str, n: int) -> str:
    return "?" if mark == "?" else f"${n}"


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The run key columns as text (both are text in the score schema: ``as_of`` is ``YYYY-MM-DD``)."""
    return frame[list(RUN_KEY)].astype(str)


def _hook_before_commit() -> None:
    marker = os.environ.get(HOOK_BEFORE_COMMIT)
    if marker:
        Path(marker).write_text("about to commit\n")
        time.sleep(600)
