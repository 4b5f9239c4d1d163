"""Transaction logs in a database: a URL plus a table or a query, read as Arrow record batches.

``--transactions postgresql://user@host/db --table sales.transactions`` (or ``--query
"select ..."``; ``sqlite:///path/to/file.db`` for SQLite) is read through Apache Arrow's
ADBC drivers (the optional extra ``db``): the driver streams the result as Arrow record
batches, which go straight into a feature engine (:func:`open_database_engine`):

- ``auto`` and ``duckdb``: streamed into the DuckDB engine
  (:meth:`~custscore.features.duckdb_engine.DuckDBEngine.from_arrow`), which answers from
  memory when the result fits (the same rule as for files,
  :func:`~custscore.features.engines.in_memory_rows`) and else spills to disk (bounded memory);
- ``pandas``: one frame.

The DuckDB engine validates every value (NUMERIC amounts arrive as text, dates stored as
text, NULLs, bad values) and names a bad row as features.io does: its number in the result
and its customer id (:class:`~custscore.features.row_keys.KeyedRows`), since a table has no
row order.

Credentials come from the URL, the environment (``PGPASSWORD``, ``PGUSER``, ...) or
``PGPASSFILE`` (libpq reads them); a password in the URL never appears in a message, a
log line or an MLflow parameter: every text names the log by :func:`redact_url`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

from custscore.config import ColumnMap
from custscore.errors import CustscoreError

if TYPE_CHECKING:  # pyarrow is imported when a log is read: the CLI imports this module to parse options
    import pyarrow as pa

#: URL schemes read as a database (``postgres://`` is libpq's other spelling).
DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")
#: What to install for them.
EXTRA_HINT = "database URLs need the optional extra db: pip install 'custscore[db]'"

#: Why ``--engine spark`` refuses a database log.
SPARK_REFUSED = "--engine spark reads files only; use --engine auto, duckdb or pandas for a database"

_PASSWORD_PARAM = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def is_database_url(text: Any) -> bool:
    """True for ``postgresql://...``, ``postgres://...`` and ``sqlite:///...``.

    >>> is_database_url("postgresql://u@h/db"), is_database_url("sales.parquet")
    (True, False)
    """
    return isinstance(text, str) and text.split("://", 1)[0].lower() in DATABASE_SCHEMES and "://" in text


def redact_url(url: str) -> str:
    """``url`` with any password (``user:PASSWORD@``, ``?password=``) replaced by ``***``.

    >>> redact_url("postgresql://ann:s3cret@db.example:5432/shop?sslmode=require&password=x")
    'postgresql://ann:***@db.example:5432/shop?sslmode=require&password=***'
    >>> redact_url("sqlite:////data/shop.db")
    'sqlite:////data/shop.db'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = _PASSWORD_PARAM.sub(r"\1***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide (urlunsplit would also drop the '//' of sqlite:////abs.db)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error) with the password of ``url`` replaced by ``***``."""
    secrets = {urlsplit(url).password or ""} | set(m.group(0)[9:] for m in _PASSWORD_PARAM.finditer(url))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def sqlite_path(url: str) -> Path:
    """The file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise CustscoreError(f"{url}: a SQLite URL is sqlite:///relative/file.db or sqlite:////absolute/file.db")
    return Path(rest[1:])


def dialect_of(url: str) -> str:
    """``postgresql`` or ``sqlite``."""
    return "sqlite" if url.lower().startswith("sqlite") else "postgresql"


def connect(url: str, must_exist: bool = True) -> Any:
    """A DBAPI connection (ADBC, autocommit off) to ``url``; errors are one line without the password.

    ``must_exist``: a SQLite file that does not exist is an error (reading), not created.
    """
    label = redact_url(url)
    try:
        if dialect_of(url) == "sqlite":
            import adbc_driver_sqlite.dbapi as driver
        else:
            import adbc_driver_postgresql.dbapi as driver
    except ImportError as exc:
        raise CustscoreError(f"{label}: {EXTRA_HINT}") from exc
    try:
        if dialect_of(url) == "sqlite":
            path = sqlite_path(url)
            if must_exist and not path.is_file():
                raise CustscoreError(f"{label}: file not found")
            if not path.parent.resolve().is_dir():
                raise CustscoreError(f"{label}: folder {path.parent} does not exist")
            return driver.connect(str(path))
        return driver.connect(url)
    except CustscoreError:
        raise
    except Exception as exc:
        raise CustscoreError(f"{label}: cannot connect ({driver_message(exc, url)})") from exc


def driver_message(exc: BaseException, url: str) -> str:
    """A driver error as one short line, password scrubbed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return scrub(f"{type(exc).__name__}: {text[:300]}", url)


def quote_ident(name: str) -> str:
    """SQL quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_table(name: str, option: str = "--table") -> str:
    """``sales.transactions`` -> ``"sales"."transactions"`` (each dotted part quoted, case kept).

    >>> quote_table('sales.tx')
    '"sales"."tx"'
    """
    parts = name.split(".")
    if not name or any(not p for p in parts):
        raise CustscoreError(f"{option} {name!r}: not a table name (NAME or SCHEMA.NAME)")
    return ".".join(quote_ident(p) for p in parts)


@dataclass(frozen=True)
class DatabaseLog:
    """A transaction log in a database: ``url`` plus ``table`` (NAME or SCHEMA.NAME) or ``query``.

    ``str()`` is its redacted label, used in every message and record.
    """

    url: str = field(repr=False)  # may hold a password: repr() and str() never show it
    table: Optional[str] = None
    query: Optional[str] = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise CustscoreError(f"--transactions {redact_url(self.url)}: give exactly one of --table or --query")
        if self.table is not None:
            quote_table(self.table)

    @property
    def label(self) -> str:
        where = f"table {self.table}" if self.table is not None else "query"
        return f"{redact_url(self.url)} {where}"

    def __str__(self) -> str:
        return self.label

    def from_sql(self) -> str:
        """The FROM clause item of the log."""
        if self.table is not None:
            return quote_table(self.table)
        return f"({self.query.strip().rstrip(';')}) AS custscore_log"


def log_source(transactions: str, table: Optional[str] = None, query: Optional[str] = None) -> "str | DatabaseLog":
    """``--transactions`` with ``--table``/``--query``: a :class:`DatabaseLog` for a URL, else the path."""
    if is_database_url(transactions):
        return DatabaseLog(transactions, table, query)
    if table is not None or query is not None:
        raise CustscoreError("--table and --query need --transactions to be a database URL "
                             "(postgresql://... or sqlite:///...)")
    return transactions


def plain_schema(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    """``schema`` with extension types (PostgreSQL NUMERIC arrives as opaque text) as their storage."""
    return pa.schema([pa.field(f.name, f.type.storage_type if isinstance(f.type, pa.ExtensionType) else f.type)
                      for f in schema])


def _plain_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    columns = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def read_batches(log: DatabaseLog, columns: ColumnMap) -> pa.RecordBatchReader:
    """The log's columns (:func:`~custscore.features.io.log_column_names`) as a stream of record batches.

    The columns are checked first (``SELECT * ... LIMIT 0``) with features.io's message;
    only they are then selected. The connection closes when the stream is exhausted.
    """
    import pyarrow as pa

    from custscore.features.io import check_log_columns, log_column_names

    con = connect(log.url)
    cursor = con.cursor()
    try:
        cursor.execute(f"SELECT * FROM {log.from_sql()} LIMIT 0")
        found = plain_schema(cursor.fetch_record_batch().schema)
        check_log_columns(found.names, columns, log.label, types=dict(zip(found.names, found.types)))
        names = log_column_names(columns)
        cursor.execute(f"SELECT {', '.join(quote_ident(n) for n in names)} FROM {log.from_sql()}")
        reader = cursor.fetch_record_batch()
    except CustscoreError:
        con.close()
        raise
    except Exception as exc:
        con.close()
        raise CustscoreError(f"{log.label}: cannot read ({driver_message(exc, log.url)})") from exc
    schema = plain_schema(reader.schema)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                yield _plain_batch(batch, schema)
        except Exception as exc:
            raise CustscoreError(f"{log.label}: cannot read ({driver_message(exc, log.url)})") from exc
        finally:
            cursor.close()
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def open_database_engine(log: DatabaseLog, columns: ColumnMap = ColumnMap(), engine: str = "auto"):
    """Read and validate the log with the chosen engine (module doc): a
    :class:`~custscore.features.customers.FeatureEngine`."""
    from custscore.features.customers import PandasEngine
    from custscore.features.io import normalise_keyed

    if engine == "spark":
        raise CustscoreError(f"{log.label}: {SPARK_REFUSED}")
    stream = read_batches(log, columns)
    if engine == "pandas":
        frame = _as_table(stream, log).to_pandas(date_as_object=False)
        return PandasEngine(normalise_keyed(frame, columns, log.label), columns.amount_decimals)
    return _duckdb_engine(stream, log, columns)


def _checked(stream: pa.RecordBatchReader, log: DatabaseLog) -> Iterator[pa.RecordBatch]:
    try:
        yield from stream
    except CustscoreError:
        raise
    except Exception as exc:  # pyarrow re-raises the generator's error as its own type
        raise CustscoreError(f"{log.label}: cannot read ({driver_message(exc, log.url)})") from exc


def _as_table(stream: pa.RecordBatchReader, log: DatabaseLog) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_batches(list(_checked(stream, log)), schema=stream.schema)


def _duckdb_engine(data: "pa.RecordBatchReader | pa.Table", log: DatabaseLog, columns: ColumnMap):
    from custscore.features.duckdb_engine import DuckDBEngine

    return DuckDBEngine.from_arrow(data, columns, log.label)
