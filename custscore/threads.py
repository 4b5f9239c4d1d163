"""Run independent numpy/scipy pieces of one computation on all cores.

numpy ufunc loops (``np.log``, ``np.exp``, ``scipy.special.hyp2f1`` on arrays, ...) release
the interpreter lock, so threads run them in parallel; small inputs stay on the calling
thread, where a hand-over would cost more than it saves. Because these threads are the
parallelism, BLAS keeps one thread of its own during fits (:func:`one_blas_thread`).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

#: Below this many elements of work in total, :func:`map_in_threads` runs on the calling thread.
MIN_PARALLEL_WORK = 200_000

_pool: Optional[ThreadPoolExecutor] = None
_lock = threading.Lock()
#: Open :func:`one_blas_thread` blocks (main thread only, so no lock) and the limit they share.
_blas_depth = 0
_blas_limit: Optional[Any] = None


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="custscore-math")
        return _pool


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS (OpenBLAS, MKL) on one thread inside the ``with`` block.

    OpenBLAS' own threads spin after a large ``np.dot`` and fight the math threads above and
    any other process for the cores: a 1M-customer MBG/NBD fit took 1.05-2.89 s with them and
    0.19-0.26 s without on this 2-core machine with other work running
    (``python benchmarks/blas_bench.py``, benchmarks/PURCHASE_RESULTS.md). The dot products of
    a fit are memory-bound, so one thread loses nothing.

    The limit is process-wide (threadpoolctl), and OpenBLAS 0.3.30 ignores a thread count set
    from another thread than the one that lowered it (tests/test_blas_threads.py), so only the
    main thread sets and restores it, counting nested blocks (a fit inside the CLI's block);
    elsewhere (fits in a library user's threads) the block changes nothing.
    """
    global _blas_depth, _blas_limit
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _blas_depth == 0:
        import scipy.linalg  # noqa: F401  loads scipy's own BLAS, so that the limit reaches it too

        _blas_limit = threadpool_limits(limits=1, user_api="blas")
    _blas_depth += 1
    try:
        yield
    finally:
        _blas_depth -= 1
        if _blas_depth == 0 and _blas_limit is not None:
            _blas_limit.restore_original_limits()
            _blas_limit = None


def map_in_threads(fn: Callable[[T], R], items: Iterable[T], work: int) -> list[R]:
    """``[fn(item) for item in items]``, spread over the cores when ``work`` (elements) is large.

    ``fn`` must be safe to run concurrently (pure numpy on separate outputs).
    """
    items = list(items)
    if work < MIN_PARALLEL_WORK or len(items) < 2 or _workers() < 2 \
            or threading.current_thread().name.startswith("custscore-math"):
        return [fn(item) for item in items]
    return list(_shared_pool().map(fn, items))


#: Rows per block for :func:`for_each_block`: a block's float temporaries (256 KiB each) stay
#: in the CPU cache, where a pass over a million-row array goes to memory.
BLOCK_ROWS = 1 << 15


def for_each_block(fn: Callable[[slice], R], n: int, block_rows: int = BLOCK_ROWS) -> list[R]:
    """``fn(rows)`` for consecutive row slices covering ``range(n)``, on all cores for large ``n``."""
    return map_in_threads(fn, [slice(start, start + block_rows) for start in range(0, n, block_rows)], work=n)


def all_blocks(rule: Callable[[slice], Any], n: int) -> bool:
    """True when the mask ``rule(rows)`` is all True on every block of ``n`` rows.

    A check over millions of rows as cache-resident passes on all cores, e.g. the fast
    path of input checks (the slow, rule-by-rule path runs only when this fails).
    """
    return all(for_each_block(lambda rows: bool(np.all(rule(rows))), n))
