r"""The fused scaled dot-product attention op, registered into the engine's op table.

:class:`ScaledDotProductAttention` is one primitive op with a hand-derived backward; its
array kernels are in :mod:`.kernels` (plain) and :mod:`.flash` (blocked, linear memory).
:class:`SDPAWeights` exposes the weights $P$ as a node of their own.  Both are written
against ``ctx.xp``, so they run symbolically and their VJPs are proven like every op.

:func:`choose_impl` is the one place that decides how scaled dot-product attention runs
(the engine's composed ops, the plain kernels or the blocked ones); :func:`fused_attention`
applies the two ops and hands the weights the forward computed to :class:`SDPAWeights`
(read from the forward's ctx), so the softmax is not computed twice.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, Tensor, asarray, backend_of, is_grad_enabled, register
from . import flash, kernels

#: The implementations a caller may ask for; ``auto`` picks ``blocked`` when the weights
#: are not wanted and one head's score matrix has at least :data:`AUTO_MIN_SCORES` entries.
IMPLS = ("auto", "plain", "blocked")

#: Threshold of ``impl="auto"`` (m * n): from n = 1024 on, the blocked kernels are faster
#: than the plain ones in float32 and float64 (``benchmarks/bench_flash.py --threshold``).
AUTO_MIN_SCORES = 1024 * 1024


def choose_impl(impl: str, m: int, n: int, *, fused: bool = True, need_weights: bool = True,
                symbolic: bool = False) -> str:
    """How scaled dot-product attention of m queries and n keys runs: ``"composed"`` (the
    engine's primitive ops, ``fused=False``), ``"plain"`` (the fused op holding the (m, n)
    weights) or ``"blocked"`` (the fused op on tiles, linear memory).

    ``impl`` is one of :data:`IMPLS`.  ``auto`` picks ``blocked`` only numerically, only
    when the weights are not wanted, and only from :data:`AUTO_MIN_SCORES` scores on.
    """
    if impl not in IMPLS:
        raise ValueError(f"scaled dot-product attention: impl must be one of "
                         f"{', '.join(map(repr, IMPLS))}, got {impl!r}")
    if not fused:
        if impl == "blocked":
            raise ValueError("scaled_dot_product: impl='blocked' needs fused=True")
        return "composed"
    if impl != "auto":
        return impl
    if need_weights or symbolic:
        return "plain"
    return "blocked" if m * n >= AUTO_MIN_SCORES else "plain"


def _scale_tensor(like: Tensor, scale: Any) -> Tensor:
    """The score scale s as a constant Tensor (exact symbolically, like's dtype numerically)."""
    xp = backend_of(like.data)
    return Tensor(asarray(kernels.score_scale(xp, scale, like.shape[-1], like.data)),
                  _validated=True)


def _wrap(array: Any) -> Tensor | None:
    return None if array is None else Tensor(asarray(array), _validated=True)


@register
class ScaledDotProductAttention(Function):
    r"""Fused $O = \operatorname{softmax}(s\,QK^\top + M)\,V$ (Vaswani et al. 2017), with
    $s = 1/\sqrt{d_k}$ by default, ``mask`` True = attend, ``causal`` = key $j \le$ query $i$.

    Hand-derived VJP (Dao et al. 2022), from the upstream gradient (``g`` in code):
    $\bar V = P^\top \bar O$, $D = \operatorname{rowsum}(\bar O \odot O)$,
    $\bar S = P \odot (\bar O V^\top - D)$, $\bar Q = s\,\bar S K$, $\bar K = s\,\bar S^\top Q$.

    When no graph is recorded during backward (the usual case) the VJP runs as one array
    kernel (:func:`~tinygrad_attn.attention.kernels.sdpa_backward`); with
    ``create_graph=True`` the same formulas run as Tensor ops, so the gradient can be
    differentiated again.  ``blocked=True`` runs the tiled kernels of
    :mod:`~tinygrad_attn.attention.flash` instead: linear memory, only the row logsumexp
    is saved.  The forward leaves the weights $P$ it computed in ``ctx.weights`` (None
    when blocked), where :func:`fused_attention` reads them
    (:meth:`~tinygrad_attn.engine.Function.apply_with_ctx`).
    """

    op = "sdpa"
    differentiable_backward = True
    saves = ("inputs", "output", "saved")

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=None, blocked=False):
        if blocked:  # tiles and an online softmax: the causal mask is never materialised
            o, lse = flash.flash_forward(ctx.xp, q, k, v, mask, causal, scale)
            ctx.weights = None
            ctx.save_for_backward(lse)
        else:
            o, ctx.weights = kernels.sdpa_forward(ctx.xp, q, k, v, mask, causal, scale)
            ctx.save_for_backward(ctx.weights)
        return o

    @staticmethod
    def backward(ctx, g):
        q, k, v = ctx.parents
        mask, causal = ctx.attrs.get("mask"), ctx.attrs.get("causal", False)
        scale, blocked = ctx.attrs.get("scale"), ctx.attrs.get("blocked", False)
        (saved,) = ctx.saved_tensors                        # P, or the row logsumexp L
        if is_grad_enabled():  # create_graph: the same formulas as Tensor ops
            P = SDPAWeights.apply(q, k, mask=mask, causal=causal, scale=scale,
                                  precomputed=None if blocked else saved)
            s = _scale_tensor(q, scale)
            D = (g * ctx.output).sum(axis=-1, keepdims=True)  # (..., m, 1)
            dS = P * (g @ v.mT - D)                          # (..., m, n)
            return (dS @ k) * s, (dS.mT @ q) * s, P.mT @ g
        xp = backend_of(q.data, k.data, v.data, g.data)
        if blocked:  # recompute P tile by tile from L
            grads = flash.flash_backward(xp, q.data, k.data, v.data, ctx.output.data, saved,
                                         g.data, mask, causal, scale)
            return tuple(_wrap(a) if need else None
                         for a, need in zip(grads, ctx.needs_input_grad))
        grads = kernels.sdpa_backward(xp, q.data, k.data, v.data, ctx.output.data, saved,
                                      g.data, mask, causal, scale, needs=ctx.needs_input_grad)
        return tuple(_wrap(a) for a in grads)


@register
class SDPAWeights(Function):
    r"""The weights of scaled dot-product attention as their own node:
    $P = \operatorname{softmax}(s\,QK^\top + M)$ along the keys.

    VJP (the softmax Jacobian, then the bilinear score), from the upstream gradient
    (``g`` in code): $\bar S = P \odot (\bar P - \operatorname{rowsum}(\bar P \odot P))$,
    $\bar Q = s\,\bar S K$, $\bar K = s\,\bar S^\top Q$; masked entries have $P = 0$, so
    exactly zero gradient.  ``precomputed`` (optional) is $P$ as the fused forward
    computed it (:func:`fused_attention`); it is a value for this call, not a parameter,
    so ``ctx.attrs`` does not keep it (``transient_kwargs``).
    """

    op = "sdpa_weights"
    differentiable_backward = True
    saves = ("inputs", "output")
    transient_kwargs = ("precomputed",)

    @staticmethod
    def forward(ctx, q, k, mask=None, causal=False, scale=None, precomputed=None):
        if precomputed is not None:
            return precomputed
        return kernels.sdpa_weights(ctx.xp, q, k, mask, causal, scale)

    @staticmethod
    def backward(ctx, g):
        q, k = ctx.parents
        P, s = ctx.output, _scale_tensor(q, ctx.attrs.get("scale"))
        dS = P * (g - (g * P).sum(axis=-1, keepdims=True))   # (..., m, n)
        return ((dS @ k) * s if ctx.needs_input_grad[0] else None,
                (dS.mT @ q) * s if ctx.needs_input_grad[1] else None)


def fused_attention(q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None = None,
                    causal: bool = False, scale: Any = None, *, blocked: bool = False,
                    need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
    """The fused op's context (..., m, d_v) and, when ``need_weights``, its weights
    (..., m, n) as a node of their own: the plain forward's $P$ (``ctx.weights``) is
    reused, the blocked one computes it apart (it never holds all of it)."""
    context, ctx = ScaledDotProductAttention.apply_with_ctx(
        q, k, v, mask=mask, causal=causal, scale=scale, blocked=blocked)
    context.name = "context"
    if not need_weights:
        return context, None
    weights = SDPAWeights.apply(q, k, mask=mask, causal=causal, scale=scale,
                                precomputed=ctx.weights)
    weights.name = "weights"
    return context, weights
