"""MkDocs hook: publish ``benchmarks/*RESULTS.md`` as pages of the site without moving them.

The benchmark scripts and the code's comments cite those files where they are; the site
serves them at ``benchmarks/RESULTS/`` etc., so docs pages link ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = ("RESULTS.md", "HTTP_RESULTS.md", "SPARK_RESULTS.md", "REASONS_RESULTS.md", "PURCHASE_RESULTS.md")


def on_files(files, config):
    folder = Path(config["config_file_path"]).parent / "benchmarks"
    for name in RESULTS:
        files.append(File.generated(config, f"benchmarks/{name}", abs_src_path=str(folder / name)))
    return files
