"""A frame from 1-D columns without copying them.

``pd.DataFrame(dict_of_arrays)`` consolidates the columns of one dtype into a 2-D block, a
copy of every number (0.1-0.6 s for the million rows and 20 float columns of a score
table); a frame concatenated from the columns as Series keeps them as they are. Values,
dtypes, column order and the RangeIndex are the same. Shared by training and serving, so it
lives in the base package.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd


def frame_of(columns: Mapping[str, Any]) -> pd.DataFrame:
    """The frame of ``columns`` (name -> 1-D array of one length, or a number repeated in every row).

    >>> frame_of({"a": np.array([1.0, 2.0]), "b": 3}).to_dict("list")
    {'a': [1.0, 2.0], 'b': [3, 3]}
    """
    n = next(len(v) for v in columns.values() if np.ndim(v))
    return pd.concat([pd.Series(np.full(n, v) if not np.ndim(v) else v, name=k, copy=False)
                      for k, v in columns.items()], axis=1)
