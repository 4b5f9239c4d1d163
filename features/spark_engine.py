"""The Spark feature engine: per-customer features as Spark DataFrame operations.

For logs that already live on a Spark cluster (hundreds of millions of transactions).
pyspark is an optional extra (``pip install -e ".[spark]"``) imported only here, so the
pandas and DuckDB engines never load it.

- **Reading**: Spark reads the CSV (as text) or Parquet file; each Arrow batch goes
  through :func:`custscore.features.io.normalise_transactions`' own validator and parser
  (``mapInPandas``), so ids, dates, time zones and amounts mean what they mean for the
  pandas engine. On a bad row the file is read again with row numbers and the message
  is the pandas engine's, except that CSV row numbers do not count blank lines, the
  "(N rows affected)" count covers one batch, and a log mixing timezone-aware and naive
  dates is only refused when both occur in one batch.
- **Per day**: purchases merged per customer and UTC day, netted exactly in long units
  (:mod:`custscore.features.netting`, so day amounts equal the pandas engine's bit for
  bit), return-only days dropped (:mod:`custscore.features.periods`' policy, optional ``discounted``/``arrears`` per
  day included), cached once.
- **Features** (:meth:`SparkEngine.customer_features_df`): one ``groupBy`` over the
  purchases up to ``as_of`` (with one window for the gaps between purchase days)
  computing the columns of :func:`custscore.features.customers.customer_features` by
  the definitions of :mod:`~custscore.features.rfm`, :mod:`~custscore.features.activity`
  and :mod:`~custscore.features.months` (equal to the pandas engine to 1e-9, tested;
  sums of amounts add up in another order, so they differ in the last bits).
- **Driver**: :meth:`SparkEngine.customer_features` collects one row per customer
  (the training pipeline needs them all); :meth:`SparkEngine.btyd_statistics` collects
  only the unique ``(frequency, recency, T)`` rows with counts that BG/NBD needs.
"""
from __future__ import annotations

import csv
import gzip
import inspect
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pandas as pd

from custscore.config import DAYS_PER_UNIT, ColumnMap, parse_date
from custscore.errors import CustscoreError
from custscore.features.activity import activity_features
from custscore.features.discount_credit import DISCOUNT_SHARE
from custscore.features.io import (BOM, _TS_MAX, _TS_MIN, _normalise, _one_line, _suffix_kind,
                                   check_log_columns, header_fields, log_column_names, optional_columns)
from custscore.features.months import MONTH_COLUMNS, last_complete_month
from custscore.features.netting import MAX_ROW_UNITS, MAX_TOTAL_UNITS, total_error, unit_scale
from custscore.features.periods import ARREARS, DISCOUNTED
from custscore.features.rfm import duration_columns

try:  # the optional extra
    from pyspark.sql import DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise CustscoreError('--engine spark needs pyspark: pip install -e ".[spark]" (or pip install pyspark)') from exc

# pyspark 4.x warns on every pandas conversion that pandas >= 3 is not fully supported;
# the engine's equality tests run on pandas 3, so the warning is noise for users.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

#: Windows and trend of activity_features' defaults, which customer_features uses.
_ACTIVITY_DEFAULTS = inspect.signature(activity_features).parameters
_WINDOWS_DAYS: tuple[int, ...] = _ACTIVITY_DEFAULTS["windows_days"].default
_TREND_DAYS: int = _ACTIVITY_DEFAULTS["trend_days"].default

_TX_SCHEMA = "customer_id string, ts timestamp, amount double, __first_row long, __error string"
_LOG4J = """rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
"""
# The same pandas >= 3 warning, silenced in the Python workers.
_WORKER_WARNINGS = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def spark_units(amount, decimals: int):
    """features.netting's ``amount_units`` as a Spark Column (``bround`` rounds half to even, as ``rint``)."""
    return F.bround(amount * unit_scale(decimals), 0).cast("long")


def spark_too_large(amount, decimals: int):
    """features.netting's ``too_large`` as a Spark Column."""
    return F.abs(amount * unit_scale(decimals)) > float(MAX_ROW_UNITS)


def spark_amount(units, decimals: int):
    """features.netting's ``units_amount`` as a Spark Column."""
    return units.cast("double") / unit_scale(decimals)


def _tx_schema(columns: ColumnMap) -> str:
    """:data:`_TX_SCHEMA` plus the optional columns (double) the ColumnMap names."""
    return _TX_SCHEMA + "".join(f", {what} double" for what in optional_columns(columns))


@dataclass(frozen=True)
class SparkSettings:
    """The local Spark session the engine starts when none is running.

    Under ``spark-submit`` (or with a session already active) the existing session and
    its configuration are used and these settings are ignored. ``driver_memory`` is
    the JVM heap of the driver, which in local mode also runs the tasks;
    ``shuffle_partitions`` the partitions of each ``groupBy`` (adaptive execution
    coalesces small ones); ``log_level`` the Spark log level on stderr.
    """

    master: str = "local[2]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    log_level: str = "WARN"


def _log4j_file(level: str) -> str:
    """A log4j2 configuration file sending Spark's log at ``level`` to stderr."""
    fd, path = tempfile.mkstemp(prefix="custscore-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as handle:
        handle.write(_LOG4J.format(level=level))
    return path


def spark_session(settings: SparkSettings = SparkSettings()) -> SparkSession:
    """The active Spark session, or a new local one built from ``settings``.

    Sets ``PYSPARK_PYTHON`` to this interpreter (unless set) so Python workers see the
    same packages, and the session time zone to UTC (dates are UTC days, as in
    :mod:`custscore.features.io`).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is None and "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        log4j = f"-Dlog4j2.configurationFile=file:{_log4j_file(settings.log_level)}"
        builder = (SparkSession.builder.master(settings.master).appName("custscore")
                   .config("spark.driver.memory", settings.driver_memory)
                   .config("spark.driver.extraJavaOptions", log4j)
                   .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
                   .config("spark.executorEnv.PYTHONWARNINGS", _WORKER_WARNINGS)
                   .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false"))
    else:
        builder = SparkSession.builder
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # no Java, JVM failed to start, ...
        raise CustscoreError(f"--engine spark: cannot start Spark ({_one_line(exc)}); it needs Java 17 or later "
                             "(java -version)") from exc
    spark.sparkContext.setLogLevel(settings.log_level)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    return spark


def _col(name: str):
    """Column by its exact name (dots and backticks included)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _csv_header(path: Path, columns: ColumnMap) -> tuple[list[str], str]:
    """(column names, delimiter) from the first line of a local file, sniffed as features.io does."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=columns.encoding, newline="") as handle:
            line = handle.readline()
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
        raise CustscoreError(f"{path}: not valid {columns.encoding} text (byte 0x{bad}); pass --encoding "
                             "with the file's encoding (e.g. latin-1, cp1252)") from exc
    if not line.strip():
        raise CustscoreError(f"{path}: empty file")
    return _header(line, columns)


def _header(line: str, columns: ColumnMap) -> tuple[list[str], str]:
    """(column names, delimiter) of a header line: ``columns.csv_sep``, else sniffed (features.io)."""
    line = line.rstrip("\r\n")
    if columns.csv_sep is None:
        return header_fields(line)
    return next(csv.reader([line.lstrip(BOM)], delimiter=columns.csv_sep)), columns.csv_sep


def _normaliser(columns: ColumnMap, source: str, numbered: bool):
    """mapInPandas function: raw batches -> normalised rows, or one row naming the batch's error."""

    def normalise(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch) == 0:
                continue
            rows = batch.pop("__row").to_numpy() + 1 if numbered else pd.RangeIndex(1, len(batch) + 1).to_numpy()
            try:
                tx = _normalise(batch, columns, source, rows)
            except CustscoreError as exc:
                yield pd.DataFrame({"customer_id": [None], "ts": [pd.NaT], "amount": [float("nan")],
                                    "__first_row": [int(rows[0])], "__error": [str(exc)],
                                    **{what: [float("nan")] for what in optional_columns(columns)}})
                continue
            yield tx.assign(__first_row=int(rows[0]), __error=None)

    return normalise


class SparkEngine:
    """Feature engine over a CSV or Parquet log, executed by Spark (see the module doc).

    Implements :class:`custscore.features.customers.FeatureEngine`. ``spark`` of None
    uses the active session or starts a local one (:func:`spark_session`). The file is
    read, validated and merged per day once, in the constructor, and kept cached.
    """

    def __init__(self, path: str | os.PathLike, columns: ColumnMap = ColumnMap(),
                 spark: Optional[SparkSession] = None, settings: SparkSettings = SparkSettings()) -> None:
        self.path = Path(path)
        self.columns = columns
        self.source = str(path)  # as given: hdfs:// or s3a:// URIs go to Spark untouched
        self.remote = "://" in self.source
        if not self.remote and not self.path.exists():
            raise CustscoreError(f"{self.path}: file not found")
        kind = _suffix_kind(self.path)
        self.spark = spark or spark_session(settings)
        raw = self._read(kind)
        tx = self._validated(raw)
        self.transactions = tx
        day = F.to_date("ts")
        decimals = columns.amount_decimals
        units = spark_units(F.col("amount"), decimals)  # exact day netting (features.netting)
        total = tx.agg(F.sum(F.abs(units).cast("double"))).first()[0] or 0.0
        if total > MAX_TOTAL_UNITS:
            raise total_error(self.source, decimals)
        self.purchases: DataFrame = (tx.groupBy("customer_id", day.alias("date"))
                                     .agg(F.sum(units).alias("units"), *self._optional_per_day())
                                     .where(F.col("units") >= 0)  # return-only days are not purchases
                                     .select("customer_id", "date", spark_amount(F.col("units"), decimals)
                                             .alias("amount"), *[c for c in self._optional_day_names()])
                                     .persist())
        first, last = self.purchases.agg(F.min("date"), F.max("date")).first()
        if first is None:
            raise CustscoreError(f"{self.path}: no purchases (every day nets to a return)")
        self._range = (pd.Timestamp(first).as_unit("ns"), pd.Timestamp(last).as_unit("ns"))

    # ------------------------------------------------------------------ loading
    def _read(self, kind: str) -> DataFrame:
        """The three log columns, raw (text for CSV), with the features.io checks on names."""
        source, cols = self.source, self.columns
        if kind == "csv":
            if not self.remote and self.path.stat().st_size == 0:
                raise CustscoreError(f"{source}: empty file")
            found, sep = (_csv_header(self.path, cols) if not self.remote
                          else _header(self.spark.read.text(source).first()[0], cols))
            reader = self.spark.read.options(header=True, sep=sep, encoding=cols.encoding, quote='"', escape='"',
                                             inferSchema=False, enforceSchema=False, mode="PERMISSIVE")
            raw = reader.csv(source)
            types = None  # all text
        else:
            raw = self.spark.read.parquet(source)
            found = [f.name for f in raw.schema.fields]
            types = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
        check_log_columns(found, cols, source, types=types)  # features.io's checks, on the header
        return raw.select(*[_col(c) for c in log_column_names(cols)])

    def _validated(self, raw: DataFrame) -> DataFrame:
        """Normalised (customer_id, ts, amount) rows; a bad row raises the pandas engine's message."""
        native = self._native(raw)
        if native is not None:
            return native
        tx = raw.mapInPandas(_normaliser(self.columns, str(self.path), numbered=False),
                             _tx_schema(self.columns)).persist()
        n_rows, n_errors = tx.agg(F.count(F.lit(1)), F.count("__error")).first()
        if n_rows == 0:
            tx.unpersist()
            raise CustscoreError(f"{self.path}: no transactions")
        if n_errors:
            tx.unpersist()
            raise self._first_error(raw)
        return tx.drop("__first_row", "__error")

    def _native(self, raw: DataFrame) -> Optional[DataFrame]:
        """Parquet with text or integer ids, timestamps and numeric amounts, normalised in Spark SQL.

        The same rules as features.io without a Python round trip (about 10x faster):
        ids as text without surrounding blanks, timestamps as UTC, finite amounts. None
        for other column types (text dates, float ids, ...), which take the Python path.
        """
        has_amounts = self.columns.has_amounts
        customer, date = (raw.schema[c].dataType for c in (self.columns.customer, self.columns.date))
        amount = raw.schema[self.columns.amount].dataType if has_amounts else T.DoubleType()
        numeric = (T.DoubleType, T.FloatType, T.IntegerType, T.LongType, T.DecimalType)
        optional = {what: getattr(self.columns, what) for what in optional_columns(self.columns)}
        if not (isinstance(customer, (T.StringType, T.IntegerType, T.LongType, T.ShortType))
                and isinstance(date, (T.TimestampType, T.TimestampNTZType))
                and isinstance(amount, numeric)
                and all(isinstance(raw.schema[name].dataType, numeric) for name in optional.values())):
            return None
        tx = raw.select(F.trim(_col(self.columns.customer).cast("string")).alias("customer_id"),
                        _col(self.columns.date).cast("timestamp").alias("ts"),
                        (_col(self.columns.amount).cast("double") if has_amounts else F.lit(0.0)).alias("amount"),
                        *[_col(name).cast("double").alias(what) for what, name in optional.items()]).persist()
        bad = (F.col("customer_id").isNull() | (F.col("customer_id") == "") | F.col("ts").isNull()
               | (F.col("ts") < F.lit(_TS_MIN.to_pydatetime())) | (F.col("ts") > F.lit(_TS_MAX.to_pydatetime()))
               | F.col("amount").isNull() | F.isnan("amount") | (F.abs("amount") == float("inf")))
        bad = bad | spark_too_large(F.col("amount"), self.columns.amount_decimals)
        for what in optional:  # features.io: a finite number >= 0
            bad = bad | F.col(what).isNull() | F.isnan(what) | (F.col(what) == float("inf")) | (F.col(what) < 0)
        n_rows, n_bad = tx.agg(F.count(F.lit(1)), F.count(F.when(bad, 1))).first()
        if n_rows == 0 or n_bad:
            tx.unpersist()
            raise CustscoreError(f"{self.path}: no transactions") if n_rows == 0 else self._first_error(raw)
        return tx

    def _first_error(self, raw: DataFrame) -> CustscoreError:
        """Validate again with file row numbers; the error of the earliest bad batch."""
        numbered = raw.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1]))
        schema = T.StructType(raw.schema.fields + [T.StructField("__row", T.LongType())])
        checked = self.spark.createDataFrame(numbered, schema).mapInPandas(
            _normaliser(self.columns, str(self.path), numbered=True), _tx_schema(self.columns))
        first = checked.where(F.col("__error").isNotNull()).orderBy("__first_row").select("__error").first()
        return CustscoreError(first[0] if first else f"{self.path}: cannot read file")

    def _optional_day_names(self) -> list[str]:
        """Names of the per-day optional columns :meth:`_optional_per_day` makes."""
        present = optional_columns(self.columns)
        return [name for what, name in (("discount", DISCOUNTED), ("arrears", ARREARS)) if what in present]

    def _optional_per_day(self) -> list:
        """Per-day aggregates of the optional columns, by features.periods' rule."""
        present = optional_columns(self.columns)
        out = []
        if "discount" in present:  # a purchase row (amount >= 0) with discount > 0
            on_discount = (F.col("amount") >= 0) & (F.col("discount") > 0)
            out.append(F.max(F.when(on_discount, 1).otherwise(0)).cast("long").alias(DISCOUNTED))
        if "arrears" in present:
            out.append(F.max("arrears").alias(ARREARS))
        return out

    # ------------------------------------------------------------------ features
    def _up_to(self, as_of: pd.Timestamp) -> DataFrame:
        """Purchases on or before ``as_of`` with ``age`` = days before it (>= 0)."""
        day = F.lit(as_of.date())
        return self.purchases.where(F.col("date") <= day).withColumn("age", F.datediff(day, F.col("date")))

    def customer_features_df(self, as_of: Any, time_unit: str) -> DataFrame:
        """:func:`custscore.features.customers.customer_features` as a Spark DataFrame.

        One row per customer with a purchase on or before ``as_of`` (column
        ``customer_id``, not sorted), the same columns in the same order; durations of
        ``recency``/``T`` in ``time_unit``, everything else in days.
        """
        as_of = parse_date(as_of, "as_of")
        recency_col, t_col = duration_columns(time_unit)
        per_unit = DAYS_PER_UNIT[time_unit]
        month_start, month_end = last_complete_month(as_of)
        before_start = (month_start - pd.Timedelta(days=1)).replace(day=1)
        by_date = Window.partitionBy("customer_id").orderBy("date")
        p = self._up_to(as_of).withColumn("gap", F.datediff(F.col("date"), F.lag("date").over(by_date)))

        def count_if(cond):
            return F.sum(F.when(cond, 1).otherwise(0)).cast("long")

        def spend_if(cond):
            return F.sum(F.when(cond, F.col("amount")).otherwise(0.0))

        age, date = F.col("age"), F.col("date")
        windows = []
        for w in _WINDOWS_DAYS:
            windows += [count_if(age < w).alias(f"n_purchases_{w}d"), spend_if(age < w).alias(f"spend_{w}d")]
        g = p.groupBy("customer_id").agg(
            F.count(F.lit(1)).alias("n"), F.sum("amount").alias("total"),
            F.min_by("amount", "date").alias("first_amount"),
            F.min("date").alias("first"), F.max("date").alias("last"),
            F.max("age").alias("tenure"), F.min("age").alias("since_last"),
            *windows,
            F.var_pop("gap").alias("gap_var"),
            count_if(age < _TREND_DAYS).alias("n_last"),
            count_if((age >= _TREND_DAYS) & (age < 2 * _TREND_DAYS)).alias("n_prev"),
            count_if((date >= F.lit(month_start.date())) & (date <= F.lit(month_end.date()))).alias(MONTH_COLUMNS[0]),
            count_if((date >= F.lit(before_start.date())) & (date < F.lit(month_start.date()))).alias(MONTH_COLUMNS[1]),
            *self._optional_per_customer(),
        )
        n, frequency = F.col("n"), (F.col("n") - 1).cast("long")
        span = F.datediff(F.col("last"), F.col("first")).cast("double")
        both = F.col("n_last") + F.col("n_prev")
        nan = F.lit(float("nan"))
        return g.select(
            "customer_id",
            frequency.alias("frequency"),
            (span / per_unit).alias(recency_col),
            (F.col("tenure").cast("double") / per_unit).alias(t_col),
            F.when(n > 1, (F.col("total") - F.col("first_amount")) / (n - 1)).otherwise(0.0).alias("monetary_value"),
            F.col("first").cast("timestamp").alias("first_purchase"),
            F.col("last").cast("timestamp").alias("last_purchase"),
            F.col("tenure").cast("double").alias("tenure_days"),
            F.col("since_last").cast("double").alias("days_since_last_purchase"),
            *[f"{kind}_{w}d" for w in _WINDOWS_DAYS for kind in ("n_purchases", "spend")],
            F.when(n >= 2, span / (n - 1)).otherwise(nan).alias("ipt_mean_days"),
            F.when(n >= 3, F.sqrt("gap_var")).otherwise(nan).alias("ipt_std_days"),
            F.when(both > 0, (F.col("n_last") - F.col("n_prev")) / both).otherwise(0.0).alias(f"trend_{_TREND_DAYS}d"),
            *MONTH_COLUMNS,
            *[name for name in (DISCOUNT_SHARE, ARREARS) if name in g.columns],
        )

    def _optional_per_customer(self) -> list:
        """features.discount_credit's columns as aggregates (only those whose input is present)."""
        present = optional_columns(self.columns)
        out = []
        if "discount" in present:  # share of purchase days on discount
            out.append((F.sum(DISCOUNTED) / F.count(F.lit(1))).alias(DISCOUNT_SHARE))
        if "arrears" in present:  # on the latest purchase day
            out.append(F.max_by(ARREARS, "date").alias(ARREARS))
        return out

    def customer_features(self, as_of: Any, time_unit: str) -> pd.DataFrame:
        """RFM (durations in ``time_unit``) + activity features (days); see features.customers."""
        return _indexed(self.customer_features_df(as_of, time_unit).orderBy("customer_id").toPandas(),
                        dates=("first_purchase", "last_purchase"))

    def btyd_statistics(self, cutoff: Any, time_unit: str) -> pd.DataFrame:
        """Unique ``(frequency, recency_<unit>, T_<unit>)`` rows at ``cutoff`` with ``n_customers``.

        What BG/NBD is fitted on (``BetaGeoModel.fit(..., weights=n_customers)``): at most
        one row per distinct triple, whatever the number of customers (durations are
        whole days, so at most ``(days + 1)**2 / 2`` pairs per frequency).
        """
        recency_col, t_col = duration_columns(time_unit)
        features = self.customer_features_df(cutoff, time_unit)
        counts = features.groupBy("frequency", recency_col, t_col).agg(F.count(F.lit(1)).alias("n_customers"))
        return counts.orderBy("frequency", recency_col, t_col).toPandas()

    # ------------------------------------------------------------------ FeatureEngine
    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self._range

    def window_purchases(self, start: Any, end: Any) -> pd.DataFrame:
        """Purchase days and spend per customer with start < date <= end (see features.rfm)."""
        start, end = parse_date(start, "start"), parse_date(end, "end")
        if end < start:
            raise CustscoreError(f"window: end {end.date()} is before start {start.date()}")
        inside = self.purchases.where((F.col("date") > F.lit(start.date())) & (F.col("date") <= F.lit(end.date())))
        agg = inside.groupBy("customer_id").agg(F.count(F.lit(1)).cast("long").alias("n_purchases"),
                                                F.sum("amount").alias("spend"))
        return _indexed(agg.orderBy("customer_id").toPandas())

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame:
        """Raw rows (customer_id, ISO date, amount) of the first customers by id."""
        ids = self.transactions.select("customer_id").distinct().orderBy("customer_id").limit(int(n_customers))
        rows = (self.transactions.join(ids, "customer_id").orderBy("customer_id", "ts", "amount")
                .select("customer_id", F.date_format("ts", "yyyy-MM-dd").alias("date"), "amount").toPandas())
        return pd.DataFrame({"customer_id": rows["customer_id"].astype(str).to_numpy(),
                             "date": rows["date"].astype(str).to_numpy(),
                             "amount": rows["amount"].astype(float).to_numpy()})

    def close(self) -> None:
        """Drop the cached tables (the Spark session stays up for other work)."""
        self.purchases.unpersist()
        self.transactions.unpersist()


def _indexed(frame: pd.DataFrame, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """A collected frame indexed by ``customer_id`` (text), date columns as ``datetime64[ns]``."""
    out = frame.set_index(pd.Index(frame["customer_id"].astype(str), name="customer_id")).drop(columns="customer_id")
    for name in dates:
        out[name] = out[name].astype("datetime64[ns]")
    return out
