"""The documentation site: the CLI page is the parser's rendering, and `mkdocs build --strict` passes offline."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import cli_reference
from conftest import REPO
from mlproject_spec import subcommands

def _build(config, site):
    """``mkdocs build --strict``; skips (with the reason) where the [dev] extra's mkdocs is missing."""
    pytest.importorskip("mkdocs", reason="mkdocs is in the [dev] extra: pip install -e '.[dev]'")
    pytest.importorskip("material", reason="mkdocs-material is in the [dev] extra: pip install -e '.[dev]'")
    # no proxy variables: the build needs no network
    env = {**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()}, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_page_is_the_rendering_of_the_parser():
    """Regenerate with `cd tests && python cli_reference.py > ../docs/cli.md` after a CLI change."""
    assert (REPO / "docs" / "cli.md").read_text() == cli_reference.render()


def test_cli_page_lists_every_command_and_option():
    page = (REPO / "docs" / "cli.md").read_text()
    for name, parser in subcommands().choices.items():
        section = page[page.index(f"## `custscore {name}`"):]
        section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert re.search(rf"\| `{re.escape(option)}[ `]", section), (name, option)


def test_mkdocs_build_strict_is_self_contained(tmp_path):
    proc = _build(REPO / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pages = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html")}
    for page in ("cli", "inputs", "models", "mlflow", "http", "spark", "benchmarks", "design", "research", "tour",
                 "benchmarks/RESULTS", "benchmarks/HTTP_RESULTS", "benchmarks/SPARK_RESULTS",
                 "benchmarks/PURCHASE_RESULTS"):
        assert f"{page}/index.html" in pages, sorted(pages)
    html = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html  # theme.font: false


def test_mkdocs_strict_fails_on_a_broken_link(tmp_path):
    """The guard works: a link to a missing page or anchor fails the build."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks", ignore=shutil.ignore_patterns("*.py"))
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for broken in ("[gone](no-such-page.md)", "[gone](models.md#no-such-section)"):
        index = tmp_path / "docs" / "index.md"
        original = (REPO / "docs" / "index.md").read_text()
        index.write_text(original + f"\n{broken}\n")
        proc = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
        assert proc.returncode != 0 and "no-such" in proc.stderr, (broken, proc.stderr[-2000:])


def test_readme_is_short_and_its_docs_links_resolve():
    """README is the user guide (at most ~250 lines, issue 20); each link into docs/ names a page and heading."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert len(links) >= 10, links
    for path, anchor in links:
        page = REPO / path
        assert page.is_file(), path
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
            slugs = {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}
            assert anchor in slugs, (path, anchor, sorted(slugs))
