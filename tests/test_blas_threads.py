"""custscore.threads.one_blas_thread: BLAS on one thread inside, restored after; nested in the main
thread, and a no-op in other threads (OpenBLAS ignores counts set across threads).

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
with one_blas_thread():
    with one_blas_thread():
        seen["inner"] = blas()
    seen["outer after inner"] = blas()
seen["after nested"] = blas()

def fit_in_a_thread(out):
    with one_blas_thread():
        out.append(blas())

for round in range(2):
    got = []
    threads = [threading.Thread(target=fit_in_a_thread, args=(got,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen[f"inside threads {round}"] = sorted({n for g in got for n in g})
    seen[f"after threads {round}"] = blas()
with one_blas_thread():
    seen["main after threads"] = blas()
seen["end"] = blas()
print(json.dumps(seen))
'''


def test_overlapping_blocks_in_two_threads_keep_one_thread_until_the_last_leaves() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=120,
                          env={"OPENBLAS_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["before"] == [2]
    assert seen["inner"] == [1] and seen["outer after inner"] == [1] and seen["after nested"] == [2]
    for round in range(2):
        assert seen[f"inside threads {round}"] == [2] and seen[f"after threads {round}"] == [2]
    assert seen["main after threads"] == [1] and seen["end"] == [2]
