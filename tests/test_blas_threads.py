"""custscore.threads.one_blas_thread: BLAS on one thread inside, restored after, also when blocks overlap."""
from __future__ import annotations

import threading

from threadpoolctl import threadpool_info

from custscore.threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_overlapping_blocks_in_two_threads_keep_one_thread_until_the_last_leaves() -> None:
    import scipy.linalg  # noqa: F401  both BLAS copies loaded before the reference is taken

    before = _blas_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a() -> None:
        with one_blas_thread():
            a_in.set()
            b_in.wait()
        a_out.set()

    def b() -> None:
        a_in.wait()
        with one_blas_thread():
            b_in.set()
            a_out.wait()
            seen["b after a left"] = _blas_threads()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["b after a left"] and set(seen["b after a left"]) == {1}
    assert _blas_threads() == before
    with one_blas_thread():
        with one_blas_thread():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before
