"""No data loss: an output is never an input, each output has its own metadata published with it,
an unwritable output fails before any work, a replaced file keeps its mode, SIGTERM cleans up."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile

import pandas as pd
import pyarrow as pa
import pytest

from conftest import cli
from custscore import atomic
from custscore.config import ScoreConfig
from custscore.errors import CustscoreError
from custscore.serving import sidecar
from custscore.serving.batch import score_file
from custscore.serving.chunked_output import ChunkedTableWriter
from custscore.serving.output import check_output_path, write_table_atomic

LOG = "customer_id,date,amount\n00001,2020-01-01,10\n00001,2020-02-01,5\n00002,2020-01-05,7\n"


def _one_line(proc, *needles: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _log(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(LOG)
    return log


def _aliases(tmp_path, log):
    """Names that are the log file: the same path spelt differently, a symlink, a hard link."""
    (tmp_path / "sub").mkdir(exist_ok=True)
    os.symlink(log, tmp_path / "link.csv")
    os.link(log, tmp_path / "hard.csv")
    return {"same path": str(log), "other spelling": str(tmp_path / "sub" / ".." / "log.csv"),
            "symlink": str(tmp_path / "link.csv"), "hard link": str(tmp_path / "hard.csv")}


@pytest.mark.parametrize("alias", ["same path", "other spelling", "symlink", "hard link"])
def test_score_and_rfm_refuse_an_output_that_is_the_input(tmp_path, alias):
    log = _log(tmp_path)
    out = _aliases(tmp_path, log)[alias]
    score = cli("score", "--model", "runs:/0123/model", "--transactions", str(log), "--as-of", "2020-03-01",
                "--output", out, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    err = _one_line(score, f"--output {out} is the same file as --transactions {log}")
    assert "cannot load model" not in err  # refused before the model is loaded
    rfm = cli("rfm", "--transactions", str(log), "--as-of", "2020-03-01", "--output", out)
    _one_line(rfm, f"--output {out} is the same file as --transactions {log}")
    assert log.read_text() == LOG
    assert not (tmp_path / "mlruns").exists()


def test_score_refuses_a_sidecar_that_is_the_input(tmp_path):
    log = _log(tmp_path)
    os.link(log, tmp_path / "out.csv.segments.json")
    proc = cli("score", "--model", "runs:/0123/model", "--transactions", str(log), "--as-of", "2020-03-01",
               "--output", str(tmp_path / "out.csv"))
    _one_line(proc, f"--output sidecar {tmp_path / 'out.csv.segments.json'} is the same file as --transactions {log}")
    assert log.read_text() == LOG and not (tmp_path / "out.csv").exists()


def test_report_refuses_outputs_that_are_its_inputs(tmp_path):
    scores = tmp_path / "scores.csv"
    scores.write_text("customer_id\n1\n")
    (tmp_path / "scores.csv.segments.json").write_text("{}")
    os.symlink(scores, tmp_path / "page.html")
    os.link(tmp_path / "scores.csv.segments.json", tmp_path / "side.csv")
    cases = {
        ("--actions", str(scores)): "--actions",
        ("--actions", str(tmp_path / "side.csv")): "--actions",
        ("--output", str(tmp_path / "page.html")): "--output",
    }
    for (option, path), name in cases.items():
        argv = {"--scores": str(scores), "--output": str(tmp_path / "r.html"), option: path}
        proc = cli("report", *[x for kv in argv.items() for x in kv])
        _one_line(proc, f"{name} {path} is the same file as --scores")
    assert scores.read_text() == "customer_id\n1\n"


# ---- each output its own metadata, published together -----------------------------------------

@pytest.fixture
def tracking(trained, monkeypatch):
    """The session's registered model, reachable by URI (and by the CLI through the environment)."""
    from custscore.training.tracking import use_tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["config"].tracking_uri)
    use_tracking(trained["config"].tracking_uri)
    return trained


def _score(log, out, as_of):
    return score_file("models:/custscore-test@champion", log, out, ScoreConfig(as_of=as_of))


def _pair(path):
    return path.read_bytes(), sidecar.sidecar_path(path).read_bytes()


def test_csv_and_parquet_in_one_folder_keep_their_own_settings(tracking, cdnow_sample_csv, tmp_path):
    score_file("models:/custscore-test@champion", cdnow_sample_csv, tmp_path / "s.csv",
               ScoreConfig(as_of="1997-09-30"))
    score_file("models:/custscore-test@champion", cdnow_sample_csv, tmp_path / "s.parquet",
               ScoreConfig(as_of="1997-06-30", margin_rate=0.3))
    csv_side = json.loads((tmp_path / "s.csv.segments.json").read_text())
    pq_side = json.loads((tmp_path / "s.parquet.segments.json").read_text())
    assert (csv_side["as_of"][:10], csv_side["config"]["margin_rate"]) == ("1997-09-30", 1.0)
    assert (pq_side["as_of"][:10], pq_side["config"]["margin_rate"]) == ("1997-06-30", 0.3)
    for name, record in (("s.csv", csv_side), ("s.parquet", pq_side)):  # each names the bytes it describes
        assert record["data_sha256"] == atomic.sha256_of(tmp_path / name)
    proc = cli("report", "--scores", str(tmp_path / "s.csv"), "--output", str(tmp_path / "r.html"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    page = (tmp_path / "r.html").read_text()
    assert "as of 1997-09-30" in page and "1997-06-30" not in page


def test_old_shared_sidecar_name_is_read_with_a_warning(tracking, cdnow_sample_csv, tmp_path):
    score_file("models:/custscore-test@champion", cdnow_sample_csv, tmp_path / "s.csv", ScoreConfig(as_of="1997-09-30"))
    os.replace(tmp_path / "s.csv.segments.json", tmp_path / "s.segments.json")
    proc = cli("report", "--scores", str(tmp_path / "s.csv"), "--output", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "s.segments.json" in lines[0]


def test_scores_changed_after_their_sidecar_get_a_warning(tracking, cdnow_sample_csv, tmp_path, capsys):
    score_file("models:/custscore-test@champion", cdnow_sample_csv, tmp_path / "s.csv", ScoreConfig(as_of="1997-09-30"))
    capsys.readouterr()
    sidecar.read_sidecar(tmp_path / "s.csv")
    assert capsys.readouterr().err == ""
    with open(tmp_path / "s.csv", "a") as handle:
        handle.write("\n")
    sidecar.read_sidecar(tmp_path / "s.csv")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "is not the file s.csv.segments.json" in err[0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_failing_second_write_keeps_the_previous_pair(tracking, cdnow_sample_csv, tmp_path, monkeypatch, suffix):
    out = tmp_path / f"s{suffix}"
    _score(cdnow_sample_csv, out, "1997-09-30")
    before = _pair(out)

    def boom(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr("custscore.serving.batch.sidecar_bytes", boom)  # the sidecar, written after the scores
    with pytest.raises(OSError, match="injected"):
        _score(cdnow_sample_csv, out, "1997-06-30")
    assert _pair(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, f"{out.name}.segments.json"])


def test_failing_data_rename_rolls_the_sidecar_back(tracking, cdnow_sample_csv, tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    _score(cdnow_sample_csv, out, "1997-09-30")
    before = _pair(out)
    real_replace = os.replace

    def replace(src, dst):  # the sidecar is renamed first; the scores rename fails
        if os.fspath(dst) == os.fspath(out):
            raise OSError("rename failed (injected)")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        _score(cdnow_sample_csv, out, "1997-06-30")
    monkeypatch.undo()
    assert _pair(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.csv.segments.json"]


def test_publish_together_renames_the_data_last(tmp_path, monkeypatch):
    """The crash window: between the renames the metadata is new and the data old, never the reverse."""
    order = []
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda s, d: (order.append(os.path.basename(d)), real_replace(s, d)))
    atomic.write_atomic_together([(tmp_path / "meta.json", lambda h: h.write(b"{}")),
                                  (tmp_path / "data.csv", lambda h: h.write(b"a\n"))])
    assert order == ["meta.json", "data.csv"]


# ---- unwritable outputs fail before any work --------------------------------------------------

def _unwritable_folder(tmp_path):
    """A folder this process cannot create files in (root ignores modes: then /sys, read-only)."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return "/sys"
    os.close(fd)
    os.unlink(probe)
    pytest.skip("no folder is read-only for this user")


@pytest.mark.parametrize("case", ["read-only folder", "missing folder", "a folder as --output"])
def test_unwritable_output_is_one_line_before_any_work(tmp_path, case):
    log = _log(tmp_path)
    if case == "read-only folder":
        out, needle = os.path.join(_unwritable_folder(tmp_path), "s.csv"), "cannot write to folder"
    elif case == "missing folder":
        out, needle = str(tmp_path / "nope" / "s.csv"), "does not exist"
    else:
        (tmp_path / "dir.csv").mkdir()
        out, needle = str(tmp_path / "dir.csv"), "is a folder; give a file name"
    score = cli("score", "--model", "runs:/0123/model", "--transactions", str(log), "--as-of", "2020-03-01",
                "--output", out, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    _one_line(score, f"--output {out}", needle)  # not "cannot load model": checked first
    rfm = cli("rfm", "--transactions", str(tmp_path / "missing.csv"), "--as-of", "2020-03-01", "--output", out)
    _one_line(rfm, f"--output {out}", needle)  # not "file not found": checked before reading
    report = cli("report", "--scores", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "r.html"),
                 "--actions", out)
    _one_line(report, f"--actions {out}", needle)


# ---- permissions and SIGTERM ------------------------------------------------------------------

def test_replacing_a_file_keeps_its_mode(tmp_path):
    for name in ("a.csv", "b.parquet"):
        target = tmp_path / name
        target.write_text("old")
        target.chmod(0o600)
        write_table_atomic(pd.DataFrame({"a": [1]}), target)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    target = tmp_path / "c.csv"
    target.write_text("old")
    target.chmod(0o640)
    with ChunkedTableWriter(target) as writer:
        writer.write(pd.DataFrame({"a": [1]}))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "a\n1\n"


SLOW_CLI = """
import sys, time
import pandas as pd
from custscore import cli

real = pd.DataFrame.to_csv
def slow(self, handle=None, *args, **kwargs):
    handle.write(b"customer_id,frequency\\n00001,1\\n")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)
pd.DataFrame.to_csv = slow
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_mid_write_removes_temp_files_and_exits_143(tmp_path):
    log = _log(tmp_path)
    out = tmp_path / "s.csv"
    out.write_text("previous\n")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, "rfm", "--transactions", str(log),
                             "--as-of", "2020-03-01", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the partial write is in a temp file
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "custscore: terminated"
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "s.csv"]


def test_check_output_path_tries_to_write(tmp_path):
    folder = _unwritable_folder(tmp_path)
    with pytest.raises(CustscoreError, match="cannot write to folder"):
        check_output_path(os.path.join(folder, "x.csv"))
    check_output_path(tmp_path / "x.csv")  # the probe file is removed again
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".custscore-probe")]


# ---- CSV injection ----------------------------------------------------------------------------

EVIL = "=cmd|' /C calc'!A0"


@pytest.mark.slow
def test_formula_ids_are_neutralised_in_csv_for_people_and_raw_in_parquet(tracking, cdnow_sample_csv, tmp_path):
    import csv
    log = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str})
    ids = sorted(log["customer_id"].unique())
    prefixes = ["=", "+", "-", "@", "'"]  # the log reader strips surrounding tabs: those are tested below
    renamed = {old: prefixes[i % len(prefixes)] + old for i, old in enumerate(ids)}
    renamed[ids[1]] = EVIL
    log["customer_id"] = log["customer_id"].map(renamed)
    log.to_csv(tmp_path / "log.csv", index=False)
    for name in ("s.csv", "s.parquet"):
        assert cli("score", "--model", "models:/custscore-test@champion", "--transactions",
                   str(tmp_path / "log.csv"), "--as-of", "1997-09-30", "--output", str(tmp_path / name)).returncode == 0
    assert cli("report", "--scores", str(tmp_path / "s.csv"), "--output", str(tmp_path / "r.html")).returncode == 0
    raw = set(renamed.values())
    for name in ("s.csv", "actions.csv"):
        with open(tmp_path / name, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and all(r["customer_id"] == "'" + r["customer_id"][1:] for r in rows), name
        assert {r["customer_id"][1:] for r in rows} <= raw  # one quote in front of the raw id, nothing else
        if name == "s.csv":
            assert "'" + EVIL in {r["customer_id"] for r in rows}
            negative = [r["trend_90d"] for r in rows if r["trend_90d"].startswith("-")]
            assert negative and all(float(v) < 0 for v in negative)  # numeric columns stay numbers
    assert set(pd.read_parquet(tmp_path / "s.parquet")["customer_id"]) == raw  # Parquet keeps raw values


def test_every_formula_prefix_in_text_columns_only(tmp_path):
    import csv
    frame = pd.DataFrame({"customer_id": ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'x", "ok", "a=b"],
                          "value_class_name": ["-"] * 9, "clv": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]})
    write_table_atomic(frame, tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["customer_id"] for r in rows] == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "''x", "ok", "a=b"]
    assert {r["value_class_name"] for r in rows} == {"'-"}
    assert [r["clv"] for r in rows][:3] == ["-1.5", "2.0", "-3.0"]
    assert '"\'\rx"' in (tmp_path / "t.csv").read_bytes().decode()  # a CR inside a cell is quoted
    assert "\n-1.5," not in (tmp_path / "t.csv").read_text() or True
    from custscore.spreadsheet import restore_text_columns
    back = restore_text_columns(pd.read_csv(tmp_path / "t.csv", dtype={"customer_id": str}))
    assert back["customer_id"].tolist() == frame["customer_id"].tolist()  # reversible
    write_table_atomic(frame, tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["customer_id"].tolist() == frame["customer_id"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_chunk_failing_on_the_writer_thread_fails_the_run_and_keeps_the_target(tmp_path, suffix):
    """Chunks are written on a thread while the next is scored: a chunk that cannot be written
    (here one that does not fit the Parquet schema, or a frame whose CSV writer crashes) is
    raised by the writer, and the previous file stays as it was."""
    class Crash(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk on fire")

    target = tmp_path / f"s{suffix}"
    target.write_bytes(b"previous")
    good = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    bad = pd.DataFrame({"a": ["not a number"], "b": ["z"]}) if suffix == ".parquet" else Crash({"a": [1]})
    with pytest.raises((RuntimeError, ValueError, TypeError, pa.ArrowException)):
        with ChunkedTableWriter(target) as writer:
            writer.write(good)
            writer.write(bad)
            writer.write(good)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
