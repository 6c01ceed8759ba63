"""Cross-check a PyTorch attention against the engine: a custom autograd.Function for
scaled dot-product attention in four versions -- three drafts, each with a bug that
``tinygrad-attn compare`` finds, and the fixed one (docs/interop.md works through them).

    tinygrad-attn compare examples/interop_torch_sdpa.py:reference \\
        examples/interop_torch_sdpa.py:sdpa_v1 \\
        --shape q=2x4x8 --shape k=2x5x8 --shape v=2x5x8 --shape mask=4x5

(then ``:sdpa_v2``, ``:sdpa_v3`` and ``:sdpa``).  Needs PyTorch: pip install
'tinygrad_attn[torch]'.
"""
import torch

import tinygrad_attn as ta


def reference(q, k, v, mask):
    """The engine's scaled dot-product attention: the context."""
    return ta.attention.scaled_dot_product(q, k, v, mask=mask)[0]


class SDPAv1(torch.autograd.Function):
    """softmax(Q K^T / sqrt(d)) V with a hand-written backward: the first draft."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        scale = q.shape[-1] ** -0.5
        p = torch.softmax(q @ k.mT * scale, dim=-1) * mask      # BUG: mask after the softmax
        ctx.save_for_backward(q, k, v, p)
        return p @ v

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_tensors
        dp = g @ v.mT
        ds = p * (dp - (dp * p).sum(-1, keepdim=True))         # BUG: the 1/sqrt(d) is missing
        return ds @ k, ds.mT @ q, p.mT @ g, None


class SDPAv2(SDPAv1):
    """The mask before the softmax; the backward is still v1's."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        scale = q.shape[-1] ** -0.5
        p = torch.softmax((q @ k.mT * scale).masked_fill(~mask, float("-inf")), dim=-1)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return p @ v


class SDPAv3(SDPAv2):
    """v2's forward, the scale in the backward."""

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_tensors
        dp = g @ v.mT
        ds = p * (dp - (dp * p).sum(-1, keepdim=True)) * ctx.scale
        return ds @ k, ds.mT @ q, p.mT @ g, None


def masked_softmax(s, mask):
    """softmax over the attended entries; a fully masked row gives zero weights."""
    s = s.masked_fill(~mask, float("-inf"))
    top = s.amax(dim=-1, keepdim=True)
    e = torch.exp(s - torch.where(torch.isfinite(top), top, torch.zeros_like(top)))
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


class SDPA(torch.autograd.Function):
    """The fixed version: a fully masked row gives zero weights, and the weights are
    recomputed in backward from the saved inputs, so autograd can differentiate the
    backward again (a tensor made in forward is a constant to the double backward)."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        ctx.save_for_backward(q, k, v, mask)
        return masked_softmax(q @ k.mT * q.shape[-1] ** -0.5, mask) @ v

    @staticmethod
    def backward(ctx, g):
        q, k, v, mask = ctx.saved_tensors
        scale = q.shape[-1] ** -0.5
        p = masked_softmax(q @ k.mT * scale, mask)
        dp = g @ v.mT
        ds = p * (dp - (dp * p).sum(-1, keepdim=True)) * scale
        return ds @ k, ds.mT @ q, p.mT @ g, None


def sdpa_v1(q, k, v, mask):
    return SDPAv1.apply(q, k, v, mask)


def sdpa_v2(q, k, v, mask):
    return SDPAv2.apply(q, k, v, mask)


def sdpa_v3(q, k, v, mask):
    return SDPAv3.apply(q, k, v, mask)


def sdpa(q, k, v, mask):
    return SDPA.apply(q, k, v, mask)
