"""A new attention variant, written with the engine's ops: ALiBi-style distance bias.

Scaled dot-product attention whose scores are penalised linearly by the distance
between query and key positions (Press et al. 2022, "Train short, test long"):

    S_ij = q_i . k_j / sqrt(d) - slope * |i - j|,   P = softmax(S) (causal),   O = P V

Check it:    tinygrad-attn check examples/alibi_attention.py:alibi_attention \\
                 --shape q=4x8 --shape k=4x8 --shape v=4x8 --symbolic
Draw it:     tinygrad-attn graph examples/alibi_attention.py:figure -o alibi.svg
"""
import numpy as np

import tinygrad_attn as ta


def alibi_attention(q, k, v, slope=0.5):
    m, d = q.shape
    n = k.shape[0]
    distance = np.abs(np.arange(m)[:, None] - np.arange(n)[None, :]).astype(np.float64)
    with ta.scope("score"):
        scores = (q @ k.mT) * (1.0 / d ** 0.5) - slope * distance      # (m, n)
    context, weights = ta.attention.attend(scores, v, mask=ta.attention.causal_mask(m, n))
    return context


def figure():
    """The graph drawn by `tinygrad-attn graph`: a function of no arguments."""
    rng = np.random.default_rng(0)
    q, k, v = (ta.Tensor(rng.standard_normal((3, 2)), requires_grad=True, name=n)
               for n in ("q", "k", "v"))
    return alibi_attention(q, k, v)
