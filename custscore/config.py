"""Configuration as frozen dataclasses, each default defined once.

The CLI, the MLproject entry points and the HTTP API read their defaults from here.
Bounds are declared next to the fields and checked when an object is built, so a bad
option fails before any data is read.
"""
from __future__ import annotations

import codecs
import ipaddress
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

import pandas as pd

from custscore.errors import CustscoreError

#: Days in one unit of model time. ``D`` = days, ``W`` = weeks of 7 days.
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}
#: Days in a year, used only to turn a yearly discount rate into a per-day one.
DAYS_PER_YEAR = 365.25

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Feature engines: ``pandas`` (in memory, the readable reference), ``duckdb`` (CSV and
#: Parquet, in memory when the log fits, else out of core), ``auto`` (pandas for small
#: files, else duckdb; see features.engines), ``spark`` (Spark DataFrames, optional extra
#: ``[spark]``; never chosen by ``auto``). The ``arrow`` engine was removed (issue #17).
ENGINES = ("auto", "pandas", "duckdb", "spark")
#: Churn probability calibration (custscore.training.calibration): ``none``; ``sigmoid`` or
#: ``isotonic`` fitted on the latest window for a classifier fitted one horizon earlier;
#: ``sigmoid-latest`` fitted on the latest full-horizon window itself.
CHURN_CALIBRATION_METHODS = ("none", "sigmoid", "isotonic", "sigmoid-latest")
#: Churn training windows (custscore.training.pipeline.reference_windows): ``single`` (one
#: window at cutoff - horizon), ``stacked`` (plus a window of 2/3 of the horizon ending at
#: the cutoff), ``auto`` (stacked when horizon_days >= CHURN_STACK_MIN_HORIZON_DAYS).
CHURN_WINDOWS = ("auto", "single", "stacked")
#: ``auto`` stacks windows from this horizon on (chosen on the CDNOW backtests, docs/research.md).
CHURN_STACK_MIN_HORIZON_DAYS = 180
#: The churn classifier ships unless the best baseline's AUC on the validation window ending
#: at the cutoff is ahead by more than this (or beyond the bootstrap noise); training.churn_select.
CHURN_SELECT_MARGIN = 0.005
DEFAULT_EXPERIMENT = "custscore"
#: ``custscore train --register-as NAME --promote``: ``auto`` = alias ``champion`` unless the
#: backtest gate finds the new recipe worse than the champion's beyond noise (then
#: ``challenger``); ``always`` = champion; ``never`` = challenger (custscore.training.promotion).
PROMOTE_CHOICES = ("auto", "always", "never")
#: ``--purchase-model``: choose among the purchase models by out-of-time accuracy
AUTO = "auto"
#: ``--purchase-model`` values: BG/NBD, MBG/NBD, Pareto/NBD (training.purchase_choice keys) or auto
PURCHASE_MODEL_CHOICES = ("bgnbd", "mbgnbd", "pnbd", AUTO)
#: Environment variable holding the admin token of ``custscore serve`` (``--admin-token``).
ADMIN_TOKEN_ENV = "CUSTSCORE_ADMIN_TOKEN"


#: Nanoseconds per day (pandas Timestamps count nanoseconds since 1970).
NS_PER_DAY = 86_400 * 10**9
#: Longest churn / CLV horizon in days (10 years; train, score, backtest and the HTTP API):
#: one customer's CLV sum runs over the horizon, so an unbounded one is unbounded work.
MAX_HORIZON_DAYS = 3660
#: Dates a user may give: the whole days pandas represents in nanoseconds, the last one
#: with a representable next day (a date is inclusive: its day ends at the next midnight).
FIRST_DATE = pd.Timestamp.min.ceil("D")
LAST_DATE = pd.Timestamp.max.floor("D") - pd.Timedelta(days=1)


def parse_date(value: Any, name: str) -> pd.Timestamp:
    """Parse a user-given date (``YYYY-MM-DD`` or a Timestamp) to a naive day Timestamp.

    Dates outside :data:`FIRST_DATE` .. :data:`LAST_DATE` are a user error.
    """
    if isinstance(value, pd.Timestamp) and value.tzinfo is None and value.value % NS_PER_DAY == 0:
        day = value  # already a naive day (the common case inside the library)
    else:
        try:
            ts = pd.Timestamp(value)
            if ts is not pd.NaT:
                ts = ts.as_unit("ns")
        except pd.errors.OutOfBoundsDatetime as exc:
            raise _out_of_range(value, name) from exc
        except (ValueError, TypeError) as exc:
            raise CustscoreError(f"{name}: cannot parse date {value!r} (expected YYYY-MM-DD)") from exc
        if ts is pd.NaT:
            raise CustscoreError(f"{name}: cannot parse date {value!r} (expected YYYY-MM-DD)")
        if ts.tzinfo is not None:
            ts = ts.tz_convert(None)
        day = ts.normalize()
    if not FIRST_DATE <= day <= LAST_DATE:
        raise _out_of_range(value, name)
    return day


def _out_of_range(value: Any, name: str) -> CustscoreError:
    return CustscoreError(f"{name}: date {value!r} is outside the supported range "
                          f"{FIRST_DATE.date()} to {LAST_DATE.date()}")


def _check_horizon(value: Any, name: str = "horizon_days") -> None:
    """A whole number of days in [1, :data:`MAX_HORIZON_DAYS`]."""
    _check_positive_int(value, name)
    if value > MAX_HORIZON_DAYS:
        raise CustscoreError(f"{name}: must be at most {MAX_HORIZON_DAYS} days (10 years), got {value!r}")


def _check_time_unit(time_unit: str) -> None:
    if time_unit not in DAYS_PER_UNIT:
        raise CustscoreError(f"time_unit: must be one of {sorted(DAYS_PER_UNIT)}, got {time_unit!r}")


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int,)) or value <= 0:
        raise CustscoreError(f"{name}: must be a whole number of days > 0, got {value!r}")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise CustscoreError(f"engine: must be one of {list(ENGINES)}, got {engine!r}")


def _check_rate(value: Any, name: str) -> None:
    if not isinstance(value, (int, float)) or not (0.0 <= float(value) < 1.0):
        raise CustscoreError(f"{name}: must be in [0, 1), got {value!r}")


#: Decimal marks ``ColumnMap.decimal`` takes.
DECIMAL_MARKS = (".", ",")
#: Largest ``ColumnMap.amount_decimals`` (10**15 is still exact in float64).
MAX_AMOUNT_DECIMALS = 15


#: strftime/strptime directives ``ColumnMap.date_format`` may use (Python's and pandas').
STRFTIME_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXGuV%")


def _check_date_format(fmt: Any) -> None:
    """Refuse a date format that is not text or uses an unknown ``%`` directive (e.g. ``%Q``)."""
    if not isinstance(fmt, str) or not fmt:
        raise CustscoreError(f"date_format: must be non-empty strftime text such as %d/%m/%Y, got {fmt!r}")
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i + 1:i + 2]
            if code == ":" and fmt[i + 2:i + 3] == "z":
                i += 3
                continue
            if code not in STRFTIME_DIRECTIVES or not code:
                raise CustscoreError(f"date_format: unknown strftime directive {('%' + code)!r} in {fmt!r} "
                                     "(use codes such as %Y-%m-%d or %d/%m/%Y)")
            i += 2
        else:
            i += 1


@dataclass(frozen=True)
class ColumnMap:
    """How to read the user's transaction log: column names, date format, text encoding.

    ``date_format`` of None means ISO 8601 (``YYYY-MM-DD``, optional time and offset);
    otherwise strftime codes such as ``%d/%m/%Y``. ``encoding`` applies to CSV files.
    Optional columns, not read when None: ``discount`` (per row, the discount amount or a
    0/1 flag; > 0 means bought on discount) and ``arrears`` (per row, the customer's
    arrears known on that day: amount overdue or days in arrears, >= 0); see
    :mod:`custscore.features.discount_credit`. ``amount_decimals`` is the precision of
    exact day netting (:mod:`custscore.features.netting`).
    """

    customer: str = "customer_id"
    date: str = "date"
    #: None: the log has no amounts (CLI ``--amount-col none``); every purchase day then
    #: has amount 0.0, so the features keep their columns (spend features are 0)
    amount: Optional[str] = "amount"
    date_format: Optional[str] = None
    encoding: str = "utf-8"
    discount: Optional[str] = None
    arrears: Optional[str] = None
    #: exact day netting precision: each amount counts as ``rint(amount * 10**d)`` whole
    #: units (custscore.features.netting); 4 covers every currency's minor unit (at most 3
    #: decimals) plus unit prices such as 0.0125, with amounts up to 9.0e11
    amount_decimals: int = 4
    #: CSV field separator; None = comma, or ``;``/tab when the header holds one
    csv_sep: Optional[str] = None
    #: decimal mark of CSV amounts: ``.`` or ``,`` (spreadsheet exports, with ``csv_sep=";"``)
    decimal: str = "."

    @property
    def has_amounts(self) -> bool:
        """True unless the log has no amount column (``amount`` is None)."""
        return self.amount is not None

    def __post_init__(self) -> None:
        d = self.amount_decimals
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= MAX_AMOUNT_DECIMALS:
            raise CustscoreError(f"amount_decimals: must be a whole number in [0, {MAX_AMOUNT_DECIMALS}], got {d!r}")
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError) as exc:
            raise CustscoreError(f"encoding: unknown text encoding {self.encoding!r} (e.g. utf-8, latin-1, "
                                 "cp1252)") from exc
        if self.date_format is not None:
            _check_date_format(self.date_format)
        if self.csv_sep is not None and (not isinstance(self.csv_sep, str) or len(self.csv_sep) != 1
                                         or self.csv_sep in '"\r\n'):
            raise CustscoreError(f"csv_sep: must be one character (e.g. ';' or a tab), got {self.csv_sep!r}")
        if self.decimal not in DECIMAL_MARKS:
            raise CustscoreError(f"decimal: must be one of {list(DECIMAL_MARKS)}, got {self.decimal!r}")
        if self.csv_sep is not None and self.csv_sep == self.decimal:
            raise CustscoreError(f"csv_sep and decimal must differ, got {self.csv_sep!r} for both")
        names = [self.customer, self.date] + ([self.amount] if self.amount is not None else [])
        if any(not isinstance(n, str) or not n for n in names):
            raise CustscoreError(f"column names must be non-empty strings, got {names}")
        if len(set(names)) != len(names):
            raise CustscoreError(f"customer, date and amount columns must differ, got {names}")
        for option, name in (("discount", self.discount), ("arrears", self.arrears)):
            if name is not None and (not isinstance(name, str) or not name):
                raise CustscoreError(f"{option} column: must be a non-empty string, got {name!r}")
        optional = [n for n in (self.discount, self.arrears) if n is not None]
        if len(set(names + optional)) != len(names) + len(optional):
            raise CustscoreError(f"discount and arrears columns must differ from each other and from "
                                 f"{names}, got {optional}")


def _check_penalizers(config: Any) -> None:
    """Check the penalties; a given ``penalizer`` sets both that were left at 0."""
    for name in ("penalizer", "bgnbd_penalizer", "gg_penalizer"):
        value = getattr(config, name)
        if value is None and name == "penalizer":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise CustscoreError(f"{name}: must be a finite number >= 0, got {value!r}")
    if config.penalizer is not None:
        for name in ("bgnbd_penalizer", "gg_penalizer"):
            if getattr(config, name) == 0:
                object.__setattr__(config, name, float(config.penalizer))


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``custscore train`` needs besides the data.

    Dates are calendar days; ``cutoff`` is the last day of the calibration period,
    inclusive. ``horizon_days`` is the churn horizon and the CLV horizon.
    ``discount_rate`` is yearly. ``time_unit`` is the unit the BG/NBD parameters are
    reported in (``alpha`` scales with it; ``r``, ``a``, ``b`` do not). ``engine`` is
    the feature engine (one of :data:`ENGINES`).
    """

    cutoff: pd.Timestamp
    horizon_days: int = 90
    time_unit: str = "D"
    discount_rate: float = 0.10
    holdout_end: Optional[pd.Timestamp] = None
    #: L2 penalties of BG/NBD and of Gamma-Gamma (0 = plain maximum likelihood)
    bgnbd_penalizer: float = 0.0
    gg_penalizer: float = 0.0
    #: shortcut setting both penalties (``--penalizer``); None = not given
    penalizer: Optional[float] = None
    seed: int = 0
    #: churn probability calibration (:data:`CHURN_CALIBRATION_METHODS`); ``sigmoid-latest``
    #: measured best on CDNOW (docs/research.md)
    churn_calibration: str = "sigmoid-latest"
    #: churn training windows (:data:`CHURN_WINDOWS`)
    churn_windows: str = "auto"
    experiment: str = DEFAULT_EXPERIMENT
    tracking_uri: Optional[str] = None
    register_as: Optional[str] = None
    columns: ColumnMap = field(default_factory=ColumnMap)
    engine: str = "auto"
    #: alias decision for a registered version (:data:`PROMOTE_CHOICES`)
    promote: str = "auto"
    #: model of repeat purchases (:data:`PURCHASE_MODEL_CHOICES`); ``auto`` chooses by
    #: out-of-time accuracy (training.purchase_choice)
    purchase_model: str = AUTO
    #: covariate file (CSV/Parquet, one row per customer) of the purchase model; None = none
    covariates: Optional[str] = None
    #: customers the model choices are validated on (purchase model comparison, churn
    #: validation): a seeded uniform sample of this many when there are more; 0 = every customer.
    #: The shipped models are fitted on every customer. 250,000: on the 10M-row benchmark log
    #: (1M customers) 5 seeded samples chose as all customers did, the deviance gap between the
    #: two best purchase models 9 SE wide (docs/models.md, "Validation sample")
    validation_sample: int = 250_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoff", parse_date(self.cutoff, "cutoff"))
        _check_engine(self.engine)
        if self.promote not in PROMOTE_CHOICES:
            raise CustscoreError(f"promote: must be one of {list(PROMOTE_CHOICES)}, got {self.promote!r}")
        if self.holdout_end is not None:
            end = parse_date(self.holdout_end, "holdout_end")
            if end <= self.cutoff:
                raise CustscoreError(f"holdout_end: {end.date()} must be after cutoff {self.cutoff.date()}")
            object.__setattr__(self, "holdout_end", end)
        _check_horizon(self.horizon_days)
        _check_time_unit(self.time_unit)
        _check_rate(self.discount_rate, "discount_rate")
        if self.churn_calibration not in CHURN_CALIBRATION_METHODS:
            raise CustscoreError(f"churn_calibration: must be one of {list(CHURN_CALIBRATION_METHODS)}, "
                                 f"got {self.churn_calibration!r}")
        if self.churn_windows not in CHURN_WINDOWS:
            raise CustscoreError(f"churn_windows: must be one of {list(CHURN_WINDOWS)}, got {self.churn_windows!r}")
        if self.purchase_model not in PURCHASE_MODEL_CHOICES:
            raise CustscoreError(f"purchase_model: must be one of {list(PURCHASE_MODEL_CHOICES)}, "
                                 f"got {self.purchase_model!r}")
        _check_penalizers(self)
        if isinstance(self.validation_sample, bool) or not isinstance(self.validation_sample, int) \
                or self.validation_sample < 0:
            raise CustscoreError(f"validation_sample: must be a whole number of customers >= 0 (0 = all), "
                                 f"got {self.validation_sample!r}")

    @property
    def reference_date(self) -> pd.Timestamp:
        """Date at which churn training examples are built: cutoff minus horizon."""
        return self.cutoff - pd.Timedelta(days=self.horizon_days)

    def as_params(self) -> dict[str, Any]:
        """Flat dict for MLflow params (dates as ISO strings)."""
        out = asdict(self)
        out.pop("columns")
        out.pop("promote")  # how a version is aliased, not how it is trained
        out.update({f"{k}_col": v for k, v in asdict(self.columns).items()
                    if k in ("customer", "date", "amount") or (k in ("discount", "arrears") and v is not None)})
        out.update({k: v for k, v in asdict(self.columns).items() if k in ("date_format", "encoding", "amount_decimals", "csv_sep", "decimal")})
        out["cutoff"] = self.cutoff.date().isoformat()
        if self.holdout_end is not None:
            out["holdout_end"] = self.holdout_end.date().isoformat()
        return out


@dataclass(frozen=True)
class ScoreConfig:
    """Everything ``custscore score`` needs besides the model and the data.

    ``horizon_days`` of ``None`` means the horizon the model was trained with.
    ``engine`` is the feature engine (one of :data:`ENGINES`). ``margin_rate`` (share of
    revenue that is contribution) and ``segments_file`` (JSON of segment settings, e.g. an
    earlier run's sidecar) replace the model's segment settings; ``None`` keeps them.
    ``amount_decimals`` of ``None`` nets days at the model's training precision
    (``CustomerScorer.amount_decimals``); a number replaces ``columns.amount_decimals``.
    """

    as_of: pd.Timestamp
    horizon_days: Optional[int] = None
    columns: ColumnMap = field(default_factory=ColumnMap)
    engine: str = "auto"
    margin_rate: Optional[float] = None
    segments_file: Optional[str] = None
    amount_decimals: Optional[int] = None
    #: covariate file of a model trained with covariates (one row per customer); None = none
    covariates: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", parse_date(self.as_of, "as_of"))
        if self.amount_decimals is not None:  # checked by ColumnMap
            object.__setattr__(self, "columns", replace(self.columns, amount_decimals=self.amount_decimals))
        _check_engine(self.engine)
        if self.horizon_days is not None:
            _check_horizon(self.horizon_days)
        if self.margin_rate is not None and (isinstance(self.margin_rate, bool) or not 0 < self.margin_rate <= 1):
            raise CustscoreError(f"margin_rate: must be in (0, 1], got {self.margin_rate!r}")


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches: 127.0.0.0/8, ``::1`` or ``localhost``.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3", "example.org")]
    [True, True, True, False, False, False]
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``custscore serve`` (the HTTP API): address and per-request limits.

    Limits bound what one request may cost: customers and transactions per request,
    transactions per customer, body size in bytes and the horizon in days. Concurrent
    requests with the same ``as_of`` and horizon are scored in one scorer call of at
    most ``microbatch_max_customers`` customers (1 = one call per request). A call of at
    most ``fast_path_max_customers`` customers and ``fast_path_max_transactions``
    transactions takes the numpy fast path (:mod:`custscore.serving.fast_path`, same
    scores), larger ones the pandas path; 0 turns the fast path off. After a call, the
    server waits up to ``microbatch_wait_ms`` milliseconds for as many requests as the
    call served before starting the next call (bigger combined calls under load; the
    first request after an idle spell never waits); 0 never waits.

    Exposure: a ``host`` that is not a loopback address (127.0.0.0/8, ::1, ``localhost``)
    is refused unless ``allow_remote``. ``POST /admin/reload`` exists only with an
    ``admin_token`` (clients send ``Authorization: Bearer TOKEN``); SIGHUP reloads either way.

    Hostile clients (seconds, bytes): a request's head (request line and headers) must
    arrive within ``header_timeout_s`` of its first byte (of the connection, for the
    first request) and be at most ``max_header_bytes`` (else 431); the body may pause at
    most ``body_timeout_s`` between two chunks (else 408); an idle keep-alive connection
    is closed after ``keep_alive_timeout_s``; connections beyond ``max_connections`` are
    closed at once. Bodies of at least ``large_body_min_bytes`` are validated in a
    separate process first (:mod:`custscore.serving.body_check`), so invalid megabytes
    never hold the server's interpreter lock while it answers small requests.

    Customer look-up page (:mod:`custscore.serving.lookup_routes`): served when
    ``scores_file`` (from ``custscore score``, its sidecar beside it) is given; the
    optional ``transactions_file`` (read with ``columns``; a day's rows netted at
    ``amount_decimals``, None = the model's) gives each customer's purchase history. Its table answers ``lookup_page_size`` rows a page by
    default, at most ``lookup_max_page_size``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_customers: int = 10_000
    max_transactions: int = 200_000
    max_transactions_per_customer: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    max_horizon_days: int = MAX_HORIZON_DAYS
    microbatch_max_customers: int = 2_000
    microbatch_wait_ms: float = 2.0
    fast_path_max_customers: int = 256
    fast_path_max_transactions: int = 5_000
    admin_token: Optional[str] = field(default=None, repr=False)
    allow_remote: bool = False
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keep_alive_timeout_s: float = 5.0
    max_connections: int = 1000
    max_header_bytes: int = 16 * 1024
    large_body_min_bytes: int = 64 * 1024
    scores_file: Optional[str] = None
    transactions_file: Optional[str] = None
    columns: ColumnMap = field(default_factory=ColumnMap)
    amount_decimals: Optional[int] = None
    lookup_page_size: int = 50
    lookup_max_page_size: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise CustscoreError(f"host: must be a non-empty string, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise CustscoreError(f"port: must be a whole number in [0, 65535], got {self.port!r}")
        for name in ("max_customers", "max_transactions", "max_transactions_per_customer", "max_body_bytes",
                     "max_horizon_days", "microbatch_max_customers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CustscoreError(f"{name}: must be a whole number > 0, got {value!r}")
        for name in ("fast_path_max_customers", "fast_path_max_transactions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CustscoreError(f"{name}: must be a whole number >= 0, got {value!r}")
        for name in ("max_connections", "max_header_bytes", "large_body_min_bytes", "lookup_page_size",
                     "lookup_max_page_size"):
            _check_count(getattr(self, name), name)
        if self.lookup_page_size > self.lookup_max_page_size:
            raise CustscoreError(f"lookup_page_size: must be at most lookup_max_page_size "
                                 f"({self.lookup_max_page_size}), got {self.lookup_page_size}")
        if self.transactions_file is not None and self.scores_file is None:
            raise CustscoreError("--transactions: needs --scores (the log gives the purchase histories of the "
                                 "customers of the look-up page)")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
                raise CustscoreError(f"{name}: must be a number of seconds in (0, 3600], got {value!r}")
        if self.admin_token is not None and (not isinstance(self.admin_token, str) or len(self.admin_token) < 16
                                             or not self.admin_token.isprintable() or " " in self.admin_token):
            raise CustscoreError("admin token: must be at least 16 printable characters without spaces "
                                 "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
        if not self.allow_remote and not is_loopback(self.host):
            raise CustscoreError(f"host {self.host!r} is reachable from other machines: pass --allow-remote to "
                                 "serve on it (put a TLS proxy with authentication in front), or use 127.0.0.1")
        wait = self.microbatch_wait_ms
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 1000:
            raise CustscoreError(f"microbatch_wait_ms: must be a number of milliseconds in [0, 1000], got {wait!r}")


def _check_count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CustscoreError(f"{name}: must be a whole number > 0, got {value!r}")


@dataclass(frozen=True)
class BacktestConfig:
    """Everything ``custscore backtest`` needs besides the data.

    Origins are either ``cutoffs`` (dates) or ``n_origins`` dates ``step_days`` apart,
    the last one ``horizon_days`` before the last day of the log. At each origin the
    scorer is trained exactly as :class:`TrainConfig` with ``cutoff = origin`` on the log
    up to the origin, and judged on the ``horizon_days`` after it. Bootstrap intervals
    resample customers ``n_bootstrap`` times at level ``confidence``. Training settings
    take their defaults from :class:`TrainConfig`.
    """

    horizon_days: int = TrainConfig.horizon_days
    cutoffs: tuple[pd.Timestamp, ...] = ()
    n_origins: Optional[int] = None
    step_days: Optional[int] = None
    time_unit: str = TrainConfig.time_unit
    discount_rate: float = TrainConfig.discount_rate
    bgnbd_penalizer: float = TrainConfig.bgnbd_penalizer
    gg_penalizer: float = TrainConfig.gg_penalizer
    penalizer: Optional[float] = TrainConfig.penalizer
    seed: int = TrainConfig.seed
    churn_calibration: str = TrainConfig.churn_calibration
    churn_windows: str = TrainConfig.churn_windows
    purchase_model: str = TrainConfig.purchase_model
    covariates: Optional[str] = TrainConfig.covariates
    n_bootstrap: int = 1000
    confidence: float = 0.95
    experiment: str = "custscore-backtest"
    tracking_uri: Optional[str] = None
    output_dir: str = "backtest"
    columns: ColumnMap = field(default_factory=ColumnMap)

    def __post_init__(self) -> None:
        if isinstance(self.cutoffs, str):
            object.__setattr__(self, "cutoffs", tuple(c for c in self.cutoffs.split(",") if c.strip()))
        cutoffs = tuple(sorted(parse_date(c, "cutoffs") for c in self.cutoffs))
        if len(set(cutoffs)) != len(cutoffs):
            raise CustscoreError(f"cutoffs: duplicate dates in {[c.date().isoformat() for c in cutoffs]}")
        object.__setattr__(self, "cutoffs", cutoffs)
        rolling = self.n_origins is not None or self.step_days is not None
        if bool(cutoffs) == rolling:
            raise CustscoreError("give either --cutoffs D1,D2,... or both --origins K and --step-days S")
        if rolling:
            _check_count(self.n_origins, "origins")
            _check_positive_int(self.step_days, "step_days")
        _check_horizon(self.horizon_days)
        _check_count(self.n_bootstrap, "n_bootstrap")
        if not isinstance(self.confidence, float) or not 0.5 <= self.confidence < 1.0:
            raise CustscoreError(f"confidence: must be in [0.5, 1), got {self.confidence!r}")
        # the training settings are checked by building one TrainConfig
        self.train_config(pd.Timestamp("2000-01-01"))

    def train_config(self, origin: pd.Timestamp) -> TrainConfig:
        """The :class:`TrainConfig` of ``custscore train`` at one origin (no holdout)."""
        return TrainConfig(cutoff=origin, horizon_days=self.horizon_days, time_unit=self.time_unit,
                           discount_rate=self.discount_rate, bgnbd_penalizer=self.bgnbd_penalizer,
                           gg_penalizer=self.gg_penalizer, penalizer=self.penalizer, seed=self.seed,
                           churn_calibration=self.churn_calibration, churn_windows=self.churn_windows,
                           experiment=self.experiment, tracking_uri=self.tracking_uri, columns=self.columns,
                           purchase_model=self.purchase_model, covariates=self.covariates)


@dataclass(frozen=True)
class EvaluateConfig:
    """Everything ``custscore evaluate`` needs besides the scores file and the log.

    ``horizon_days`` of None means the horizon the scores were written for (their
    sidecar). ``partial`` evaluates the part of the horizon the log covers instead of
    refusing. Outputs go to ``output_dir`` (``evaluation.html``, ``evaluation.json``) and
    to one MLflow run in ``experiment``.
    """

    horizon_days: Optional[int] = None
    partial: bool = False
    output_dir: str = "evaluation"
    experiment: str = "custscore-evaluate"
    tracking_uri: Optional[str] = None
    columns: ColumnMap = field(default_factory=ColumnMap)
    engine: str = "auto"

    def __post_init__(self) -> None:
        _check_engine(self.engine)
        if self.horizon_days is not None:
            _check_positive_int(self.horizon_days, "horizon_days")


#: Exit status of ``custscore drift`` when a measure crosses its threshold (0 otherwise,
#: 2 for bad input), so a scheduler can alert on it.
DRIFT_EXIT_STATUS = 3


@dataclass(frozen=True)
class DriftConfig:
    """Settings of ``custscore drift`` (custscore.training.drift documents the PSI).

    A PSI at or above ``psi_threshold`` or a segment share moving by more than
    ``share_threshold`` (absolute, e.g. 0.10 = 10 percentage points) crosses a threshold;
    ``psi_warn`` only labels a PSI "moderate". Bins: ``n_bins`` reference quantiles, empty
    shares floored at ``epsilon``. MLflow is used only when ``tracking_uri`` is given.
    """

    psi_threshold: float = 0.25
    psi_warn: float = 0.10
    share_threshold: float = 0.10
    n_bins: int = 10
    epsilon: float = 1e-4
    output_dir: str = "drift"
    experiment: str = "custscore-drift"
    tracking_uri: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("psi_threshold", "psi_warn", "share_threshold", "epsilon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise CustscoreError(f"{name}: must be a number > 0, got {value!r}")
        if self.psi_warn > self.psi_threshold:
            raise CustscoreError(f"psi_warn {self.psi_warn!r} must not exceed psi_threshold {self.psi_threshold!r}")
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 2:
            raise CustscoreError(f"n_bins: must be a whole number >= 2, got {self.n_bins!r}")


@dataclass(frozen=True)
class PromotionConfig:
    """The promotion gate of ``custscore train --promote auto`` (custscore.training.promotion).

    Both recipes are backtested at ``n_origins`` origins ``step_days`` apart, the last one
    ``horizon_days`` before the cutoff (nothing after the cutoff is read), and compared
    with ``n_bootstrap`` paired customer resamples at level ``confidence``.
    """

    n_origins: int = 3
    step_days: int = 30
    n_bootstrap: int = 200
    confidence: float = 0.95
