r"""Claim: self-attention and a convolution both mix positions as $y = W x$, with different
$W$.  A 1-D convolution is `attend` with fixed Toeplitz weights (proven as outputs,
gradients and receptive field); self-attention's weights depend on the input; and the
table of cost, sequential operations and path length against a recurrence, measured on
recorded graphs (:mod:`tinygrad_attn.study.paths`).

``python -m tinygrad_attn.study.derivations.claim_convolution --out derivations``
rebuilds ``derivations/claim_convolution.md``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ...engine import Tensor
from ...verify.symbolic import derive, equivalent
from ..claims import conv1d, conv1d_as_attention, toeplitz
from ..paths import layer_table
from .algebra import softmax_list, symbol_array, zero_proof
from .document import Document, sizes

TITLE = "Self-attention, convolution and recurrence: how each mixes positions"

TEXT = r"""
## The claim

A slogan says "self-attention is a convolution whose kernel is computed from the data".
Taken literally it contradicts the definition below (a convolution's weights depend on
$i - j$ only). What holds:

- both compute each output as a weighted sum of the inputs, $y_i = \sum_j W_{ij}\, x_j$;
- a **convolution**'s $W$ is *fixed* (the same for every input), *banded* (zero for
  $|i - j| > r$) and *shift-equivariant* ($W_{ij}$ depends on $i - j$ only: a Toeplitz
  matrix);
- **self-attention**'s $W = \operatorname{softmax}_\text{rows}(X W_q (X W_k)^\top /
  \sqrt{d_k})$ is *data-dependent*, *dense* (nonzero for every pair), *row-stochastic*
  (non-negative rows summing to 1) and, without position information,
  *permutation-equivariant*: permuting the input positions permutes the outputs the same
  way, so the order of the positions is invisible to it;
- with relative position encodings and enough heads, multi-head self-attention *can*
  express a convolution (Cordonnier, Loukas and Jaggi 2020, shown there for 2-D images:
  $N_h$ heads express a $\sqrt{N_h} \times \sqrt{N_h}$ kernel; not verified here).

**A 1-D convolution** with kernel $k_0, \dots, k_{2r}$ and zero padding,
$y_i = \sum_{a=0}^{2r} k_a\, x_{i+r-a}$ (as `np.convolve(x, k, "same")`), has

$$W_{ij} = k_{i - j + r}\ \text{ for } |i - j| \le r, \qquad W_{ij} = 0 \text{ otherwise:}$$

constant along its diagonals, never a function of the content of $x$; row $i$ reaches
only $x_{i-r}, \dots, x_{i+r}$: the receptive field is the kernel.

**Self-attention** has $W_{ij} = \operatorname{softmax}_j\bigl(x_i W_q W_k^\top x_j^\top
/ \sqrt{d_k}\bigr)$: computed from the data, different for every input, nonzero for
every pair: the receptive field is the whole input in one layer.

## A convolution *is* `attend` with fixed scores

`tinygrad_attn.study.claims.conv1d_as_attention` makes the keys and values the $n + 2r$
positions of the zero-padded input and gives query $i$ the score $\log k_{i + 2r - l}$ on
keys $l = i, \dots, i + 2r$ (masked elsewhere). Every row then holds the whole kernel, so
the softmax returns $k / \sum_m k_m$ on the band, and

$$\operatorname{conv1d}(x, k) = \Bigl(\sum_m k_m\Bigr)\,
  \operatorname{attend}(\log k \text{ on the band},\ x_{\text{pad}})$$

for every positive kernel: no query, no key, no content. `conv1d` itself is written as a
sum of shifted copies of the padded input (no matrix), so the proofs below compare three
independent computations: shifted sums, the Toeplitz product, and `attend`. The input
$x \in \mathbb{R}^{n \times d}$ has $d$ channels, each convolved with the same kernel.

## Gradients

The gradient of a convolution is a correlation: with $\bar y$ the upstream gradient,

$$\bar x = W^\top \bar y, \qquad \bar k_a = \sum_i \bar y_i\, x_{i + r - a} .$$

The weights of the convolution do not depend on $x$: $\partial W / \partial x = 0$
exactly, and $\partial y_i / \partial x_j = 0$ for $|i - j| > r$.
"""

DATA_DEPENDENT = r"""
## Self-attention's weights depend on the data

The smallest case, $n = 2$, $d = 1$, $W_q = W_k = 1$ (scores $x_i x_j$, unscaled): the
weight of position 1 for query 0 is

$$\alpha_{01} = {weight}, \qquad
  \frac{\partial \alpha_{01}}{\partial x_1} = {derivative} \not\equiv 0 ,$$

a function of the content $x$, where the convolution's $W_{01} = k_{r-1}$ is a constant.
The tests (`tests/test_claims.py`) check both numerically: changing the input changes
self-attention's weights and leaves the convolution's exactly equal, and every output of
self-attention has a nonzero gradient with respect to every input.
"""

RATHER_THAN_RNN = r"""
## Rather than a recurrence: cost, sequential operations, path length

Vaswani et al. 2017 (sec. 4, Table 1) compare the three ways of mixing positions by the
cost of a layer, the operations that must run one after another, and the longest path a
signal travels between two positions. Below, the last two are **measured** on the graphs
the engine records for real layers (`tinygrad_attn.study.paths`): each input position is
its own leaf $x_j$, each output position its own node $y_i$, and a path is counted in
recorded ops, the longest chain from $x_j$ to $y_i$ in the graph
(`tinygrad_attn.engine.toposort` gives the order). *Sequential ops* is the longest
chain from any input to any output (the steps no number of processors can run at once);
*max path length* is the longest chain between a connected pair; for the convolution it
is measured on the $\lceil (n-1)/r \rceil$ stacked layers needed to connect every pair.
*Multiply-adds* counts the recorded matrix products ($d = 4$, width-$3$ kernel with a
$d \times d$ matrix per tap, the recurrence $h_t = \tanh(x_t W + h_{t-1} U)$).

{table}

Self-attention's sequential operations and path length stay constant as $n$ grows, the
recurrence's grow as $n$, the convolution's path grows as $n / r$ (a constant number of
sequential operations per layer, but $n / r$ layers to connect the ends). The price is
the cost: self-attention's multiply-adds grow as $n^2 d$, the others' as $n d^2$
(see [claim_cost.md](claim_cost.md)).
"""


def prove_three_computations(doc: Document, size: str, n: int, d: int) -> None:
    """Shifted sums, `np.convolve` and the Toeplitz product agree on symbols."""
    x, k = symbol_array("x", (n, d)), symbol_array("k", (3,), positive=True)
    y = conv1d(Tensor(x), Tensor(k)).data
    ref = np.stack([np.convolve(x[:, c], k, "same") for c in range(d)], axis=1)
    doc.check("`conv1d` (shifted sums) $=$ `np.convolve(x, k, 'same')` on SymPy "
              "symbols", size, equivalent({"y": y}, {"y": ref}, subject="np.convolve"))
    doc.check(r"`conv1d` $= W x$ with the Toeplitz $W_{ij} = k_{i-j+r}$", size,
              equivalent({"y": y}, {"y": toeplitz(k, n) @ x}, subject="Toeplitz"))


def prove_gradients(doc: Document, size: str, n: int, d: int) -> None:
    """The correlation form of the gradients, `attend`'s equal backward, the fixed weights
    and the receptive field of width $2r + 1$."""
    der = derive(lambda x, kernel: conv1d(x, kernel), {"x": (n, d), "kernel": (3,)},
                 positive=["kernel"], output_names=["y"])
    x, k, g = der.inputs["x"].data, der.inputs["kernel"].data, der.cotangents[0]
    zeros = np.full((1, d), sp.Integer(0), dtype=object)
    x_pad = np.concatenate([zeros, x, zeros])
    k_bar = np.array([np.sum(g * x_pad[2 - m:2 - m + n]) for m in range(3)], dtype=object)
    doc.check(r"$\bar x = W^\top \bar y$, $\bar k_a = \sum_i \bar y_i x_{i+r-a}$ vs "
              r"`sympy.diff`", size, der.prove({"x": toeplitz(k, n).T @ g, "kernel": k_bar}))
    doc.check("`conv1d_as_attention` (`attend`): output and engine backward (x and "
              "kernel) $=$ those of `conv1d` and `sympy.diff`", size,
              der.prove_engine(fn=lambda x, kernel: conv1d_as_attention(x, kernel)[0]))
    w = derive(lambda x, kernel: conv1d_as_attention(x, kernel)[1],
               {"x": (n, d), "kernel": (3,)}, positive=["kernel"], output_names=["W"])
    doc.check(r"the weights of `conv1d_as_attention` do not depend on $x$: "
              r"$\partial W/\partial x = 0$ (`sympy.diff` and engine)", size,
              zero_proof("weights independent of x", list(w.gradients["x"].ravel())
                         + list(w.engine_gradients()["x"].ravel())))
    far = [sp.diff(der.gradients["x"][j, a], g[i, b]) for i in range(n)
           for j in range(n) if abs(i - j) > 1 for a in range(d) for b in range(d)]
    doc.check(r"receptive field: $\partial y_i / \partial x_j = 0$ for $\lvert i - j \rvert > r$",
              size, zero_proof("receptive field of conv1d", far))


def build(doc: Document) -> None:
    """The convolution claim's document."""
    doc.add(TEXT)
    for n, d in ((5, 1), (4, 2)):
        size = sizes(n=n, d=d) + ", kernel $2r + 1 = 3$"
        prove_three_computations(doc, size, n, d)
        prove_gradients(doc, size, n, d)
    x0, x1 = sp.symbols("x_0 x_1", real=True)
    weight = softmax_list([x0 * x0, x0 * x1])[1]
    doc.add(DATA_DEPENDENT.replace("{weight}", sp.latex(weight)).replace(
        "{derivative}", sp.latex(sp.simplify(sp.diff(weight, x1)))))
    doc.add(RATHER_THAN_RNN.replace("{table}", layer_table((4, 8, 16, 32))))
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_convolution"))
