"""The blocked kernels' threads and memory: a worker pool, work arrays kept between calls,
and per-thread scratch tiles for the tiles' products.

Threads: NumPy releases the GIL inside BLAS and ufuncs, so the kernels of :mod:`.flash`
run query blocks (forward) or key blocks (backward) on a small pool of threads
(:func:`run`) while BLAS is held to one thread
(:func:`~tinygrad_attn.engine.blas_threads`): two pools of threads on the same cores slow
each other down.

Memory: what a call needs beyond its inputs and outputs, the O(n d) work arrays of the
calling thread (:class:`Workspace`) and one tile per worker thread (:func:`product`), is
kept between calls and handed out as views.  Allocated afresh in every call, these pages
would go back to the system and be faulted in again, hundreds of times per call at
n = 2048.  :func:`free_workspace` lets all of it go.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from ..engine import blas_controller, blas_threads

#: Worker threads by default (see :func:`default_threads`; ``benchmarks/bench_flash.py``
#: times one thread against two).
THREADS = 2


def default_threads() -> int:
    """Worker threads when ``threads=None``: :data:`THREADS` (up to the number of cores)
    when BLAS can be held to one thread meanwhile (``threadpoolctl`` installed), else 1
    (BLAS then uses its own threads inside each product)."""
    if not blas_controller():
        return 1
    return max(1, min(THREADS, os.cpu_count() or 1))


def worker_count(xp: Any, threads: int | None, work: int) -> int:
    """The threads a call uses: ``threads`` (checked; None: :func:`default_threads`), at
    most one per item of ``work``; 1 symbolically (SymPy is not made for threads)."""
    if xp.symbolic:
        return 1
    if threads is None:
        threads = default_threads()
    elif not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) \
            or threads < 1:
        raise ValueError(f"flash attention: threads must be a positive int, got {threads!r}")
    return max(1, min(int(threads), work))


# ----------------------------------------------------------------------------- the pool

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0
_pool_lock = threading.Lock()


def executor(threads: int) -> ThreadPoolExecutor:
    """The module's worker pool: created once, grown when more threads are asked for,
    and created anew in a forked child (whose copy of the pool has no threads)."""
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_size < threads or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flash")
            _pool_size, _pool_pid = threads, os.getpid()
        return _pool


def running_pool() -> ThreadPoolExecutor | None:
    """The worker pool of this process, or None when there is none (yet, or after
    :func:`free_workspace`)."""
    with _pool_lock:
        return _pool if _pool_pid == os.getpid() else None


def run(items: list[Any], worker: Callable[[Any, int], None], threads: int) -> None:
    """Call ``worker(item, slot)`` on every item, on ``threads`` threads (dynamic
    scheduling); ``slot`` (0 .. threads - 1) tells the threads apart, so each can own
    work arrays of this call."""
    if threads <= 1:
        for item in items:
            worker(item, 0)
        return
    with blas_threads(1):
        queue = iter(items)
        lock = threading.Lock()

        def drain(slot: int) -> None:  # each pool thread takes the next item until none
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                worker(item, slot)

        pool = executor(threads)
        for future in [pool.submit(drain, slot) for slot in range(threads)]:
            future.result()


# ----------------------------------------------------------------------------- memory

class Workspace(threading.local):
    """A thread's work arrays, kept between calls and handed out as views by name
    ([sQ, -L], [K, 1], a dQ accumulator per worker slot, ...).  Kept per calling
    thread, so calls from several user threads never share one.  They stay allocated
    (about the size of q, k, v and g together, a few times over) until
    :func:`free_workspace`."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """The work array ``name`` as an uninitialised view of ``shape`` and ``dtype``
        (grown or remade when it is too small or of another dtype)."""
        size = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.buffers[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)


#: The calling thread's work arrays.
work = Workspace()

#: Per-thread scratch tiles for :func:`product`, kept between calls (the pool's threads
#: live on, so a tile is allocated once per thread).
scratch = threading.local()


def product(xp: Any, a: np.ndarray, b: np.ndarray, scratch: Any,
            slot: str = "tile") -> np.ndarray:
    """a @ b, written into the array ``slot`` of ``scratch`` (a ``threading.local``)
    numerically: a tile is reused, not allocated afresh."""
    if xp.symbolic:
        return xp.matmul(a, b)
    rows, cols = a.shape[0], b.shape[1]
    dtype = a.dtype if a.dtype == b.dtype else np.result_type(a, b)
    buf = getattr(scratch, slot, None)
    if buf is None or buf.size < rows * cols or buf.dtype != dtype:
        buf = np.empty(rows * cols, dtype=dtype)
        setattr(scratch, slot, buf)
    return np.matmul(a, b, out=buf[:rows * cols].reshape(rows, cols))


def free_workspace() -> None:
    """Let go of what the blocked kernels keep between calls: the calling thread's work
    arrays and scratch tiles, and the worker pool with its threads' tiles.  The next
    call makes them anew (as the benchmarks do before measuring peak memory)."""
    global _pool
    work.buffers.clear()
    scratch.__dict__.clear()
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=True)
        _pool = None
