"""Split work over the CPU cores outside BLAS.

NumPy releases the GIL inside large copies and arithmetic, so plain threads
give real speed-ups for the memory-bound parts of the ops (im2col copies,
col2im adds, depthwise multiply-adds).  ``parallel_for(n, work)`` calls
``work(lo, hi)`` on contiguous chunks of ``range(n)``, one per thread.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

# A call whose work touches fewer bytes than ``min_bytes`` runs on the calling thread alone:
# handing a chunk to another thread and back costs about 0.1 ms (measured on a 2-vCPU VM: an
# idle core must be woken), as long as a quarter of a millisecond of memory-bound NumPy work.
_state = {"threads": max(1, min(os.cpu_count() or 1, 8)), "pool": None, "min_bytes": 1 << 21}


def get_num_threads() -> int:
    return _state["threads"]


def set_num_threads(n: int) -> None:
    """Threads used by strided outside BLAS (BLAS keeps its own setting)."""
    if int(n) < 1:
        raise ValueError(f"number of threads must be >= 1, received {n!r}")
    if _state["pool"] is not None:
        _state["pool"].shutdown(wait=True)
    _state["threads"], _state["pool"] = int(n), None


def get_parallel_threshold() -> int:
    return _state["min_bytes"]


def set_parallel_threshold(nbytes: int) -> None:
    """Bytes of work below which :func:`parallel_for` stays on one thread (default 2 MiB; 0 = always split)."""
    if int(nbytes) < 0:
        raise ValueError(f"the parallel threshold must be >= 0 bytes, received {nbytes!r}")
    _state["min_bytes"] = int(nbytes)


def _pool() -> ThreadPoolExecutor:
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(_state["threads"], thread_name_prefix="strided")
    return _state["pool"]


def parallel_for(n: int, work, min_chunk: int = 1, work_bytes: int | None = None) -> None:
    """Run ``work(lo, hi)`` over ``range(n)`` split into one chunk per thread.

    ``work_bytes``: about how many bytes the whole call reads and writes; below the threshold
    (:func:`set_parallel_threshold`, 2 MiB by default) the call runs on this thread alone, since
    the hand-off to another thread would cost more than it saves."""
    threads = min(_state["threads"], n // max(min_chunk, 1))
    if threads <= 1 or (work_bytes is not None and work_bytes < _state["min_bytes"]):
        work(0, n)
        return
    bounds = [n * i // threads for i in range(threads + 1)]
    futures = [_pool().submit(work, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    work(bounds[0], bounds[1])  # this thread does the first chunk
    for f in futures:
        f.result()


# --------------------------------------------------------------------------- BLAS threads
_blas = {"controllers": None}


def _blas_controllers() -> list:
    if _blas["controllers"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas["controllers"] = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except Exception:  # threadpoolctl missing or unable to inspect: leave BLAS alone
            _blas["controllers"] = []
    return _blas["controllers"]


@contextlib.contextmanager
def blas_single_threaded():
    """Run BLAS on one thread inside the block, because strided's own threads
    each call it on their own share of the work (no oversubscription)."""
    controllers = _blas_controllers() if _state["threads"] > 1 else []
    saved = [c.num_threads for c in controllers]
    for c in controllers:
        c.set_num_threads(1)
    try:
        yield
    finally:
        for c, n in zip(controllers, saved):
            c.set_num_threads(n)


def blocks(lo: int, hi: int, item_bytes: int, budget: int = 1 << 19):
    """Split ``range(lo, hi)`` into blocks of about ``budget`` bytes (``item_bytes``
    each), so that several passes over one block hit the cache."""
    step = max(1, budget // max(item_bytes, 1))
    for start in range(lo, hi, step):
        yield start, min(start + step, hi)


def parallel_blocks(n: int, item_bytes: int, work, budget: int = 1 << 19) -> None:
    """``work(lo, hi)`` over cache-sized blocks of ``range(n)``, the blocks shared
    out over the threads."""
    def run(lo, hi):
        for b0, b1 in blocks(lo, hi, item_bytes, budget):
            work(b0, b1)
    parallel_for(n, run, work_bytes=n * item_bytes)


def blockwise(fn, *arrays, budget: int = 1 << 19) -> None:
    """``fn(*blocks)`` over matching flat slices of same-shaped ``arrays`` (the last one written),
    each slice about ``budget`` bytes per array, the slices shared out over the threads.

    Elementwise work of several NumPy passes (a multiply, then a maximum) then streams each
    big array through memory once: the passes after the first find the slice in cache.  Arrays
    that are not contiguous are handed to ``fn`` whole."""
    if not all(a.flags.c_contiguous for a in arrays):
        fn(*arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    itemsize = max(a.itemsize for a in arrays)

    def work(lo, hi):
        fn(*(f[lo:hi] for f in flat))
    parallel_blocks(flat[0].size, itemsize, work, budget)

