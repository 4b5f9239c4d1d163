"""A covariate file: read and check it, learn its encoding, encode it (plain data in the model file).

A covariate file (CSV or Parquet) has one row per customer: the customer id column (the
log's name, ``--customer-col``) and numeric or categorical columns. :func:`fit_encoding`
learns the encoding on the training customers and :class:`CovariateEncoding` keeps it as
plain data in the model file: a numeric column is standardised (mean 0, standard
deviation 1 over the training customers, so ``z = 0`` is the average customer and each
coefficient is the effect of one standard deviation); a categorical column becomes one
0/1 column per level except the first (sorted), so its coefficients are effects relative
to that level. Every error is one line naming the file, the row, the customer, the column
and the value.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from custscore.errors import CustscoreError
from custscore.features.io import _customer_ids, _show, read_table_file

#: Column of a covariate table with each row's number in its file (1 = first data row), for errors.
ROW_COLUMN = "__row__"
#: A categorical column with more levels than this is refused (an id or free text, not a category).
MAX_LEVELS = 100
#: An object column with at least this share of numbers is a numeric column with bad values.
_NUMERIC_SHARE = 0.9
#: A numeric column whose standard deviation is below this times max(1, |mean|) is constant.
_CONSTANT_RTOL = 1e-9


def _safe_name(text: str) -> str:
    """A name MLflow accepts in a param (letters, digits, ``_ - .``): other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text).strip()) or "_"


def read_covariates(path: str | Path, customer_col: str) -> pd.DataFrame:
    """The covariate file as a frame indexed by customer id (text), one row per customer, file order.

    Besides the covariate columns it has :data:`ROW_COLUMN`, each row's number in the file.

    Raises :class:`CustscoreError` (one line naming the file, column, row and value) for a
    missing file, an unsupported type, no ``customer_col`` or no other column, a missing
    id or a duplicate id.
    """
    path = Path(path)
    if not path.exists():
        raise CustscoreError(f"{path}: covariate file not found")
    frame = read_table_file(path, lambda p: pd.read_csv(p, dtype={customer_col: str}, encoding="utf-8-sig",
                                                        index_col=False), "utf-8", "covariate file")
    frame.columns = [str(c).strip() for c in frame.columns]
    if customer_col not in frame.columns:
        raise CustscoreError(f"{path}: no customer id column {customer_col!r} (columns: {list(frame.columns)[:10]}); "
                             "the covariate file names customers as the log does (--customer-col)")
    if len(frame.columns) < 2:
        raise CustscoreError(f"{path}: no covariate column besides {customer_col!r}")
    if frame.columns.duplicated().any():
        raise CustscoreError(f"{path}: column {frame.columns[frame.columns.duplicated()][0]!r} appears twice")
    rows = np.arange(1, len(frame) + 1)
    ids = _customer_ids(frame[customer_col], customer_col, str(path), rows)
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        first, *rest = np.flatnonzero(duplicated)
        again = next(i for i in rest if ids.iloc[i] == ids.iloc[first])
        raise CustscoreError(f"{path}: row {again + 1}: column {customer_col!r}: duplicate customer id "
                             f"{_show(ids.iloc[first])} (also row {first + 1}); one row per customer")
    table = frame.drop(columns=[customer_col]).set_axis(pd.Index(ids.to_numpy(), name="customer_id"), axis=0)
    return table.assign(**{ROW_COLUMN: rows})


class CovariateEncoding:
    """How raw covariate columns become the model's numeric columns (plain data, in the model file).

    ``numeric``: column -> ``[mean, sd]`` of the training customers (``z = (value - mean) / sd``);
    ``levels``: column -> its levels, the first the reference (no column of its own);
    ``names``: the encoded columns in order (``age``, ``region_north``, ...);
    ``source``: the file the encoding was learned from (messages only).
    """

    def __init__(self, numeric: dict[str, list[float]], levels: dict[str, list[str]], names: list[str],
                 source: str) -> None:
        self.numeric, self.levels, self.names, self.source = numeric, levels, names, source

    @property
    def columns(self) -> list[str]:
        """The raw columns a covariate table must have."""
        return list(self.numeric) + list(self.levels)

    def params(self) -> dict[str, str | float]:
        """MLflow params of the encoding: ``covariate_<col>_mean`` / ``_sd``, ``covariate_<col>_levels``
        (comma-separated, the first the reference)."""
        out: dict[str, str | float] = {}
        for column, (mean, sd) in self.numeric.items():
            out.update({f"covariate_{_safe_name(column)}_mean": mean, f"covariate_{_safe_name(column)}_sd": sd})
        for column, levels in self.levels.items():
            out[f"covariate_{_safe_name(column)}_levels"] = ",".join(levels)[:500]
        return out

    def transform(self, table: pd.DataFrame, source: str) -> pd.DataFrame:
        """Encoded covariates of every row of ``table`` (:func:`read_covariates`), same index, columns :attr:`names`.

        Errors name ``source``, the row (1 = first data row), the customer, the column and
        the value: a missing column, a missing value, text in a numeric column, a level not
        seen in training.
        """
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise CustscoreError(f"{source}: no covariate column {missing[0]!r}; the model was trained with "
                                 f"{self.columns}")
        out = {}
        for column, (mean, sd) in self.numeric.items():
            out[_safe_name(column)] = (_numbers(_column(table, column), column, source) - mean) / sd
        for column, levels in self.levels.items():
            text = _texts(_column(table, column), column, source)
            unknown = ~text.isin(levels).to_numpy()
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                shown = ", ".join(levels[:10]) + (", ..." if len(levels) > 10 else "")
                raise CustscoreError(f"{source}: {_where(text, i, _rows(_column(table, column)))}: column {column!r}: "
                                     f"level {_show(text.iloc[i])} was not seen in training (levels: {shown})")
            for level in levels[1:]:
                out[f"{_safe_name(column)}_{_safe_name(level)}"] = (text == level).to_numpy(dtype=float)
        return pd.DataFrame({name: np.asarray(out[name], dtype=float) for name in self.names}, index=table.index)


def _where(values: pd.Series, i: int, rows: Optional[pd.Series] = None) -> str:
    """``row N (customer ID)``: N the row in the file when known, else the position (1 = first)."""
    row = int(rows.iloc[i]) if rows is not None else i + 1
    return f"row {row} (customer {_show(values.index[i])})"


def _column(table: pd.DataFrame, column: str) -> pd.Series:
    """``table[column]`` remembering the file's row numbers (:data:`ROW_COLUMN`) for its errors."""
    values = table[column].copy()
    if ROW_COLUMN in table.columns:
        values.attrs[ROW_COLUMN] = table[ROW_COLUMN]
    return values


def _rows(values: pd.Series) -> Optional[pd.Series]:
    return values.attrs.get(ROW_COLUMN)


def _check_present(values: pd.Series, column: str, source: str) -> None:
    missing = values.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise CustscoreError(f"{source}: {_where(values, i, _rows(values))}: column {column!r}: "
                             f"missing value ({int(missing.sum())} rows affected)")


def _numbers(values: pd.Series, column: str, source: str) -> np.ndarray:
    """A numeric column as floats; text, booleans or missing values are an error naming the row."""
    _check_present(values, column, source)
    if pd.api.types.is_bool_dtype(values):
        raise CustscoreError(f"{source}: column {column!r}: true/false values in a numeric column")
    parsed = pd.to_numeric(values, errors="coerce")
    bad = (parsed.isna() | ~np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CustscoreError(f"{source}: {_where(values, i, _rows(values))}: column {column!r}: "
                             f"not a finite number: {_show(values.iloc[i])} ({int(bad.sum())} rows affected)")
    return parsed.to_numpy(dtype=float)


def _texts(values: pd.Series, column: str, source: str) -> pd.Series:
    """A categorical column as stripped text (whole numbers without ``.0``); missing values are an error."""
    _check_present(values, column, source)
    if pd.api.types.is_float_dtype(values) and np.all(values == np.floor(values)):
        values = values.astype("int64")
    return values.astype(str).str.strip()


def _is_numeric(values: pd.Series, column: str, source: str) -> bool:
    """True for a numeric column; an object column that is mostly numbers with some text is an error."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    present = values.dropna()
    parsed = pd.to_numeric(present, errors="coerce")
    if len(present) and parsed.notna().mean() >= _NUMERIC_SHARE:
        _numbers(values, column, source)  # names the first value that is not a number
        return True
    return False


def fit_encoding(table: pd.DataFrame, source: str) -> tuple[CovariateEncoding, list[str]]:
    """The encoding of ``table`` (the training customers' rows) and warnings (texts, no prefix).

    A constant numeric column or a category with one level carries no information and is
    dropped with a warning; no column left is an error, as is a category of more than
    :data:`MAX_LEVELS` levels or two encoded columns with the same name.
    """
    numeric: dict[str, list[float]] = {}
    levels: dict[str, list[str]] = {}
    warnings: list[str] = []
    for column in [c for c in table.columns if c != ROW_COLUMN]:
        values = _column(table, column)
        if _is_numeric(values, column, source):
            x = _numbers(values, column, source)
            mean, sd = float(np.mean(x)), float(np.std(x))
            if sd <= _CONSTANT_RTOL * max(1.0, abs(mean)):
                warnings.append(f"covariate {column!r} in {source} is constant ({mean:g}) over the training "
                                "customers: not used")
                continue
            numeric[column] = [mean, sd]
        else:
            found = sorted(_texts(values, column, source).unique())
            if len(found) > MAX_LEVELS:
                raise CustscoreError(f"{source}: column {column!r}: {len(found)} distinct values (more than "
                                     f"{MAX_LEVELS}): not a category; drop it or group its values")
            if len(found) < 2:
                warnings.append(f"covariate {column!r} in {source} has one level ({found[0]!r}) over the training "
                                "customers: not used")
                continue
            levels[column] = found
    names = [_safe_name(c) for c in numeric] + [f"{_safe_name(c)}_{_safe_name(level)}"
                                                for c, found in levels.items() for level in found[1:]]
    if not names:
        raise CustscoreError(f"{source}: no covariate varies over the training customers")
    clash = pd.Index(names)[pd.Index(names).duplicated()]
    if len(clash):
        raise CustscoreError(f"{source}: two covariates encode to the column name {clash[0]!r}; rename one")
    return CovariateEncoding(numeric, levels, names, source), warnings


def covariates_of_rows(encoding: Optional[CovariateEncoding], rows: pd.DataFrame, source: str,
                       customer_col: str = "customer_id") -> Optional[pd.DataFrame]:
    """A covariate table from transaction rows that carry each customer's covariate columns
    (the MLflow pyfunc's input); the first row of a customer counts. None without an encoding."""
    if encoding is None:
        return None
    missing = [c for c in [customer_col] + encoding.columns if c not in rows.columns]
    if missing:
        raise CustscoreError(f"{source}: no column {missing[0]!r}; this model was trained with covariates "
                             f"{encoding.columns}, given per transaction row")
    first = rows.drop_duplicates(customer_col)
    return first[encoding.columns].set_axis(pd.Index(first[customer_col].astype(str).str.strip().to_numpy(),
                                                     name="customer_id"), axis=0)
