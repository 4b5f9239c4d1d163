"""benchmarks/generate.py writes one log in each row order and format: same rows, the order asked."""
from __future__ import annotations

import runpy
import sys

import pandas as pd

from conftest import REPO


def _generate(tmp_path, name: str, *args: str) -> pd.DataFrame:
    """``benchmarks/generate.py --customers 300 --output NAME ARGS``, its main() run in this process
    (the script is not installed: its globals come from the file, as ``python generate.py`` gets them)."""
    out = tmp_path / name
    script = runpy.run_path(str(REPO / "benchmarks" / "generate.py"))
    saved = sys.argv
    sys.argv = ["generate.py", "--customers", "300", "--output", str(out), *args]
    try:
        script["main"]()
    finally:
        sys.argv = saved
    if out.suffix == ".csv":
        return pd.read_csv(out, dtype={"customer_id": str}, parse_dates=["date"])
    return pd.read_parquet(out)


def test_orders_and_formats_hold_the_same_rows(tmp_path):
    base = _generate(tmp_path, "customer.parquet", "--time-of-day")
    by_time = _generate(tmp_path, "time.csv", "--order", "time", "--time-of-day")
    shuffled = _generate(tmp_path, "shuffled.parquet", "--order", "shuffled", "--time-of-day")
    assert base["customer_id"].is_monotonic_increasing
    assert by_time["date"].is_monotonic_increasing and not by_time["customer_id"].is_monotonic_increasing
    assert not shuffled["date"].is_monotonic_increasing and not shuffled["customer_id"].is_monotonic_increasing
    assert (base["date"].dt.floor("D") != base["date"]).mean() > 0.99  # times of day
    key = ["customer_id", "date", "amount"]
    for other in (by_time, shuffled):
        a = base.astype({"date": "datetime64[s]"}).sort_values(key).reset_index(drop=True)
        b = other.astype({"date": "datetime64[s]"}).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a[key], b[key], check_exact=False, rtol=1e-15)
