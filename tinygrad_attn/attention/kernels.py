r"""Array-level kernels of fused scaled dot-product attention (Vaswani et al. 2017).

Written once against an array namespace ``xp`` (see :mod:`tinygrad_attn.engine.backend`),
so the same code computes numbers (NumPy) or exact expressions (SymPy object arrays).
:class:`~tinygrad_attn.attention.fused.ScaledDotProductAttention` calls them; the blocked
(flash) variant (:mod:`~tinygrad_attn.attention.flash`) has the same signatures.

Forward, for m queries and n keys, with the score scale $s$ (default $1/\sqrt{d_k}$) and
the mask $M$ (True = attend; masked scores are $-\infty$, so they contribute exactly $0$):

.. math::

    S = s\,Q K^\top, \quad P = \operatorname{softmax}_{\text{row}}(S), \quad O = P V.

Backward, given the upstream gradient $\bar O$ (``g`` in code; Dao et al. 2022,
FlashAttention, Appendix B.2):

.. math::

    \bar V = P^\top \bar O, \quad D = \operatorname{rowsum}(\bar O \odot O), \quad
    \bar S = P \odot (\bar O\,V^\top - D), \quad \bar Q = s\,\bar S\,K, \quad
    \bar K = s\,\bar S^\top Q.

($D = \operatorname{rowsum}(\bar P \odot P)$, the softmax VJP's row term, because
$O = PV$.)  A masked entry has $P = 0$, hence $\bar S = 0$: exactly zero gradient.  A
row that attends to nothing gets $P = 0$ (the empty sum is taken as 1), a zero output
and zero gradients, never NaN.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import unbroadcast


def causal_mask(m: int, n: int) -> np.ndarray:
    """Boolean (m, n) mask, True where query i may attend key j, i.e. j <= i.

    Top-left aligned, as PyTorch's ``is_causal``: for m = n it is the lower triangle.
    """
    return np.tril(np.ones((m, n), dtype=bool))


def allowed(mask: np.ndarray | None, causal: bool, m: int, n: int) -> np.ndarray | None:
    """The mask combined with the causal mask (None when every position may attend)."""
    if causal:
        return causal_mask(m, n) if mask is None else np.logical_and(mask, causal_mask(m, n))
    return mask


def score_scale(xp: Any, scale: Any, d_k: int, like: np.ndarray) -> Any:
    r"""The scale $s$ as a constant of ``like``'s dtype: $1/\sqrt{d_k}$ by default.

    Numerically a 0-d array of ``like``'s dtype (float32 stays float32); symbolically an
    exact expression (``1/sqrt(d_k)`` is ``sqrt(d_k)/d_k``, not a rounded rational).
    """
    if scale is None:
        return xp.constant(1, like) / xp.sqrt(xp.constant(d_k, like))
    return xp.constant(scale, like)


def _mT(a: np.ndarray) -> np.ndarray:
    """The matrix transpose of the last two axes."""
    return np.swapaxes(a, -1, -2)


def masked_softmax(xp: Any, s: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    r"""Row softmax of the scores ``s`` where ``mask`` is True, exactly 0 elsewhere.

    Masked scores become $-\infty$ (symbolically ``-oo``, and ``exp(-oo)`` is exactly
    0).  Numerically the row maximum is subtracted first (``xp.stability_shift``), so
    logits of 1e4 do not overflow; a row with no allowed entry gives zeros, not 0/0.
    Numerically ``s`` is overwritten (pass a fresh array).
    """
    if mask is not None:
        s = xp.where(mask, s, xp.constant(-np.inf, s))
    shift = xp.stability_shift(s, -1)
    if xp.symbolic:
        e = xp.exp(s - shift)
    else:  # the same arithmetic, in place on the fresh score array
        s -= shift
        e = np.exp(s, out=s)
    z = e.sum(axis=-1, keepdims=True)
    empty = xp.is_zero(z)
    if empty.any():  # rows that attend to nothing: weights 0, not 0/0
        z = xp.where(empty, xp.constant(1, z), z)
    if xp.symbolic:
        return e / z
    e /= z
    return e


def sdpa_weights(xp: Any, q: np.ndarray, k: np.ndarray, mask: np.ndarray | None = None,
                 causal: bool = False, scale: Any = None) -> np.ndarray:
    r"""The attention weights $P = \operatorname{softmax}(s\,QK^\top)$, masked: (..., m, n)."""
    m, d_k, n = q.shape[-2], q.shape[-1], k.shape[-2]
    sc = score_scale(xp, scale, d_k, q)
    return masked_softmax(xp, xp.matmul(q * sc, _mT(k)), allowed(mask, causal, m, n))


def sdpa_forward(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                 mask: np.ndarray | None = None, causal: bool = False,
                 scale: Any = None) -> tuple[np.ndarray, np.ndarray]:
    r"""$O = \operatorname{softmax}(s\,QK^\top) V$ for q (..., m, d_k), k (..., n, d_k),
    v (..., n, d_v), batch axes broadcasting, ``mask`` broadcastable to (..., m, n).

    Returns ``(o, p)``: the output (..., m, d_v) and the weights $P$ (..., m, n), which
    is what :func:`sdpa_backward` needs.
    """
    p = sdpa_weights(xp, q, k, mask, causal, scale)    # (..., m, n)
    o = xp.matmul(p, v)                                 # (..., m, n) x (..., n, d_v)
    return o, p


def sdpa_backward(xp: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray,
                  p: np.ndarray, g: np.ndarray, mask: np.ndarray | None = None,
                  causal: bool = False, scale: Any = None,
                  needs: tuple[bool, bool, bool] = (True, True, True),
                  ) -> tuple[Any, Any, Any]:
    r"""$(\bar Q, \bar K, \bar V)$ from the saved weights ``p`` and the upstream
    gradient ``g`` ($\bar O$, the shape of o).

    $\bar V = P^\top \bar O$, $D = \operatorname{rowsum}(\bar O \odot O)$,
    $\bar S = P \odot (\bar O\,V^\top - D)$, $\bar Q = s\,\bar S\,K$,
    $\bar K = s\,\bar S^\top Q$.  The mask is already in ``p`` (masked entries are 0,
    so their $\bar S$ is 0).  Gradients come back in the shapes of q, k, v (broadcast
    batch axes summed); an entry of ``needs`` that is False gives None instead.
    """
    sc = score_scale(xp, scale, q.shape[-1], q)
    dv = unbroadcast(xp.matmul(_mT(p), g), v.shape) if needs[2] else None    # (..., n, d_v)
    if not (needs[0] or needs[1]):
        return None, None, dv
    dp = xp.matmul(g, _mT(v))                                 # (..., m, n)
    d_row = (g * o).sum(axis=-1, keepdims=True)               # D: (..., m, 1)
    if xp.symbolic:
        ds = p * (dp - d_row)
    else:
        dp -= d_row
        ds = np.multiply(p, dp, out=dp)
    dq = unbroadcast(xp.matmul(ds, k) * sc, q.shape) if needs[0] else None       # (..., m, d_k)
    dk = unbroadcast(xp.matmul(_mT(ds), q) * sc, k.shape) if needs[1] else None  # (..., n, d_k)
    return dq, dk, dv
