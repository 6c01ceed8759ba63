r"""Softmax and its Jacobian: $J = \operatorname{diag}(p) - pp^\top$ and the VJP
$\bar s = p \odot (\bar p - \langle \bar p, p \rangle)$, proven against ``sympy.diff`` and
the engine's ``Softmax`` backward.

``python -m tinygrad_attn.study.derivations.softmax --out derivations`` rebuilds
``derivations/softmax.md``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ...verify.symbolic import derive, equivalent, symbols
from .algebra import softmax_backward, softmax_rows
from .document import Document, sizes

TITLE = "Softmax and its Jacobian"

MECHANISM = r"""
## The mechanism

Every attention mechanism turns scores $s \in \mathbb{R}^n$ into weights with the softmax

$$p_i = \operatorname{softmax}(s)_i = \frac{e^{s_i}}{\sum_k e^{s_k}} .$$

Numerically the engine subtracts $\max_k s_k$ first (so $e^{s}$ never overflows); that
changes nothing mathematically, and symbolic runs use the plain form above.

## The gradient, step by step

With $Z = \sum_k e^{s_k}$, the quotient rule gives, for every $i, j$,

$$\frac{\partial p_i}{\partial s_j}
  = \frac{\delta_{ij} e^{s_i} Z - e^{s_i} e^{s_j}}{Z^2}
  = p_i \delta_{ij} - p_i p_j ,$$

so the Jacobian is

$$J = \frac{\partial p}{\partial s} = \operatorname{diag}(p) - p p^\top ,$$

symmetric, with rows summing to 0 (adding a constant to every score changes nothing).

## Closed form of the vector-Jacobian product

Backpropagation needs $\bar s = J^\top \bar p$ for an upstream gradient $\bar p$:

$$\bar s = (\operatorname{diag}(p) - p p^\top)\,\bar p
         = p \odot \bigl(\bar p - \langle \bar p, p \rangle \mathbf{1}\bigr) .$$

It costs $O(n)$ instead of the $O(n^2)$ of forming $J$. Row-wise on a matrix of scores
(one softmax per row, as in attention), with $\operatorname{rowsum}(X)_i = \sum_j X_{ij}$:

$$\bar S = P \odot \bigl(\bar P - \operatorname{rowsum}(\bar P \odot P)\bigr) .$$

This is the `backward` of `Softmax` in `tinygrad_attn/engine/ops.py`.
"""

EXAMPLE = r"""
For $n = 2$, SymPy's entrywise derivative of $L = \bar p_0 p_0 + \bar p_1 p_1$ is

$$\frac{\partial L}{\partial s_0} = {latex}$$

which the closed form writes as $p_0\,(\bar p_0 - \bar p_0 p_0 - \bar p_1 p_1)$.
"""

EVERY_SIZE = """
## For every size

The softmax Jacobian is proven for symbolic $n$ as part of scaled dot-product attention:
see the section "For every size" of [scaled_dot_product.md](scaled_dot_product.md)
(claim `softmax_jacobian`).
"""


def prove_jacobian(doc: Document) -> None:
    """$J = \\operatorname{diag}(p) - pp^\\top$ entry by entry, at $n = 2, 3$."""
    for n in (2, 3):
        s = symbols("s", (n,)).data
        p = softmax_rows(s)
        jac = np.array([[sp.diff(p[i], s[j]) for j in range(n)] for i in range(n)],
                       dtype=object)
        closed = np.diag(p) - np.outer(p, p)
        doc.check(r"$J = \operatorname{diag}(p) - pp^\top$ (entrywise $\partial p_i / "
                  r"\partial s_j$)", sizes(n=n),
                  equivalent({"J": closed}, {"J": jac}, subject="softmax Jacobian"))


def prove_vjp(doc: Document) -> None:
    """The closed-form VJP and the engine's backward, on a vector and on rows."""
    for shape in ((3,), (2, 3)):
        der = derive(lambda s: s.softmax(-1), {"s": shape}, output_names=["p"])
        p, g = der.outputs[0], der.cotangents[0]
        size = sizes(n=shape[-1]) + (f", {shape[0]} rows" if len(shape) > 1 else "")
        doc.check(r"$\bar s = p \odot (\bar p - \langle \bar p, p\rangle)$ vs `sympy.diff`",
                  size, der.prove({"s": softmax_backward(p, g)}))
        doc.check("engine `Softmax` backward vs `sympy.diff`", size, der.prove_engine())


def build(doc: Document) -> None:
    """The softmax document."""
    doc.add(MECHANISM)
    prove_jacobian(doc)
    prove_vjp(doc)
    example = derive(lambda s: s.softmax(-1), {"s": (2,)}, output_names=["p"])
    doc.add(EXAMPLE.replace("{latex}", example.latex("s", (0,))))
    doc.proofs_section()
    doc.add(EVERY_SIZE)


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("softmax"))
