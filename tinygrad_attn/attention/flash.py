r"""Blocked ("flash") scaled dot-product attention: linear memory, online softmax.

The plain fused op holds the whole score matrix :math:`S = s\,QK^\top` of shape
``(..., m, n)``.  Here queries go in blocks of ``block_q`` rows and keys/values in
blocks of ``block_k`` rows, so at most one ``block_q x block_k`` tile of scores exists
per worker at a time (Dao et al. 2022, *FlashAttention*, Alg. 1; Dao 2023,
*FlashAttention-2*; Rabe & Staats 2021, *Self-attention does not need O(n^2) memory*).
How the tiles are cut is :mod:`.tiling`'s; the threads and the memory kept between
calls are :mod:`.workers`'.

Forward, for one query block and key blocks :math:`j = 1, 2, \dots` (online softmax):

.. math::

    S_j = s\,Q K_j^\top, \quad \mu_j = \max(\mu_{j-1}, \operatorname{rowmax} S_j),
    \quad P_j = e^{S_j - \mu_j}, \\
    \ell_j = e^{\mu_{j-1} - \mu_j} \ell_{j-1} + \operatorname{rowsum} P_j, \quad
    A_j = e^{\mu_{j-1} - \mu_j} A_{j-1} + P_j V_j, \\
    O = A / \ell, \quad L = \mu + \log \ell \ \ (\text{logsumexp of each row}).

Backward, from the upstream gradient :math:`\bar O` (``g`` in code), recomputing each
tile from the saved row statistic :math:`L` and :math:`D = \operatorname{rowsum}(\bar O
\odot O)`:

.. math::

    P = e^{S - L}, \quad \bar V \mathrel{+}= P^\top \bar O, \quad \bar P = \bar O\,V^\top,
    \quad \bar S = P \odot (\bar P - D), \quad \bar Q \mathrel{+}= s\,\bar S K, \quad
    \bar K \mathrel{+}= s\,\bar S^\top Q.

The running max :math:`\mu` is there for numerics only (``exp`` must not overflow), and
the softmax is invariant to it, so numerically it is kept *lazily* (:func:`_forward_rows`):
a row reference, 0 to start with when no score can overflow (:func:`wide_scores`),
carried as a column of the queries, :math:`[sQ, -\mu]\,[K, 1]^\top = S - \mu`, moved
only when a product overflows or a row sum grows past :data:`REBASE`: a tile costs two
products and one ``exp`` pass, no max.
As everywhere in the engine, the symbolic backend gets the mathematically identical
plain form: ``xp.stability_shift`` is 0 there, so :math:`\mu = 0`, every rescale factor
is 1 and :math:`O = \sum_j e^{S_j} V_j / \sum_j \operatorname{rowsum} e^{S_j}`: the
kernels below run on SymPy object arrays unchanged and can be proven exactly.

Masks: ``mask`` is boolean, True = attend, broadcastable to ``(..., m, n)``;
``causal=True`` lets query ``i`` attend key ``j`` iff ``j <= i`` (top-left aligned, as
PyTorch's ``is_causal``).  A tile wholly above the causal diagonal, or wholly masked, is
skipped, not computed and thrown away.  A row that attends nothing gives a zero output,
``lse = 0`` (the empty sum is taken as 1, as the softmax does) and zero gradients.

Threads: ``threads=2`` runs query blocks (forward) and key blocks (backward) on two
threads while BLAS is held to one (:mod:`.workers`): at n = 2048 that is 1.3-1.6x faster
than one thread with OpenBLAS's own two (``benchmarks/bench_flash.py``), so it is the
default when ``threadpoolctl`` is installed.
"""
from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from ..engine import numeric, unbroadcast
from . import tiling, workers
from .kernels import score_scale
from .workers import free_workspace  # noqa: F401  (public here: it frees these kernels' memory)

#: Numerically the scores carry a factor :math:`\log_2 e` (folded into the keys), so the
#: tiles are exponentiated with ``exp2``: NumPy's float32 ``exp2`` is faster than its
#: ``exp`` and as accurate (``benchmarks/bench_exp.py``).
LOG2E = 1.0 / math.log(2.0)                   # a Python float: float32 stays float32

#: Numeric forward: a row's reference ``mu`` is moved up once its running sum passes this
#: (then :math:`|2^{S-\mu} V|` stays far from overflow although no tile's max is taken).
REBASE = 2.0 ** 32


# ----------------------------------------------------------------------------- checks

def _shape(name: str, a: Any) -> tuple[int, ...]:
    shape = np.shape(a)
    if len(shape) < 2:
        raise ValueError(f"flash attention: {name} must have at least 2 dimensions "
                         f"(..., rows, features), got shape {shape}")
    return shape


def _check(q: Any, k: Any, v: Any, mask: Any) -> tuple[tuple[int, ...], int, int, int, int]:
    """Validate shapes; return (batch shape, m, n, d_k, d_v)."""
    sq, sk, sv = _shape("q", q), _shape("k", k), _shape("v", v)
    m, d_k = sq[-2:]
    n, dk = sk[-2:]
    if dk != d_k:
        raise ValueError(f"flash attention: q and k must have the same feature size, got "
                         f"q {sq} and k {sk} ({d_k} != {dk})")
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
    return batch, m, n, d_k, sv[-1]


# ----------------------------------------------------------------------------- exp

def exp_masked(xp: Any, s: np.ndarray, blocked: np.ndarray | None,
               shift: np.ndarray | None = None, clip: bool = False) -> np.ndarray:
    r"""$P = e^{S - \text{shift}}$ with blocked entries exactly 0 (in place numerically).

    Numerically the scores come in base 2 (:data:`LOG2E`), so it is :math:`2^{S -
    \text{shift}}`, and every input stays inside ``exp2``'s fast range
    (:func:`exp2_floor`): NumPy's ``exp2`` and ``exp`` take a path tens to hundreds of
    times slower for each result that overflows, is subnormal or underflows to 0 (-inf
    included; ``benchmarks/bench_exp.py``).  Unless the call's scores are
    :func:`wide_scores`, every score, blocked or not, is inside that range already;
    blocked entries are set to exactly 0 after.  With ``clip`` (wide scores) blocked
    entries and those below the floor go in as the floor and come out as exactly 0:
    their weight, under 2^-125 of the row's largest in float32, is what ``exp`` would
    make subnormal or 0 (and a subnormal weight would slow the products after it too).
    """
    if xp.symbolic:
        p = xp.exp(s if shift is None else s - shift)
        return p if blocked is None else xp.where(blocked, xp.constant(0, p), p)
    if shift is not None:
        s -= shift
    if clip:
        floor = exp2_floor(s.dtype)
        low = s < floor
        blocked = low if blocked is None else low | blocked
        np.copyto(s, floor, where=blocked)        # whatever they scored: no overflow
    np.exp2(s, out=s)
    if blocked is not None:
        np.copyto(s, 0, where=blocked)
    return s


@functools.lru_cache(maxsize=8)
def exp2_floor(dtype: np.dtype) -> Any:
    """The low end of ``exp2``'s fast range: one above log2 of the smallest normal number
    (-125 in float32, -1021 in float64; ``exp2(-1022)`` in float64 already takes the
    slow path).  exp2 is fast on [floor, -floor]."""
    return dtype.type(np.log2(np.finfo(dtype).smallest_normal) + 1)


def wide_scores(xp: Any, q: np.ndarray, k: np.ndarray, s: Any) -> bool:
    r"""Whether a call's base-2 scores may leave ``exp2``'s fast range.  Every score is
    at most :math:`B = |s| \log_2 e \max_i \lVert q_i \rVert \max_j \lVert k_j
    \rVert` in size (Cauchy-Schwarz) and a row's reference (max, rebased sum or
    logsumexp) at most :math:`B + \log_2 n`, so exponents stay within
    :math:`\pm(2B + \log_2 n)`: when that is inside [floor, -floor] nothing needs
    clipping (standard-normal q, k at d_k = 64: B ~ 20); otherwise the kernels clip, and
    the forward takes every tile's max (no lazy reference)."""
    if xp.symbolic or 0 in q.shape or 0 in k.shape:
        return False
    norm = functools.partial(np.einsum, "...i,...i->...")
    big = abs(float(s)) * LOG2E * float(np.sqrt(norm(q, q).max() * norm(k, k).max()))
    return not 2 * big + np.log2(k.shape[-2]) + 1 <= -float(exp2_floor(np.result_type(q, k)))


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
    shift.  Numerically written into the work array ``name`` (:data:`workers.work`)."""
    if xp.symbolic:
        a = a if scale is None else a * scale
        col = np.asarray(np.broadcast_to(column, a.shape[:-1] + (1,)), dtype=object)
        return np.concatenate([a, col], axis=-1)
    dtype = np.result_type(a, column) if scale is None else np.result_type(a, scale)
    out = workers.work.get(name, a.shape[:-1] + (a.shape[-1] + 1,), dtype)
    if scale is None:
        np.copyto(out[..., :-1], a)
    else:
        np.multiply(a, scale, out=out[..., :-1])
    out[..., -1:] = column
    return out


# ----------------------------------------------------------------------------- forward

def flash_forward(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                  mask: np.ndarray | None = None, causal: bool = False,
                  scale: float | None = None, block_q: int | None = None,
                  block_k: int | None = None, threads: int | None = None,
                  block_diag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Blocked attention forward: $O = \operatorname{softmax}(s\,QK^\top) V$ in tiles.

    q (..., m, d_k), k (..., n, d_k), v (..., n, d_v) with broadcasting batch axes;
    ``mask`` boolean (True = attend) broadcastable to (..., m, n).  Returns ``(o, lse)``:
    o of shape (..., m, d_v) and the row logsumexp ``lse`` (..., m) that the backward
    needs.  Memory beyond the inputs and outputs: one ``block_q x block_k`` tile per
    thread.  Block sizes default to :data:`~.tiling.BLOCK_Q`, :data:`~.tiling.BLOCK_K`,
    :data:`~.tiling.BLOCK_DIAG`; ``threads`` to :func:`~.workers.default_threads`.
    """
    batch, m, n, d_k, d_v = _check(q, k, v, mask)
    bq, bk, bd = tiling.block_sizes(block_q, block_k, block_diag)
    heads = int(np.prod(batch))
    nthreads = workers.worker_count(xp, threads, heads * m)
    if block_q is None:
        bq = tiling.rows_block(bq, m, heads, nthreads, causal)
    like = np.empty((), dtype=np.result_type(q, k, v))     # the dtype NumPy would give
    s = score_scale(xp, scale, d_k, like)
    q = np.broadcast_to(q, batch + (m, d_k))
    k = np.broadcast_to(k, batch + (n, d_k))
    masks = None if mask is None else np.broadcast_to(mask, batch + (m, n))
    one = xp.constant(1, like)
    v1 = _append(xp, np.broadcast_to(v, batch + (n, d_v)), one, "va")          # [V, 1]
    o, lse = xp.zeros(batch + (m, d_v), like), xp.zeros(batch + (m,), like)
    items = [(b, rows) for b in np.ndindex(batch) for rows in tiling.spans(m, bq)]
    if causal:  # longest rows first, so the threads finish together
        items.sort(key=lambda it: -it[1][1])
    if xp.symbolic:
        def worker(item: tuple[tuple[int, ...], tuple[int, int]], slot: int) -> None:
            b, rows = item
            _symbolic_rows(xp, q[b], k[b], v1[b], None if masks is None else masks[b],
                           causal, s, rows, (bk, bd), o[b], lse[b])
    else:
        k1 = _append(xp, k, one, "ka", LOG2E)                                   # [K log2 e, 1]
        wide = wide_scores(xp, q, k, s)

        def worker(item: tuple[tuple[int, ...], tuple[int, int]], slot: int) -> None:
            b, rows = item
            _forward_rows(q[b], k1[b], v1[b], None if masks is None else masks[b],
                          causal, s, rows, (bk, bd), o[b], lse[b], wide)
    workers.run(items, worker, min(nthreads, len(items)))
    return o, lse


def _symbolic_rows(xp: Any, q: np.ndarray, k: np.ndarray, v1: np.ndarray,
                   mask: np.ndarray | None, causal: bool, s: Any, rows: tuple[int, int],
                   blocks: tuple[int, int], o: np.ndarray, lse: np.ndarray) -> None:
    """One query block of the symbolic forward: the plain form (``xp.stability_shift``
    is 0, so no running max and no rescaling); writes rows ``rows`` of ``o`` and
    ``lse``.  ``v1`` is :math:`[V, 1]`, so one product gives :math:`[PV,
    \\operatorname{rowsum} P]`."""
    i0, i1 = rows
    d_v = v1.shape[-1] - 1
    qs = q[i0:i1] * s                                          # (rows, d_k) scaled queries
    acc = xp.zeros((i1 - i0, d_v + 1), o)                      # (rows, d_v+1) [P V, rowsum P]
    for r0, r1, c0, c1 in tiling.row_pieces(rows, k.shape[0], *blocks, causal):
        keep, blocked = tiling.tile_mask(mask, causal, (r0, r1), (c0, c1))
        if not keep:
            continue
        a, z = r0 - i0, r1 - i0                                # the piece's rows
        sc = workers.product(xp, qs[a:z], k[c0:c1].T, workers.scratch)  # (rows, keys) S_j
        p = exp_masked(xp, sc, blocked, xp.stability_shift(sc, -1))     # shift 0
        acc[a:z] += workers.product(xp, p, v1[c0:c1], workers.scratch, "pv")
    ell = acc[:, d_v:]                                         # (rows, 1) rowsum of e^S
    empty = xp.is_zero(ell)
    if np.any(empty):                                          # attends nothing: O = 0
        ell = xp.where(empty, xp.constant(1, ell), ell)
    o[i0:i1] = acc[:, :d_v] / ell
    lse[i0:i1] = xp.log(ell)[:, 0]


def _forward_rows(q: np.ndarray, k1: np.ndarray, v1: np.ndarray, mask: np.ndarray | None,
                  causal: bool, s: Any, rows: tuple[int, int], blocks: tuple[int, int],
                  o: np.ndarray, lse: np.ndarray, wide: bool = False) -> None:
    r"""One query block of the numeric forward: online softmax with a *lazy* reference.

    Scores are in base 2 here (``k1`` is :math:`[K \log_2 e, 1]`, :data:`LOG2E`), and
    the scaled queries carry one more column, :math:`-\mu` (a per-row reference), so the
    product yields the shifted scores directly: :math:`[sQ, -\mu]\,[K \log_2 e,
    1]^\top = S \log_2 e - \mu` (one more column costs the product little and saves a
    subtraction pass).  The softmax is invariant to :math:`\mu`, so it need not be the
    running max: unless the scores are ``wide`` it starts at 0 (then every base-2 score
    is within :math:`\pm B`, far inside ``exp2``'s range, :func:`wide_scores`) and every
    tile goes straight to :math:`P = 2^{S \log_2 e - \mu}` and :math:`[PV,
    \operatorname{rowsum} P] = P\,[V, 1]`, no max taken.  Safety is checked on that
    small product instead: a non-finite result (huge values) redoes the tile the classic
    way (max, rescale), and a row whose sum :math:`\ell` passes :data:`REBASE` is
    rebased, :math:`\mu \mathrel{+}= \log_2 \ell,\ A \mathrel{/}= \ell`.  Wide
    scores: :math:`\mu` starts at :math:`-\infty` and every tile is taken the classic
    way.  Writes rows ``rows`` of ``o`` and ``lse`` (:math:`(\mu + \log_2 \ell) \ln
    2`); its (rows, d_k + 1) work arrays belong to the thread running it (one block at
    a time).
    """
    i0, i1 = rows
    d_v, dtype = v1.shape[1] - 1, o.dtype
    qa = _append(numeric, q[i0:i1], dtype.type(0), "rows_qa", s)  # [sQ, -mu]
    mu = workers.work.get("rows_mu", (i1 - i0, 1), dtype)
    mu.fill(-np.inf if wide else 0)                           # -inf: no key seen yet
    acc = workers.work.get("rows_acc", (i1 - i0, d_v + 1), dtype)
    acc.fill(0)                                               # [A, ell] relative to mu
    with np.errstate(over="ignore", invalid="ignore"):        # overflow is checked for
        _forward_tiles(qa, k1, v1, mask, causal, rows, blocks, mu, acc, wide)
    ell = acc[:, d_v:]                                        # (rows, 1) rowsum 2^{S - mu}
    ell[ell == 0] = 1                                         # attends nothing: O = 0
    np.divide(acc[:, :d_v], ell, out=o[i0:i1])
    lse[i0:i1] = ((_finite(numeric, mu) + np.log2(ell)) * dtype.type(np.log(2.0)))[:, 0]


def _forward_tiles(qa: np.ndarray, k1: np.ndarray, v1: np.ndarray, mask: np.ndarray | None,
                   causal: bool, rows: tuple[int, int], blocks: tuple[int, int],
                   mu: np.ndarray, acc: np.ndarray, wide: bool) -> None:
    """The tile loop of :func:`_forward_rows`; updates qa's last column, mu and acc.
    ``wide`` (:func:`wide_scores`): every tile the classic way, exponents clipped."""
    i0, d_v = rows[0], acc.shape[1] - 1
    for r0, r1, c0, c1 in tiling.row_pieces(rows, v1.shape[0], *blocks, causal):
        keep, blocked = tiling.tile_mask(mask, causal, (r0, r1), (c0, c1))
        if not keep:
            continue
        a, z = r0 - i0, r1 - i0                               # the piece's rows

        def scores() -> np.ndarray:                           # S log2 e - mu
            return workers.product(numeric, qa[a:z], k1[c0:c1].T, workers.scratch)

        sc = scores()
        if not wide:                                          # lazy: 2^{S - mu} at once
            p = exp_masked(numeric, sc, blocked)
            t = workers.product(numeric, p, v1[c0:c1], workers.scratch, "pv")
            if np.isfinite(t).all():
                acc[a:z] += t
                big = np.flatnonzero(acc[a:z, d_v] > REBASE) + a
                if big.size:                                  # mu += log2 ell, A /= ell
                    ell = acc[big, d_v:]
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
        p = exp_masked(numeric, sc, blocked, shift, clip=wide)
        acc[a:z] += workers.product(numeric, p, v1[c0:c1], workers.scratch, "pv")
        mu[a:z] = _finite(numeric, mu[a:z]) + delta           # while none seen); -inf too
        qa[a:z, -1:] -= shift


# ----------------------------------------------------------------------------- backward

class _Operands(NamedTuple):
    """The backward's operands for every batch index, broadcast to the batch shape; each
    augmented by one column so that a product also subtracts a row statistic."""

    qa: np.ndarray    # (..., m, d_k+1) [sQ, -L]: [sQ, -L] [K, 1]^T = S - L
    ka: np.ndarray    # (..., n, d_k+1) [K, 1]
    ga: np.ndarray    # (..., m, d_v+1) [g, -D]: [g, -D] [V, 1]^T = dP - D
    va: np.ndarray    # (..., n, d_v+1) [V, 1]
    k: np.ndarray     # (..., n, d_k)


def flash_backward(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray,
                   lse: np.ndarray, g: np.ndarray, mask: np.ndarray | None = None,
                   causal: bool = False, scale: float | None = None,
                   block_q: int | None = None, block_k: int | None = None,
                   threads: int | None = None, block_diag: int | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Blocked attention backward from the saved row logsumexp ``lse`` and the upstream
    gradient ``g`` (:math:`\bar O`, shape of o).

    Each tile recomputes $P = e^{s QK^\top - L}$; with $D = \operatorname{rowsum}(\bar O
    \odot O)$: $\bar V = P^\top \bar O$, $\bar S = P \odot (\bar O V^\top - D)$,
    $\bar Q = s\,\bar S K$, $\bar K = s\,\bar S^\top Q$.  The shifts ride along in the
    products: $[sQ, -L]\,[K, 1]^\top = S - L$ and $[\bar O, -D]\,[V, 1]^\top = \bar P -
    D$.  Returns ``(dq, dk, dv)`` in the shapes of q, k, v (batch axes that were
    broadcast are summed back).  The threads take key blocks; each keeps its own
    :math:`\bar Q` accumulator, summed at the end.
    """
    batch, m, n, d_k, d_v = _check(q, k, v, mask)
    bq, bk, bd = tiling.block_sizes(block_q, block_k, block_diag)
    heads = int(np.prod(batch))
    like = np.empty((), dtype=np.result_type(q, k, v, g))
    s = score_scale(xp, scale, d_k, like)
    ops = _backward_operands(xp, q, k, v, o, lse, g, s, batch, like)
    masks = None if mask is None else np.broadcast_to(mask, batch + (m, n))
    nthreads = workers.worker_count(xp, threads, heads * n)
    bk = tiling.key_block(bk, bd, n, heads, nthreads, causal, fixed=block_k is not None)
    items = [(b, cols) for b in np.ndindex(batch) for cols in tiling.spans(n, bk)]
    if causal:  # the first key blocks meet the most query rows: schedule them first
        items.sort(key=lambda it: it[1][0])
    nthreads = min(nthreads, len(items))
    dq_parts = _dq_accumulators(xp, batch + (m, d_k), like, nthreads)
    dk, dv = xp.zeros(batch + (n, d_k), like), xp.zeros(batch + (n, d_v), like)
    wide = wide_scores(xp, q, ops.k, s)

    def worker(item: tuple[tuple[int, ...], tuple[int, int]], slot: int) -> None:
        b, cols = item
        _backward_keys(xp, ops, b, None if masks is None else masks[b], causal, cols,
                       (bq, bd), wide, dq_parts[slot][b], dk[b], dv[b])

    workers.run(items, worker, nthreads)
    dq = _dq_total(xp, dq_parts, s, batch + (m, d_k), like)
    return (unbroadcast(dq, np.shape(q)), unbroadcast(dk, np.shape(k)),
            unbroadcast(dv, np.shape(v)))


def _backward_operands(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray,
                       lse: np.ndarray, g: np.ndarray, s: Any, batch: tuple[int, ...],
                       like: np.ndarray) -> _Operands:
    """The augmented operands of :func:`flash_backward`, numerically in base 2
    (:data:`LOG2E` in the logsumexp and the keys, for ``exp2``) and in work arrays."""
    m, n, d_v = q.shape[-2], k.shape[-2], v.shape[-1]
    one = xp.constant(1, like)
    g = np.broadcast_to(g, batch + (m, d_v))
    o = np.broadcast_to(o, batch + (m, d_v))
    if xp.symbolic:
        big_d = np.sum(g * o, axis=-1)                                     # (..., m) D
    else:                                           # no (m, d_v) temporary: one einsum
        big_d = np.einsum("...i,...i->...", g, o)
    lse = np.broadcast_to(lse, batch + (m,))
    base = 1 if xp.symbolic else LOG2E
    k = np.broadcast_to(k, batch + (n, q.shape[-1]))
    return _Operands(
        qa=_append(xp, np.broadcast_to(q, batch + q.shape[-2:]), -lse[..., None] * base,
                   "qa", s),                                               # [sQ, -L]
        ka=_append(xp, k, one, "ka", None if xp.symbolic else base),       # [K, 1]
        ga=_append(xp, g, -big_d[..., None], "ga"),                        # [g, -D]
        va=_append(xp, np.broadcast_to(v, batch + (n, d_v)), one, "va"),   # [V, 1]
        k=k)


def _backward_keys(xp: Any, ops: _Operands, b: tuple[int, ...], mask: np.ndarray | None,
                   causal: bool, cols: tuple[int, int], blocks: tuple[int, int], wide: bool,
                   dq: np.ndarray, dk: np.ndarray, dv: np.ndarray) -> None:
    """The backward of key block ``cols`` of batch index ``b``, over the query rows that
    attend it: adds into its own rows of ``dk`` and ``dv`` (of batch index ``b``) and
    into ``dq``, the accumulator of the thread running it (:math:`\\bar S K`, not yet
    scaled by s)."""
    j0, j1 = cols
    d_k, d_v = ops.k.shape[-1], ops.va.shape[-1] - 1
    qa, ka, ga, va, k = ops.qa[b], ops.ka[b], ops.ga[b], ops.va[b], ops.k[b]
    dk_acc, dv_acc = dk[j0:j1], dv[j0:j1]                      # this block's rows, owned
    for r0, r1, c0, c1 in tiling.col_pieces(cols, qa.shape[0], *blocks, causal):
        keep, blocked = tiling.tile_mask(mask, causal, (r0, r1), (c0, c1))
        if not keep:
            continue
        kab, vab = ka[c0:c1], va[c0:c1]                        # (keys, d_k+1), (keys, d_v+1)
        qab, gab = qa[r0:r1], ga[r0:r1]                        # (rows, d_k+1), (rows, d_v+1)
        sc = workers.product(xp, qab, kab.T, workers.scratch)  # S - L
        p = exp_masked(xp, sc, blocked, clip=wide)             # (rows, keys) P = e^{S - L}
        z = c1 - j0                                            # the piece's keys: [:z]
        dv_acc[:z] += workers.product(xp, p.T, gab[:, :d_v], workers.scratch, "dv")
        ds = workers.product(xp, gab, vab.T, workers.scratch, "ds")  # (rows, keys) dP - D
        ds = _times(xp, ds, p)                                 # dS = P (dP - D)
        dq[r0:r1] += workers.product(xp, ds, k[c0:c1], workers.scratch, "dq")   # dS K
        dk_acc[:z] += workers.product(xp, ds.T, qab[:, :d_k], workers.scratch, "dk")  # s dS^T Q


def _dq_accumulators(xp: Any, shape: tuple[int, ...], like: np.ndarray,
                     count: int) -> list[np.ndarray]:
    """One zeroed :math:`\\bar Q` accumulator per worker slot (work arrays numerically)."""
    if xp.symbolic:
        return [xp.zeros(shape, like) for _ in range(count)]
    parts = [workers.work.get(f"dq{slot}", shape, like.dtype) for slot in range(count)]
    for part in parts:
        part.fill(0)
    return parts


def _dq_total(xp: Any, parts: list[np.ndarray], s: Any, shape: tuple[int, ...],
              like: np.ndarray) -> np.ndarray:
    """s times the sum of the slots' accumulators, as a new array (the work arrays stay);
    zeros when there was nothing to do (no keys)."""
    if not parts:
        return xp.zeros(shape, like)
    dq = parts[0] * s
    for part in parts[1:]:
        dq = _add_scaled(xp, dq, part, s)
    return dq


def _add_scaled(xp: Any, acc: np.ndarray, part: np.ndarray, s: Any) -> np.ndarray:
    """acc + s * part (in place numerically: acc is this call's own new array)."""
    if xp.symbolic:
        return acc + part * s
    acc += part * s
    return acc


def _times(xp: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b, in place in ``a`` numerically."""
    if xp.symbolic:
        return a * b
    a *= b
    return a
