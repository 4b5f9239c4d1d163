"""Configuration as frozen dataclasses, each default defined once.

The CLI, the MLproject entry points and the HTTP API read their defaults from here.
Bounds are declared next to the fields and checked when an object is built, so a bad
option fails before any data is read.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import pandas as pd

from custscore.errors import CustscoreError

#: Days in one unit of model time. ``D`` = days, ``W`` = weeks of 7 days.
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}
#: Days in a year, used only to turn a yearly discount rate into a per-day one.
DAYS_PER_YEAR = 365.25

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "custscore"


def parse_date(value: Any, name: str) -> pd.Timestamp:
    """Parse a user-given date (``YYYY-MM-DD`` or a Timestamp) to a naive day Timestamp."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise CustscoreError(f"{name}: cannot parse date {value!r} (expected YYYY-MM-DD)") from exc
    if ts is pd.NaT:
        raise CustscoreError(f"{name}: cannot parse date {value!r} (expected YYYY-MM-DD)")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return ts.normalize()


def _check_time_unit(time_unit: str) -> None:
    if time_unit not in DAYS_PER_UNIT:
        raise CustscoreError(f"time_unit: must be one of {sorted(DAYS_PER_UNIT)}, got {time_unit!r}")


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int,)) or value <= 0:
        raise CustscoreError(f"{name}: must be a whole number of days > 0, got {value!r}")


def _check_rate(value: Any, name: str) -> None:
    if not isinstance(value, (int, float)) or not (0.0 <= float(value) < 1.0):
        raise CustscoreError(f"{name}: must be in [0, 1), got {value!r}")


@dataclass(frozen=True)
class ColumnMap:
    """Names of the transaction-log columns in the user's file."""

    customer: str = "customer_id"
    date: str = "date"
    amount: str = "amount"

    def __post_init__(self) -> None:
        names = [self.customer, self.date, self.amount]
        if any(not isinstance(n, str) or not n for n in names):
            raise CustscoreError(f"column names must be non-empty strings, got {names}")
        if len(set(names)) != 3:
            raise CustscoreError(f"customer, date and amount columns must differ, got {names}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``custscore train`` needs besides the data.

    Dates are calendar days; ``cutoff`` is the last day of the calibration period,
    inclusive. ``horizon_days`` is the churn horizon and the CLV horizon.
    ``discount_rate`` is yearly. ``time_unit`` is the unit the BG/NBD parameters are
    reported in (``alpha`` scales with it; ``r``, ``a``, ``b`` do not).
    """

    cutoff: pd.Timestamp
    horizon_days: int = 90
    time_unit: str = "D"
    discount_rate: float = 0.10
    holdout_end: Optional[pd.Timestamp] = None
    penalizer: float = 0.0
    seed: int = 0
    experiment: str = DEFAULT_EXPERIMENT
    tracking_uri: Optional[str] = None
    register_as: Optional[str] = None
    columns: ColumnMap = field(default_factory=ColumnMap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoff", parse_date(self.cutoff, "cutoff"))
        if self.holdout_end is not None:
            end = parse_date(self.holdout_end, "holdout_end")
            if end <= self.cutoff:
                raise CustscoreError(f"holdout_end: {end.date()} must be after cutoff {self.cutoff.date()}")
            object.__setattr__(self, "holdout_end", end)
        _check_positive_int(self.horizon_days, "horizon_days")
        _check_time_unit(self.time_unit)
        _check_rate(self.discount_rate, "discount_rate")
        if not isinstance(self.penalizer, (int, float)) or self.penalizer < 0:
            raise CustscoreError(f"penalizer: must be >= 0, got {self.penalizer!r}")

    @property
    def reference_date(self) -> pd.Timestamp:
        """Date at which churn training examples are built: cutoff minus horizon."""
        return self.cutoff - pd.Timedelta(days=self.horizon_days)

    def as_params(self) -> dict[str, Any]:
        """Flat dict for MLflow params (dates as ISO strings)."""
        out = asdict(self)
        out.pop("columns")
        out.update({f"{k}_col": v for k, v in asdict(self.columns).items()})
        out["cutoff"] = self.cutoff.date().isoformat()
        if self.holdout_end is not None:
            out["holdout_end"] = self.holdout_end.date().isoformat()
        return out


@dataclass(frozen=True)
class ScoreConfig:
    """Everything ``custscore score`` needs besides the model and the data.

    ``horizon_days`` of ``None`` means the horizon the model was trained with.
    """

    as_of: pd.Timestamp
    horizon_days: Optional[int] = None
    columns: ColumnMap = field(default_factory=ColumnMap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", parse_date(self.as_of, "as_of"))
        if self.horizon_days is not None:
            _check_positive_int(self.horizon_days, "horizon_days")
