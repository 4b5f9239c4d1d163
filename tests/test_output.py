"""Atomic output: a failed write leaves the previous file intact and no temporary files."""
from __future__ import annotations

import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.serving.output import write_table_atomic


class Boom(pd.DataFrame):
    """A frame whose to_csv writes part of the file, then crashes."""

    def to_csv(self, handle, **kwargs):
        handle.write(b"customer_id,clv\n0001,")
        raise RuntimeError("disk on fire")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip(tmp_path, suffix):
    frame = pd.DataFrame({"customer_id": ["0001", "0002"], "clv": [1.5, 2.5]})
    path = write_table_atomic(frame, tmp_path / f"scores{suffix}")
    back = pd.read_csv(path, dtype={"customer_id": str}) if suffix == ".csv" else pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_crash_mid_write_keeps_previous_file(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError):
        write_table_atomic(Boom(), target)
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_unknown_suffix_and_missing_folder(tmp_path):
    with pytest.raises(CustscoreError, match="unsupported suffix"):
        write_table_atomic(pd.DataFrame(), tmp_path / "x.xlsx")
    with pytest.raises(CustscoreError, match="does not exist"):
        write_table_atomic(pd.DataFrame(), tmp_path / "nope" / "x.csv")


def test_written_files_get_ordinary_permissions(tmp_path):
    """Not mkstemp's owner-only 0600: account teams share these files."""
    import os
    import stat
    old = os.umask(0o022)
    try:
        path = write_table_atomic(pd.DataFrame({"a": [1]}), tmp_path / "scores.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
