r"""Convolution, recurrence and self-attention as layers the engine records, and what
their graphs say: the multiply-adds, the sequential operations and the longest path
from an input position to an output position (Vaswani et al. 2017, Table 1).

Each layer takes the $n$ input positions as $n$ separate leaves ($x_0, \dots, x_{n-1}$,
each of width $d$) and returns the $n$ output positions as $n$ separate nodes, so the
recorded graph (:func:`tinygrad_attn.engine.toposort`) has one node per position at
both ends. Path lengths are counted in recorded ops:

* :func:`sequential_operations` -- the longest chain of ops from any input to any
  output: the steps that must run one after another however many processors there are;
* :func:`path_lengths` -- for every pair (input $j$, output $i$) the longest chain of ops
  from $x_j$ to $y_i$ (``-1`` where $x_j$ cannot reach $y_i$); its maximum over the pairs
  is the maximum path length, how far a signal travels between two positions.

:func:`layer_table` measures the three layers at several $n$; ``derivations/
claim_convolution.md`` prints it.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .. import attention as A
from ..engine import Tensor, concat, stack, toposort
from .claims import matmul_multiply_adds

__all__ = ["positions", "recurrent_layer", "convolution_layer", "convolution_stack",
           "attention_layer", "path_lengths", "sequential_operations", "measure_layer",
           "layer_table", "LAYERS"]

Layer = Callable[[list[Tensor], np.random.Generator], list[Tensor]]


def positions(n: int, d: int, seed: int = 0) -> list[Tensor]:
    """``n`` input positions ``x_0 ... x_{n-1}``, each a leaf of shape (d,)."""
    rng = np.random.default_rng(seed)
    return [Tensor(rng.normal(size=(d,)), requires_grad=True, name=f"x_{j}")
            for j in range(n)]


def _weight(rng: np.random.Generator, *shape: int) -> Tensor:
    return Tensor(rng.normal(size=shape) / math.sqrt(shape[-2]), requires_grad=True)


def recurrent_layer(xs: list[Tensor], rng: np.random.Generator) -> list[Tensor]:
    r"""An Elman RNN, $h_t = \tanh(x_t W + h_{t-1} U)$ with $h_{-1} = 0$: output $t$ waits
    for output $t - 1$."""
    d = xs[0].shape[0]
    W, U = _weight(rng, d, d), _weight(rng, d, d)
    h, out = None, []
    for x in xs:
        pre = x.reshape(1, d) @ W
        h = (pre if h is None else pre + h @ U).tanh()
        out.append(h.reshape(d))
    return out


def convolution_layer(xs: list[Tensor], rng: np.random.Generator, k: int = 3
                      ) -> list[Tensor]:
    r"""A 1-D convolution of odd width $k = 2r + 1$ with zero padding and a $d \times d$
    matrix per tap, $y_i = \sum_{m=0}^{k-1} x_{i+r-m} W_m$."""
    n, d, r = len(xs), xs[0].shape[0], k // 2
    x = stack(xs)                                             # (n, d)
    pad = Tensor(np.zeros((r, d)))
    xp = concat([pad, x, pad], axis=0)                        # (n + 2r, d)
    y = None
    for m in range(k):
        term = xp[2 * r - m:2 * r - m + n] @ _weight(rng, d, d)
        y = term if y is None else y + term
    return [y[i] for i in range(n)]


def convolution_stack(xs: list[Tensor], rng: np.random.Generator, k: int = 3
                      ) -> list[Tensor]:
    r"""The fewest width-$k$ convolution layers that connect every input to every
    output: $\lceil (n - 1) / r \rceil$ of them, each widening the receptive field by $r$."""
    layers = max(1, math.ceil((len(xs) - 1) / (k // 2)))
    for _ in range(layers):
        xs = convolution_layer(xs, rng, k)
    return xs


def attention_layer(xs: list[Tensor], rng: np.random.Generator) -> list[Tensor]:
    r"""Self-attention, $\operatorname{softmax}(X W_q (X W_k)^\top / \sqrt{d}) X W_v$
    (composed ops)."""
    d = xs[0].shape[0]
    W_q, W_k, W_v = (_weight(rng, d, d) for _ in range(3))
    y, _ = A.self_attention(stack(xs), W_q, W_k, W_v, fused=False)
    return [y[i] for i in range(len(xs))]


def _longest_from(outputs: Sequence[Tensor], sources: Sequence[Tensor]) -> dict[int, np.ndarray]:
    """For every recorded node, the longest chain of ops from each source (-1: none)."""
    index = {id(s): j for j, s in enumerate(sources)}
    dist: dict[int, np.ndarray] = {}
    for node in toposort(list(outputs), constants=True):
        here = np.full(len(sources), -1)
        if id(node) in index:
            here[index[id(node)]] = 0
        if node._ctx is not None:
            for p in node._ctx.parents:
                if p is not None and id(p) in dist:
                    reach = dist[id(p)] >= 0
                    here[reach] = np.maximum(here[reach], dist[id(p)][reach] + 1)
        dist[id(node)] = here
    return dist


def path_lengths(outputs: Sequence[Tensor], inputs: Sequence[Tensor]) -> np.ndarray:
    """(n_out, n_in): the longest chain of recorded ops from input ``j`` to output ``i``,
    -1 where input ``j`` does not reach output ``i``."""
    dist = _longest_from(outputs, inputs)
    return np.stack([dist[id(y)] for y in outputs])


def sequential_operations(outputs: Sequence[Tensor], inputs: Sequence[Tensor]) -> int:
    """The longest chain of recorded ops from any input to any output."""
    return int(path_lengths(outputs, inputs).max())


#: The three layers of Vaswani et al. 2017, Table 1, and the paper's per-layer cost.
LAYERS: dict[str, tuple[Layer, str]] = {
    "convolution (k = 3)": (convolution_layer, "O(k n d^2)"),
    "recurrence": (recurrent_layer, "O(n d^2)"),
    "self-attention": (attention_layer, "O(n^2 d)"),
}


def measure_layer(layer: Layer, n: int, d: int, seed: int = 0) -> dict[str, int]:
    """Record ``layer`` on n positions of width d: multiply-adds of its matrix products,
    sequential operations, and the maximum path length over the pairs of positions
    connected (a recurrence connects input j to outputs i >= j; for a convolution it is
    measured on the stack that connects them all, :func:`convolution_stack`)."""
    xs = positions(n, d, seed)
    ys = layer(xs, np.random.default_rng(seed))
    out = stack(ys)
    connect = convolution_stack if layer is convolution_layer else layer
    xs2 = positions(n, d, seed)
    far = path_lengths(connect(xs2, np.random.default_rng(seed)), xs2)  # -1: unreached
    return {"multiply_adds": matmul_multiply_adds(out),
            "sequential": sequential_operations(ys, xs), "max_path": int(far.max())}


def layer_table(ns: Sequence[int] = (4, 8, 16), d: int = 4) -> str:
    """Markdown table: for each layer its cost (the paper's order and the multiply-adds
    recorded), its sequential operations and maximum path length, per n."""
    head = " | ".join(f"n = {n}" for n in ns)
    rows = [f"| layer | cost per layer | measured | {head} |",
            "|---|---|---|" + "---|" * len(ns)]
    for name, (layer, order) in LAYERS.items():
        m = [measure_layer(layer, n, d) for n in ns]
        for key, label in (("multiply_adds", "multiply-adds"),
                           ("sequential", "sequential ops"), ("max_path", "max path length")):
            first = f"{name} | ${order}$" if key == "multiply_adds" else " | "
            rows.append(f"| {first} | {label} | " + " | ".join(str(r[key]) for r in m) + " |")
    return "\n".join(rows)
