"""Self-contained HTML building blocks: tables, embedded PNG figures, one stylesheet.

Pages built from these open offline: plots are base64 PNG inside the page, no script and
no external resource. Shared by the account-team report, ``custscore evaluate`` and
``custscore drift``.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CSS = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}h2{margin-top:28px;border-bottom:1px solid #ddd}
.note{color:#555;font-size:13px}img{max-width:100%}.alert{color:#b00020;font-weight:bold}
td.text,#at-risk td{text-align:left}dt{font-weight:bold;margin-top:6px}details{margin-top:28px}
summary{font-size:1.3em;cursor:pointer}"""


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG (100 dpi)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def fmt(value: Any, column: str, digits: int = 2) -> str:
    """A cell: booleans as yes/blank, NaN blank, shares (column name holds "share") in %."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        if "share" in column:
            return f"{100 * value:.1f} %"
        return f"{value:,.{digits}f}"
    return str(value)


def table(frame: pd.DataFrame, table_id: str, digits: int = 2,
          formats: Optional[Mapping[str, Callable[[Any], str]]] = None) -> str:
    """``frame`` as an HTML table with id ``table_id`` (underscores in headers shown as spaces).

    ``formats`` maps column names to their own cell formatter (e.g. money); other cells use :func:`fmt`.
    """
    formats = formats or {}
    cells = [formats.get(str(c)) or (lambda v, c=str(c): fmt(v, c, digits)) for c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for cell, v in zip(cells, row)) + "</tr>"
        for row in frame.itertuples(index=False))
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def img(b64: str, alt: str) -> str:
    """An ``<img>`` holding a base64 PNG."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def page(title: str, body: list[str]) -> str:
    """A complete page: ``title`` as ``<title>`` and ``<h1>``, then the ``body`` parts."""
    title = html.escape(title)
    return "\n".join([f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>",
                      f"<style>{CSS}</style></head><body><h1>{title}</h1>", *body, "</body></html>"])
