"""The Arrow CSV writer gives the bytes pandas' ``to_csv`` writes, or leaves the frame to pandas."""
from __future__ import annotations

import csv
import io
import struct

import numpy as np
import pandas as pd
import pytest

from custscore import csv_text
from custscore.spreadsheet import neutralise_formulas, to_csv


def pandas_bytes(frame: pd.DataFrame, header: bool = True) -> bytes:
    """The reference: what custscore wrote before the Arrow writer (pandas, ``QUOTE_MINIMAL``)."""
    return frame.to_csv(index=False, header=header, quoting=csv.QUOTE_MINIMAL).encode("utf-8")


def fast_bytes(frame: pd.DataFrame, header: bool = True) -> bytes:
    buffer = io.BytesIO()
    assert csv_text.write_csv(frame, buffer, header), "expected the Arrow writer to take this frame"
    return buffer.getvalue()


#: Floats where Python's repr changes notation or is special: both sides of 1e-4, 1e10 (Arrow) and 1e16,
#: whole numbers, signed zeros, the extremes, subnormals, inf and NaN.
EDGE_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.1, 2.5, 100.0, 1e-4, -1e-4, np.nextafter(1e-4, 0), 1.5e-4, 1e-5, 9.99e-5,
               1e-6, 1e-7, 1.2345e-6, 1e15, np.nextafter(1e15, 0), -1e15, 1e16, np.nextafter(1e16, 0), 1.5e16,
               2.0 ** 53, 123456789012345.0, 123456789012345.6, 1e20, 1e21, 1e22, 1e-300, 5e-324, 2.2250738585072014e-308,
               1.7976931348623157e308, -1.7976931348623157e308, np.inf, -np.inf, np.nan, 1 / 3, 12345.678,
               31.223599999999998, 0.30000000000000004]


def random_floats(n: int, seed: int) -> np.ndarray:
    """Floats of every magnitude: random bit patterns (NaN payloads included), plus values near 1."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** 63, n, dtype=np.int64) * rng.choice([1, -1], n)
    scaled = rng.lognormal(0, 8, n) * rng.choice([1, -1], n)
    return np.concatenate([bits.view(np.float64), scaled, np.round(scaled, 2), np.floor(scaled)])


def test_floats_are_pythons_repr():
    values = np.concatenate([np.array(EDGE_FLOATS), random_floats(20_000, 0)])
    frame = pd.DataFrame({"x": values, "y": values[::-1].copy()})
    assert fast_bytes(frame) == pandas_bytes(frame)
    expected = ["" if np.isnan(v) else repr(float(v)) for v in values]
    assert csv_text.float_text(values).to_pylist() == expected  # independent of pandas: Python's repr


def test_every_plain_range_boundary():
    """Every float next to a notation boundary of Python and of Arrow, both sides."""
    edges = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1.0, 1e9, 1e10, 1e11, 1e14, 1e15, 1e16, 1e17, 1e21]
    values = []
    for edge in edges:
        for step in range(-3, 4):
            value = edge
            for _ in range(abs(step)):
                value = np.nextafter(value, 0 if step < 0 else np.inf)
            values += [value, -value]
    values = np.array(values)
    assert csv_text.float_text(values).to_pylist() == [repr(float(v)) for v in values]


def test_text_quoting_and_missing():
    texts = ["plain", "ünïcødé ✓ 客户", 'say "hi"', "a,b", "line\nbreak", "", None, " spaced ", "'quoted'", '"', ",",
             "émoji 🙂, and \"both\""]
    frame = pd.DataFrame({"id": pd.array(texts, dtype="str"), "obj": pd.Series(texts, dtype=object),
                          "n": np.arange(len(texts))})
    assert fast_bytes(frame) == pandas_bytes(frame)


def test_ints_bools_and_mixed_columns():
    rng = np.random.default_rng(1)
    n = 5_000
    frame = pd.DataFrame({
        "i64": rng.integers(-2 ** 63, 2 ** 63 - 1, n, dtype=np.int64),
        "i32": rng.integers(-2 ** 31, 2 ** 31 - 1, n, dtype=np.int32),
        "u64": rng.integers(0, 2 ** 64 - 1, n, dtype=np.uint64),
        "flag": rng.random(n) < 0.5,
        "x": random_floats(n // 4, 2)[:n],
        "name": pd.array([f"c{k},{k % 7}" if k % 3 else None for k in range(n)], dtype="str"),
    })
    assert fast_bytes(frame) == pandas_bytes(frame)
    assert fast_bytes(frame, header=False) == pandas_bytes(frame, header=False)
    assert fast_bytes(frame.iloc[:0]) == pandas_bytes(frame.iloc[:0])


def test_header_names_are_quoted_like_pandas():
    frame = pd.DataFrame({"a,b": [1.0], 'say "x"': ["y"], "ü": [True]})
    assert fast_bytes(frame) == pandas_bytes(frame)


def test_batches_join_into_one_file(monkeypatch):
    monkeypatch.setattr(csv_text, "BATCH_ROWS", 7)
    frame = pd.DataFrame({"x": random_floats(50, 3), "t": pd.array([f"r{k}" for k in range(200)], dtype="str")})
    assert fast_bytes(frame) == pandas_bytes(frame)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"only": [1.0, np.nan]}),  # one column: the csv module quotes an empty cell
    pd.DataFrame({"d": pd.to_datetime(["2023-01-01", None]), "x": [1.0, 2.0]}),
    pd.DataFrame({"c": pd.Categorical(["a", "b"]), "x": [1.0, 2.0]}),
    pd.DataFrame({"f32": np.array([0.1, 2.0], dtype=np.float32), "x": [1.0, 2.0]}),
    pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "x": [1.0, 2.0]}),
    pd.DataFrame({"o": [1.5, "a"], "x": [1.0, 2.0]}),
    pd.DataFrame({"t": ["a\rb", "c"], "x": [1.0, 2.0]}),
    pd.DataFrame({1: ["a", "c"], "x": [1.0, 2.0]}),
], ids=["one-column", "datetime", "category", "float32", "nullable-int", "mixed-object", "carriage-return", "int-name"])
def test_other_frames_go_to_pandas(frame):
    """Frames the Arrow writer does not reproduce are refused, and to_csv writes them with pandas."""
    assert not csv_text.write_csv(frame, io.BytesIO())
    quoting = csv.QUOTE_NONNUMERIC if "t" in frame.columns else csv.QUOTE_MINIMAL
    assert to_csv(frame) == frame.to_csv(index=False, quoting=quoting).encode("utf-8")


def test_real_score_columns(trained, cdnow_sample_csv):
    """The score table of the CDNOW sample (all 45 columns) as the CSV pandas would write."""
    from custscore.features.io import read_transactions

    scores = trained["result"].scorer.score(read_transactions(cdnow_sample_csv), as_of="1998-06-30")
    assert len(scores) > 1000 and len(scores.columns) >= 45
    safe = neutralise_formulas(scores)
    assert to_csv(scores) == pandas_bytes(safe) == fast_bytes(safe)


def test_float_bits_roundtrip_through_the_text():
    """The text reads back to the same float64 bits (repr round-trips), NaN as empty."""
    values = random_floats(5_000, 4)
    back = pd.read_csv(io.BytesIO(fast_bytes(pd.DataFrame({"x": values, "y": values}))))
    finite = ~np.isnan(values)
    assert [struct.pack("<d", v) for v in back["x"].to_numpy()[finite]] == [struct.pack("<d", v) for v in values[finite]]


def test_docstring_examples():
    import doctest

    result = doctest.testmod(csv_text)
    assert result.failed == 0 and result.attempted >= 3


def random_texts(n: int, seed: int) -> list:
    """Short texts mixing the formula prefixes, quotes, separators, non-ASCII and missing cells."""
    rng = np.random.default_rng(seed)
    alphabet = list("=+-@\t\r'\",\nab é客🙂")
    return [None if rng.random() < 0.1 else "".join(rng.choice(alphabet, rng.integers(0, 4))) for _ in range(n)]


@pytest.mark.parametrize("dtype", ["str", object])
def test_byte_scans_agree_with_pandas_string_methods(dtype):
    """The first-byte and byte scans give pandas' startswith / contains, also on a slice of a column."""
    series = pd.Series(random_texts(3_000, 5), dtype=dtype)
    for part in (series, series.iloc[1234:2345], series.iloc[:0]):
        chars = ("=", "+", "-", "@", "\t", "\r", "'")
        expected = part.str.startswith(chars).fillna(False).to_numpy(dtype=bool)
        assert csv_text.starts_with_any(part, chars).tolist() == expected.tolist()
        for char in ("\r", ",", "x"):
            assert csv_text.contains_char(part, char) == bool(part.str.contains(char, regex=False).fillna(False).any())


def test_random_texts_written_like_pandas():
    texts = [t for t in random_texts(3_000, 6) if t is None or "\r" not in t]
    frame = pd.DataFrame({"t": pd.array(texts, dtype="str"), "o": pd.Series(texts, dtype=object), "n": 1.5})
    assert fast_bytes(frame) == pandas_bytes(frame)
    assert to_csv(frame) == pandas_bytes(neutralise_formulas(frame))


def test_chunked_score_csv_is_pandas_text_of_the_parquet_scores(trained, cdnow_sample_csv, tmp_path):
    """`score` to CSV in several chunks (written on the writer thread) gives, byte for byte, the
    text pandas writes for the same scores written as Parquet."""
    from custscore.config import ScoreConfig
    from custscore.features.duckdb_engine import DuckDBEngine, DuckDBSettings
    from custscore.serving.batch import score_engine

    scorer, config = trained["result"].scorer, ScoreConfig(as_of="1997-09-30")
    duck = DuckDBEngine(cdnow_sample_csv, settings=DuckDBSettings(rows_per_chunk=300, threads=2, memory_limit="1GB"))
    for suffix in (".csv", ".parquet"):
        score_engine(scorer, duck, tmp_path / f"s{suffix}", config)
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert len(scores) == 2357
    assert (tmp_path / "s.csv").read_bytes() == pandas_bytes(neutralise_formulas(scores))
