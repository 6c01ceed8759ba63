"""Cross-check a PyTorch attention against the engine: a custom autograd.Function for
scaled dot-product attention, its first draft with two bugs, a second draft that fixes
them and has two more, and the fixed version (docs/interop.md works through them).

    tinygrad-attn compare examples/interop_torch_sdpa.py:reference \\
        examples/interop_torch_sdpa.py:sdpa_draft \\
        --shape q=2x4x8 --shape k=2x5x8 --shape v=2x5x8 --shape mask=4x5

(then ``:sdpa_second_draft`` and ``:sdpa``).  Needs PyTorch: pip install
'tinygrad_attn[torch]'.
"""
import torch

import tinygrad_attn as ta


def reference(q, k, v, mask):
    """The engine's scaled dot-product attention: the context."""
    return ta.attention.scaled_dot_product(q, k, v, mask=mask)[0]


# ----------------------------------------------------------------------------- first draft

class DraftSDPA(torch.autograd.Function):
    """softmax(Q K^T / sqrt(d)) V with a hand-written backward -- and two bugs."""

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


def sdpa_draft(q, k, v, mask):
    return DraftSDPA.apply(q, k, v, mask)


# ----------------------------------------------------------------------------- second draft

class SecondDraftSDPA(torch.autograd.Function):
    """Both bugs fixed: the mask before the softmax, the scale in the backward."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        scale = q.shape[-1] ** -0.5
        p = torch.softmax((q @ k.mT * scale).masked_fill(~mask, float("-inf")), dim=-1)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return p @ v

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_tensors
        dp = g @ v.mT
        ds = p * (dp - (dp * p).sum(-1, keepdim=True)) * ctx.scale
        return ds @ k, ds.mT @ q, p.mT @ g, None


def sdpa_second_draft(q, k, v, mask):
    return SecondDraftSDPA.apply(q, k, v, mask)


# ----------------------------------------------------------------------------- fixed

def masked_softmax(s, mask):
    """softmax over the attended entries; a fully masked row gives zero weights."""
    s = s.masked_fill(~mask, float("-inf"))
    top = s.amax(dim=-1, keepdim=True)
    e = torch.exp(s - torch.where(torch.isfinite(top), top, torch.zeros_like(top)))
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


class SDPA(torch.autograd.Function):
    """softmax(Q K^T / sqrt(d)) V with a hand-written backward that autograd can
    differentiate again: the weights are recomputed from the saved inputs, not saved
    (a tensor made in forward is a constant to the double backward)."""

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


def sdpa(q, k, v, mask):
    return SDPA.apply(q, k, v, mask)
