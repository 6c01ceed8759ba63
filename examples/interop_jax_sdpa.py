"""Cross-check a JAX attention against the engine: scaled dot-product attention with a
mask, written plainly (``sdpa``) and with a hand-written VJP (``sdpa_custom_vjp``) whose
backward holds the weights constant -- right to first order, wrong to second
(docs/interop.md).

    tinygrad-attn compare examples/interop_jax_sdpa.py:reference \\
        examples/interop_jax_sdpa.py:sdpa_custom_vjp \\
        --shape q=2x4x8 --shape k=2x5x8 --shape v=2x5x8 --shape mask=4x5

Needs JAX: pip install 'tinygrad_attn[jax]'.
"""
import jax
import jax.numpy as jnp

import tinygrad_attn as ta


def reference(q, k, v, mask):
    """The engine's scaled dot-product attention: the context."""
    return ta.attention.scaled_dot_product(q, k, v, mask=mask)[0]


def masked_softmax(s, mask):
    """softmax over the attended entries; a fully masked row gives zero weights."""
    s = jnp.where(mask, s, -jnp.inf)
    top = jnp.max(s, axis=-1, keepdims=True)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    e = jnp.where(mask, jnp.exp(s - jax.lax.stop_gradient(top)), 0.0)
    total = jnp.sum(e, axis=-1, keepdims=True)
    return e / jnp.where(total > 0, total, 1.0)


def weights(q, k, mask):
    scale = 1 / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    return masked_softmax(q @ jnp.swapaxes(k, -1, -2) * scale, mask), scale


def sdpa(q, k, v, mask):
    return weights(q, k, mask)[0] @ v


@jax.custom_vjp
def sdpa_custom_vjp(q, k, v, mask):
    return sdpa(q, k, v, mask)


def forward(q, k, v, mask):
    return sdpa(q, k, v, mask), (q, k, v, mask)


def backward(saved, g):
    q, k, v, mask = saved
    p, scale = weights(q, k, mask)
    p = jax.lax.stop_gradient(p)                    # BUG: the weights held constant
    dp = g @ jnp.swapaxes(v, -1, -2)
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True)) * scale
    return ds @ k, jnp.swapaxes(ds, -1, -2) @ q, jnp.swapaxes(p, -1, -2) @ g, None


sdpa_custom_vjp.defvjp(forward, backward)
