"""Database logs and score tables (issue 21): PostgreSQL (a real server) and SQLite.

Truth: the same log read from a Parquet/CSV file (the engines' features are tested
against hand-computed logs elsewhere), a hand-computed toy summary, and the score file
written by the file path. PostgreSQL tests need ``CUSTSCORE_TEST_POSTGRES_URL`` (``.ci/run``
starts a server with ``.ci/postgres.sh``; there ``CUSTSCORE_REQUIRE_POSTGRES=1`` turns a
missing server into a failure instead of a skip).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import REPO, run_cli

if not os.environ.get("CUSTSCORE_REQUIRE_POSTGRES"):  # under .ci/run a missing driver fails collection
    pytest.importorskip("adbc_driver_sqlite", reason="the [db] extra (ADBC drivers) is not installed")
    pytest.importorskip("adbc_driver_postgresql", reason="the [db] extra (ADBC drivers) is not installed")

from custscore.cli import main  # noqa: E402
from custscore.config import ColumnMap  # noqa: E402
from custscore.errors import CustscoreError  # noqa: E402
from custscore.features.database import DatabaseLog, connect  # noqa: E402
from custscore.features.engines import iter_customer_features, open_engine, rfm_table  # noqa: E402

PG_ENV = "CUSTSCORE_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CUSTSCORE_REQUIRE_POSTGRES"):
            pytest.fail(f"{PG_ENV} is unset although CUSTSCORE_REQUIRE_POSTGRES is set (.ci/postgres.sh failed?)")
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (eval \"$(bash .ci/postgres.sh start)\")")
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, tmp_path) -> str:
    """Each test once against the PostgreSQL server, once against a fresh SQLite file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shop.db'}"
    return request.getfixturevalue("pg_url")


def table_name(prefix: str = "tx") -> str:
    """A table name no other test (or xdist worker) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def load_table(url: str, name: str, frame: pd.DataFrame) -> None:
    con = connect(url, must_exist=False)
    try:
        con.cursor().adbc_ingest(name, pa.Table.from_pandas(frame, preserve_index=False), mode="create")
        con.commit()
    finally:
        con.close()


def execute(url: str, sql: str) -> None:
    con = connect(url)
    try:
        con.cursor().execute(sql)
        con.commit()
    finally:
        con.close()


def read_table(url: str, sql: str) -> pd.DataFrame:
    con = connect(url)
    try:
        cursor = con.cursor()
        cursor.execute(sql)
        return cursor.fetch_arrow_table().to_pandas()
    finally:
        con.close()


def without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# A toy log with the cases exact netting must get right: a same-day return netting to
# exactly 0 (0.3 - 0.1 - 0.2), a return-only day, ids with leading zeros, times of day.
TOY = pd.DataFrame({
    "customer_id": ["007", "007", "007", "007", "007", "01", "01", "01"],
    "date": pd.to_datetime(["2020-01-01 09:00", "2020-01-03 10:00", "2020-01-03 11:00", "2020-01-03 12:00",
                            "2020-01-05 00:00", "2020-01-02 00:00", "2020-01-10 00:00", "2020-01-20 00:00"]),
    "amount": [10.0, 0.3, -0.1, -0.2, 5.0, 4.0, -3.0, 6.0],
})


def test_toy_summary_from_database_is_the_hand_computed_one(db_url):
    """Hand-computed at 2020-01-31 (days): 007 buys on days 0, 2 (net 0.0) and 4 -> x=2, t_x=4,
    T=30, monetary (0 + 5) / 2; 01 buys on day 0, returns only on day 8 (dropped), buys day
    18 -> x=1, t_x=18, T=29, monetary 6."""
    name = table_name()
    load_table(db_url, name, TOY)
    for engine in ("auto", "duckdb", "pandas"):
        got = rfm_table(open_engine(DatabaseLog(db_url, table=name), ColumnMap(), engine), "2020-01-31")
        assert got.index.tolist() == ["007", "01"], engine
        assert got["frequency"].tolist() == [2, 1], engine
        assert got["recency_days"].tolist() == [4.0, 18.0], engine
        assert got["T_days"].tolist() == [30.0, 29.0], engine
        assert got["monetary_value"].tolist() == [2.5, 6.0], engine


@pytest.fixture(scope="session")
def cdnow_parquet(tmp_path_factory) -> Path:
    from custscore.features.cdnow import load_cdnow_sample

    path = tmp_path_factory.mktemp("dbdata") / "cdnow.parquet"
    load_cdnow_sample().to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("engine", ["auto", "duckdb", "pandas"])
def test_features_from_database_equal_the_files_bit_for_bit(db_url, cdnow_parquet, engine):
    """Every feature (RFM summary, windows, trend) from the table equals the Parquet file's, to the bit."""
    name = table_name()
    load_table(db_url, name, pd.read_parquet(cdnow_parquet))
    from_file = open_engine(cdnow_parquet, ColumnMap(), "pandas")
    from_db = open_engine(DatabaseLog(db_url, table=name), ColumnMap(), engine)
    if engine != "pandas":  # the DuckDB engine, in memory: the result fits
        assert type(from_db).__name__ == "DuckDBEngine" and from_db.in_memory
    pd.testing.assert_frame_equal(rfm_table(from_db, "1997-09-30", "W"), rfm_table(from_file, "1997-09-30", "W"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(pd.concat(list(iter_customer_features(from_db, pd.Timestamp("1998-03-31"), "D"))),
                                  from_file.customer_features(pd.Timestamp("1998-03-31"), "D"), check_exact=True)


def test_numeric_amounts_and_a_query_read_like_the_file(pg_url, cdnow_parquet):
    """NUMERIC(10,2) amounts (text in Arrow) and --query: still the file's features, to the bit."""
    name = table_name()
    load_table(pg_url, name, pd.read_parquet(cdnow_parquet))
    execute(pg_url, f"ALTER TABLE {name} ALTER COLUMN amount TYPE numeric(10, 2)")
    log = DatabaseLog(pg_url, query=f"SELECT customer_id AS cust, date::date AS day, amount AS total FROM {name}")
    columns = ColumnMap(customer="cust", date="day", amount="total")
    expected = rfm_table(open_engine(cdnow_parquet, ColumnMap(), "pandas"), "1997-09-30")
    for engine in ("auto", "pandas"):
        pd.testing.assert_frame_equal(rfm_table(open_engine(log, columns, engine), "1997-09-30"), expected,
                                      check_exact=True)


def test_a_table_larger_than_the_memory_budget_streams_into_duckdb(db_url, cdnow_parquet, monkeypatch):
    """``auto`` streams a result larger than the in-memory budget into DuckDB, which answers
    out of core (bounded memory): same features."""
    import custscore.features.engines as engines

    name = table_name()
    load_table(db_url, name, pd.read_parquet(cdnow_parquet))
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 1000 * engines.IN_MEMORY_BYTES_PER_ROW)
    engine = open_engine(DatabaseLog(db_url, table=name), ColumnMap(), "auto")
    assert type(engine).__name__ == "DuckDBEngine" and not engine.in_memory
    pd.testing.assert_frame_equal(rfm_table(engine, "1997-09-30"),
                                  rfm_table(open_engine(cdnow_parquet, ColumnMap(), "pandas"), "1997-09-30"),
                                  check_exact=True)


# ----------------------------------------------------------------------------- scoring


def _score(trained, log_args: list[str], output_args: list[str], as_of: str = "1998-06-30",
           extra: tuple[str, ...] = ()) -> None:
    code = main(["score", "--model", trained["logged"].model_uri, *log_args, "--as-of", as_of, *output_args,
                 "--tracking-uri", trained["config"].tracking_uri, *extra])
    assert code == 0


def _assert_same_scores(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.sort_values("customer_id").reset_index(drop=True)[list(expected.columns)]
    assert len(got) == len(expected)
    for column in expected.columns:
        if pd.api.types.is_float_dtype(expected[column]):
            np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float),
                                       rtol=0, atol=1e-12, err_msg=column)
        else:
            assert got[column].astype(object).where(got[column].notna(), None).tolist() == \
                expected[column].astype(object).where(expected[column].notna(), None).tolist(), column


def test_scores_written_to_the_database_equal_the_file_scores(trained, cdnow_sample_csv, db_url, tmp_path):
    name, out = table_name(), table_name("scores")
    load_table(db_url, name, pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str}))
    _score(trained, ["--transactions", str(cdnow_sample_csv)], ["--output", str(tmp_path / "s.parquet")])
    _score(trained, ["--transactions", db_url, "--table", name], ["--output", db_url, "--output-table", out])
    expected = pd.read_parquet(tmp_path / "s.parquet")
    _assert_same_scores(read_table(db_url, f"SELECT * FROM {out}"), expected)
    # the segment settings: the file's sidecar, less the file checksum
    sidecar = json.loads((tmp_path / "s.parquet.segments.json").read_text())
    sidecar.pop("data_sha256")
    rows = read_table(db_url, f"SELECT * FROM {out}_segments")
    assert rows[["as_of", "model_version", "n_customers"]].values.tolist() == [
        [sidecar["as_of"], sidecar["model_version"], sidecar["n_customers"]]]
    assert json.loads(rows["settings"].iloc[0]) == sidecar


def test_rerunning_a_job_leaves_exactly_one_copy(trained, cdnow_sample_csv, db_url):
    out = table_name("scores")
    log = ["--transactions", str(cdnow_sample_csv)]
    for _ in range(2):
        _score(trained, log, ["--output", db_url, "--output-table", out])
    _score(trained, log, ["--output", db_url, "--output-table", out], as_of="1998-03-31")  # another run
    counts = read_table(db_url, f"SELECT as_of, count(*) AS n, count(DISTINCT customer_id) AS ids "
                                f"FROM {out} GROUP BY as_of ORDER BY as_of")
    assert counts.values.tolist() == [["1998-03-31", 2357, 2357], ["1998-06-30", 2357, 2357]]
    assert read_table(db_url, f"SELECT count(*) AS n FROM {out}_segments")["n"].tolist() == [2]
    with pytest.raises(Exception):  # the unique index on (customer_id, as_of, model_version) exists
        execute(db_url, f"INSERT INTO {out} SELECT * FROM {out} LIMIT 1")


@pytest.mark.slow
def test_a_job_killed_while_writing_leaves_the_previous_rows_intact_and_readable(trained, cdnow_sample_csv,
                                                                                  db_url, tmp_path):
    """The second run (another --margin, so other values) is SIGKILLed after its DELETE and
    INSERTs, just before COMMIT (test hook): during the pause and after the kill, readers
    see exactly the first run's rows."""
    out = table_name("scores")
    args = ["score", "--model", trained["logged"].model_uri, "--transactions", str(cdnow_sample_csv),
            "--as-of", "1998-06-30", "--output", db_url, "--output-table", out,
            "--tracking-uri", trained["config"].tracking_uri]
    assert run_cli(*args).returncode == 0
    before = read_table(db_url, f"SELECT customer_id, future_value FROM {out} ORDER BY customer_id")
    marker = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-m", "custscore.cli", *args, "--margin", "0.5"],
                            env={**os.environ, "CUSTSCORE_TEST_HOOK_BEFORE_COMMIT": str(marker)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never reached its commit"
            time.sleep(0.1)
        during = read_table(db_url, f"SELECT customer_id, future_value FROM {out} ORDER BY customer_id")
        pd.testing.assert_frame_equal(during, before)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    after = read_table(db_url, f"SELECT customer_id, future_value FROM {out} ORDER BY customer_id")
    pd.testing.assert_frame_equal(after, before)
    # the same job without the kill does replace them (so the kill, not the job, kept them)
    assert run_cli(*args, "--margin", "0.5").returncode == 0
    replaced = read_table(db_url, f"SELECT customer_id, future_value FROM {out} ORDER BY customer_id")
    assert len(replaced) == len(before)
    np.testing.assert_allclose(replaced["future_value"], before["future_value"] * 0.5, rtol=1e-12)


# ------------------------------------------------------------------------ credentials


def test_the_password_never_appears_in_messages_logs_or_mlflow(pg_url, tmp_path):
    """A password from the URL is in no output, error or MLflow param/tag; $PGPASSWORD and
    $PGPASSFILE work for a URL without one."""
    secret = urlsplit(pg_url).password
    assert secret, "the test server's URL carries a password (.ci/postgres.sh)"
    name = table_name()
    from custscore.features.cdnow import load_cdnow_sample

    load_table(pg_url, name, load_cdnow_sample())
    wrong = pg_url.replace(f":{secret}@", ":Wr0ng-s3cret@")
    proc = run_cli("rfm", "--transactions", wrong, "--table", name, "--as-of", "1997-09-30",
                   "--output", str(tmp_path / "r.csv"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "cannot connect" in proc.stderr and "Wr0ng-s3cret" not in proc.stderr and ":***@" in proc.stderr

    bare = without_password(pg_url)
    for env in ({"PGPASSWORD": secret}, {"PGPASSFILE": str(_passfile(tmp_path, pg_url))}):
        proc = run_cli("rfm", "--transactions", bare, "--table", name, "--as-of", "1997-09-30",
                       "--output", str(tmp_path / "r.csv"), env=env)
        assert proc.returncode == 0, (env.keys(), proc.stderr)
    assert len(pd.read_csv(tmp_path / "r.csv")) == 2357

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli("train", "--transactions", pg_url, "--table", name, "--cutoff", "1997-09-30",
                   "--horizon-days", "90", "--tracking-uri", tracking)
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout + proc.stderr
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs
    for run in runs:
        text = json.dumps({"params": run.data.params, "tags": run.data.tags})
        assert secret not in text


def test_database_logs_and_outputs_are_named_without_the_password():
    """What every message and MLflow record uses (str) and what a debug print shows (repr)."""
    from custscore.serving.db_output import DatabaseOutput

    url = "postgresql://ann:s3cret@db.example:5432/shop?sslmode=require&password=s3cret"
    for named in (DatabaseLog(url, table="sales.tx"), DatabaseLog(url, query="select 1"), DatabaseOutput(url, "crm.s")):
        assert "s3cret" not in str(named) and "s3cret" not in repr(named), (str(named), repr(named))
    assert str(DatabaseLog(url, table="sales.tx")) == \
        "postgresql://ann:***@db.example:5432/shop?sslmode=require&password=*** table sales.tx"


def _passfile(tmp_path: Path, url: str) -> Path:
    parts = urlsplit(url)
    path = tmp_path / "pgpass"
    path.write_text(f"{parts.hostname}:{parts.port}:{parts.path.lstrip('/')}:{parts.username}:{parts.password}\n")
    path.chmod(0o600)
    return path


# -------------------------------------------------------------------------- bad input

BAD_INPUT = {  # name -> (column -> values, message fragment after the table's name)
    "database: missing column": ({"customer_id": ["1"], "date": ["2020-01-01"], "total": [3.0]},
                                 "missing column(s) ['amount']; columns found: ['customer_id', 'date', 'total']"),
    "database: NULL customer id": ({"customer_id": ["1", None], "date": ["2020-01-01", "2020-01-02"],
                                    "amount": [3.0, 4.0]},
                                   "row 2 (customer_id NULL): column 'customer_id': missing customer id"),
    "database: non-numeric amount": ({"customer_id": ["1", "2"], "date": ["2020-01-01", "2020-01-02"],
                                      "amount": ["3", "12 EUR"]},
                                     "row 2 (customer_id '2'): column 'amount': amount is not a finite number: "
                                     "'12 EUR'"),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_database_input_gets_one_line_naming_the_table_and_row(db_url, tmp_path, name):
    values, fragment = BAD_INPUT[name]
    table = table_name()
    load_table(db_url, table, pd.DataFrame(values))
    for engine in ("auto", "pandas", "duckdb"):
        proc = run_cli("rfm", "--transactions", db_url, "--table", table, "--as-of", "2020-01-31",
                       "--output", str(tmp_path / "r.csv"), "--engine", engine)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
        assert f"table {table}: {fragment}" in err, (engine, err)
        assert not (tmp_path / "r.csv").exists()


OPTION_ERRORS = {
    "database: --table and --query both": (["--transactions", "sqlite:///x.db", "--table", "t", "--query", "select 1"],
                                           "give exactly one of --table or --query"),
    "database: --table without a URL": (["--transactions", "log.csv", "--table", "t"],
                                        "--table and --query need --transactions to be a database URL"),
    "database: no such table": (["--transactions", "sqlite:///{db}", "--table", "nope"],
                                "table nope: cannot read (ProgrammingError"),
    "database: SQLite file not found": (["--transactions", "sqlite:///{missing}", "--table", "t"], "file not found"),
    "database: --output URL without --output-table": ([], "a database output needs --output-table NAME"),
}


@pytest.mark.parametrize("name", list(OPTION_ERRORS))
def test_database_option_errors(tmp_path, name):
    args, fragment = OPTION_ERRORS[name]
    db = tmp_path / "shop.db"
    load_table(f"sqlite:///{db}", "t", TOY)
    args = [a.format(db=db, missing=tmp_path / "missing.db") for a in args]
    if "--transactions" in args:  # the log is read first by rfm (score loads the model first)
        command = ["rfm", "--as-of", "2020-01-31", "--output", str(tmp_path / "r.csv")]
    else:
        command = ["score", "--model", "runs:/x/model", "--as-of", "2020-01-31", "--output", "sqlite:///x.db",
                   "--transactions", str(tmp_path / "log.csv")]
    proc = run_cli(*command, *args)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err


def test_a_database_url_without_the_db_extra_names_the_extra(tmp_path):
    """With the ADBC drivers unimportable: one line naming the extra, exit 2."""
    shim = tmp_path / "shim"
    for module in ("adbc_driver_postgresql", "adbc_driver_sqlite"):
        (shim / module).mkdir(parents=True)
        (shim / module / "__init__.py").write_text("raise ImportError('not installed')\n")
    proc = run_cli("rfm", "--transactions", "postgresql://ann:s3cret@localhost/shop", "--table", "tx",
                   "--as-of", "2020-01-31", "--output", str(tmp_path / "r.csv"),
                   env={"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])})
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert EXTRA_MESSAGE in err and "s3cret" not in err, err


EXTRA_MESSAGE = "database URLs need the optional extra db: pip install 'custscore[db]'"


def test_docs_table_quotes_each_database_message():
    import re

    page = (REPO / "docs" / "inputs.md").read_text()
    section = page[page.index("## Bad input"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section

    cases = {**{k: v[1] for k, v in BAD_INPUT.items()}, **{k: v[1] for k, v in OPTION_ERRORS.items()},
             "database: without the [db] extra": EXTRA_MESSAGE}
    for name, fragment in cases.items():
        row = re.search(rf"^\| {re.escape(name)} \|.*$", section, re.M)
        assert row, f"docs/inputs.md bad-input table has no row {name!r}"
        assert fragment.replace("|", "\\|") in row.group(0), (name, row.group(0))


# ---------------------------------------------------------------- other commands


@pytest.mark.slow
def test_rfm_evaluate_and_backtest_read_a_database_log(trained, cdnow_sample_csv, tmp_path):
    """rfm from a --query equals rfm from the file; evaluate and backtest accept --table."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_table(url, "tx", pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str}))
    assert main(["rfm", "--transactions", url, "--query", "SELECT * FROM tx WHERE amount >= 0", "--as-of",
                 "1997-09-30", "--output", str(tmp_path / "db.csv")]) == 0
    positive = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str}).query("amount >= 0")
    positive.to_csv(tmp_path / "positive.csv", index=False)
    assert main(["rfm", "--transactions", str(tmp_path / "positive.csv"), "--as-of", "1997-09-30",
                 "--output", str(tmp_path / "file.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "db.csv"), pd.read_csv(tmp_path / "file.csv"))

    _score(trained, ["--transactions", str(cdnow_sample_csv)], ["--output", str(tmp_path / "s.csv")],
           as_of="1997-09-30")
    tracking = trained["config"].tracking_uri
    assert main(["evaluate", "--scores", str(tmp_path / "s.csv"), "--transactions", url, "--table", "tx",
                 "--output-dir", str(tmp_path / "ev"), "--tracking-uri", tracking]) == 0
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert main(["backtest", "--transactions", url, "--table", "tx", "--horizon-days", "90", "--cutoffs",
                 "1997-09-30", "--n-bootstrap", "20", "--output-dir", str(tmp_path / "bt"),
                 "--tracking-uri", tracking]) == 0
