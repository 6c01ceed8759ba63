r"""How the blocked kernels of :mod:`.flash` cut the (m, n) score matrix into tiles.

Queries go in blocks of rows, keys in blocks of columns; a tile ``(r0, r1, c0, c1)`` is
query rows ``r0:r1`` against keys ``c0:c1``.  The forward takes a query block at a time
and walks its keys (:func:`row_pieces`), the backward a key block at a time and walks
its queries (:func:`col_pieces`).  With ``causal=True`` (query i attends key j iff
j <= i) no tile wholly above the diagonal is made, and the diagonal is cut into thin
strips, so little above it is computed and thrown away (Dao 2023, *FlashAttention-2*).

The default block sizes adapt to the number of worker threads, so that the blocks share
out evenly over them (:func:`rows_block`, :func:`even`, :func:`key_block`).
"""
from __future__ import annotations

import functools

import numpy as np

#: Default tile sizes: query rows per block and key rows per block (compare others with
#: ``benchmarks/bench_flash.py``).
BLOCK_Q = 256
BLOCK_K = 512
#: The forward's query blocks are this many times :data:`BLOCK_Q` by default (fewer row
#: blocks, less per-block work), halved while there are too few for the threads
#: (:func:`rows_block`).
FORWARD_ROWS = 2
#: :func:`even` cuts no block below this many rows: a smaller block costs more to hand
#: to another thread than that thread saves.
EVEN_LEAST = 256
#: Causal: the width of the strips the diagonal is cut into.
BLOCK_DIAG = 256
#: Causal backward with threads: key blocks small enough for this many per thread.
CAUSAL_SPLIT = 2


def spans(stop: int, block: int, start: int = 0) -> list[tuple[int, int]]:
    """``start:stop`` cut into ``(a, b)`` pieces of ``block`` (the last may be shorter)."""
    return [(a, min(a + block, stop)) for a in range(start, stop, block)]


def _positive(name: str, value: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"flash attention: {name} must be a positive int, got {value!r}")
    return int(value)


def block_sizes(block_q: int | None, block_k: int | None,
                block_diag: int | None) -> tuple[int, int, int]:
    """The block sizes asked for, checked, with :data:`BLOCK_Q`, :data:`BLOCK_K` and
    :data:`BLOCK_DIAG` where None."""
    return (_positive("block_q", BLOCK_Q if block_q is None else block_q),
            _positive("block_k", BLOCK_K if block_k is None else block_k),
            _positive("block_diag", BLOCK_DIAG if block_diag is None else block_diag))


def rows_block(bq: int, m: int, heads: int, threads: int, causal: bool) -> int:
    """The forward's default query block: :data:`FORWARD_ROWS` x ``bq`` rows, halved
    (down to ``bq``) while the blocks are fewer than the threads, or causal, fewer than
    two per thread (its blocks differ in work: with two per thread, longest first, the
    threads end together)."""
    rows = bq * FORWARD_ROWS
    need = threads * (2 if causal else 1)
    while rows > bq and heads * -(-m // rows) < need:
        rows = max(bq, rows // 2)
    return rows if causal else even(rows, m, heads, threads)


def even(block: int, size: int, heads: int, threads: int) -> int:
    """``block`` made a little smaller, if need be, so that blocks of equal work
    (non-causal) share out evenly over the threads when they are few: 3 blocks on 2
    threads take as long as 4, so 1536 rows go as 4 blocks of 384, not 3 of 512."""
    count = -(-size // block)
    if threads <= 1 or heads * count >= 4 * threads:
        return block
    while (heads * count) % threads:
        count += 1
    smaller = -(-size // count)
    return smaller if smaller >= EVEN_LEAST else block


def key_block(bk: int, bd: int, n: int, heads: int, threads: int, causal: bool,
              fixed: bool = False) -> int:
    """The backward's key block.  Causal on several threads: small enough for about
    :data:`CAUSAL_SPLIT` blocks per thread, a multiple of the strip width ``bd`` (later
    key blocks meet fewer query rows; many blocks, earliest first, end together).
    Otherwise ``bk``, made :func:`even` over the threads unless the caller ``fixed`` it."""
    if causal and threads > 1:
        target = heads * n // (CAUSAL_SPLIT * threads)
        return min(bk, max(bd, target // bd * bd))
    return bk if fixed else even(bk, n, heads, threads)


def row_pieces(rows: tuple[int, int], n: int, bk: int, bd: int,
               causal: bool) -> list[tuple[int, int, int, int]]:
    """The tiles (r0, r1, c0, c1) one query block meets.  Causal: keys before the block's
    first row are attended by all its rows (tiles of ``bk`` keys, no mask); the diagonal
    is cut into ``bd`` keys wide strips that start at the first row that sees them."""
    i0, i1 = rows
    if not causal:
        return [(i0, i1, c0, c1) for c0, c1 in spans(n, bk)]
    full = min(i0, n)
    pieces = [(i0, i1, c0, c1) for c0, c1 in spans(full, bk)]
    pieces += [(c0, i1, c0, min(c0 + bd, i1, n)) for c0 in range(full, min(i1, n), bd)]
    return pieces


def col_pieces(cols: tuple[int, int], m: int, bq: int, bd: int,
               causal: bool) -> list[tuple[int, int, int, int]]:
    """The tiles (r0, r1, c0, c1) one key block meets (the backward's view).  Causal:
    queries from the block's end on attend all its keys (tiles of ``bq`` rows); the
    diagonal is cut into ``bd`` rows high strips that stop at the last key they see."""
    j0, j1 = cols
    if not causal:
        return [(r0, r1, j0, j1) for r0, r1 in spans(m, bq)]
    pieces = [(r0, min(r0 + bd, j1, m), j0, min(r0 + bd, j1))
              for r0 in range(j0, min(j1, m), bd)]
    pieces += [(r0, r1, j0, j1) for r0, r1 in spans(m, bq, start=min(j1, m))]
    return pieces


def tile_mask(mask: np.ndarray | None, causal: bool, rows: tuple[int, int],
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


def tiles(m: int, n: int, causal: bool = False, block_q: int | None = None,
          block_k: int | None = None, block_diag: int | None = None,
          ) -> list[tuple[int, int, int, int]]:
    """The tiles (r0, r1, c0, c1) the forward computes with these block sizes: rows
    r0:r1 against keys c0:c1 (causal: none above the diagonal, the diagonal in thin
    strips).  Without ``block_q``, the forward's default for one head on one thread."""
    bq, bk, bd = block_sizes(block_q, block_k, block_diag)
    if block_q is None:
        bq = rows_block(bq, m, 1, 1, causal)
    return [piece for rows in spans(m, bq) for piece in row_pieces(rows, n, bk, bd, causal)
            if tile_mask(None, causal, piece[:2], piece[2:])[0]]
