r"""The fused scaled dot-product attention op, registered into the engine's op table.

:class:`ScaledDotProductAttention` is one primitive op with a hand-derived backward; its
array kernels are in :mod:`.kernels` (plain) and :mod:`.flash` (blocked, linear memory).
:class:`SDPAWeights` exposes the weights $P$ as a node of their own.  Both are written
against ``ctx.xp``, so they run symbolically and their VJPs are proven like every op.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.backend import backend_of
from ..engine.ops import register
from ..engine.autograd import is_grad_enabled
from ..engine import Function, Tensor
from . import flash, kernels



def _scale_tensor(like: Tensor, scale: Any) -> Tensor:
    """The score scale s as a constant Tensor (exact symbolically, like's dtype numerically)."""
    xp = backend_of(like.data)
    return Tensor(np.asarray(kernels.score_scale(xp, scale, like.shape[-1], like.data)),
                  _validated=True)


def _wrap(array: Any) -> Tensor | None:
    return None if array is None else Tensor(np.asarray(array), _validated=True)


@register
class ScaledDotProductAttention(Function):
    r"""Fused $O = \operatorname{softmax}(s\,QK^\top + M)\,V$ (Vaswani et al. 2017), with
    $s = 1/\sqrt{d}$ by default, ``mask`` True = attend, ``causal`` = key $j \le$ query $i$.

    Hand-derived VJP (Dao et al. 2022): $\bar V = P^\top G$,
    $D = \operatorname{rowsum}(G \odot O)$, $\bar S = P \odot (G V^\top - D)$,
    $\bar Q = s\,\bar S K$, $\bar K = s\,\bar S^\top Q$.

    When no graph is recorded during backward (the usual case) the VJP runs as one array
    kernel (:func:`~tinygrad_attn.kernels.sdpa_backward`); with ``create_graph=True`` the
    same formulas run as Tensor ops, so the gradient can be differentiated again.
    ``weights_out`` (a list, optional) receives the weights $P$ the forward computed, so
    :func:`tinygrad_attn.attention.scaled_dot_product` can return them without a second
    softmax; it is not kept in ``ctx.attrs``.  ``impl="blocked"`` (or ``"auto"`` above a
    measured size, when no weights are asked for) runs the tiled kernels of
    :mod:`tinygrad_attn.flash` instead: linear memory, only the row logsumexp is saved.
    """

    op = "sdpa"
    differentiable_backward = True

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=None, weights_out=None,
                impl="plain"):
        ctx.attrs.pop("weights_out", None)
        if flash.use_blocked(impl, q, k, need_weights=weights_out is not None):
            o, lse = flash.flash_forward(ctx.xp, q, k, v, mask, causal, scale)  # tiles
            ctx.save_for_backward(None, lse)
            return o
        o, p = kernels.sdpa_forward(ctx.xp, q, k, v, mask, causal, scale)
        ctx.save_for_backward(p, None)
        if weights_out is not None:
            weights_out.append(p)
        return o

    @staticmethod
    def backward(ctx, g):
        q, k, v = ctx.parents
        mask, causal = ctx.attrs.get("mask"), ctx.attrs.get("causal", False)
        scale = ctx.attrs.get("scale")
        p, lse = ctx.saved_tensors
        if not is_grad_enabled() and lse is not None:  # blocked: recompute P tile by tile
            xp = backend_of(q.data, k.data, v.data, g.data)
            grads = flash.flash_backward(xp, q.data, k.data, v.data, ctx.output.data, lse,
                                          g.data, mask, causal, scale)
            return tuple(_wrap(a) if need else None
                         for a, need in zip(grads, ctx.needs_input_grad))
        if not is_grad_enabled():  # fast path: one array kernel
            xp = backend_of(q.data, k.data, v.data, g.data)
            grads = kernels.sdpa_backward(xp, q.data, k.data, v.data, ctx.output.data, p,
                                           g.data, mask, causal, scale,
                                           needs=ctx.needs_input_grad)
            return tuple(_wrap(a) for a in grads)
        # create_graph: the same formulas as Tensor ops, differentiable again
        P = SDPAWeights.apply(q, k, mask=mask, causal=causal, scale=scale, precomputed=p)
        s = _scale_tensor(q, scale)
        D = (g * ctx.output).sum(axis=-1, keepdims=True)     # (..., m, 1)
        dS = P * (g @ v.mT - D)                              # (..., m, n)
        return (dS @ k) * s, (dS.mT @ q) * s, P.mT @ g


@register
class SDPAWeights(Function):
    r"""The weights of scaled dot-product attention as their own node:
    $P = \operatorname{softmax}(s\,QK^\top + M)$ along the keys.

    VJP (the softmax Jacobian, then the bilinear score):
    $\bar S = P \odot (G - \operatorname{rowsum}(G \odot P))$, $\bar Q = s\,\bar S K$,
    $\bar K = s\,\bar S^\top Q$; masked entries have $P = 0$, so exactly zero gradient.
    ``precomputed`` (optional) is $P$ already computed by the fused forward; it is not
    kept in ``ctx.attrs``.
    """

    op = "sdpa_weights"
    differentiable_backward = True

    @staticmethod
    def forward(ctx, q, k, mask=None, causal=False, scale=None, precomputed=None):
        ctx.attrs.pop("precomputed", None)
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
