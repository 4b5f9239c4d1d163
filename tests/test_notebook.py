"""The walk-through notebook runs top to bottom (so it cannot rot)."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO


@pytest.mark.slow
def test_walkthrough_notebook_executes(tmp_path):
    nb = nbformat.read(REPO / "notebooks" / "walkthrough.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "published" in text and "holdout purchases" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3
