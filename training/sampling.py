"""Seeded uniform samples of rows or customers (one rule for every subsample training draws).

:func:`sample_positions` is what :class:`~custscore.training.churn.ChurnClassifier` uses to
cap its training examples and what :func:`sample_customers` uses to draw the customers the
model choices are validated on (:attr:`~custscore.config.TrainConfig.validation_sample`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd


def sample_positions(n_rows: int, size: int, seed: int) -> Optional[np.ndarray]:
    """Sorted positions of ``size`` of ``n_rows`` rows drawn uniformly without replacement with
    ``seed``; None when there are at most ``size`` rows (or ``size`` is 0: no sample).

    >>> sample_positions(3, 5, 0) is None, len(sample_positions(10, 4, 0))
    (True, 4)
    """
    if size <= 0 or n_rows <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size, replace=False))


def sample_customers(customers: pd.Index, size: int, seed: int) -> Optional[pd.Index]:
    """A seeded uniform sample of ``size`` customer ids of ``customers`` (in their order), or None
    when there are at most ``size`` of them: every customer is used then."""
    keep = sample_positions(len(customers), size, seed)
    return None if keep is None else customers[keep]
