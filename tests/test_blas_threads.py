"""custscore.threads.one_blas_thread: BLAS on one thread inside, restored after, also when blocks overlap.

The limit is process-wide, and other tests in a worker process may hold it (an in-process
``custscore serve``) or set their own, so the scenario runs in a fresh interpreter.
"""
from __future__ import annotations

import json
import subprocess
import sys

SCENARIO = r'''
import json, threading
import scipy.linalg  # both BLAS copies loaded before the reference is taken
from threadpoolctl import threadpool_info
from custscore.threads import one_blas_thread

def blas():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})

seen = {"before": blas()}
a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

def a():
    with one_blas_thread():
        a_in.set()
        b_in.wait()
    a_out.set()

def b():
    a_in.wait()
    with one_blas_thread():
        b_in.set()
        a_out.wait()
        seen["b after a left"] = blas()

threads = [threading.Thread(target=a), threading.Thread(target=b)]
for t in threads:
    t.start()
for t in threads:
    t.join()
seen["after both"] = blas()
with one_blas_thread():
    with one_blas_thread():
        pass
    seen["outer after inner"] = blas()
seen["after nested"] = blas()
print(json.dumps(seen))
'''


def test_overlapping_blocks_in_two_threads_keep_one_thread_until_the_last_leaves() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=120,
                          env={"OPENBLAS_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["before"] == [2]
    assert seen["b after a left"] == [1] and seen["outer after inner"] == [1]
    assert seen["after both"] == [2] and seen["after nested"] == [2]
