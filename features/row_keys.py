"""How an error names a row: its 1-based number in a file, or number and id for a database result.

Files have stable row numbers; a database result has no order of its own, so its rows
are named by their number in the result *and* the customer id the row holds
(:class:`KeyedRows`), e.g. ``row 3 (customer_id '042')``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd


def row_label(value: Any) -> str:
    """The text naming one row in an error: a keyed label as is, a number as an integer.

    >>> row_label(np.int64(7)), row_label("3 (customer_id NULL)")
    ('7', '3 (customer_id NULL)')
    """
    return value if isinstance(value, str) else str(int(value))


class KeyedRows:
    """Row names ``N (COLUMN 'id')`` for rows numbered ``numbers`` holding ids ``ids`` (None/NaN: NULL).

    Indexed by position like the array of row numbers it replaces; labels are made only
    for the row an error names, so a large result costs nothing until then.

    >>> KeyedRows(np.array([1, 2]), pd.Series(["042", None]), "customer_id")[1]
    '2 (customer_id NULL)'
    """

    def __init__(self, numbers: np.ndarray, ids: Sequence[Any] | pd.Series, column: str) -> None:
        self.numbers = np.asarray(numbers)
        self.ids = ids if isinstance(ids, pd.Series) else pd.Series(ids)
        self.column = column

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, position: int) -> str:
        value = self.ids.iloc[int(position)]
        shown = "NULL" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(
            value.item() if isinstance(value, np.generic) else value)
        return f"{int(self.numbers[int(position)])} ({self.column} {shown})"
