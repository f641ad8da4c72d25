"""How a server process shares the machine's cores: ONNX Runtime runs and numpy's BLAS.

numpy's BLAS (OpenBLAS in the wheels) starts a thread per core for a large matrix-vector
product, and its threads spin for a while after each product. Measured on 2 cores at 100k
events (``bench/bench_search.py --only latency``): a hybrid search, whose BM25 query runs on
a helper thread while the query is embedded and scored, took 36-45 ms p50 with BLAS on both
cores and 24-25 ms with one BLAS thread, because the spinning BLAS threads took the BM25
thread's core. Semantic mode alone lost 5 ms (16 vs 21 ms). Capping BLAS per call instead
measured worse than not capping: the threads it had started kept spinning. One knob covers
both runtimes: ``embed_threads`` (default 1, like ONNX Runtime's intra-op threads), and
many servers on one host then do not each spin on every core.
"""

from __future__ import annotations

import os
import sys

__all__ = ["available_cores", "limit_blas_threads"]

_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def limit_blas_threads(threads: int) -> None:
    """Let numpy's BLAS use at most ``threads`` threads in this process, unless the user chose.

    Before numpy is imported (a server imports it on first use) the BLAS libraries read
    their environment variables; a variable already set is the user's choice and is kept.
    Once numpy is loaded, threadpoolctl sets the same limit on the loaded library.
    """
    chosen = [name for name in _BLAS_VARIABLES if name in os.environ]
    if chosen:
        return
    if "numpy" not in sys.modules:
        for name in _BLAS_VARIABLES:
            os.environ[name] = str(threads)
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
