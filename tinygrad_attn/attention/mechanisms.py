r"""The classic attention mechanisms: a score function, then a softmax, then a weighted sum.

Every mechanism is ``scores -> attend(scores, values, mask)``, written like its paper's
equation, differentiable by the engine, and returns ``(context, weights)``.

Conventions (row vectors, as in the code of most papers since 2017):

* a sequence is ``(..., n, d)``: n vectors of size d, any leading batch axes;
* a projection is ``x @ W`` with ``W`` of shape ``(d_in, d_out)``;
* a query is ``(..., m, d_q)`` (m queries at once) or a single ``(d_q,)``, whose weights
  are ``(n,)``; the weights are ``(..., m, n)``, the context ``(..., m, d_v)``;
* ``mask``: boolean, True = may attend, broadcastable to the weights' shape.  A masked
  score is :math:`-\infty` before the softmax, so it gets exactly zero weight and
  exactly zero gradient (symbolically ``exp(-oo)`` is exactly 0); a row with nothing to
  attend to gets zero weights, a zero context and zero gradients, never NaN.

Scopes (``score``, ``softmax``, ``context``, ``head i``, ``output projection``) group
the recorded ops, so :func:`tinygrad_attn.draw` clusters them like a textbook figure.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..engine import Tensor, asarray, backend_of, concat, scope, stack, where
from . import kernels
from .fused import choose_impl, fused_attention

__all__ = [
    "attend", "causal_mask", "padding_mask", "content", "additive", "additive_concat",
    "location", "general", "dot_product", "scaled_dot_product", "self_attention",
    "cross_attention", "multi_head", "multi_head_projected", "cosine_similarity",
]

# ----------------------------------------------------------------------------- masks


def causal_mask(m: int, n: int | None = None) -> np.ndarray:
    """Boolean (m, n) mask: query i may attend key j iff j <= i (lower triangle).

    Top-left aligned for m != n, as PyTorch's ``is_causal``.
    """
    n = m if n is None else n
    for name, value in (("m", m), ("n", n)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"causal_mask: {name} must be a non-negative int, got {value!r}")
    return kernels.causal_mask(int(m), int(n))


def padding_mask(lengths: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """Boolean (B, 1, n) key mask from sequence lengths: key j of sequence b may be
    attended iff j < lengths[b].  It broadcasts over the m queries of weights (B, m, n);
    for multi-head weights (B, H, m, n) add a head axis: ``padding_mask(...)[:, None]``.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(f"padding_mask: lengths must be a 1-D sequence of ints, got "
                         f"shape {lengths.shape} and dtype {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > n):
        raise ValueError(f"padding_mask: lengths must lie in [0, n={n}], got {lengths.tolist()}")
    return (np.arange(n)[None, :] < lengths[:, None])[:, None, :]


# ----------------------------------------------------------------------------- checks

def _tensor(x: Any, name: str) -> Tensor:
    """A Tensor from ``x``; arrays become named constant Tensors."""
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x, name=name)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None


def _needs_dims(fn: str, name: str, t: Tensor, ndim: int, what: str) -> None:
    if t.ndim < ndim:
        raise ValueError(f"{fn}: {name} must have shape {what}, got shape {t.shape}")


def _batch(fn: str, **named: Tensor) -> tuple[int, ...]:
    """The broadcast batch shape (all axes but the last two) of sequences."""
    shapes = {t.shape[:-2] for t in named.values()}
    if len(shapes) == 1:  # the common case: one batch shape (or none)
        return shapes.pop()
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        shapes = ", ".join(f"{k} {t.shape}" for k, t in named.items())
        raise ValueError(f"{fn}: the batch axes (all but the last two) of {shapes} "
                         f"cannot be broadcast together") from None


def _check_kv(fn: str, keys: Tensor, values: Tensor) -> None:
    _needs_dims(fn, "keys", keys, 2, "(..., n, d_k)")
    _needs_dims(fn, "values", values, 2, "(..., n, d_v)")
    if keys.shape[-2] != values.shape[-2]:
        raise ValueError(f"{fn}: keys and values must have the same length n, got keys "
                         f"{keys.shape} (n={keys.shape[-2]}) and values {values.shape} "
                         f"(n={values.shape[-2]})")


def _check_dim(fn: str, a_name: str, a: Tensor, a_axis: int, b_name: str, b: Tensor,
               b_axis: int) -> None:
    if a.shape[a_axis] != b.shape[b_axis]:
        raise ValueError(f"{fn}: {a_name} and {b_name} do not match: {a_name} has shape "
                         f"{a.shape} (size {a.shape[a_axis]} on axis {a_axis}) but "
                         f"{b_name} has shape {b.shape} (size {b.shape[b_axis]} on axis "
                         f"{b_axis})")


def _mask(fn: str, mask: Any, weights_shape: tuple[int, ...]) -> np.ndarray | None:
    """Validate a boolean mask against the weights' shape; None stays None."""
    if mask is None:
        return None
    mask = mask.data if isinstance(mask, Tensor) else asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{fn}: mask must be a boolean array (True = attend), got dtype "
                        f"{mask.dtype}")
    try:
        ok = np.broadcast_shapes(mask.shape, weights_shape) == tuple(weights_shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: mask of shape {mask.shape} cannot be broadcast to the "
                         f"weights' shape {tuple(weights_shape)}")
    return mask


# ----------------------------------------------------------------------------- one query

def _as_rows(query: Tensor) -> Tensor:
    """A single query (d_q,) as one row (1, d_q); a query (..., m, d_q) as it is."""
    return query.reshape(1, query.shape[0]) if query.ndim == 1 else query


def _promote(query: Tensor, mask: np.ndarray | None
             ) -> tuple[Tensor, np.ndarray | None, bool]:
    """A single query (d_q,) becomes (1, d_q) and its mask (..., n) gains the query axis,
    so every mechanism computes with m queries; the flag says to :func:`_demote` after."""
    single = query.ndim == 1
    if single and mask is not None and mask.ndim >= 1:
        mask = np.expand_dims(mask, -2)
    return _as_rows(query), mask, single


def _demote(single: bool, context: Tensor, weights: Tensor | None
            ) -> tuple[Tensor, Tensor | None]:
    """Undo :func:`_promote`: a single query's context is (d_v,) and its weights (n,).
    Weights may be None (``need_weights=False``)."""
    if not single:
        return context, weights
    return context.squeeze(-2), None if weights is None else weights.squeeze(-2)


def _weights_shape(fn: str, query: Tensor, keys: Tensor, extra: Sequence[Tensor] = ()) \
        -> tuple[int, ...]:
    """(..., m, n) for a query (..., m, d_q), or (..., n) for a single query (d_q,),
    against keys (..., n, d_k)."""
    rows = _as_rows(query)
    batch = _batch(fn, query=rows, keys=keys, **{f"input {i}": t for i, t in enumerate(extra)})
    return batch + ((rows.shape[-2],) if query.ndim > 1 else ()) + (keys.shape[-2],)


def _sqrt_const(d: int, like: Tensor) -> Tensor:
    """sqrt(d) as a constant of ``like``'s dtype; exact (``sqrt(d)``) symbolically."""
    xp = backend_of(like.data)
    return Tensor(asarray(xp.sqrt(xp.constant(d, like.data))), _validated=True)


# ----------------------------------------------------------------------------- attend

def attend(scores: Tensor, values: Tensor, mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""Softmax over the keys, then the weighted sum of the values.

    $\alpha = \operatorname{softmax}(e)$ with masked scores set to $-\infty$;
    context $c = \sum_j \alpha_j v_j = \alpha V$.  scores (..., m, n) or (n,),
    values (..., n, d_v).  Returns (context (..., m, d_v), weights (..., m, n)).
    """
    scores, values = _tensor(scores, "scores"), _tensor(values, "values")
    _needs_dims("attend", "values", values, 2, "(..., n, d_v)")
    _needs_dims("attend", "scores", scores, 1, "(..., m, n)")
    _check_dim("attend", "scores", scores, -1, "values", values, -2)
    rows = _as_rows(scores)                 # the weights carry the values' batch axes too
    shape = _batch("attend", scores=rows, values=values) + scores.shape[-min(2, scores.ndim):]
    scores, mask, single = _promote(scores, _mask("attend", mask, shape))
    with scope("softmax"):
        if mask is not None:
            scores = where(mask, scores, -math.inf)             # masked: exp(-inf) = 0
        weights = scores.softmax(axis=-1)                       # (..., m, n)
        weights.name = "weights"
    with scope("context"):
        context = weights @ values                              # (..., m, n) x (..., n, d_v)
        context.name = "context"
    return _demote(single, context, weights)


# ----------------------------------------------------------------------------- mechanisms

def _prepare(fn: str, query: Any, keys: Any, values: Any, mask: Any,
             q_name: str = "query") -> tuple[Tensor, Tensor, Tensor, np.ndarray | None, bool]:
    """Tensors, checks and the promoted single query shared by the mechanisms."""
    query, values = _tensor(query, q_name), _tensor(values, "values")
    keys = values if keys is None else _tensor(keys, "keys")
    _needs_dims(fn, q_name, query, 1, "(..., m, d_q) or (d_q,)")
    _check_kv(fn, keys, values)
    mask = _mask(fn, mask, _weights_shape(fn, query, keys, (values,)))
    query, mask, single = _promote(query, mask)
    return query, keys, values, mask, single


def cosine_similarity(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    r"""$K[a_i, b_j] = a_i \cdot b_j / (\lVert a_i\rVert \lVert b_j\rVert)$ for every pair of
    rows: (..., m, d) and (..., n, d) give (..., m, n).

    Numerically a norm below ``eps`` is clamped to ``eps`` (as ``torch.cosine_similarity``),
    so a zero vector gives similarity 0, not NaN; symbolically the norms are exact.
    """
    def normalise(x: Tensor) -> Tensor:
        sq = (x * x).sum(axis=-1, keepdims=True)                # |x|^2: (..., r, 1)
        if x.dtype != object:
            sq = where(sq.data > eps * eps, sq, eps * eps)
        return x / sq.sqrt()

    return normalise(a) @ normalise(b).mT


def content(query: Any, keys: Any, values: Any, beta: Any = 1.0,
            mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""Content-based attention (Graves et al. 2014, Neural Turing Machines, eq. 5):
    $e_j = \beta\,K[q, k_j]$ with the cosine similarity $K$, $\alpha = \operatorname{softmax}(e)$.

    ``beta`` (the key strength) is a number or a Tensor broadcastable to (..., m, 1).
    """
    query, keys, values, mask, single = _prepare("content", query, keys, values, mask)
    _check_dim("content", "query", query, -1, "keys", keys, -1)
    with scope("score"):
        scores = cosine_similarity(query, keys) * beta         # (..., m, n)
        scores.name = "scores"
    return _demote(single, *attend(scores, values, mask))


def additive(query: Any, keys: Any, values: Any, W_q: Any, W_k: Any, v: Any,
             mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""Additive attention (Bahdanau et al. 2014, eq. 6 and Appendix A.1.2):
    $e_{ij} = v^\top \tanh(W_q^\top q_i + W_k^\top k_j)$, written with row vectors as
    ``tanh(q @ W_q + k @ W_k) @ v``.  W_q (d_q, h), W_k (d_k, h), v (h,).
    """
    query, keys, values, mask, single = _prepare("additive", query, keys, values, mask)
    W_q, W_k, v = _tensor(W_q, "W_q"), _tensor(W_k, "W_k"), _tensor(v, "v")
    _needs_dims("additive", "W_q", W_q, 2, "(d_q, h)")
    _needs_dims("additive", "W_k", W_k, 2, "(d_k, h)")
    _check_dim("additive", "query", query, -1, "W_q", W_q, 0)
    _check_dim("additive", "keys", keys, -1, "W_k", W_k, 0)
    _check_dim("additive", "W_q", W_q, 1, "W_k", W_k, 1)
    if v.shape != (W_q.shape[1],):
        raise ValueError(f"additive: v must have shape (h,) = ({W_q.shape[1]},) to match "
                         f"W_q {W_q.shape}, got {v.shape}")
    with scope("score"):
        q_proj = query @ W_q                                    # (..., m, h)
        k_proj = keys @ W_k                                     # (..., n, h)
        hidden = (q_proj.unsqueeze(-2) + k_proj.unsqueeze(-3)).tanh()  # (..., m, n, h)
        scores = hidden @ v                                     # (..., m, n)
        scores.name = "scores"
    return _demote(single, *attend(scores, values, mask))


def additive_concat(query: Any, keys: Any, values: Any, W: Any, v: Any,
                    mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""Additive attention in its concatenation form (Luong et al. 2015, eq. 8, "concat"):
    $e_{ij} = v^\top \tanh(W [q_i; k_j])$, row vectors: ``tanh([q; k] @ W) @ v``.

    W (d_q + d_k, h).  With ``W = [W_q; W_k]`` (stacked rows) it equals :func:`additive`.
    """
    query, keys, values, mask, single = _prepare("additive_concat", query, keys, values,
                                                 mask)
    W, v = _tensor(W, "W"), _tensor(v, "v")
    _needs_dims("additive_concat", "W", W, 2, "(d_q + d_k, h)")
    if W.shape[0] != query.shape[-1] + keys.shape[-1]:
        raise ValueError(f"additive_concat: W must have d_q + d_k = {query.shape[-1]} + "
                         f"{keys.shape[-1]} rows (query {query.shape}, keys {keys.shape}), "
                         f"got W {W.shape}")
    if v.shape != (W.shape[1],):
        raise ValueError(f"additive_concat: v must have shape ({W.shape[1]},) to match W "
                         f"{W.shape}, got {v.shape}")
    batch = _batch("additive_concat", query=query, keys=keys)
    m, n = query.shape[-2], keys.shape[-2]
    with scope("score"):
        q_rep = query.unsqueeze(-2).expand(batch + (m, n, query.shape[-1]))  # (..., m, n, d_q)
        k_rep = keys.unsqueeze(-3).expand(batch + (m, n, keys.shape[-1]))    # (..., m, n, d_k)
        pairs = concat([q_rep, k_rep], axis=-1)                 # (..., m, n, d_q + d_k)
        scores = (pairs @ W).tanh() @ v                         # (..., m, n)
        scores.name = "scores"
    return _demote(single, *attend(scores, values, mask))


def location(query: Any, values: Any, W: Any, mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""Location-based attention (Luong et al. 2015, eq. 9, "location"):
    $\alpha = \operatorname{softmax}(W_a h_t)$: the scores depend on the query alone, one per
    position.  Row vectors: ``softmax(q @ W)`` with W (d_q, n) and n = the values' length.
    """
    query, _, values, mask, single = _prepare("location", query, None, values, mask)
    W = _tensor(W, "W")
    _needs_dims("location", "W", W, 2, "(d_q, n)")
    _check_dim("location", "query", query, -1, "W", W, 0)
    _check_dim("location", "W", W, 1, "values", values, -2)
    with scope("score"):
        scores = query @ W                                      # (..., m, n)
        scores.name = "scores"
    return _demote(single, *attend(scores, values, mask))


def general(query: Any, keys: Any, values: Any, W: Any,
            mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""General (bilinear) attention (Luong et al. 2015, eq. 8, "general"):
    $e_{ij} = q_i^\top W k_j$, row vectors ``q @ W @ k^T``; W (d_q, d_k)."""
    query, keys, values, mask, single = _prepare("general", query, keys, values, mask)
    W = _tensor(W, "W")
    _needs_dims("general", "W", W, 2, "(d_q, d_k)")
    _check_dim("general", "query", query, -1, "W", W, 0)
    _check_dim("general", "W", W, 1, "keys", keys, -1)
    with scope("score"):
        scores = (query @ W) @ keys.mT                          # (..., m, d_k) x (..., d_k, n)
        scores.name = "scores"
    return _demote(single, *attend(scores, values, mask))


def dot_product(query: Any, keys: Any, values: Any, mask: Any = None) -> tuple[Tensor, Tensor]:
    r"""Dot-product attention (Luong et al. 2015, eq. 8, "dot"): $e_{ij} = q_i^\top k_j$."""
    query, keys, values, mask, single = _prepare("dot_product", query, keys, values, mask)
    _check_dim("dot_product", "query", query, -1, "keys", keys, -1)
    with scope("score"):
        scores = query @ keys.mT                                # (..., m, d_k) x (..., d_k, n)
        scores.name = "scores"
    return _demote(single, *attend(scores, values, mask))


def scaled_dot_product(q: Any, k: Any, v: Any, mask: Any = None, causal: bool = False,
                       fused: bool = True, *, impl: str = "auto",
                       need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
    r"""Scaled dot-product attention (Vaswani et al. 2017, eq. 1):
    $\operatorname{Attention}(Q, K, V) = \operatorname{softmax}(QK^\top / \sqrt{d_k})\,V$.

    ``causal=True`` lets query i attend key j iff j <= i.  ``fused=True`` runs one op
    with a hand-derived backward (:class:`~.fused.ScaledDotProductAttention`);
    ``fused=False`` composes the engine's primitive ops (the readable reference, drawn
    as the textbook figure).  Both return weights that are differentiable.

    ``impl`` (fused only): ``"plain"`` holds the (m, n) weights; ``"blocked"`` runs the
    tiled, linear-memory kernels of :mod:`tinygrad_attn.attention.flash`; ``"auto"``
    picks ``blocked`` for large m n when ``need_weights=False`` (then the weights
    returned are None, as ``need_weights`` in PyTorch's ``MultiheadAttention``).  The
    choice is :func:`~tinygrad_attn.attention.fused.choose_impl`'s.
    """
    q, k, v, mask, single = _prepare("scaled_dot_product", q, k, v, mask, q_name="q")
    _check_dim("scaled_dot_product", "q", q, -1, "k", k, -1)
    m, n, d_k = q.shape[-2], k.shape[-2], q.shape[-1]
    if d_k == 0:
        raise ValueError(f"scaled_dot_product: q {q.shape} and k {k.shape} have width d_k = 0, "
                         f"so the scale 1/sqrt(d_k) is undefined")
    how = choose_impl(impl, m, n, fused=fused, need_weights=need_weights,
                      symbolic=object in (q.dtype, k.dtype, v.dtype))
    if how != "composed":
        context, weights = fused_attention(q, k, v, mask, causal, blocked=how == "blocked",
                                           need_weights=need_weights)
        return _demote(single, context, weights)
    with scope("score"):
        scores = (q @ k.mT) / _sqrt_const(d_k, q)               # (..., m, n)
        scores.name = "scores"
    context, weights = attend(scores, v, kernels.allowed(mask, causal, m, n))
    return _demote(single, context, weights if need_weights else None)


def self_attention(x: Any, W_q: Any, W_k: Any, W_v: Any, mask: Any = None,
                   causal: bool = False, *, fused: bool = True) -> tuple[Tensor, Tensor]:
    r"""Self-attention over one sequence (Vaswani et al. 2017, sec. 3.2):
    $Q = XW_q,\ K = XW_k,\ V = XW_v$, then scaled dot-product attention.

    x (..., n, d_model); W_q, W_k (d_model, d_k); W_v (d_model, d_v).
    """
    return cross_attention(x, x, W_q, W_k, W_v, mask, causal=causal, fused=fused,
                           _fn="self_attention")


def cross_attention(x_dec: Any, x_enc: Any, W_q: Any, W_k: Any, W_v: Any, mask: Any = None,
                    *, causal: bool = False, fused: bool = True,
                    _fn: str = "cross_attention") -> tuple[Tensor, Tensor]:
    r"""Cross (encoder-decoder) attention (Vaswani et al. 2017, sec. 3.2.3): queries from
    the decoder sequence, keys and values from the encoder sequence:
    $Q = X_{dec} W_q,\ K = X_{enc} W_k,\ V = X_{enc} W_v$, then scaled dot-product attention.
    """
    x_dec = _tensor(x_dec, "x" if _fn == "self_attention" else "x_dec")
    x_enc = x_dec if x_enc is x_dec else _tensor(x_enc, "x_enc")
    W_q, W_k, W_v = _tensor(W_q, "W_q"), _tensor(W_k, "W_k"), _tensor(W_v, "W_v")
    q_name = "x" if _fn == "self_attention" else "x_dec"
    kv_name = "x" if _fn == "self_attention" else "x_enc"
    _check_projections(_fn, q_name, x_dec, kv_name, x_enc, W_q, W_k, W_v)
    with scope("projection"):
        Q, K, V = x_dec @ W_q, x_enc @ W_k, x_enc @ W_v
        Q.name, K.name, V.name = "Q", "K", "V"
    return scaled_dot_product(Q, K, V, mask, causal=causal, fused=fused)


def _check_projections(fn: str, q_name: str, x_q: Tensor, kv_name: str, x_kv: Tensor,
                       W_q: Tensor, W_k: Tensor, W_v: Tensor) -> None:
    _needs_dims(fn, q_name, x_q, 1, "(..., m, d_model)")
    _needs_dims(fn, kv_name, x_kv, 2, "(..., n, d_model)")
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v)):
        _needs_dims(fn, name, W, 2, "(d_in, d_out)")
        if W.ndim != 2:
            raise ValueError(f"{fn}: {name} must be a matrix (d_in, d_out), got {W.shape}")
    _check_dim(fn, q_name, x_q, -1, "W_q", W_q, 0)
    _check_dim(fn, kv_name, x_kv, -1, "W_k", W_k, 0)
    _check_dim(fn, kv_name, x_kv, -1, "W_v", W_v, 0)
    _check_dim(fn, "W_q", W_q, 1, "W_k", W_k, 1)


def multi_head(x_q: Any, x_kv: Any, W_q: Any, W_k: Any, W_v: Any, W_o: Any, num_heads: int,
               mask: Any = None, causal: bool = False, *,
               fused: bool = True) -> tuple[Tensor, Tensor]:
    r"""Multi-head attention (Vaswani et al. 2017, sec. 3.2.2):
    $\operatorname{head}_i = \operatorname{Attention}(Q_i, K_i, V_i)$,
    $\operatorname{MultiHead} = [\operatorname{head}_1; \dots; \operatorname{head}_h] W_o$.

    PyTorch layout: $Q = X_q W_q$ and head i takes its columns ``i*d_k:(i+1)*d_k`` (the
    same for K, and ``i*d_v:(i+1)*d_v`` for V).  x_q (..., m, d_model), x_kv (..., n,
    d_model); W_q, W_k (d_model, h d_k); W_v (d_model, h d_v); W_o (h d_v, d_out).
    Returns the output (..., m, d_out) and the weights (..., heads, m, n); ``mask``
    broadcasts to the latter.

    ``fused=True`` runs all heads at once through the fused op (heads as a batch axis);
    ``fused=False`` attends head by head, each in its own ``head i`` scope, with the
    composed ops: the readable reference and the textbook picture.
    """
    x_q, x_kv, W_q, W_k, W_v, W_o = _multi_head_tensors(x_q, x_kv, W_q, W_k, W_v, W_o,
                                                        num_heads)
    H, rows = num_heads, _as_rows(x_q)
    batch = _batch("multi_head", x_q=rows, x_kv=x_kv)
    m, n = rows.shape[-2], x_kv.shape[-2]
    mask = _mask("multi_head", mask, batch + (H,) + ((m, n) if x_q.ndim > 1 else (n,)))
    x_q, mask, single = _promote(x_q, mask)
    mask = kernels.allowed(mask, causal, m, n)                  # (..., H, m, n) or None
    with scope("projection"):
        Q, K, V = x_q @ W_q, x_kv @ W_k, x_kv @ W_v            # (..., m|n, H d_k|H d_v)
        Q.name, K.name, V.name = "Q", "K", "V"
    attend_heads = _all_heads_at_once if fused else _head_by_head
    joined, weights = attend_heads(Q, K, V, H, mask, batch)    # (..., m, H d_v), (..., H, m, n)
    with scope("output projection"):
        output = joined @ W_o                                   # (..., m, H d_v) x (H d_v, d_out)
        output.name = "output"
    return _demote(single, output, weights)


def multi_head_projected(x_q: Any, K: Any, V: Any, W_q: Any, W_o: Any, num_heads: int,
                         mask: Any = None) -> tuple[Tensor, Tensor]:
    r""":func:`multi_head` over keys and values already projected, $K = X_{kv} W_k$
    (..., n, h d_k) and $V = X_{kv} W_v$ (..., n, h d_v): what a decoder's key/value
    cache holds, so that a decoding step projects only its new position (its query, and
    the key and value it appends) instead of the whole prefix again.

    x_q (..., m, d_model); W_q (d_model, h d_k); W_o (h d_v, d_out); returns the output
    (..., m, d_out) and the weights (..., heads, m, n), as :func:`multi_head` (fused)
    does; ``mask`` broadcasts to the weights (no ``causal``: a cache holds only the
    positions a new query may attend).
    """
    fn, H = "multi_head_projected", num_heads
    x_q, K, V = _tensor(x_q, "x_q"), _tensor(K, "K"), _tensor(V, "V")
    W_q, W_o = _tensor(W_q, "W_q"), _tensor(W_o, "W_o")
    _needs_dims(fn, "x_q", x_q, 2, "(..., m, d_model)")
    _needs_dims(fn, "W_q", W_q, 2, "(d_model, heads * d_k)")
    _needs_dims(fn, "W_o", W_o, 2, "(heads * d_v, d_out)")
    _check_kv(fn, K, V)
    _check_dim(fn, "x_q", x_q, -1, "W_q", W_q, 0)
    _check_dim(fn, "W_q", W_q, 1, "K", K, -1)
    _check_dim(fn, "V", V, -1, "W_o", W_o, 0)
    if not isinstance(H, (int, np.integer)) or isinstance(H, bool) or H < 1 \
            or K.shape[-1] % H or V.shape[-1] % H:
        raise ValueError(f"{fn}: num_heads must be a positive int dividing the widths of "
                         f"K {K.shape} and V {V.shape}, got {H!r}")
    batch = _batch(fn, x_q=x_q, K=K, V=V)
    mask = _mask(fn, mask, batch + (H, x_q.shape[-2], K.shape[-2]))
    with scope("projection"):
        Q = x_q @ W_q                                           # (..., m, H d_k)
        Q.name = "Q"
    joined, weights = _all_heads_at_once(Q, K, V, H, mask, batch)
    with scope("output projection"):
        output = joined @ W_o                                   # (..., m, H d_v) x (H d_v, d_out)
        output.name = "output"
    return output, weights


def _multi_head_tensors(x_q: Any, x_kv: Any, W_q: Any, W_k: Any, W_v: Any, W_o: Any,
                        H: int) -> tuple[Tensor, ...]:
    """:func:`multi_head`'s inputs as Tensors, checked against each other and ``H``."""
    fn = "multi_head"
    x_q, W_q, W_k = _tensor(x_q, "x_q"), _tensor(W_q, "W_q"), _tensor(W_k, "W_k")
    x_kv = x_q if x_kv is x_q else _tensor(x_kv, "x_kv")
    W_v, W_o = _tensor(W_v, "W_v"), _tensor(W_o, "W_o")
    _check_projections(fn, "x_q", x_q, "x_kv", x_kv, W_q, W_k, W_v)
    if not isinstance(H, (int, np.integer)) or isinstance(H, bool) or H < 1:
        raise ValueError(f"{fn}: num_heads must be a positive int, got {H!r}")
    for name, W in (("W_q", W_q), ("W_v", W_v)):
        if W.shape[1] % H:
            raise ValueError(f"{fn}: num_heads={H} does not divide the model dimension "
                             f"{W.shape[1]} of {name} {W.shape}")
    _needs_dims(fn, "W_o", W_o, 2, "(heads * d_v, d_out)")
    _check_dim(fn, "W_v", W_v, 1, "W_o", W_o, 0)
    return x_q, x_kv, W_q, W_k, W_v, W_o


def _all_heads_at_once(Q: Tensor, K: Tensor, V: Tensor, H: int, mask: np.ndarray | None,
                       batch: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """The H heads as a batch axis of one fused op: the joined contexts (..., m, H d_v)
    and the weights (..., H, m, n).  (``batch``: the signature of :func:`_head_by_head`;
    the fused op broadcasts by itself.)"""
    d_k, d_v = Q.shape[-1] // H, V.shape[-1] // H

    def heads(t: Tensor, size: int) -> Tensor:                  # (..., r, H d) -> (..., H, r, d)
        return t.reshape(t.shape[:-1] + (H, size)).transpose(_swap_last3(t.ndim + 1))

    context, weights = scaled_dot_product(heads(Q, d_k), heads(K, d_k), heads(V, d_v),
                                          mask, fused=True)     # (..., H, m, d_v)
    joined = context.transpose(_swap_last3(context.ndim))      # (..., m, H, d_v)
    return joined.reshape(joined.shape[:-2] + (H * d_v,)), weights


def _head_by_head(Q: Tensor, K: Tensor, V: Tensor, H: int, mask: np.ndarray | None,
                  batch: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Each head composed of primitive ops in its own ``head i`` scope (the textbook
    picture): the joined contexts (..., m, H d_v) and the weights (..., H, m, n)."""
    d_k, d_v = Q.shape[-1] // H, V.shape[-1] // H
    m, n = Q.shape[-2], K.shape[-2]
    full = None if mask is None else np.broadcast_to(mask, batch + (H, m, n))
    contexts, all_weights = [], []
    for i in range(H):
        with scope(f"head {i}"):
            c, w = scaled_dot_product(
                Q[..., i * d_k:(i + 1) * d_k], K[..., i * d_k:(i + 1) * d_k],
                V[..., i * d_v:(i + 1) * d_v],
                None if full is None else full[..., i, :, :], fused=False)
        contexts.append(c)                                      # (..., m, d_v)
        all_weights.append(w)                                   # (..., m, n)
    joined = concat([c.expand(batch + c.shape[-2:]) for c in contexts], axis=-1)
    weights = stack([w.expand(batch + w.shape[-2:]) for w in all_weights], axis=-3)
    return joined, weights


def _swap_last3(ndim: int) -> tuple[int, ...]:
    """Axes that turn (..., a, b, c) into (..., b, a, c)."""
    axes = list(range(ndim))
    axes[-3], axes[-2] = axes[-2], axes[-3]
    return tuple(axes)
