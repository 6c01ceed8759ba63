r"""A worked example a student can follow by hand: scaled dot-product attention with
$m = 2$ queries, $n = 3$ keys and $d_k = d_v = 2$, forward and backward, every number
computed here (exactly, with SymPy, then rounded for the page) and checked against the
engine and against ``sympy.diff`` at the same point.

``python -m tinygrad_attn.study.derivations.worked_example --out derivations`` rebuilds
``derivations/worked_example.md``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ... import attention as A
from ...verify.symbolic import derive, equivalent
from .algebra import rowsum, softmax_rows, transpose
from .document import Document, sizes

TITLE = "A worked example: 2 queries, 3 keys, d = 2"

#: The point: small integers, so the first steps can be done in one's head.
POINT: dict[str, list[list[int]]] = {
    "Q": [[1, 0], [0, 1]],
    "K": [[1, 0], [0, 1], [1, 1]],
    "V": [[1, 2], [0, 1], [2, 0]],
    "O_bar": [[1, 0], [0, 1]],       # the upstream gradient: L = O_11 + O_22
}

TEXT = r"""
Scaled dot-product attention (see [scaled_dot_product.md](scaled_dot_product.md) for
the derivation) at one point, with $d_k = 2$, so the scale is $s = 1/\sqrt 2 \approx
0.7071$. Every number below is computed by this page's source module from the exact
values and rounded to 4 decimals; the table at the end checks the exact values against
the engine and against `sympy.diff`.

The upstream gradient $\bar O$ is the one of the loss $L = O_{11} + O_{22}$ (rows and
columns numbered from 1 on this page).
"""


def matrix(a: np.ndarray, digits: int = 4) -> str:
    """``a`` (exact SymPy entries) as a LaTeX matrix with ``digits`` decimals (integers
    as integers)."""
    def cell(e: Any) -> str:
        e = sp.simplify(e)
        if e.is_Integer:
            return str(int(e))
        return f"{float(sp.N(e, 30)):.{digits}f}"
    rows = np.atleast_2d(a)
    return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(cell(e) for e in r) for r in rows) \
        + r"\end{bmatrix}"


def steps(Q: np.ndarray, K: np.ndarray, V: np.ndarray, G: np.ndarray  # noqa: N803
          ) -> dict[str, np.ndarray]:
    """Every intermediate of the forward and the backward, exactly, in the order a
    student computes them (``G`` is the upstream gradient $\\bar O$)."""
    s = 1 / sp.sqrt(2)
    QK = Q @ transpose(K)
    S = QK * s
    E = np.vectorize(sp.exp, otypes=[object])(S)
    P = softmax_rows(S)
    O = P @ V
    P_bar = G @ transpose(V)
    D = rowsum(P_bar * P)
    S_bar = P * (P_bar - D)
    return {"QK": QK, "S": S, "E": E, "Z": rowsum(E), "P": P, "O": O,
            "V_bar": transpose(P) @ G, "P_bar": P_bar, "D": D, "S_bar": S_bar,
            "Q_bar": S_bar @ K * s, "K_bar": transpose(S_bar) @ Q * s}


def forward_text(x: dict[str, np.ndarray], st: dict[str, np.ndarray]) -> str:
    """The forward pass, step by step, with the numbers."""
    M = matrix
    return rf"""
## The inputs

$$Q = {M(x["Q"])}, \quad K = {M(x["K"])}, \quad V = {M(x["V"])}, \quad
  \bar O = {M(x["O_bar"])} .$$

## Forward

1. **Scores.** $Q K^\top = {M(st["QK"])}$ (row $i$, column $j$: $q_i \cdot k_j$), and
   $S = s\, Q K^\top = {M(st["S"])}$.
2. **Softmax, row by row.** $\exp S = {M(st["E"])}$, row sums
   $Z = {M(st["Z"])}$, and $P_{{ij}} = \exp S_{{ij}} / Z_i$:
   $$P = {M(st["P"])} .$$
   Each row sums to 1. (The engine subtracts the row maximum first; it cancels.)
3. **Output.** $O = P V = {M(st["O"])}$: row $i$ is the average of the values under
   row $i$ of $P$; for instance $O_{{11}} = P_{{11}} \cdot 1 + P_{{12}} \cdot 0 +
   P_{{13}} \cdot 2$.
"""


def backward_text(st: dict[str, np.ndarray]) -> str:
    """The backward pass, step by step, with the numbers and one entry by hand."""
    M, f = matrix, (lambda e: f"{float(sp.N(e, 30)):.4f}")
    P, Pb, D = st["P"], st["P_bar"], st["D"]
    return rf"""
## Backward

4. **Values.** $\bar V = P^\top \bar O = {M(st["V_bar"])}$.
5. **Weights.** $\bar P = \bar O V^\top = {M(st["P_bar"])}$ (row $i$, column $j$:
   $\bar o_i \cdot v_j$).
6. **Softmax backward.** $D_i = \sum_j P_{{ij}} \bar P_{{ij}}$, so
   $D = {M(D)}$, and $\bar S = P \odot (\bar P - D)$:
   $$\bar S = {M(st["S_bar"])} .$$
   By hand, the first entry: $\bar S_{{11}} = P_{{11}} (\bar P_{{11}} - D_1) =
   {f(P[0, 0])} \times ({f(Pb[0, 0])} - {f(D[0, 0])}) = {f(st["S_bar"][0, 0])}$.
   Each row of $\bar S$ sums to 0 (raising every score of a row by the same amount
   changes nothing).
7. **Queries and keys.** $\bar Q = s\, \bar S K = {M(st["Q_bar"])}$ and
   $\bar K = s\, \bar S^\top Q = {M(st["K_bar"])}$.
"""


def build(doc: Document) -> None:
    """The worked example: the numbers, then the checks at the same point."""
    x = {k: np.array([[sp.Integer(e) for e in r] for r in v], dtype=object)
         for k, v in POINT.items()}
    st = steps(x["Q"], x["K"], x["V"], x["O_bar"])
    doc.add(TEXT)
    doc.add(forward_text(x, st))
    doc.add(backward_text(st))
    der = derive(lambda Q, K, V: A.scaled_dot_product(Q, K, V, fused=False)[0],
                 {"Q": (2, 2), "K": (3, 2), "V": (3, 2)})
    point = {sym: val for k in "QKV" for sym, val in
             zip(np.ravel(der.inputs[k].data), np.ravel(x[k]))}
    point.update(zip(np.ravel(der.cotangents[0]), np.ravel(x["O_bar"])))
    at = np.vectorize(lambda e: sp.sympify(e).subs(point), otypes=[object])
    size = sizes(m=2, n=3, d_k=2, d_v=2)
    doc.check(r"the numbers of $O$ above $=$ the engine's forward at this point", size,
              equivalent({"O": at(der.outputs[0])}, {"O": st["O"]}, subject="forward"))
    engine = der.engine_gradients()
    hand = {"Q": st["Q_bar"], "K": st["K_bar"], "V": st["V_bar"]}
    doc.check(r"the numbers of $\bar Q, \bar K, \bar V$ above $=$ the engine's backward",
              size, equivalent({k: at(engine[k]) for k in hand}, hand, subject="backward"))
    doc.check(r"the same $=$ `sympy.diff` of $L = \sum \bar O \odot O$ at this point", size,
              equivalent({k: at(der.gradients[k]) for k in hand}, hand, subject="sympy.diff"))
    doc.add("The checks below are at this one point, with the $\\bar O$ above; the proofs "
            "for a symbolic $\\bar O$ and at symbolic sizes are in "
            "[scaled_dot_product.md](scaled_dot_product.md).")
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("worked_example"))
