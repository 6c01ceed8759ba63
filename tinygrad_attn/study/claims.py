r"""What attention is: six claims that texts explaining attention make, each as code.

=====================  =============================================================
claim                  the functions that show it
=====================  =============================================================
1. expectation         :func:`expectation` (SymPy, exact), :func:`monte_carlo_context`,
                       :func:`monte_carlo_error`, :func:`log_log_slope`
2. convolution         :func:`conv1d`, :func:`toeplitz`, :func:`conv1d_as_attention`,
                       :func:`weights_change`, :func:`receptive_field`
3. cross = masked self :func:`cross_mask`, :func:`block_projections`,
                       :func:`cross_as_masked_self`
4. causal masking      :func:`future_change`, :func:`future_gradient`,
                       :func:`mask_after_softmax` (the mistake that leaks)
5. images              :func:`patchify`, :func:`unpatchify`, :func:`image_self_attention`,
                       :func:`synthetic_image`
6. cost                :func:`recorded_cost`, :func:`matmul_multiply_adds`
=====================  =============================================================

Every function runs on the engine (numeric or symbolic Tensors), so each claim is
proven with SymPy in ``derivations/claim_*.md`` (built by :data:`DERIVATIONS` through
:mod:`tinygrad_attn.derive`) and tested numerically in ``tests/test_claims.py``.
:func:`write_pictures` draws the figures of ``docs/study.md``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp

from .. import attention as A
from ..engine import Tensor, concat, grad, scope

__all__ = [
    "expectation", "monte_carlo_context", "monte_carlo_error", "log_log_slope",
    "conv1d", "toeplitz", "conv_scores", "conv1d_as_attention", "weights_change",
    "receptive_field", "cross_mask", "block_projections", "cross_as_masked_self",
    "future_change", "future_gradient", "mask_after_softmax", "patchify", "unpatchify",
    "image_self_attention", "synthetic_image", "recorded_cost", "matmul_multiply_adds",
    "measure_cost", "PICTURES", "write_pictures", "DERIVATIONS",
]


def _tensor(x: Any, name: str) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x, name=name)


def _zeros(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A constant zero Tensor of ``like``'s dtype (numeric; exact 0 when symbolic)."""
    dtype = np.float64 if like.dtype == object else like.dtype
    return Tensor(np.zeros(shape, dtype=dtype))


# ============================================================================ 1. expectation

def expectation(p: Sequence[Any], values: Any) -> np.ndarray:
    r"""$\mathbb{E}_{J \sim p}[v_J]$ computed by ``sympy.stats`` from the distribution itself:
    $J$ is a finite random variable with $P(J = j) = p_j$ and the expectation is taken of
    $v_J = \sum_j v_j [J = j]$.  An independent route to the context vector: attention
    never enters.  ``p`` (n,) expressions or numbers, ``values`` (n, e); returns (e,).
    """
    from sympy import stats

    p = list(np.ravel(np.asarray(p, dtype=object)))
    values = np.asarray(values, dtype=object)
    if values.ndim != 2 or values.shape[0] != len(p):
        raise ValueError(f"expectation: values must have shape (n, e) with n = {len(p)} "
                         f"(the length of p), got {values.shape}")
    J = stats.FiniteRV("J", {j: sp.sympify(pj) for j, pj in enumerate(p)}, check=False)
    return np.array([stats.E(sum(sp.sympify(values[j, c]) * sp.KroneckerDelta(J, j)
                                 for j in range(len(p))))
                     for c in range(values.shape[1])], dtype=object)


def _distribution(weights: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(weights.data if isinstance(weights, Tensor) else weights, dtype=np.float64)
    v = np.asarray(values.data if isinstance(values, Tensor) else values, dtype=np.float64)
    if p.ndim != 1 or np.any(p < 0) or not math.isclose(p.sum(), 1.0, abs_tol=1e-9):
        raise ValueError(f"monte_carlo: weights must be one row of attention weights "
                         f"(shape (n,), >= 0, summing to 1), got shape {p.shape} and sum "
                         f"{p.sum():.6g}")
    if v.ndim != 2 or v.shape[0] != p.shape[0]:
        raise ValueError(f"monte_carlo: values must have shape (n, e) with n = "
                         f"{p.shape[0]}, got {v.shape}")
    return p / p.sum(), v


def monte_carlo_context(weights: Any, values: Any, samples: int,
                        rng: np.random.Generator | int | None = None,
                        trials: int | None = None) -> np.ndarray:
    r"""The Monte-Carlo estimate $\hat c_N = \frac1N \sum_{k=1}^N v_{J_k}$, $J_k \sim p$ i.i.d.

    weights (n,) (one row of attention weights), values (n, e); returns (e,), or
    (trials, e) for ``trials`` independent estimates.
    """
    p, v = _distribution(weights, values)
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"monte_carlo_context: samples must be a positive int, got "
                         f"{samples!r}")
    rng = np.random.default_rng(rng)
    idx = rng.choice(len(p), size=(trials or 1, int(samples)), p=p)   # (trials, N)
    est = v[idx].mean(axis=1)                                          # (trials, e)
    return est if trials else est[0]


def monte_carlo_error(weights: Any, values: Any, sample_sizes: Sequence[int],
                      trials: int = 400, seed: int = 0,
                      sampler: Callable[..., np.ndarray] | None = None) -> np.ndarray:
    r"""Root-mean-square error $\sqrt{\mathbb{E}\lVert \hat c_N - c\rVert^2}$ of the estimate
    against the exact context $c = p V$, for each N (over ``trials`` repetitions).

    The theory: $\mathbb{E}\lVert \hat c_N - c\rVert^2 = \operatorname{tr}\operatorname{Cov}
    (v_J) / N$, so the error falls as $N^{-1/2}$.  ``sampler(weights, values, N, rng,
    trials)`` replaces :func:`monte_carlo_context` (to test that a wrong one is caught).
    """
    p, v = _distribution(weights, values)
    exact = p @ v
    sampler = sampler or monte_carlo_context
    rng = np.random.default_rng(seed)
    out = []
    for N in sample_sizes:
        est = sampler(p, v, int(N), rng, trials)                         # (trials, e)
        out.append(math.sqrt(np.mean(np.sum((est - exact) ** 2, axis=-1))))
    return np.array(out)


def log_log_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x: the exponent p of y ~ x^p."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)),
                            1)[0])


# ============================================================================ 2. convolution

def _odd_kernel(fn: str, kernel: Any) -> Tensor:
    kernel = _tensor(kernel, "kernel")
    if kernel.ndim != 1 or kernel.shape[0] % 2 == 0:
        raise ValueError(f"{fn}: kernel must be 1-D of odd length 2r + 1, got shape "
                         f"{kernel.shape}")
    return kernel


def toeplitz(kernel: Any, n: int) -> np.ndarray:
    r"""The (n, n) Toeplitz weight matrix of a 1-D convolution with zero padding:
    $W_{ij} = k_{i - j + r}$ for $|i - j| \le r$, else 0 (kernel length $2r + 1$).

    It depends on $i - j$ only: position, never content.  Works on numbers and on
    SymPy expressions (object arrays).
    """
    k = np.asarray(kernel.data if isinstance(kernel, Tensor) else kernel)
    if k.ndim != 1 or k.shape[0] % 2 == 0:
        raise ValueError(f"toeplitz: kernel must be 1-D of odd length, got shape {k.shape}")
    r = k.shape[0] // 2
    W = np.zeros((n, n), dtype=k.dtype if k.dtype == object else np.float64)
    if k.dtype == object:
        W[...] = sp.Integer(0)
    for i in range(n):
        for j in range(max(0, i - r), min(n, i + r + 1)):
            W[i, j] = k[i - j + r]
    return W


def conv1d(x: Any, kernel: Any) -> Tensor:
    r"""1-D convolution with zero padding, output as long as the input ('same'):
    $y_i = \sum_{m=0}^{2r} k_m\, x_{i + r - m}$ (the kernel flipped, as ``np.convolve``).

    x (n,) or (n, e) (the same kernel on every channel); kernel (2r + 1,).  Written as a
    sum of shifted copies of the padded input, with the engine's ops: no weight matrix.
    """
    x, kernel = _tensor(x, "x"), _odd_kernel("conv1d", kernel)
    if x.ndim not in (1, 2):
        raise ValueError(f"conv1d: x must have shape (n,) or (n, e), got {x.shape}")
    n, r = x.shape[0], kernel.shape[0] // 2
    pad = _zeros((r,) + x.shape[1:], x)
    xp = concat([pad, x, pad], axis=0)                         # (n + 2r, ...)
    y = None
    for m in range(2 * r + 1):
        term = kernel[m] * xp[2 * r - m:2 * r - m + n]         # x_{i + r - m}, (n, ...)
        y = term if y is None else y + term
    return y


def conv_scores(kernel: Any, n: int) -> tuple[Tensor, np.ndarray]:
    r"""Scores and mask that make :func:`~tinygrad_attn.attention.attend` a convolution.

    The keys are the n + 2r positions of the zero-padded input; query i may attend keys
    $i \dots i + 2r$ with score $\log k_{i + 2r - P}$ for key $P$.  Every row then holds the
    whole kernel, so $\operatorname{softmax} = k / \sum_m k_m$ on the band: fixed weights,
    a function of $P - i$ only.  Needs a positive kernel.  Returns scores (n, n + 2r) and
    the boolean band mask.
    """
    kernel = _odd_kernel("conv_scores", kernel)
    if kernel.dtype != object and np.any(kernel.data <= 0):
        raise ValueError(f"conv_scores: the kernel must be positive (softmax weights are), "
                         f"got {kernel.data}")
    r = kernel.shape[0] // 2
    i = np.arange(n)[:, None]
    P = np.arange(n + 2 * r)[None, :]
    band = (P >= i) & (P <= i + 2 * r)                         # (n, n + 2r)
    m = np.clip(i + 2 * r - P, 0, 2 * r)                       # kernel index per (i, P)
    return kernel.log()[m], band


def conv1d_as_attention(x: Any, kernel: Any) -> tuple[Tensor, Tensor]:
    r"""A convolution computed by ``attend``: keys and values are the zero-padded input,
    scores from :func:`conv_scores` (no query, no key: content plays no part).

    $y = (\sum_m k_m)\, \operatorname{attend}(\log k \text{ on the band}, x_{\text{pad}})$,
    equal to :func:`conv1d` for any positive kernel.  Returns (y, weights (n, n + 2r)).
    """
    x, kernel = _tensor(x, "x"), _odd_kernel("conv1d_as_attention", kernel)
    if x.ndim not in (1, 2):
        raise ValueError(f"conv1d_as_attention: x must have shape (n,) or (n, e), got "
                         f"{x.shape}")
    n, r = x.shape[0], kernel.shape[0] // 2
    values = x if x.ndim == 2 else x.reshape(n, 1)
    pad = _zeros((r, values.shape[1]), values)
    values = concat([pad, values, pad], axis=0)                # (n + 2r, e)
    scores, band = conv_scores(kernel, n)
    context, weights = A.attend(scores, values, band)         # (n, e), (n, n + 2r)
    y = context * kernel.sum()
    return (y if x.ndim == 2 else y.reshape(n)), weights


def weights_change(weights_fn: Callable[[Any], Any], x: Any, x_other: Any) -> float:
    r"""$\max |W(x) - W(x')|$: how much a mechanism's weight matrix moves when the input
    changes.  Exactly 0.0 for a convolution; positive for self-attention."""
    def arr(w: Any) -> np.ndarray:
        return np.asarray(w.data if isinstance(w, Tensor) else w, dtype=np.float64)

    return float(np.max(np.abs(arr(weights_fn(x)) - arr(weights_fn(x_other)))))


def receptive_field(fn: Callable[[Tensor], Tensor], x: Any, i: int) -> np.ndarray:
    r"""Which inputs output $i$ depends on: $R_i = \{ j : \partial y_i / \partial x_j \ne 0 \}$,
    from the engine's backward.  ``fn`` maps x (n, ...) to y (n, ...); returns a boolean
    (n,) array."""
    x = Tensor(np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64),
               requires_grad=True, name="x")
    y = fn(x)
    y = y[0] if isinstance(y, tuple) else y
    (g,) = grad(y[i].sum(), [x])
    g = np.abs(g.data).reshape(x.shape[0], -1)
    return np.any(g != 0, axis=1)


# ============================================================================ 3. cross as self

def cross_mask(m: int, n: int) -> np.ndarray:
    r"""Mask over the concatenation $[X_{enc}; X_{dec}]$ (n encoder then m decoder rows):
    every row may attend the n encoder positions only.

    $M = \begin{bmatrix} \mathbf 1_{n \times n} & 0 \\ \mathbf 1_{m \times n} & 0
    \end{bmatrix}$; the decoder block $[\mathbf 1_{m\times n}\ 0]$ is what makes it cross
    attention, the encoder block only keeps those rows defined.
    """
    mask = np.zeros((n + m, n + m), dtype=bool)
    mask[:, :n] = True
    return mask


def block_projections(W_q: Any, W_k: Any, W_v: Any, d_enc: int, d_dec: int
                      ) -> tuple[Tensor, Tensor, Tensor]:
    r"""The projections of self-attention over $Z = \operatorname{diag}(X_{enc}, X_{dec})$,
    the block-diagonal concatenation (n + m rows, $d_{enc} + d_{dec}$ columns):

    $W_q' = \begin{bmatrix} 0 \\ W_q \end{bmatrix}$ (queries read the decoder block),
    $W_k' = \begin{bmatrix} W_k \\ 0 \end{bmatrix}$,
    $W_v' = \begin{bmatrix} W_v \\ 0 \end{bmatrix}$ (keys and values read the encoder
    block).  Then $Z W_q'$ has rows $X_{dec} W_q$ below zeros, $Z W_k'$ has rows
    $X_{enc} W_k$ above zeros.  W_q (d_dec, d_k), W_k (d_enc, d_k), W_v (d_enc, d_v).
    """
    W_q, W_k, W_v = _tensor(W_q, "W_q"), _tensor(W_k, "W_k"), _tensor(W_v, "W_v")
    for name, W, rows in (("W_q", W_q, d_dec), ("W_k", W_k, d_enc), ("W_v", W_v, d_enc)):
        if W.ndim != 2 or W.shape[0] != rows:
            raise ValueError(f"block_projections: {name} must have shape ({rows}, d), got "
                             f"{W.shape}")
    Wq = concat([_zeros((d_enc, W_q.shape[1]), W_q), W_q], axis=0)
    Wk = concat([W_k, _zeros((d_dec, W_k.shape[1]), W_k)], axis=0)
    Wv = concat([W_v, _zeros((d_dec, W_v.shape[1]), W_v)], axis=0)
    return Wq, Wk, Wv


def cross_as_masked_self(x_dec: Any, x_enc: Any, W_q: Any, W_k: Any, W_v: Any,
                         mask: np.ndarray | None = None, *,
                         fused: bool = True) -> tuple[Tensor, Tensor]:
    r"""Cross attention computed as *self*-attention over the concatenated sequence.

    $Z = \operatorname{diag}(X_{enc}, X_{dec})$, projections from :func:`block_projections`,
    mask from :func:`cross_mask` (or ``mask``, to show that a leaking one is caught);
    the decoder rows of the result are
    ``cross_attention(x_dec, x_enc, W_q, W_k, W_v)``.  x_dec (m, d_dec), x_enc
    (n, d_enc).  Returns (context (m, d_v), weights (m, n)).
    """
    x_dec, x_enc = _tensor(x_dec, "x_dec"), _tensor(x_enc, "x_enc")
    for name, x in (("x_dec", x_dec), ("x_enc", x_enc)):
        if x.ndim != 2:
            raise ValueError(f"cross_as_masked_self: {name} must have shape (length, d), got "
                             f"{x.shape}")
    (m, d_dec), (n, d_enc) = x_dec.shape, x_enc.shape
    Z = concat([concat([x_enc, _zeros((n, d_dec), x_enc)], axis=1),
                concat([_zeros((m, d_enc), x_dec), x_dec], axis=1)], axis=0)  # (n + m, ...)
    Wq, Wk, Wv = block_projections(W_q, W_k, W_v, d_enc, d_dec)
    mask = cross_mask(m, n) if mask is None else mask
    context, weights = A.self_attention(Z, Wq, Wk, Wv, mask=mask, fused=fused)
    return context[n:], weights[n:, :n]                        # the decoder rows


# ============================================================================ 4. causal

def future_change(fn: Callable[[Tensor], Any], x: Any, t: int,
                  rng: np.random.Generator | int | None = 0) -> float:
    r"""$\max_{i \le t} |y_i(x) - y_i(x')|$ where $x'$ differs from $x$ at positions
    $> t$ only (replaced by new random values).  0.0 exactly when the future cannot
    reach position t (causal attention), positive when it leaks."""
    x = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64)
    rng = np.random.default_rng(rng)
    x2 = x.copy()
    x2[t + 1:] = rng.normal(size=x2[t + 1:].shape) * 3.0

    def out(a: np.ndarray) -> np.ndarray:
        y = fn(Tensor(a))
        return (y[0] if isinstance(y, tuple) else y).data

    return float(np.max(np.abs(out(x)[:t + 1] - out(x2)[:t + 1])))


def future_gradient(fn: Callable[[Tensor], Any], x: Any, t: int) -> np.ndarray:
    r"""$\partial \sum_c y_{t,c} / \partial x$ from the engine's backward: rows $j > t$ are
    exactly zero for causal attention."""
    x = Tensor(np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64),
               requires_grad=True, name="x")
    y = fn(x)
    y = y[0] if isinstance(y, tuple) else y
    (g,) = grad(y[t].sum(), [x])
    return g.data


def mask_after_softmax(x: Any, W_q: Any, W_k: Any, W_v: Any) -> tuple[Tensor, Tensor]:
    r"""The classic mistake, kept as the negative control: softmax over *all* positions,
    then zero the future weights, $\tilde P = \operatorname{softmax}(S) \odot M$.

    The future weights are 0, yet the normaliser $\sum_k e^{S_{ik}}$ of row i still sums
    over the future positions, so $y_t$ changes when a later input changes: a leak
    that :func:`future_change` and :func:`future_gradient` must detect.
    """
    x = _tensor(x, "x")
    Q, K, V = x @ _tensor(W_q, "W_q"), x @ _tensor(W_k, "W_k"), x @ _tensor(W_v, "W_v")
    n, d = x.shape[0], Q.shape[-1]
    scores = (Q @ K.mT) * (1.0 / math.sqrt(d))
    weights = scores.softmax(axis=-1) * A.causal_mask(n).astype(np.float64)
    return weights @ V, weights


# ============================================================================ 5. images

def _image(fn: str, image: Any, p: int) -> Tensor:
    image = _tensor(image, "image")
    if image.ndim != 3:
        raise ValueError(f"{fn}: image must have shape (H, W, C), got {image.shape}")
    H, W, _ = image.shape
    if not isinstance(p, (int, np.integer)) or p < 1 or H % p or W % p:
        raise ValueError(f"{fn}: the patch size p={p!r} must be a positive int dividing "
                         f"H={H} and W={W}")
    return image


def patchify(image: Any, p: int) -> Tensor:
    r"""Cut an image (H, W, C) into non-overlapping p x p patches, one row each:
    (N, p p C) with N = (H/p)(W/p), patches in row-major order; row $(a, b)$ holds
    $x_{a p + u,\, b p + v,\, c}$ at column $(u p + v) C + c$.  Engine ops (reshape,
    transpose): differentiable, and exact when symbolic."""
    image = _image("patchify", image, p)
    H, W, C = image.shape
    t = image.reshape(H // p, p, W // p, p, C)                 # (a, u, b, v, c)
    t = t.transpose(0, 2, 1, 3, 4)                             # (a, b, u, v, c)
    return t.reshape((H // p) * (W // p), p * p * C)            # (N, p p C)


def unpatchify(patches: Any, shape: tuple[int, int, int], p: int) -> Tensor:
    """The inverse of :func:`patchify`: patches (N, p p C) back to an image ``shape``."""
    patches = _tensor(patches, "patches")
    H, W, C = shape
    if H % p or W % p or patches.shape != ((H // p) * (W // p), p * p * C):
        raise ValueError(f"unpatchify: patches of shape {patches.shape} do not tile an image "
                         f"{tuple(shape)} with p={p} (expected "
                         f"({(H // p) * (W // p)}, {p * p * C}))")
    t = patches.reshape(H // p, W // p, p, p, C)               # (a, b, u, v, c)
    return t.transpose(0, 2, 1, 3, 4).reshape(H, W, C)          # (a, u, b, v, c)


def image_self_attention(image: Any, p: int, W_q: Any, W_k: Any, W_v: Any, W_o: Any,
                         *, fused: bool = False) -> tuple[Tensor, Tensor]:
    r"""2-D self-attention over the patches of an image (the textbook's second exercise):

    $X = \operatorname{patchify}(I)$ (N, p p C); $Q, K, V = X W_q, X W_k, X W_v$;
    $O = \operatorname{softmax}(Q K^\top / \sqrt{d_k})\, V$; $I' = \operatorname{unpatchify}
    (O W_o)$.  Every patch attends every patch: the attention map of patch i is row i of
    the (N, N) weights.  W_q, W_k (p p C, d_k), W_v (p p C, d_v), W_o (d_v, p p C).
    Returns (image (H, W, C), weights (N, N)).
    """
    image = _image("image_self_attention", image, p)
    with scope("patchify"):
        tokens = patchify(image, p)                            # (N, p p C)
        tokens.name = "patches"
    context, weights = A.self_attention(tokens, W_q, W_k, W_v, fused=fused)  # (N, d_v)
    W_o = _tensor(W_o, "W_o")
    if W_o.ndim != 2 or W_o.shape != (context.shape[-1], tokens.shape[-1]):
        raise ValueError(f"image_self_attention: W_o must have shape (d_v, p p C) = "
                         f"({context.shape[-1]}, {tokens.shape[-1]}), got {W_o.shape}")
    with scope("unpatchify"):
        out = unpatchify(context @ W_o, image.shape, p)        # (H, W, C)
        out.name = "image out"
    return out, weights


def synthetic_image(size: int = 24, p: int = 4, seed: int = 0) -> np.ndarray:
    """A small grey-scale test image (size, size, 1): two equal bright squares (each
    2 x 2 patches), a half-bright horizontal bar, faint noise on a dark background."""
    rng = np.random.default_rng(seed)
    img = 0.05 * rng.random((size, size))
    img[p:3 * p, p:3 * p] = 1.0                                # square A
    img[3 * p:5 * p, 3 * p:5 * p] = 1.0                        # square B, same content
    img[size - p:size - p + p // 2, :] = 0.6                   # bar: half of each patch
    return img[:, :, None]


# ============================================================================ 6. cost

def matmul_multiply_adds(output: Tensor) -> int:
    r"""Multiply-adds of every matrix product recorded in the graph of ``output``:
    an (..., a, b) @ (..., b, c) product costs $a\,b\,c$ per batch element."""
    total = 0
    for node in _graph(output):
        ctx = node._ctx
        if ctx is not None and ctx.name == "matmul":
            a, b = (t.shape for t in ctx.parents)
            total += int(np.prod(node.shape)) * (a[-1] if len(a) else 1)
    return total


def _graph(output: Tensor) -> list[Tensor]:
    seen: dict[int, Tensor] = {}
    stack = [output]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen[id(t)] = t
        if t._ctx is not None:
            stack.extend(q for q in t._ctx.parents if q is not None)
    return list(seen.values())


def recorded_cost(n: int, d: int = 4, d_k: int | None = None, *,
                  fused: bool = False) -> dict[str, int]:
    r"""What the engine records for self-attention over n tokens of size d:
    ``multiply_adds`` of its matrix products, ``floats`` held by the graph (the sizes of
    all op outputs), ``pairs`` = the size of the weights (every query against every key).
    Counting, not timing: exact and deterministic."""
    d_k = d if d_k is None else d_k
    rng = np.random.default_rng(n)
    x = Tensor(rng.normal(size=(n, d)), requires_grad=True, name="x")
    W = [Tensor(rng.normal(size=(d, d_k)), requires_grad=True) for _ in range(3)]
    context, weights = A.self_attention(x, *W, fused=fused)
    nodes = [t for t in _graph(context) if t._ctx is not None]
    return {"multiply_adds": matmul_multiply_adds(context),
            "floats": int(sum(t.size for t in nodes)),
            "pairs": int(weights.size)}


def measure_cost(ns: Sequence[int], d: int = 64, repeat: int = 3) -> list[dict[str, float]]:
    """Time (best of ``repeat``) and peak traced memory of one forward+backward of
    self-attention (composed ops, float64) per n.  For the docs, never run in tests."""
    import tracemalloc

    rows = []
    for n in ns:
        rng = np.random.default_rng(0)
        x = Tensor(rng.normal(size=(n, d)), requires_grad=True)
        W = [Tensor(rng.normal(size=(d, d)) / math.sqrt(d), requires_grad=True)
             for _ in range(3)]

        def step() -> None:
            c, _ = A.self_attention(x, *W, fused=False)
            grad(c.sum(), [x, *W])

        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
        tracemalloc.start()
        step()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"n": n, "seconds": best, "peak_bytes": peak})
    return rows


# ============================================================================ derivations
# One literate document per claim, written with the machinery of tinygrad_attn.derive
# (registered there from DERIVATIONS): text, then every claim proven at explicit sizes.

def _sym(name: str, shape: tuple[int, ...], positive: bool = False) -> np.ndarray:
    from ..verify.symbolic import symbols

    return symbols(name, shape, positive=positive).data


def _zero_proof(subject: str, entries: list[Any]):
    """Proof that every expression in ``entries`` is exactly 0 (by simplification)."""
    from ..verify.symbolic import equivalent

    return equivalent({"entries": np.array(entries + [sp.Integer(0)], dtype=object)},
                      {"entries": np.zeros(len(entries) + 1, dtype=int)},
                      subject=subject, method="simplification")


def _softmax_list(s: Sequence[Any]) -> list[Any]:
    e = [sp.exp(x) for x in s]
    return [x / sum(e) for x in e]


_EXPECTATION_TEXT = r"""
## The claim

Attention turns scores $s \in \mathbb{R}^n$ into weights $p = \operatorname{softmax}(s)$:
non-negative, summing to 1, a probability distribution over the n positions. The context
vector is the average of the values under that distribution:

$$c = \sum_{j=1}^n p_j v_j = \mathbb{E}_{J \sim p}\,[v_J] .$$

So attention is a *soft lookup*: instead of reading the one value at a sampled position
$J$, it returns the value one would read *on average*. Below, the right-hand side is
computed by `sympy.stats` from the finite random variable $J$ with $P(J = j) = p_j$
(attention never enters) and proven equal to what `attend` computes.

## Its gradient is a covariance

Differentiating the expectation through the softmax,
$\partial p_j / \partial s_k = p_j (\delta_{jk} - p_k)$, gives

$$\frac{\partial c}{\partial s_k} = p_k\,(v_k - c), \qquad
  \bar s_k = p_k\,\langle v_k - c,\ \bar c\,\rangle ,$$

the score-function identity $\nabla_s \mathbb{E}_p[v_J] = \mathbb{E}_p[v_J \nabla_s \log p_J]$:
raising a score moves the context towards that position's value, in proportion to its
weight and to how far its value is from the current average.

## A Monte-Carlo estimate converges at rate $1/\sqrt N$

Sampling $J_1, \dots, J_N \sim p$ independently and averaging,
$\hat c_N = \frac1N \sum_k v_{J_k}$, is unbiased, and its error shrinks as $N^{-1/2}$:

$$\mathbb{E}[\hat c_N] = c, \qquad
  \mathbb{E}\,\lVert \hat c_N - c \rVert^2 = \frac{\operatorname{tr}\operatorname{Cov}(v_J)}{N},
  \qquad \operatorname{Cov}(v_J) = \mathbb{E}[v_J v_J^\top] - c c^\top .$$

Both are proven below with `sympy.stats` over the product space of $N$ independent draws
(one value column, $p = (p_0, p_1, 1 - p_0 - p_1)$). The measured slope of the error
against $N$ on a log-log plot is in [docs/study.md](../docs/study.md) (about $-0.5$);
`tinygrad_attn.claims.monte_carlo_error` computes it.
"""


def _expectation_doc(doc: Any) -> None:
    from sympy import stats

    from .derive import _sizes
    from ..verify.symbolic import derive, equivalent

    doc.add(_EXPECTATION_TEXT)
    for n, e in ((3, 2), (4, 1)):
        size = _sizes(n=n, e=e)
        der = derive(lambda s, V: A.attend(s, V)[0], {"s": (n,), "V": (n, e)},
                     output_names=["c"])
        s, V = der.inputs["s"].data, der.inputs["V"].data
        p = _softmax_list(s)
        doc.check(r"`attend` context $=\ \mathbb{E}_{J \sim p}[v_J]$ (`sympy.stats`)", size,
                  equivalent({"c": der.outputs[0]}, {"c": expectation(p, V)},
                             subject="context is an expectation"))
        c = np.array(p, dtype=object) @ V
        dc = der.cotangents[0]
        closed = np.array([p[k] * sum((V[k, a] - c[a]) * dc[a] for a in range(e))
                           for k in range(n)], dtype=object)
        doc.check(r"$\bar s_k = p_k \langle v_k - c, \bar c\rangle$ vs `sympy.diff`", size,
                  der.prove({"s": closed}))
        doc.check("engine backward of `attend` vs `sympy.diff`", size, der.prove_engine())
    p0, p1 = sp.symbols("p_0 p_1", positive=True)
    p = [p0, p1, 1 - p0 - p1]
    v = list(_sym("v", (3,)))
    c = sum(pj * vj for pj, vj in zip(p, v))
    var = sum(pj * vj ** 2 for pj, vj in zip(p, v)) - c ** 2
    for N in (1, 2, 3):
        Js = [stats.FiniteRV(f"J{k}", {j: p[j] for j in range(3)}, check=False)
              for k in range(N)]
        est = sum(sum(v[j] * sp.KroneckerDelta(J, j) for j in range(3)) for J in Js) / N
        doc.check(r"$\mathbb{E}[\hat c_N] = c$ and $\mathbb{E}(\hat c_N - c)^2 = "
                  r"\operatorname{Var}(v_J)/N$", _sizes(n=3, N=N),
                  equivalent({"mean": stats.E(est), "error": stats.E((est - c) ** 2)},
                             {"mean": c, "error": var / N},
                             subject=f"Monte-Carlo estimate, N = {N}",
                             method="simplification"))
    doc.proofs_section()


_CONVOLUTION_TEXT = r"""
## The claim

Self-attention and a convolution both compute each output as a weighted sum of the
inputs, $y_i = \sum_j W_{ij}\, x_j$. They differ in where the weights come from.

**A 1-D convolution** with kernel $k_0, \dots, k_{2r}$ and zero padding,
$y_i = \sum_{m=0}^{2r} k_m\, x_{i+r-m}$ (as `np.convolve(x, k, "same")`), has

$$W_{ij} = k_{i - j + r}\ \text{ for } |i - j| \le r, \qquad W_{ij} = 0 \text{ otherwise:}$$

a **Toeplitz** matrix, constant along its diagonals. It depends on the relative position
$i - j$ only, never on the content of $x$, and row $i$ reaches only $x_{i-r}, \dots,
x_{i+r}$: the receptive field is the kernel.

**Self-attention** has $W_{ij} = \operatorname{softmax}_j\bigl(x_i W_q W_k^\top x_j^\top
/ \sqrt{d_k}\bigr)$: computed from the data, different for every input, and nonzero for
every pair: the receptive field is the whole input. Self-attention is a convolution
whose kernel is computed from the data (and is as wide as the sequence).

## A convolution *is* `attend` with fixed scores

`tinygrad_attn.claims.conv1d_as_attention` makes the keys and values the $n + 2r$
positions of the zero-padded input and gives query $i$ the score $\log k_{i + 2r - P}$ on
keys $P = i, \dots, i + 2r$ (masked elsewhere). Every row then holds the whole kernel, so
the softmax returns $k / \sum_m k_m$ on the band, and

$$\operatorname{conv1d}(x, k) = \Bigl(\sum_m k_m\Bigr)\,
  \operatorname{attend}(\log k \text{ on the band},\ x_{\text{pad}})$$

for every positive kernel: no query, no key, no content. `conv1d` itself is written as a
sum of shifted copies of the padded input (no matrix), so the proofs below compare three
independent computations: shifted sums, the Toeplitz product, and `attend`.

## Gradients

The gradient of a convolution is a correlation: with $\bar y$ the upstream gradient,

$$\bar x = W^\top \bar y, \qquad \bar k_m = \sum_i \bar y_i\, x_{i + r - m} .$$

The weights of the convolution do not depend on $x$: $\partial W / \partial x = 0$
exactly, and $\partial y_i / \partial x_j = 0$ for $|i - j| > r$.
"""


def _convolution_doc(doc: Any) -> None:
    from .derive import _sizes
    from ..verify.symbolic import derive, equivalent

    doc.add(_CONVOLUTION_TEXT)
    for n, e in ((5, 1), (4, 2)):
        size = _sizes(n=n, e=e) + ", kernel $2r + 1 = 3$"
        x, k = _sym("x", (n, e)), _sym("k", (3,), positive=True)
        y = conv1d(Tensor(x), Tensor(k)).data
        ref = np.stack([np.convolve(x[:, c], k, "same") for c in range(e)], axis=1)
        doc.check("`conv1d` (shifted sums) $=$ `np.convolve(x, k, 'same')` on SymPy "
                  "symbols", size, equivalent({"y": y}, {"y": ref}, subject="np.convolve"))
        doc.check(r"`conv1d` $= W x$ with the Toeplitz $W_{ij} = k_{i-j+r}$", size,
                  equivalent({"y": y}, {"y": toeplitz(k, n) @ x}, subject="Toeplitz"))
        der = derive(lambda x, kernel: conv1d(x, kernel), {"x": (n, e), "kernel": (3,)},
                     positive=["kernel"], output_names=["y"])
        xs, ks, dy = der.inputs["x"].data, der.inputs["kernel"].data, der.cotangents[0]
        xpad = np.concatenate([np.full((1, e), sp.Integer(0), dtype=object), xs,
                               np.full((1, e), sp.Integer(0), dtype=object)])
        dk = np.array([np.sum(dy * xpad[2 - m:2 - m + n]) for m in range(3)], dtype=object)
        doc.check(r"$\bar x = W^\top \bar y$, $\bar k_m = \sum_i \bar y_i x_{i+r-m}$ vs "
                  r"`sympy.diff`", size,
                  der.prove({"x": toeplitz(ks, n).T @ dy, "kernel": dk}))
        doc.check("`conv1d_as_attention` (`attend`): output and engine backward (x and "
                  "kernel) $=$ those of `conv1d` and `sympy.diff`", size,
                  der.prove_engine(fn=lambda x, kernel: conv1d_as_attention(x, kernel)[0]))
        w = derive(lambda x, kernel: conv1d_as_attention(x, kernel)[1],
                   {"x": (n, e), "kernel": (3,)}, positive=["kernel"], output_names=["W"])
        doc.check(r"the weights of `conv1d_as_attention` do not depend on $x$: "
                  r"$\partial W/\partial x = 0$ (`sympy.diff` and engine)", size,
                  _zero_proof("weights independent of x",
                              list(w.gradients["x"].ravel())
                              + list(w.engine_gradients()["x"].ravel())))
        far = [sp.diff(der.gradients["x"][j, a], dy[i, b]) for i in range(n)
               for j in range(n) if abs(i - j) > 1 for a in range(e) for b in range(e)]
        doc.check(r"receptive field: $\partial y_i / \partial x_j = 0$ for $|i - j| > r$",
                  size, _zero_proof("receptive field of conv1d", far))
    # self-attention, smallest case: its weights depend on x, and every y_i on every x_j
    x0, x1 = sp.symbols("x_0 x_1", real=True)
    a01 = _softmax_list([x0 * x0, x0 * x1])[1]
    doc.add(r"""
## Self-attention's weights depend on the data

The smallest case, $n = 2$, $d = 1$, $W_q = W_k = 1$ (scores $x_i x_j$, unscaled): the
weight of position 1 for query 0 is

$$\alpha_{01} = """ + sp.latex(a01) + r""", \qquad
  \frac{\partial \alpha_{01}}{\partial x_1} = """ + sp.latex(sp.simplify(sp.diff(a01, x1)))
        + r""" \ne 0 ,$$

a function of the content $x$, where the convolution's $W_{01} = k_{r-1}$ is a constant.
The tests (`tests/test_claims.py`) check both numerically: changing the input changes
self-attention's weights and leaves the convolution's exactly equal, and every output of
self-attention has a nonzero gradient with respect to every input.
""")
    doc.proofs_section()


_CROSS_TEXT = r"""
## The claim

Cross (encoder-decoder) attention, $m$ decoder positions attending $n$ encoder positions
(Vaswani et al. 2017, sec. 3.2.3),

$$O = \operatorname{softmax}\Bigl(\frac{X_{dec} W_q\, (X_{enc} W_k)^\top}{\sqrt{d_k}}\Bigr)
  X_{enc} W_v ,$$

is *self*-attention over one sequence with the right mask and the right projections.

**The sequence.** Stack the two, block-diagonally (so $d_{enc} \ne d_{dec}$ is fine):

$$Z = \begin{bmatrix} X_{enc} & 0 \\ 0 & X_{dec} \end{bmatrix} \in
  \mathbb{R}^{(n + m) \times (d_{enc} + d_{dec})} .$$

**The projections.** $W_q' = \begin{bmatrix} 0 \\ W_q \end{bmatrix}$,
$W_k' = \begin{bmatrix} W_k \\ 0 \end{bmatrix}$, $W_v' = \begin{bmatrix} W_v \\ 0
\end{bmatrix}$, so $Z W_q'$ holds $X_{dec} W_q$ in its decoder rows and
$Z W_k', Z W_v'$ hold $X_{enc} W_k, X_{enc} W_v$ in their encoder rows (when
$d_{enc} = d_{dec}$ one can stack $Z = [X_{enc}; X_{dec}]$ and keep $W$ unchanged).

**The mask.** Every row may attend the encoder positions only:
$M = \begin{bmatrix} \mathbf 1_{n \times n} & 0 \\ \mathbf 1_{m \times n} & 0
\end{bmatrix}$. In a decoder row the masked scores are $-\infty$, the softmax runs over
the $n$ encoder scores $q_i \cdot k_j / \sqrt{d_k}$ exactly as in cross attention, and
the context sums the encoder values. The decoder rows of the self-attention output are
the cross-attention output, and so are the gradients, since every path from the inputs
to those rows is the same computation.

A mask that leaks (a decoder row that may also see decoder positions) breaks the
equality; `tests/test_claims.py` shows that it is detected.
"""


def _cross_doc(doc: Any) -> None:
    from .derive import _sizes

    doc.add(_CROSS_TEXT)
    from ..verify.symbolic import derive

    for m, n, d_dec, d_enc, d_k, d_v in ((2, 2, 2, 2, 1, 1), (1, 3, 1, 2, 2, 1)):
        size = _sizes(m=m, n=n, d_dec=d_dec, d_enc=d_enc, d_k=d_k, d_v=d_v)
        der = derive(lambda x_dec, x_enc, W_q, W_k, W_v: A.cross_attention(
            x_dec, x_enc, W_q, W_k, W_v, fused=False),
            {"x_dec": (m, d_dec), "x_enc": (n, d_enc), "W_q": (d_dec, d_k),
             "W_k": (d_enc, d_k), "W_v": (d_enc, d_v)}, output_names=["O", "P"])
        doc.check("engine backward of `cross_attention` vs `sympy.diff`", size,
                  der.prove_engine())
        doc.check("masked self-attention over $Z$ (composed ops): outputs $O, P$ and "
                  "engine backward $=$ those of cross attention", size,
                  der.prove_engine(fn=lambda *a: cross_as_masked_self(*a, fused=False)))
        doc.check("the same through the fused op", size,
                  der.prove_engine(fn=lambda *a: cross_as_masked_self(*a, fused=True)))
    doc.proofs_section()


_CAUSAL_CLAIM_TEXT = r"""
## The claim

In a decoder, position $t$ may attend only positions $j \le t$
(Vaswani et al. 2017, sec. 3.2.3). With the causal mask the scores of later positions are
$-\infty$, so (see [causal_masking.md](causal_masking.md) for the gradients):

1. the weights $P_{tj}$, $j > t$, are **exactly** 0, and so are their gradients;
2. hence the output at $t$ is a function of $x_1, \dots, x_t$ alone:
   $\partial O_t / \partial x_j = 0$ for every $j > t$ — **changing a later input
   cannot change an earlier output**, so a model can be trained on all positions of a
   sequence at once without seeing the answer.

Below, causal self-attention $O = \operatorname{softmax}(XW_q (XW_k)^\top/\sqrt{d_k} + M)
XW_v$ is run on symbolic $X$, and $\partial O_t / \partial X_j$ is read off the gradient
as the coefficient of $\bar O_t$ in $\partial L / \partial X_j$ (with
$L = \sum \bar O \odot O$), from `sympy.diff` and from the engine's backward.

## The mistake this rules out

Masking *after* the softmax, $\tilde P = \operatorname{softmax}(S) \odot M$
(`tinygrad_attn.claims.mask_after_softmax`), also gives $\tilde P_{tj} = 0$ for $j > t$,
yet the normaliser $\sum_k e^{S_{tk}}$ still runs over the future positions: $O_t$ then
depends on later inputs. At $n = 2$, $d = d_k = d_v = 1$ (inputs $x_0, x_1$, weights
$w_q, w_k, w_v$), `sympy.diff` gives
"""


def _causal_claim_doc(doc: Any) -> None:
    from .derive import _sizes
    from ..verify.symbolic import derive

    doc.add(_CAUSAL_CLAIM_TEXT)
    leaky = derive(lambda X, W_q, W_k, W_v: mask_after_softmax(X, W_q, W_k, W_v)[0],
                   {"X": (2, 1), "W_q": (1, 1), "W_k": (1, 1), "W_v": (1, 1)})
    dO = leaky.cotangents[0]
    dep = sp.simplify(sp.diff(leaky.gradients["X"][1, 0], dO[0, 0]))
    names = {sym: ("x_" + sym.name.split("_")[1]) if sym.name.startswith("X") else
             ("w_" + sym.name.split("_")[1]) for sym in dep.free_symbols}
    doc.add(r"$$\frac{\partial \tilde O_0}{\partial x_1} = " + sp.latex(dep, symbol_names=names)
            + r" \ne 0 ,$$" + "\n\nwhile with the mask applied to the scores it is 0, "
            "as proven below.")
    for n, d, dk in ((2, 1, 1), (3, 2, 1)):
        size = _sizes(n=n, d=d, d_k=dk, d_v=1)
        der = derive(lambda X, W_q, W_k, W_v: A.self_attention(X, W_q, W_k, W_v, causal=True,
                                                               fused=False),
                     {"X": (n, d), "W_q": (d, dk), "W_k": (d, dk), "W_v": (d, 1)},
                     output_names=["O", "P"])
        P = der.outputs[1]
        doc.check(r"masked weights $P_{tj} = 0$ exactly ($j > t$)", size,
                  _zero_proof("masked weights", [P[t, j] for t in range(n)
                                                 for j in range(t + 1, n)]))
        dO = der.cotangents[0]
        for label, grads in (("`sympy.diff`", der.gradients["X"]),
                             ("engine backward", der.engine_gradients()["X"])):
            future = [sp.diff(grads[j, a], dO[t, 0]) for t in range(n)
                      for j in range(t + 1, n) for a in range(d)]
            doc.check(r"$\partial O_t / \partial X_j = 0$ for $j > t$, " + label, size,
                      _zero_proof("future does not reach the past", future))
        doc.check("engine backward (composed ops) vs `sympy.diff`", size, der.prove_engine())
        doc.check("the same through the fused op", size, der.prove_engine(
            fn=lambda *a: A.self_attention(*a, causal=True, fused=True)))
    doc.proofs_section()


_IMAGE_TEXT = r"""
## The claim

Self-attention is not about sequences: it needs a *set* of vectors. An image becomes one
by cutting it into patches (Dosovitskiy et al. 2021, "An image is worth 16x16 words"):

1. **patchify**: an image $I \in \mathbb{R}^{H \times W \times C}$ becomes
   $N = (H/p)(W/p)$ rows of $p^2 C$ numbers, patch $(a, b)$ holding
   $I_{ap + u,\ bp + v,\ c}$ at column $(up + v)C + c$;
2. **project**: $Q, K, V = X W_q, X W_k, X W_v$;
3. **attend**: $O = \operatorname{softmax}(QK^\top / \sqrt{d_k})\, V$, every patch
   against every patch, an $N \times N$ attention map;
4. **un-patchify**: $I' = \operatorname{unpatchify}(O W_o)$, back to $H \times W \times C$.

Patchify only moves numbers (a permutation of the entries), so its VJP is its inverse:
$\bar I = \operatorname{unpatchify}(\bar X)$. Its graph, a gradient check three ways and
an attention map over the patches of a synthetic image are in
[docs/study.md](../docs/study.md).
"""


def _image_doc(doc: Any) -> None:
    from .derive import _sizes
    from ..verify.symbolic import derive, equivalent

    doc.add(_IMAGE_TEXT)
    H, W, C, p = 4, 4, 2, 2
    img = _sym("I", (H, W, C))
    X = patchify(Tensor(img), p).data
    by_formula = np.empty(X.shape, dtype=object)
    for a, b, u, v, c in np.ndindex(H // p, W // p, p, p, C):
        by_formula[a * (W // p) + b, (u * p + v) * C + c] = img[a * p + u, b * p + v, c]
    size = _sizes(H=H, W=W, C=C, p=p)
    doc.check(r"patchify: $X_{(a,b),\,(up+v)C+c} = I_{ap+u,\,bp+v,\,c}$", size,
              equivalent({"X": X}, {"X": by_formula}, subject="patchify"))
    doc.check(r"$\operatorname{unpatchify}(\operatorname{patchify}(I)) = I$", size,
              equivalent({"I": unpatchify(Tensor(X), (H, W, C), p).data}, {"I": img},
                         subject="unpatchify inverts patchify"))
    der = derive(lambda I: patchify(I, p), {"I": (H, W, C)}, output_names=["X"])
    doc.check(r"VJP of patchify: $\bar I = \operatorname{unpatchify}(\bar X)$ vs "
              r"`sympy.diff`", size,
              der.prove({"I": unpatchify(Tensor(der.cotangents[0]), (H, W, C), p).data}))
    for (H, W, C, p, dk) in ((2, 4, 1, 2, 1), (4, 2, 1, 2, 1)):
        P = p * p * C
        size = _sizes(H=H, W=W, C=C, p=p, d_k=dk, d_v=1)
        der = derive(lambda I, W_q, W_k, W_v, W_o: image_self_attention(
            I, p, W_q, W_k, W_v, W_o), {"I": (H, W, C), "W_q": (P, dk), "W_k": (P, dk),
                                        "W_v": (P, 1), "W_o": (1, P)},
            output_names=["Y", "P"])
        doc.check("image self-attention: engine backward (composed ops) vs `sympy.diff`",
                  size, der.prove_engine())
        doc.check("the same through the fused op", size, der.prove_engine(
            fn=lambda *a: image_self_attention(a[0], p, *a[1:], fused=True)))
    doc.proofs_section()


_COST_TEXT = r"""
## The claim

Self-attention compares every element with every other: over $n$ tokens it forms the
$n \times n$ scores $QK^\top$ and weights $P$, so its time and memory grow as $n^2$, where
a convolution or an RNN grows as $n$ (Vaswani et al. 2017, Table 1).

## Counted on the recorded graph

`tinygrad_attn.claims.recorded_cost(n, d)` runs self-attention (the composed ops, as
drawn in the figures) on $n$ tokens of size $d = d_k = d_v$ and counts on the graph the
engine records: the multiply-adds of its matrix products (an $(a \times b)(b \times c)$
product costs $abc$) and the floats its ops' outputs hold. The three projections cost
$3 n d d_k$, $QK^\top$ costs $n^2 d_k$ and $PV$ costs $n^2 d_v$:

$$\text{multiply-adds} = 3\,n\,d\,d_k + 2\,n^2 d_k \quad (d_v = d_k).$$

The floats held are a polynomial in $n$ that SymPy interpolates from $n = 1, 2, 3$ and that
is then checked at $n = 1, \dots, 10$ (below): its $n^2$ term counts the $n \times n$
arrays the graph keeps (scores, scaled scores, weights), the memory that the blocked
kernels of `tinygrad_attn.flash` avoid.
"""


def _cost_doc(doc: Any) -> None:
    from .derive import _sizes
    from ..verify.symbolic import equivalent

    doc.add(_COST_TEXT)
    n = sp.Symbol("n", positive=True)
    ns = list(range(1, 11))
    polys = []
    for d in (2, 4):
        counted = [recorded_cost(k, d) for k in ns]
        size = _sizes(d=d) + r", $n = 1, \dots, 10$"
        claimed = [3 * k * d * d + 2 * k * k * d for k in ns]
        doc.check(r"multiply-adds $= 3 n d d_k + 2 n^2 d_k$", size,
                  equivalent({"madds": np.array([c["multiply_adds"] for c in counted])},
                             {"madds": np.array(claimed)}, subject="multiply-adds"))
        floats = sp.expand(sp.interpolate([(k, c["floats"]) for k, c in
                                           zip(ns[:3], counted[:3])], n))
        polys.append((d, floats))
        doc.check(f"floats held $= {sp.latex(floats)}$", size,
                  equivalent({"floats": np.array([c["floats"] for c in counted])},
                             {"floats": np.array([floats.subs(n, k) for k in ns])},
                             subject="floats held"))
        doc.check(r"weights: $n^2$ pairs", size,
                  equivalent({"pairs": np.array([c["pairs"] for c in counted])},
                             {"pairs": np.array([k * k for k in ns])}, subject="pairs"))
    doc.add("The floats held, interpolated: " + ", ".join(
        f"${sp.latex(f)}$ for $d = {d}$" for d, f in polys) + r"""; the coefficient of
$n^2$ does not depend on $d$ (three $n \times n$ arrays), the $n$ term does.

## Measured

Time and peak memory measured against $n$ (the fused and the blocked kernels, with the
fitted exponents) are in [docs/complexity.md](../docs/complexity.md); a smaller
measurement of the composed ops is in [docs/study.md](../docs/study.md).
""")
    doc.proofs_section()


#: The claim derivations, registered in :mod:`tinygrad_attn.derive`: name -> (title, builder).
DERIVATIONS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "claim_expectation": ("The context vector is an expectation", _expectation_doc),
    "claim_convolution": ("Self-attention is a convolution whose kernel is computed from "
                          "the data", _convolution_doc),
    "claim_cross_as_self": ("Encoder-decoder attention is masked self-attention",
                            _cross_doc),
    "claim_causal": ("Causal masking: the future cannot reach the past", _causal_claim_doc),
    "claim_image": ("Self-attention over the patches of an image", _image_doc),
    "claim_cost": ("Self-attention costs n^2", _cost_doc),
}


# ============================================================================ pictures
# Each picture function draws one figure of docs/study.md into a file and returns the
# numbers it shows (so the docs quote what was drawn).  matplotlib (Agg) for plots,
# Graphviz (ta.render) for the graph of image attention.

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return path


def _example_sequence(n: int = 12, d: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, d)), "x2": rng.normal(size=(n, d)),
            "W_q": rng.normal(size=(d, d)), "W_k": rng.normal(size=(d, d)),
            "W_v": np.eye(d), "kernel": np.array([0.25, 0.5, 0.25])}


def picture_expectation(path: Path) -> dict[str, Any]:
    """Monte-Carlo error of the context against N (log-log), with the fitted slope and the
    theory $\\sqrt{\\operatorname{tr}\\operatorname{Cov}/N}$."""
    rng = np.random.default_rng(0)
    scores, values = rng.normal(size=8) * 1.5, rng.normal(size=(8, 3))
    _, p = A.attend(scores, values)
    p = p.data
    Ns = [2 ** k for k in range(13)]
    err = monte_carlo_error(p, values, Ns, trials=400, seed=1)
    c = p @ values
    theory = math.sqrt(float(np.sum(p[:, None] * (values - c) ** 2))) / np.sqrt(Ns)
    slope = log_log_slope(Ns, err)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.loglog(Ns, err, "o", label=f"measured RMS error (400 trials), slope {slope:.3f}")
    ax.loglog(Ns, theory, "-", color="grey",
              label=r"theory $\sqrt{\mathrm{tr\,Cov}(v_J)/N}$ (slope $-1/2$)")
    ax.set_xlabel("samples N")
    ax.set_ylabel(r"$\sqrt{E\,\|\hat c_N - c\|^2}$")
    ax.set_title(r"Monte-Carlo context $\hat c_N = \frac{1}{N}\sum v_{J_k}$, $J_k \sim p$")
    ax.legend(fontsize=8)
    _save(fig, path)
    return {"slope": slope, "sample_sizes": Ns, "error": err.tolist(),
            "theory": theory.tolist()}


def picture_convolution(path: Path) -> dict[str, Any]:
    """The weight matrices of a convolution and of self-attention for two inputs."""
    ex = _example_sequence()
    n = ex["x"].shape[0]

    def sa(x: np.ndarray) -> np.ndarray:
        return A.self_attention(x, ex["W_q"], ex["W_k"], ex["W_v"])[1].data

    def conv(x: np.ndarray) -> np.ndarray:
        return conv1d_as_attention(x, ex["kernel"])[1].data[:, 1:n + 1]  # drop padding

    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(7, 6.6))
    for row, key in enumerate(("x", "x2")):
        for col, (title, fn) in enumerate((("convolution, kernel (1/4, 1/2, 1/4)", conv),
                                           ("self-attention", sa))):
            ax = axes[row, col]
            im = ax.imshow(fn(ex[key]), cmap="Greys", vmin=0, vmax=1)
            ax.set_title(f"{title}\ninput {'A' if row == 0 else 'B'}", fontsize=9)
            ax.set_xlabel("key j")
            ax.set_ylabel("query i")
    fig.colorbar(im, ax=axes, shrink=0.6, label="weight $W_{ij}$")
    _save(fig, path)
    return {"conv_change": weights_change(conv, ex["x"], ex["x2"]),
            "attention_change": weights_change(sa, ex["x"], ex["x2"]),
            "conv_field": int(receptive_field(lambda t: conv1d(t, ex["kernel"]),
                                              ex["x"], n // 2).sum()),
            "attention_field": int(receptive_field(
                lambda t: A.self_attention(t, ex["W_q"], ex["W_k"], ex["W_v"])[0],
                ex["x"], n // 2).sum()), "n": n}


def picture_cross(path: Path) -> dict[str, Any]:
    """The mask over the concatenation, and the cross-attention weights two ways."""
    rng = np.random.default_rng(0)
    m, n = 4, 6
    x_dec, x_enc = rng.normal(size=(m, 3)), rng.normal(size=(n, 5))
    W_q, W_k, W_v = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    c1, w1 = A.cross_attention(x_dec, x_enc, W_q, W_k, W_v)
    c2, w2 = cross_as_masked_self(x_dec, x_enc, W_q, W_k, W_v)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    axes[0].imshow(cross_mask(m, n), cmap="Greys", vmin=0, vmax=1)
    axes[0].set_title("mask over [encoder; decoder]\n(black = may attend)", fontsize=9)
    axes[0].axhline(n - 0.5, color="tab:red")
    axes[0].axvline(n - 0.5, color="tab:red")
    for ax, w, title in ((axes[1], w1.data, "cross_attention(x_dec, x_enc)"),
                         (axes[2], w2.data, "decoder rows of masked self-attention")):
        ax.imshow(w, cmap="Greys", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("encoder position j")
        ax.set_ylabel("decoder position i")
    _save(fig, path)
    return {"max_context_difference": float(np.max(np.abs(c1.data - c2.data))),
            "max_weights_difference": float(np.max(np.abs(w1.data - w2.data)))}


def picture_causal(path: Path) -> dict[str, Any]:
    """Causal weights, and |d y_t / d x_j| for t = n/2: masked first vs masked after."""
    ex = _example_sequence(n=10)
    n, t = ex["x"].shape[0], 4
    causal = lambda x: A.self_attention(x, ex["W_q"], ex["W_k"], ex["W_v"],  # noqa: E731
                                        causal=True)
    after = lambda x: mask_after_softmax(x, ex["W_q"], ex["W_k"], ex["W_v"])  # noqa: E731
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.6))
    axes[0].imshow(causal(ex["x"])[1].data, cmap="Greys", vmin=0, vmax=1)
    axes[0].set_title("causal weights (exactly 0 above the diagonal)", fontsize=9)
    axes[0].set_xlabel("key j")
    axes[0].set_ylabel("query i")
    out = {}
    for label, fn, marker in (("mask on the scores (correct)", causal, "o"),
                              ("mask after the softmax (leaks)", after, "x")):
        g = np.abs(future_gradient(fn, ex["x"], t)).sum(axis=1)
        out[label] = {"future_gradient": float(g[t + 1:].max()),
                      "future_change": future_change(fn, ex["x"], t)}
        axes[1].semilogy(range(n), np.where(g > 0, g, 1e-18), marker, label=label)
    axes[1].axvline(t + 0.5, color="grey", ls=":")
    axes[1].set_ylim(1e-19, None)
    axes[1].set_xlabel("input position j")
    axes[1].set_ylabel(rf"$\sum |\partial y_{{{t}}} / \partial x_j|$ (0 drawn at 1e-18)")
    axes[1].set_title(f"what output t = {t} depends on", fontsize=9)
    axes[1].legend(fontsize=8)
    _save(fig, path)
    return out


def image_example(size: int = 24, p: int = 4) -> dict[str, Any]:
    """The image example of docs/study.md: the synthetic image and identity projections
    (patches are compared by their dot product, $s_{ij} = x_i \\cdot x_j / \\sqrt{p^2}$)."""
    img = synthetic_image(size, p)
    P = p * p
    return {"image": img, "p": p, "W_q": np.eye(P), "W_k": np.eye(P), "W_v": np.eye(P),
            "W_o": np.eye(P), "query": (1 * (size // p) + 1)}     # patch (1, 1): square A


def picture_image(path: Path) -> dict[str, Any]:
    """The synthetic image, the attention map of one patch over all patches, the output."""
    ex = image_example()
    img, p = ex["image"], ex["p"]
    out, w = image_self_attention(img, p, ex["W_q"], ex["W_k"], ex["W_v"], ex["W_o"])
    g = img.shape[0] // p
    q = ex["query"]
    amap = w.data[q].reshape(g, g)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    axes[0].imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=1)
    a, b = divmod(q, g)
    axes[0].add_patch(_plt().Rectangle((b * p - 0.5, a * p - 0.5), p, p, fill=False,
                                       ec="tab:red", lw=2))
    axes[0].set_title(f"image {img.shape[0]}x{img.shape[1]}, {g * g} patches of {p}x{p}\n"
                      f"query patch ({a}, {b}) in red", fontsize=9)
    im = axes[1].imshow(amap, cmap="magma")
    axes[1].set_title(f"weights of patch ({a}, {b})\nover the {g * g} patches", fontsize=9)
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    axes[2].imshow(out.data[:, :, 0], cmap="gray")
    axes[2].set_title("output: each patch a weighted average", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)
    order = np.argsort(-w.data[q])
    return {"query": (a, b), "top": [(divmod(int(j), g), float(w.data[q, j]))
                                     for j in order[:10]],
            "background": float(np.median(w.data[q]))}


def picture_image_graph(path: Path) -> dict[str, Any]:
    """The recorded forward graph of image self-attention, kept tiny so every label fits:
    a 4x4 image in four 2x2 patches."""
    from ..pictures.graph import render

    rng = np.random.default_rng(0)
    img = Tensor(rng.random((4, 4, 1)), requires_grad=True, name="image")
    W = [Tensor(rng.normal(size=s), requires_grad=True, name=nm)
         for nm, s in (("W_q", (4, 2)), ("W_k", (4, 2)), ("W_v", (4, 2)), ("W_o", (2, 4)))]
    for t in W:
        t.role = "parameter"
    out, _ = image_self_attention(img, 2, *W)
    render(out, path, title="self-attention over image patches (4x4 image, p = 2)")
    return {}


def picture_cost(path: Path) -> dict[str, Any]:
    """Counted cost of self-attention against n (log-log): multiply-adds, floats held."""
    ns = [2 ** k for k in range(2, 11)]
    counts = [recorded_cost(n, 16) for n in ns]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for key, label in (("multiply_adds", "multiply-adds"), ("floats", "floats held"),
                       ("pairs", "weights (pairs)")):
        ys = [c[key] for c in counts]
        ax.loglog(ns, ys, "o-", label=f"{label}, slope {log_log_slope(ns[-4:], ys[-4:]):.2f}")
    ax.loglog(ns, [n * n for n in ns], ":", color="grey", label=r"$n^2$")
    ax.set_xlabel("tokens n")
    ax.set_title("self-attention, d = d_k = 16: counted on the recorded graph", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)
    return {"n": ns, "counts": counts}


#: The pictures of docs/study.md: file name -> function(path) -> the numbers drawn.
PICTURES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "claims_expectation.png": picture_expectation,
    "claims_convolution.png": picture_convolution,
    "claims_cross.png": picture_cross,
    "claims_causal.png": picture_causal,
    "claims_image.png": picture_image,
    "claims_image_graph.svg": picture_image_graph,
    "claims_cost.png": picture_cost,
}


def write_pictures(folder: str | Path, names: Sequence[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Draw the pictures (all, or ``names``) into ``folder``; returns file -> numbers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unknown = set(names or ()) - set(PICTURES)
    if unknown:
        raise ValueError(f"write_pictures: unknown pictures {sorted(unknown)}; choose from "
                         f"{', '.join(PICTURES)}")
    return {name: PICTURES[name](folder / name) for name in (names or PICTURES)}
