"""The README's five-minute tour, copied from README.md itself and run in order in a fresh folder.

Each ```bash block after a ``<!-- tour -->`` line is one step, run by bash as written with
this environment's ``bin/`` first on PATH (so ``custscore`` and ``python`` are the
installed entry points). The ``custscore serve`` step runs in the background until the end;
its port 8000 becomes a free port in that step and in the later ``localhost:8000`` URLs,
so parallel test runs do not meet. When the README breaks, this test does.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

README_PORT = 8000
SERVER_START_S = 120


def tour_blocks(readme: str) -> list[str]:
    """The body of every ```bash block that follows a ``<!-- tour -->`` line, in order."""
    section = readme[readme.index("## Five-minute tour"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"^<!-- tour -->\n```bash\n(.*?)^```", section, re.M | re.S)


def install_extras(readme: str) -> list[str]:
    """The extras named by the README's install line ``pip install -e ".[a,b]"``."""
    two = readme[readme.index("## Two commands"):readme.index("## Five-minute tour")]
    match = re.search(r'pip install -e "\.\[([\w,]+)\]"', two)
    assert match, "README: no pip install line under 'Two commands'"
    return match.group(1).split(",")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"custscore serve exited with status {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if json.load(answer)["status"] == "ready":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail("custscore serve did not become ready")


def test_readme_two_commands_name_the_project_extras_and_pytest():
    readme = (REPO / "README.md").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert install_extras(readme) == ["dev"]
    assert re.search(r"^\[project\.optional-dependencies\]\ndev = \[", pyproject, re.M)
    assert "```bash\npytest\npytest -m slow\n```" in readme


def test_ci_runs_the_readme_test_commands():
    """.ci/run runs the README's test block, line for line, with nothing else calling pytest."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(pytest\n(?:pytest [^\n]*\n)*)```", readme).group(1).splitlines()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if re.match(r"\s*pytest\b", line)]
    assert ci == block


@pytest.mark.slow
def test_readme_tour_runs_in_order(tmp_path):
    blocks = tour_blocks((REPO / "README.md").read_text())
    assert len(blocks) >= 6, blocks
    assert blocks[0].strip() == "custscore quickstart"
    if any(block.lstrip().startswith("curl ") for block in blocks) and not shutil.which("curl"):
        pytest.skip("curl is not installed (the tour's HTTP step uses it)")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    server, outputs, start = None, [], time.monotonic()
    try:
        for block in blocks:
            if block.lstrip().startswith("custscore serve"):
                assert server is None and "\n" not in block.strip(), block
                command = f"exec {block.strip()} --port {port}"
                server = subprocess.Popen(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          start_new_session=True)
                _wait_ready(server, port)
                continue
            if server is not None:
                assert f"localhost:{README_PORT}" in block, block
                block = block.replace(f"localhost:{README_PORT}", f"localhost:{port}")
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, (block, proc.stdout[-2000:], proc.stderr[-2000:])
            assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
            outputs.append(proc.stdout)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    seconds = time.monotonic() - start
    assert server is not None, "the tour has no custscore serve step"
    # what each step promises, checked on its files and answers
    assert (tmp_path / "custscore-quickstart" / "mlflow.db").is_file()
    scores = (tmp_path / "scores.csv").read_text().splitlines()
    assert len(scores) == 1 + 23_570  # one row per CDNOW master customer (load_cdnow_master's docstring)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "actions.csv").is_file()
    assert json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    answer = json.loads(outputs[-1])
    assert [row["customer_id"] for row in answer["scores"]] == ["00004"]
    # the request sends three purchase days: 2 repeat purchases (hand-computed)
    assert answer["scores"][0]["frequency"] == 2
    print(f"README tour: {len(blocks)} steps in {seconds:.1f} s")
