r"""Blocked ("flash") scaled dot-product attention: linear memory, online softmax.

The plain fused op holds the whole score matrix :math:`S = QK^\top s` of shape
``(..., m, n)``.  Here queries go in blocks of ``block_q`` rows and keys/values in
blocks of ``block_k`` rows, so at most one ``block_q x block_k`` tile of scores exists
per worker at a time (Dao et al. 2022, *FlashAttention*, Alg. 1; Dao 2023,
*FlashAttention-2*; Rabe & Staats 2021, *Self-attention does not need O(n^2) memory*).

Forward, for one query block and key blocks :math:`j = 1, 2, \dots` (online softmax):

.. math::

    S_j = Q K_j^\top s, \quad \mu_j = \max(\mu_{j-1}, \operatorname{rowmax} S_j),
    \quad P_j = e^{S_j - \mu_j}, \\
    \ell_j = e^{\mu_{j-1} - \mu_j} \ell_{j-1} + \operatorname{rowsum} P_j, \quad
    A_j = e^{\mu_{j-1} - \mu_j} A_{j-1} + P_j V_j, \\
    O = A / \ell, \quad L = \mu + \log \ell \ \ (\text{logsumexp of each row}).

Backward, recomputing each tile from the saved row statistic :math:`L` and
:math:`D = \operatorname{rowsum}(dO \odot O)`:

.. math::

    P = e^{S - L}, \quad dV \mathrel{+}= P^\top dO, \quad dP = dO\,V^\top, \quad
    dS = P \odot (dP - D), \quad dQ \mathrel{+}= s\,dS\,K, \quad dK \mathrel{+}= s\,dS^\top Q.

The running max :math:`\mu` is there for numerics only (``exp`` must not overflow), and
the softmax is invariant to it, so numerically it is kept *lazily* (:func:`_forward_rows`):
a row reference, 0 to start with when no score can overflow (:func:`_wide`), carried as a
column of the queries, :math:`[sQ, -\mu]\,[K, 1]^\top = S - \mu`, moved only when a
product overflows or a row sum grows past :data:`REBASE`: a tile costs two products and
one ``exp`` pass, no max.
As everywhere in the engine, the symbolic backend gets the mathematically identical
plain form: ``xp.stability_shift`` is 0 there, so :math:`\mu = 0`, every rescale factor
is 1 and :math:`O = \sum_j e^{S_j} V_j / \sum_j \operatorname{rowsum} e^{S_j}`: the
kernels below run on SymPy object arrays unchanged and can be proven exactly.

Masks: ``mask`` is boolean, True = attend, broadcastable to ``(..., m, n)``;
``causal=True`` lets query ``i`` attend key ``j`` iff ``j <= i`` (top-left aligned, as
PyTorch's ``is_causal``).  A tile wholly above the causal diagonal, or wholly masked, is
skipped, not computed and thrown away.  A row that attends nothing gives a zero output,
``lse = 0`` (the empty sum is taken as 1, as the softmax does) and zero gradients.

Threads: NumPy releases the GIL inside BLAS and ufuncs, so ``threads=2`` runs query
blocks (forward) and key blocks (backward) on a small pool of threads while BLAS is
held to one thread (``threadpoolctl``).  Measured in ``benchmarks/bench_flash.py``
(``docs/benchmarks.md``): at n = 2048 this is 1.3-1.6x faster than one thread with
OpenBLAS's own two threads, so it is the default when ``threadpoolctl`` is installed.
"""
from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from ..engine.autograd import unbroadcast
from ..engine.backend import numeric
from ..engine.blas import blas_controller, blas_threads
from .kernels import score_scale

#: Default tile sizes (rows of Q per block, rows of K/V per block), tuned on the
#: 2-core machine of ``docs/benchmarks.md``.
BLOCK_Q = 256
BLOCK_K = 512
#: The forward's query blocks are this many times :data:`BLOCK_Q` by default (fewer row
#: blocks, less per-block work: the forward alone 4-11 % faster at n = 1024-2048 in a
#: sweep of tiles), halved while there are too few for the threads (:func:`_rows_block`).
FORWARD_ROWS = 2
#: :func:`_even` cuts no block below this many rows (measured: at n = 256 two threads
#: on blocks of 128 were 1.8x slower than one thread on one block).
EVEN_LEAST = 256
#: Causal: the width of the strips the diagonal is cut into.
BLOCK_DIAG = 256
#: Causal backward with threads: key blocks small enough for this many per thread.
CAUSAL_SPLIT = 2
#: Worker threads by default (see :func:`default_threads`); measured in docs/benchmarks.md.
THREADS = 2
#: Numerically the scores carry a factor :math:`\log_2 e` (folded into the keys), so the
#: tiles are exponentiated with ``exp2``: NumPy's float32 ``exp2`` takes about half the
#: time of its ``exp`` on this machine, and is as accurate (docs/benchmarks.md).
LOG2E = 1.0 / math.log(2.0)                   # a Python float: float32 stays float32


#: The implementations of the fused op: ``auto`` picks ``blocked`` when the weights are
#: not wanted and one head's score matrix has at least :data:`AUTO_MIN_SCORES` entries.
IMPLS = ("auto", "plain", "blocked")

#: Threshold of ``impl="auto"`` (m * n), measured on this machine with
#: ``benchmarks/bench_flash.py --threshold`` (see ``docs/benchmarks.md``): from
#: n = 1024 on, the blocked op is faster than the plain one in float32 and float64.
AUTO_MIN_SCORES = 1024 * 1024


def use_blocked(impl: str, q: np.ndarray, k: np.ndarray, need_weights: bool = False) -> bool:
    """Whether the fused op runs the blocked kernels for ``impl`` ('auto', 'plain' or
    'blocked').  ``auto``: only numerically, only when the (m, n) weights are not wanted,
    and only above the measured size :data:`AUTO_MIN_SCORES`."""
    if impl not in IMPLS:
        raise ValueError(f"scaled dot-product attention: impl must be one of "
                         f"{', '.join(map(repr, IMPLS))}, got {impl!r}")
    if impl != "auto":
        return impl == "blocked"
    if need_weights or np.asarray(q).dtype == object:
        return False
    return np.shape(q)[-2] * np.shape(k)[-2] >= AUTO_MIN_SCORES


# ----------------------------------------------------------------------------- checks

def _shape(name: str, a: Any) -> tuple[int, ...]:
    shape = np.shape(a)
    if len(shape) < 2:
        raise ValueError(f"flash attention: {name} must have at least 2 dimensions "
                         f"(..., rows, features), got shape {shape}")
    return shape


def _check(q: Any, k: Any, v: Any, mask: Any) -> tuple[tuple[int, ...], int, int, int, int]:
    """Validate shapes; return (batch shape, m, n, d, e)."""
    sq, sk, sv = _shape("q", q), _shape("k", k), _shape("v", v)
    m, d = sq[-2:]
    n, dk = sk[-2:]
    if dk != d:
        raise ValueError(f"flash attention: q and k must have the same feature size, got "
                         f"q {sq} and k {sk} ({d} != {dk})")
    if sv[-2] != n:
        raise ValueError(f"flash attention: k and v must have the same number of rows "
                         f"(keys), got k {sk} and v {sv} ({n} != {sv[-2]})")
    try:
        batch = np.broadcast_shapes(sq[:-2], sk[:-2], sv[:-2])
    except ValueError:
        raise ValueError(f"flash attention: the batch axes of q {sq}, k {sk} and v {sv} "
                         f"do not broadcast") from None
    if mask is not None:
        mask_arr = np.asarray(mask)
        if mask_arr.dtype != np.bool_:
            raise TypeError(f"flash attention: mask must be a boolean array (True = "
                            f"attend), got dtype {mask_arr.dtype}")
        try:
            full = np.broadcast_shapes(mask_arr.shape, batch + (m, n))
        except ValueError:
            full = None
        if full != batch + (m, n):
            raise ValueError(f"flash attention: mask of shape {mask_arr.shape} does not "
                             f"broadcast to the weights' shape {batch + (m, n)}")
    return batch, m, n, d, sv[-1]


def _block_size(name: str, value: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"flash attention: {name} must be a positive int, got {value!r}")
    return int(value)


def _threads(xp: Any, threads: int | None, work: int) -> int:
    if xp.symbolic:                       # SymPy is not made for threads; nothing to gain
        return 1
    if threads is None:
        threads = default_threads()
    elif not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) \
            or threads < 1:
        raise ValueError(f"flash attention: threads must be a positive int, got {threads!r}")
    return max(1, min(int(threads), work))


# ----------------------------------------------------------------------------- threads

def default_threads() -> int:
    """Worker threads when ``threads=None``: :data:`THREADS` (up to the number of cores)
    when BLAS can be held to one thread meanwhile (``threadpoolctl`` installed), else 1
    (BLAS then uses its own threads inside each product)."""
    if not blas_controller():
        return 1
    return max(1, min(THREADS, os.cpu_count() or 1))


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()

#: Per-thread scratch tiles, kept between calls (the pool's threads live on, so a tile
#: is allocated once per thread, not faulted in afresh by every call).
_scratch = threading.local()


class _Workspace(threading.local):
    """A thread's work arrays, kept between calls and handed out as views: the calling
    thread's O(n d) ones ([sQ, -L], [K, 1], a dQ accumulator per worker slot, ...) and
    each worker's per-block ones.

    Measured (docs/benchmarks.md): allocating them afresh in every call made glibc give
    the pages back and fault them in again, about 800 page faults per forward+backward
    at n = 2048, f32, which cost ~5 ms of a ~25 ms call on this 2-core VM.  Kept per
    calling thread, so calls from several user threads never share one.  They stay
    allocated (about the size of q, k, v and dO together, a few times over);
    :func:`free_workspace` lets them go.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.buffers[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)


_work = _Workspace()


def free_workspace() -> None:
    """Let go of what the blocked kernels keep between calls: the calling thread's work
    arrays and scratch tiles, and the worker pool with its threads' tiles.  The next
    call makes them anew (as the benchmarks do before measuring peak memory)."""
    global _pool
    _work.buffers.clear()
    _scratch.__dict__.clear()
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=True)
        _pool = None



def _executor(threads: int) -> ThreadPoolExecutor:
    """The module's worker pool: created once, grown when more threads are asked for,
    and created anew in a forked child (whose copy of the pool has no threads)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool._max_workers < threads or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flash")
            _pool_pid = os.getpid()
        return _pool


def _run(items: list[Any], worker: Callable[[Any, int], None], threads: int) -> None:
    """Call ``worker(item, slot)`` on every item, on ``threads`` threads (dynamic
    scheduling); ``slot`` (0 .. threads - 1) tells the drains apart, so each can own
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

        pool = _executor(threads)
        for future in [pool.submit(drain, slot) for slot in range(threads)]:
            future.result()


# ----------------------------------------------------------------------------- tiles

def _blocks(size: int, block: int) -> list[tuple[int, int]]:
    return [(a, min(a + block, size)) for a in range(0, size, block)]


def _tile_mask(mask: np.ndarray | None, causal: bool, rows: tuple[int, int],
               cols: tuple[int, int]) -> tuple[bool, np.ndarray | None]:
    """Whether tile (rows x cols) has any attended entry, and the boolean array of its
    entries that are *not* attended (None when every entry is attended)."""
    (i0, i1), (j0, j1) = rows, cols
    blocked = None
    if causal:
        if j0 > i1 - 1:                      # wholly above the diagonal: skip
            return False, None
        if j1 - 1 > i0:                      # crosses the diagonal: blocked where j > i
            blocked = _above_diagonal(i1 - i0, j1 - j0, j0 - i0)
    if mask is not None:
        tile = mask[i0:i1, j0:j1]
        if not tile.all():
            if not tile.any():
                return False, None
            blocked = ~tile if blocked is None else blocked | ~tile
        if blocked is not None and blocked.all():
            return False, None
    return True, blocked


@functools.lru_cache(maxsize=256)
def _above_diagonal(rows: int, cols: int, offset: int) -> np.ndarray:
    """The read-only boolean (rows, cols) tile of j > i for a tile whose first key is
    ``offset`` after its first query: the same few shapes recur along the diagonal, so
    they are made once, not once per tile and call."""
    blocked = np.arange(cols)[None, :] + offset > np.arange(rows)[:, None]
    blocked.setflags(write=False)
    return blocked


def _product(xp: Any, a: np.ndarray, b: np.ndarray, scratch: Any,
             slot: str = "tile") -> np.ndarray:
    """a @ b, written into this thread's scratch array ``slot`` numerically (a tile is
    reused, not allocated afresh: fresh pages cost a fault each)."""
    if xp.symbolic:
        return xp.matmul(a, b)
    rows, cols = a.shape[0], b.shape[1]
    dtype = a.dtype if a.dtype == b.dtype else np.result_type(a, b)
    buf = getattr(scratch, slot, None)
    if buf is None or buf.size < rows * cols or buf.dtype != dtype:
        buf = np.empty(rows * cols, dtype=dtype)
        setattr(scratch, slot, buf)
    return np.matmul(a, b, out=buf[:rows * cols].reshape(rows, cols))


def _exp_masked(xp: Any, s: np.ndarray, blocked: np.ndarray | None,
                shift: np.ndarray | None = None, clip: bool = False) -> np.ndarray:
    r"""$P = e^{S - \text{shift}}$ with blocked entries exactly 0 (in place numerically).

    Numerically the scores come in base 2 (:data:`LOG2E`), so it is :math:`2^{S -
    \text{shift}}`, and every input stays inside ``exp2``'s fast range (:func:`_floor`):
    NumPy's ``exp2`` and ``exp`` take a path 10 to 250 times slower for each result that
    overflows, is subnormal or underflows to 0 (-inf included; measured,
    docs/benchmarks.md).  Unless the call's scores are :func:`_wide`, every score,
    blocked or not, is inside that range already; blocked entries are set to exactly 0
    after.  With ``clip`` (wide scores) blocked entries and those below the floor go in
    as the floor and come out as exactly 0: their weight, under 2^-125 of the row's
    largest in float32, is what ``exp`` would make subnormal or 0 (and a subnormal
    weight would slow the products after it too).
    """
    if xp.symbolic:
        p = xp.exp(s if shift is None else s - shift)
        return p if blocked is None else xp.where(blocked, xp.constant(0, p), p)
    if shift is not None:
        s -= shift
    if clip:
        floor = _floor(s.dtype)
        low = s < floor
        blocked = low if blocked is None else low | blocked
        np.copyto(s, floor, where=blocked)        # whatever they scored: no overflow
    np.exp2(s, out=s)
    if blocked is not None:
        np.copyto(s, 0, where=blocked)
    return s


@functools.lru_cache(maxsize=8)
def _floor(dtype: np.dtype) -> Any:
    """The low end of ``exp2``'s fast range: one above log2 of the smallest normal number
    (-125 in float32, -1021 in float64; measured: float64 ``exp2(-1022)`` is already
    slow).  exp2 is fast on [floor, -floor]."""
    return dtype.type(np.log2(np.finfo(dtype).smallest_normal) + 1)


def _wide(xp: Any, q: np.ndarray, k: np.ndarray, s: Any) -> bool:
    r"""Whether a call's base-2 scores may leave ``exp2``'s fast range.  Every score is
    at most :math:`B = |s| \log_2 e \max_i \lVert q_i \rVert \max_j \lVert k_j
    \rVert` in size (Cauchy-Schwarz) and a row's reference (max, rebased sum or
    logsumexp) at most :math:`B + \log_2 n`, so exponents stay within
    :math:`\pm(2B + \log_2 n)`: when that is inside [floor, -floor] nothing needs
    clipping (standard-normal q, k at d = 64: B ~ 20); otherwise the kernels clip, and
    the forward takes every tile's max (no lazy reference)."""
    if xp.symbolic or 0 in q.shape or 0 in k.shape:
        return False
    norm = functools.partial(np.einsum, "...i,...i->...")
    big = abs(float(s)) * LOG2E * float(np.sqrt(norm(q, q).max() * norm(k, k).max()))
    return not 2 * big + np.log2(k.shape[-2]) + 1 <= -float(_floor(np.result_type(q, k)))


def _row_max(s: np.ndarray, blocked: np.ndarray | None) -> np.ndarray:
    """The max of each row over its attended entries (-inf where there is none)."""
    if blocked is None:
        return s.max(axis=-1, keepdims=True)
    return s.max(axis=-1, keepdims=True, where=~blocked, initial=-np.inf)


def _finite(xp: Any, mu: np.ndarray) -> np.ndarray:
    """The shift actually subtracted: mu, or 0 in a row that has seen nothing yet."""
    if xp.symbolic:
        return mu
    return np.where(np.isfinite(mu), mu, mu.dtype.type(0))


def _append(xp: Any, a: np.ndarray, column: Any, name: str,
            scale: Any = None) -> np.ndarray:
    """[a * scale, column]: one more column, so a product also yields a row sum or a
    shift.  Numerically written into the work array ``name`` (see :class:`_Workspace`)."""
    if xp.symbolic:
        a = a if scale is None else a * scale
        col = np.asarray(np.broadcast_to(column, a.shape[:-1] + (1,)), dtype=object)
        return np.concatenate([a, col], axis=-1)
    dtype = np.result_type(a, column) if scale is None else np.result_type(a, scale)
    out = _work.get(name, a.shape[:-1] + (a.shape[-1] + 1,), dtype)
    if scale is None:
        np.copyto(out[..., :-1], a)
    else:
        np.multiply(a, scale, out=out[..., :-1])
    out[..., -1:] = column
    return out


# ----------------------------------------------------------------------------- pieces

def _row_pieces(rows: tuple[int, int], n: int, bk: int, bd: int,
                causal: bool) -> list[tuple[int, int, int, int]]:
    """The tiles (r0, r1, c0, c1) one query block meets.  Causal: keys before the block's
    first row are attended by all its rows (tiles of ``bk`` keys, no mask); the diagonal
    is cut into ``bd`` keys wide strips that start at the first row that sees them, so
    little above the diagonal is computed and thrown away."""
    i0, i1 = rows
    if not causal:
        return [(i0, i1, c0, c1) for c0, c1 in _blocks(n, bk)]
    full = min(i0, n)
    pieces = [(i0, i1, c0, c1) for c0, c1 in _blocks(full, bk)]
    pieces += [(c0, i1, c0, min(c0 + bd, i1, n)) for c0 in range(full, min(i1, n), bd)]
    return pieces


def _col_pieces(cols: tuple[int, int], m: int, bq: int, bd: int,
                causal: bool) -> list[tuple[int, int, int, int]]:
    """The tiles (r0, r1, c0, c1) one key block meets (the backward's view).  Causal:
    queries from the block's end on attend all its keys (tiles of ``bq`` rows); the
    diagonal is cut into ``bd`` rows high strips that stop at the last key they see."""
    j0, j1 = cols
    if not causal:
        return [(r0, r1, j0, j1) for r0, r1 in _blocks(m, bq)]
    pieces = [(r0, min(r0 + bd, j1, m), j0, min(r0 + bd, j1))
              for r0 in range(j0, min(j1, m), bd)]
    pieces += [(r0, r1, j0, j1) for r0, r1 in _blocks_from(min(j1, m), m, bq)]
    return pieces


def _blocks_from(start: int, stop: int, block: int) -> list[tuple[int, int]]:
    return [(a, min(a + block, stop)) for a in range(start, stop, block)]


def _sizes(block_q: int | None, block_k: int | None,
           block_diag: int | None) -> tuple[int, int, int]:
    return (_block_size("block_q", BLOCK_Q if block_q is None else block_q),
            _block_size("block_k", BLOCK_K if block_k is None else block_k),
            _block_size("block_diag", BLOCK_DIAG if block_diag is None else block_diag))


# ----------------------------------------------------------------------------- forward

def flash_forward(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                  mask: np.ndarray | None = None, causal: bool = False,
                  scale: float | None = None, block_q: int | None = None,
                  block_k: int | None = None, threads: int | None = None,
                  block_diag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Blocked attention forward: $O = \operatorname{softmax}(s\,QK^\top) V$ in tiles.

    q (..., m, d), k (..., n, d), v (..., n, e) with broadcasting batch axes; ``mask``
    boolean (True = attend) broadcastable to (..., m, n).  Returns ``(o, lse)``: o of
    shape (..., m, e) and the row logsumexp ``lse`` (..., m) that the backward needs.
    Memory beyond the inputs and outputs: one ``block_q x block_k`` tile per thread.
    Block sizes default to :data:`BLOCK_Q`, :data:`BLOCK_K`, :data:`BLOCK_DIAG`;
    ``threads`` to :func:`default_threads`.
    """
    batch, m, n, d, e = _check(q, k, v, mask)
    bq, bk, bd = _sizes(block_q, block_k, block_diag)
    nthreads = _threads(xp, threads, int(np.prod(batch)) * m)
    if block_q is None:
        bq = _rows_block(bq, m, int(np.prod(batch)), nthreads, causal)
    like = np.empty((), dtype=np.result_type(q, k, v))     # the dtype NumPy would give
    s = score_scale(xp, scale, d, like)
    q = np.broadcast_to(q, batch + (m, d))
    k = np.broadcast_to(k, batch + (n, d))
    masks = None if mask is None else np.broadcast_to(mask, batch + (m, n))
    one = xp.constant(1, like)
    v1 = _append(xp, np.broadcast_to(v, batch + (n, e)), one, "va")             # [V, 1]
    k1 = None if xp.symbolic else _append(xp, k, one, "ka", LOG2E)  # [K log2 e, 1]
    o = xp.zeros(batch + (m, e), like)
    lse = xp.zeros(batch + (m,), like)
    items = [(b, rows) for b in np.ndindex(batch) for rows in _blocks(m, bq)]
    if causal:  # longest rows first, so the threads finish together
        items.sort(key=lambda it: -it[1][1])
    wide = _wide(xp, q, k, s)

    def worker(item: tuple[tuple[int, ...], tuple[int, int]], slot: int) -> None:
        b, (i0, i1) = item
        if not xp.symbolic:
            _forward_rows(q[b], k1[b], v1[b], None if masks is None else masks[b], causal,
                          s, (i0, i1), (bk, bd), o[b], lse[b], wide)
            return
        qs = q[b][i0:i1] * s                                   # (bq, d) scaled queries
        acc = xp.zeros((i1 - i0, e + 1), like)                 # (bq, e+1) [P V, rowsum P]
        mb = None if masks is None else masks[b]
        for r0, r1, c0, c1 in _row_pieces((i0, i1), n, bk, bd, causal):
            keep, blocked = _tile_mask(mb, causal, (r0, r1), (c0, c1))
            if not keep:
                continue
            a, z = r0 - i0, r1 - i0                            # the piece's rows
            sc = _product(xp, qs[a:z], k[b][c0:c1].T, _scratch)  # (rows, keys) S_j
            p = _exp_masked(xp, sc, blocked, xp.stability_shift(sc, -1))  # shift 0
            acc[a:z] += _product(xp, p, v1[b][c0:c1], _scratch, "pv")  # (rows, e+1)
        ell = acc[:, e:]                                       # (bq, 1) rowsum of e^S
        empty = xp.is_zero(ell)
        if np.any(empty):                                      # attends nothing: O = 0
            ell = xp.where(empty, xp.constant(1, ell), ell)
        o[b][i0:i1] = acc[:, :e] / ell
        lse[b][i0:i1] = xp.log(ell)[:, 0]

    _run(items, worker, min(nthreads, len(items)))
    return o, lse


def _rows_block(bq: int, m: int, heads: int, threads: int, causal: bool) -> int:
    """The forward's default query block: :data:`FORWARD_ROWS` x ``bq`` rows, halved
    (down to ``bq``) while the blocks are fewer than the threads, or causal, fewer than
    two per thread (its blocks differ in work: with two per thread, longest first, the
    threads end together)."""
    rows = bq * FORWARD_ROWS
    need = threads * (2 if causal else 1)
    while rows > bq and heads * -(-m // rows) < need:
        rows = max(bq, rows // 2)
    return rows if causal else _even(rows, m, heads, threads)


def _even(block: int, size: int, heads: int, threads: int) -> int:
    """``block`` made a little smaller, if need be, so that the blocks of equal work
    (non-causal) share out evenly over the threads when they are few: 3 blocks on 2
    threads take as long as 4 (measured at n = 1536: 1.05x *slower* than the plain op
    in float64 before, with 2 + 1 blocks); 4 blocks of 384 rows instead of 3 of 512."""
    count = -(-size // block)
    if threads <= 1 or heads * count >= 4 * threads:
        return block
    while (heads * count) % threads:
        count += 1
    even = -(-size // count)
    return even if even >= EVEN_LEAST else block      # tiny blocks: handing off costs more


#: Numeric forward: a row's reference ``mu`` is moved up once its running sum passes this
#: (then :math:`|2^{S-\mu} V|` stays far from overflow although no tile's max is taken).
REBASE = 2.0 ** 32


def _forward_rows(q: np.ndarray, k1: np.ndarray, v1: np.ndarray, mask: np.ndarray | None,
                  causal: bool, s: Any, rows: tuple[int, int], blocks: tuple[int, int],
                  o: np.ndarray, lse: np.ndarray, wide: bool = False) -> None:
    r"""One query block of the numeric forward: online softmax with a *lazy* reference.

    Scores are in base 2 here (``k1`` is :math:`[K \log_2 e, 1]`, :data:`LOG2E`), and
    the scaled queries carry one more column, :math:`-\mu` (a per-row reference), so the
    product yields the shifted scores directly: :math:`[sQ, -\mu]\,[K \log_2 e,
    1]^\top = S \log_2 e - \mu` (d + 1 columns cost the GEMM nothing measurable; no
    subtraction pass).  The softmax is invariant to :math:`\mu`, so it need not be the
    running max: unless the scores are ``wide`` it starts at 0 (then every base-2 score
    is within :math:`\pm B`, far inside ``exp2``'s range, :func:`_wide`) and every tile
    goes straight to :math:`P = 2^{S \log_2 e - \mu}` and :math:`[PV,
    \operatorname{rowsum} P] = P\,[V, 1]`, no max taken.  Safety is checked on that
    small product instead: a non-finite result (huge values) redoes the tile the classic
    way (max, rescale), and a row whose sum :math:`\ell` passes :data:`REBASE` is
    rebased, :math:`\mu \mathrel{+}= \log_2 \ell,\ A \mathrel{/}= \ell`.  Wide
    scores: :math:`\mu` starts at :math:`-\infty` and every tile is taken the classic
    way.  Writes rows ``rows`` of ``o`` and ``lse`` (:math:`(\mu + \log_2 \ell) \ln
    2`); its (rows, d + 1) work arrays belong to the thread running it (one block at a
    time).
    """
    i0, i1 = rows
    e, dtype = v1.shape[1] - 1, o.dtype
    qa = _append(numeric, q[i0:i1], dtype.type(0), "rows_qa", s)  # [sQ, -mu]
    mu = _work.get("rows_mu", (i1 - i0, 1), dtype)
    mu.fill(-np.inf if wide else 0)                           # -inf: no key seen yet
    acc = _work.get("rows_acc", (i1 - i0, e + 1), dtype)
    acc.fill(0)                                               # [A, ell] relative to mu
    with np.errstate(over="ignore", invalid="ignore"):        # overflow is checked for
        _forward_tiles(qa, k1, v1, mask, causal, rows, blocks, mu, acc, wide)
    ell = acc[:, e:]                                          # (bq, 1) rowsum 2^{S - mu}
    ell[ell == 0] = 1                                         # attends nothing: O = 0
    np.divide(acc[:, :e], ell, out=o[i0:i1])
    lse[i0:i1] = ((_finite(numeric, mu) + np.log2(ell)) * dtype.type(np.log(2.0)))[:, 0]


def _forward_tiles(qa: np.ndarray, k1: np.ndarray, v1: np.ndarray, mask: np.ndarray | None,
                   causal: bool, rows: tuple[int, int], blocks: tuple[int, int],
                   mu: np.ndarray, acc: np.ndarray, wide: bool) -> None:
    """The tile loop of :func:`_forward_rows`; updates qa's last column, mu and acc.
    ``wide`` (:func:`_wide`): every tile the classic way, exponents clipped."""
    i0, e = rows[0], acc.shape[1] - 1
    for r0, r1, c0, c1 in _row_pieces(rows, v1.shape[0], *blocks, causal):
        keep, blocked = _tile_mask(mask, causal, (r0, r1), (c0, c1))
        if not keep:
            continue
        a, z = r0 - i0, r1 - i0                               # the piece's rows

        def scores() -> np.ndarray:                           # S log2 e - mu
            return _product(numeric, qa[a:z], k1[c0:c1].T, _scratch)

        sc = scores()
        if not wide:                                          # lazy: 2^{S - mu} at once
            p = _exp_masked(numeric, sc, blocked)
            t = _product(numeric, p, v1[c0:c1], _scratch, "pv")
            if np.isfinite(t).all():
                acc[a:z] += t
                big = np.flatnonzero(acc[a:z, e] > REBASE) + a
                if big.size:                                  # mu += log2 ell, A /= ell
                    ell = acc[big, e:]
                    acc[big] /= ell
                    np.log2(ell, out=ell)
                    mu[big] += ell
                    qa[big, -1:] -= ell
                continue
            sc = scores()                                     # overflow: redo, classic
        # classic online-softmax step: delta = max(mu, rowmax S) - mu, relative to mu
        delta = np.maximum(mu[a:z] - _finite(numeric, mu[a:z]), _row_max(sc, blocked))
        shift = _finite(numeric, delta)
        acc[a:z] *= np.exp2(-np.maximum(shift, 0))           # 2^{mu_old - mu_new} (A = 0
        p = _exp_masked(numeric, sc, blocked, shift, clip=wide)
        acc[a:z] += _product(numeric, p, v1[c0:c1], _scratch, "pv")
        mu[a:z] = _finite(numeric, mu[a:z]) + delta           # while none seen); -inf too
        qa[a:z, -1:] -= shift


# ----------------------------------------------------------------------------- backward

def flash_backward(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray,
                   lse: np.ndarray, do: np.ndarray, mask: np.ndarray | None = None,
                   causal: bool = False, scale: float | None = None,
                   block_q: int | None = None, block_k: int | None = None,
                   threads: int | None = None, block_diag: int | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Blocked attention backward from the saved row logsumexp ``lse``.

    Each tile recomputes $P = e^{s QK^\top - L}$; with $D = \operatorname{rowsum}(dO
    \odot O)$: $dV = P^\top dO$, $dS = P \odot (dO V^\top - D)$, $dQ = s\,dS\,K$,
    $dK = s\,dS^\top Q$.  The shifts ride along in the products: $[sQ, -L]\,[K, 1]^\top
    = S - L$ and $[dO, -D]\,[V, 1]^\top = dP - D$.  Returns ``(dq, dk, dv)`` in the
    shapes of q, k, v (batch axes that were broadcast are summed back).  The threads
    take key blocks; each keeps its own dQ accumulator, summed at the end.
    """
    batch, m, n, d, e = _check(q, k, v, mask)
    bq, bk, bd = _sizes(block_q, block_k, block_diag)
    like = np.empty((), dtype=np.result_type(q, k, v, do))
    s = score_scale(xp, scale, d, like)
    shapes = (np.shape(q), np.shape(k), np.shape(v))
    one = xp.constant(1, like)
    do = np.broadcast_to(do, batch + (m, e))
    o = np.broadcast_to(o, batch + (m, e))
    if xp.symbolic:
        big_d = np.sum(do * o, axis=-1)                                    # (..., m) D
    else:                                           # no (m, e) temporary: one einsum
        big_d = np.einsum("...i,...i->...", do, o)
    lse = np.broadcast_to(lse, batch + (m,))
    base = 1 if xp.symbolic else LOG2E      # numerically base-2 scores, for exp2
    qa = _append(xp, np.broadcast_to(q, batch + (m, d)), -lse[..., None] * base, "qa",
                 s)                                                        # [sQ, -L]
    k = np.broadcast_to(k, batch + (n, d))
    ka = _append(xp, k, one, "ka", None if xp.symbolic else base)          # [K, 1]
    doa = _append(xp, do, -big_d[..., None], "doa")                        # [dO, -D]
    va = _append(xp, np.broadcast_to(v, batch + (n, e)), one, "va")        # [V, 1]
    masks = None if mask is None else np.broadcast_to(mask, batch + (m, n))
    wide = _wide(xp, q, k, s)
    dk = xp.zeros(batch + (n, d), like)
    dv = xp.zeros(batch + (n, e), like)
    nthreads = _threads(xp, threads, int(np.prod(batch)) * n)
    if causal and nthreads > 1:
        # later key blocks meet fewer query rows: cut them small enough that there are
        # about 4 per thread, so that the threads end together
        target = int(np.prod(batch)) * n // (CAUSAL_SPLIT * nthreads)
        bk = min(bk, max(bd, target // bd * bd))
    elif block_k is None:
        bk = _even(bk, n, int(np.prod(batch)), nthreads)
    items = [(b, cols) for b in np.ndindex(batch) for cols in _blocks(n, bk)]
    if causal:  # the first key blocks meet the most query rows: schedule them first
        items.sort(key=lambda it: it[1][0])
    nthreads = min(nthreads, len(items))
    dq_parts: list[np.ndarray] = []                 # one dQ accumulator per worker slot
    for slot in range(nthreads):
        if xp.symbolic:
            dq_parts.append(xp.zeros(batch + (m, d), like))
        else:
            dq_parts.append(_work.get(f"dq{slot}", batch + (m, d), like.dtype))
            dq_parts[-1].fill(0)

    def worker(item: tuple[tuple[int, ...], tuple[int, int]], slot: int) -> None:
        b, (j0, j1) = item
        dq_acc = dq_parts[slot]
        dk_acc, dv_acc = dk[b][j0:j1], dv[b][j0:j1]            # this block's rows, owned
        mb = None if masks is None else masks[b]
        for r0, r1, c0, c1 in _col_pieces((j0, j1), m, bq, bd, causal):
            keep, blocked = _tile_mask(mb, causal, (r0, r1), (c0, c1))
            if not keep:
                continue
            kab, vab = ka[b][c0:c1], va[b][c0:c1]              # (keys, d+1), (keys, e+1)
            qab, doab = qa[b][r0:r1], doa[b][r0:r1]            # (rows, d+1), (rows, e+1)
            sc = _product(xp, qab, kab.T, _scratch)            # S - L
            p = _exp_masked(xp, sc, blocked, clip=wide)        # (rows, keys) P = e^{S - L}
            z = c1 - j0                                        # the piece's keys: [:z]
            dv_acc[:z] += _product(xp, p.T, doab[:, :e], _scratch, "dv")  # (keys, e)
            ds = _product(xp, doab, vab.T, _scratch, "ds")     # (rows, keys) dP - D
            ds = _times(xp, ds, p)                             # dS = P (dP - D)
            dq_acc[b][r0:r1] += _product(xp, ds, k[b][c0:c1], _scratch, "dq")  # dS K
            dk_acc[:z] += _product(xp, ds.T, qab[:, :d], _scratch, "dk")   # s dS^T Q

    _run(items, worker, nthreads)
    if not dq_parts:                                # nothing to do (no keys)
        dq = xp.zeros(batch + (m, d), like)
    else:
        dq = dq_parts[0] * s                        # a new array: the work arrays stay
        for part in dq_parts[1:]:
            dq = _add_scaled(xp, dq, part, s)
    return (unbroadcast(dq, shapes[0]), unbroadcast(dk, shapes[1]), unbroadcast(dv, shapes[2]))


def _add_scaled(xp: Any, acc: np.ndarray, part: np.ndarray, s: Any) -> np.ndarray:
    """acc + s * part (in place numerically: acc is this call's own new array)."""
    if xp.symbolic:
        return acc + part * s
    acc += part * s
    return acc


def _times(xp: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if xp.symbolic:
        return a * b
    a *= b
    return a


def tiles(m: int, n: int, causal: bool = False, block_q: int | None = None,
          block_k: int | None = None, block_diag: int | None = None,
          ) -> list[tuple[int, int, int, int]]:
    """The tiles (r0, r1, c0, c1) the forward computes with these block sizes: rows
    r0:r1 against keys c0:c1 (causal: none above the diagonal, the diagonal in thin
    strips).  Without ``block_q``, the forward's default for one head on one thread."""
    bq, bk, bd = _sizes(block_q, block_k, block_diag)
    if block_q is None:
        bq = _rows_block(bq, m, 1, 1, causal)
    return [piece for rows in _blocks(m, bq) for piece in _row_pieces(rows, n, bk, bd, causal)
            if _tile_mask(None, causal, piece[:2], piece[2:])[0]]
