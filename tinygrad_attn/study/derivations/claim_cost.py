r"""Claim: self-attention costs $n^2$: $n^2$ weights, $3 n d d_k + 2 n^2 d_k$
multiply-adds and an $n^2$ term in the floats held, counted exactly on the graph the
engine records.

``python -m tinygrad_attn.study.derivations.claim_cost --out derivations`` rebuilds
``derivations/claim_cost.md``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ...verify.symbolic import equivalent
from ..claims import recorded_cost
from .document import Document, sizes

TITLE = "Self-attention costs n^2"

TEXT = r"""
## The claim

Self-attention compares every element with every other: over $n$ tokens it forms the
$n \times n$ scores $QK^\top$ and weights $P$ ($m = n$), so its time and memory grow as
$n^2$, where a convolution or an RNN grows as $n$.

That is half the comparison. Per layer, Vaswani et al. 2017 (sec. 4, Table 1) count
$O(n^2 d)$ operations for self-attention against $O(n d^2)$ for a recurrence (and
$O(k n d^2)$ for a convolution of width $k$): the RNN multiplies each of its $n$ states by
a $d \times d$ matrix. So the $n^2$ term **dominates only when $n > d$**: for sentences
shorter than the model width ($n < d$, the common case in machine translation, the
paper notes) self-attention is *cheaper* than a recurrence, and it runs its $n$
positions in parallel where the recurrence takes $n$ sequential steps
([claim_convolution.md](claim_convolution.md) measures both). Counted below: the
projections cost $3 n d d_k$, the two $n \times n$ products $2 n^2 d_k$, so with
$d_k = d$ the quadratic part $2 n^2 d$ overtakes the projections' $3 n d^2$ at
$n = 3d/2$.

## Counted on the recorded graph

`tinygrad_attn.study.claims.recorded_cost(n, d)` runs self-attention (the composed ops, as
drawn in the figures) on $n$ tokens of size $d = d_k = d_v$ and counts on the graph the
engine records: the multiply-adds of its matrix products (an $(a \times b)(b \times c)$
product costs $abc$) and the floats its ops' outputs hold. The three projections cost
$3 n d d_k$, $QK^\top$ costs $n^2 d_k$ and $PV$ costs $n^2 d_v$:

$$\text{multiply-adds} = 3\,n\,d\,d_k + 2\,n^2 d_k \quad (d_v = d_k).$$

The floats held are a polynomial in $n$ that SymPy interpolates from $n = 1, 2, 3$ and that
is then checked at $n = 1, \dots, 10$ (below): its $n^2$ term counts the $n \times n$
arrays the graph keeps (scores, scaled scores, weights), the memory that the blocked
kernels of `tinygrad_attn.attention.flash` avoid.
"""

TIMED = r"""; the coefficient of
$n^2$ does not depend on $d$ (three $n \times n$ arrays), the $n$ term does.

## Timed

Time and peak memory against $n$ (the fused and the blocked kernels, with the fitted
exponents) are in [docs/complexity.md](../docs/complexity.md); the composed ops are
timed in [docs/study.md](../docs/study.md).
"""

TOKENS = list(range(1, 11))


def prove_counts(doc: Document, d: int) -> sp.Expr:
    """Multiply-adds, floats held and pairs at $n = 1, \\dots, 10$ for width ``d``;
    returns the interpolated polynomial of the floats held."""
    n = sp.Symbol("n", positive=True)
    counted = [recorded_cost(k, d) for k in TOKENS]
    size = sizes(d=d) + r", $n = 1, \dots, 10$"
    claimed = [3 * k * d * d + 2 * k * k * d for k in TOKENS]
    doc.check(r"multiply-adds $= 3 n d d_k + 2 n^2 d_k$", size,
              equivalent({"madds": np.array([c["multiply_adds"] for c in counted])},
                         {"madds": np.array(claimed)}, subject="multiply-adds"))
    floats = sp.expand(sp.interpolate([(k, c["floats"]) for k, c in
                                       zip(TOKENS[:3], counted[:3])], n))
    doc.check(f"floats held $= {sp.latex(floats)}$", size,
              equivalent({"floats": np.array([c["floats"] for c in counted])},
                         {"floats": np.array([floats.subs(n, k) for k in TOKENS])},
                         subject="floats held"))
    doc.check(r"weights: $n^2$ pairs", size,
              equivalent({"pairs": np.array([c["pairs"] for c in counted])},
                         {"pairs": np.array([k * k for k in TOKENS])}, subject="pairs"))
    return floats


def build(doc: Document) -> None:
    """The cost claim's document."""
    doc.add(TEXT)
    polys = [(d, prove_counts(doc, d)) for d in (2, 4)]
    doc.add("The floats held, interpolated: " + ", ".join(
        f"${sp.latex(f)}$ for $d = {d}$" for d, f in polys) + TIMED)
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_cost"))
