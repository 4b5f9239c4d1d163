"""The CDNOW demo data shipped inside the installed ``lifetimes`` package.

The files are read from ``<lifetimes>/datasets/`` located with
:func:`importlib.util.find_spec`, without importing ``lifetimes`` (importing it changes
global warning filters) and without any download. Both loaders return a raw log with
the default :class:`~custscore.config.ColumnMap` columns ``customer_id`` (the original
5-digit id as str, leading zeros kept), ``date`` (``datetime64[ns]``) and ``amount``
(float64, dollars), ready for :func:`custscore.features.io.normalise_transactions`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from custscore.errors import CustscoreError

SAMPLE_FILE = "CDNOW_sample.txt"
MASTER_FILE = "CDNOW_master.txt"


def _datasets_dir() -> Path:
    try:
        spec = importlib.util.find_spec("lifetimes")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CustscoreError("CDNOW demo data: the lifetimes package is not installed (pip install lifetimes)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


def _data_file(name: str) -> Path:
    path = _datasets_dir() / name
    if not path.is_file():
        raise CustscoreError(f"CDNOW demo data: {path} not found (reinstall lifetimes)")
    return path


def _has_header(path: Path) -> bool:
    with path.open("r", encoding="ascii", errors="replace") as handle:
        first = handle.readline().split()
    return bool(first) and not first[0].isdigit()


def _read(path: Path, names: list[str]) -> pd.DataFrame:
    raw = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=names,
        skiprows=1 if _has_header(path) else 0,
        dtype={"customer_id": str, "date": str, "amount": "float64"},
    )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "date": pd.to_datetime(raw["date"], format="%Y%m%d").astype("datetime64[ns]"),
            "amount": raw["amount"].astype("float64"),
        }
    )


def load_cdnow_sample() -> pd.DataFrame:
    """CDNOW sample: 6,919 purchases by 2,357 customers, 1997-01-01 to 1998-06-30.

    Source columns: original id, new id 1..2357, date YYYYMMDD, number of CDs, dollars.
    """
    return _read(_data_file(SAMPLE_FILE), ["customer_id", "new_id", "date", "n_cds", "amount"])


def load_cdnow_master() -> pd.DataFrame:
    """CDNOW master: 69,659 purchases by 23,570 customers, 1997-01-01 to 1998-06-30."""
    return _read(_data_file(MASTER_FILE), ["customer_id", "date", "n_cds", "amount"])
