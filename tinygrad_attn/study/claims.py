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
                       :func:`synthetic_image`, :func:`image_example`
6. cost                :func:`recorded_cost`, :func:`matmul_multiply_adds`,
                       :func:`measure_cost`
=====================  =============================================================

Every function runs on the engine (numeric or symbolic Tensors), so each claim is
proven with SymPy in its derivation document (``derivations/claim_*.md``, written by
:mod:`tinygrad_attn.study.derivations`) and tested numerically in
``tests/test_claims.py``; :mod:`tinygrad_attn.study.claim_pictures` draws them.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp

from .. import attention as A
from ..engine import Tensor, concat, grad, scope, toposort

__all__ = [
    "expectation", "monte_carlo_context", "monte_carlo_error", "log_log_slope",
    "conv1d", "toeplitz", "conv_scores", "conv1d_as_attention", "weights_change",
    "receptive_field", "cross_mask", "block_projections", "cross_as_masked_self",
    "future_change", "future_gradient", "mask_after_softmax", "patchify", "unpatchify",
    "image_self_attention", "synthetic_image", "image_example", "recorded_cost",
    "matmul_multiply_adds", "measure_cost",
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
    never enters.  ``p`` (n,) expressions or numbers, ``values`` (n, d_v); returns (d_v,).
    """
    from sympy import stats

    p = list(np.ravel(np.asarray(p, dtype=object)))
    values = np.asarray(values, dtype=object)
    if values.ndim != 2 or values.shape[0] != len(p):
        raise ValueError(f"expectation: values must have shape (n, d_v) with n = {len(p)} "
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
        raise ValueError(f"monte_carlo: values must have shape (n, d_v) with n = "
                         f"{p.shape[0]}, got {v.shape}")
    return p / p.sum(), v


def monte_carlo_context(weights: Any, values: Any, samples: int,
                        rng: np.random.Generator | int | None = None,
                        trials: int | None = None) -> np.ndarray:
    r"""The Monte-Carlo estimate $\hat c_N = \frac1N \sum_{k=1}^N v_{J_k}$, $J_k \sim p$ i.i.d.

    weights (n,) (one row of attention weights), values (n, d_v); returns (d_v,), or
    (trials, d_v) for ``trials`` independent estimates.
    """
    p, v = _distribution(weights, values)
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"monte_carlo_context: samples must be a positive int, got "
                         f"{samples!r}")
    rng = np.random.default_rng(rng)
    idx = rng.choice(len(p), size=(trials or 1, int(samples)), p=p)   # (trials, N)
    est = v[idx].mean(axis=1)                                        # (trials, d_v)
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
        est = sampler(p, v, int(N), rng, trials)                       # (trials, d_v)
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

    x (n,) or (n, d) (the same kernel on each of the d channels); kernel (2r + 1,).
    Written as a sum of shifted copies of the padded input, with the engine's ops: no
    weight matrix.
    """
    x, kernel = _tensor(x, "x"), _odd_kernel("conv1d", kernel)
    if x.ndim not in (1, 2):
        raise ValueError(f"conv1d: x must have shape (n,) or (n, d), got {x.shape}")
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
        raise ValueError(f"conv1d_as_attention: x must have shape (n,) or (n, d), got "
                         f"{x.shape}")
    n, r = x.shape[0], kernel.shape[0] // 2
    values = x if x.ndim == 2 else x.reshape(n, 1)
    pad = _zeros((r, values.shape[1]), values)
    values = concat([pad, values, pad], axis=0)                # (n + 2r, d)
    scores, band = conv_scores(kernel, n)
    context, weights = A.attend(scores, values, band)         # (n, d), (n, n + 2r)
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


def image_example(size: int = 24, p: int = 4) -> dict[str, Any]:
    """The image example of docs/study.md: the synthetic image and identity projections
    (patches are compared by their dot product, $s_{ij} = x_i \\cdot x_j / \\sqrt{p^2}$),
    and the query patch (1, 1), inside square A."""
    img = synthetic_image(size, p)
    width = p * p
    return {"image": img, "p": p, "W_q": np.eye(width), "W_k": np.eye(width),
            "W_v": np.eye(width), "W_o": np.eye(width), "query": 1 * (size // p) + 1}


# ============================================================================ 6. cost

def matmul_multiply_adds(output: Tensor) -> int:
    r"""Multiply-adds of every matrix product recorded in the graph of ``output``:
    an (..., a, b) @ (..., b, c) product costs $a\,b\,c$ per batch element."""
    total = 0
    for node in toposort([output], constants=True):
        ctx = node._ctx
        if ctx is not None and ctx.name == "matmul":
            a, b = (t.shape for t in ctx.parents)
            total += int(np.prod(node.shape)) * (a[-1] if len(a) else 1)
    return total


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
    nodes = [t for t in toposort([context], constants=True) if t._ctx is not None]
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
