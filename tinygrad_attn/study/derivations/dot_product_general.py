r"""Dot-product and general attention (Luong, Pham and Manning 2015, eq. 8): scores
$QK^\top$ and $QWK^\top$, their gradients, and proofs against ``sympy.diff`` and the
engine's backward.

``python -m tinygrad_attn.study.derivations.dot_product_general --out derivations``
rebuilds ``derivations/dot_product_general.md``.
"""
from __future__ import annotations

from ... import attention as A
from ...verify.symbolic import derive
from .algebra import softmax_backward, softmax_rows
from .document import Document, sizes

TITLE = "Dot-product and general (Luong) attention"

TEXT = r"""
## The mechanisms

Luong, Pham and Manning 2015 (eq. 8) score a query $q_i$ against a key $k_j$ with

$$\text{dot: } S = Q K^\top, \qquad \text{general: } S = Q W K^\top ,$$

$m$ queries $Q \in \mathbb{R}^{m \times d_q}$, $n$ keys $K \in \mathbb{R}^{n \times d_k}$,
$W \in \mathbb{R}^{d_q \times d_k}$ (dot needs $d_q = d_k$), then
$P = \operatorname{softmax}_{\text{rows}}(S)$ and $O = P V$ with
$V \in \mathbb{R}^{n \times d_v}$.

## The gradients, step by step

The context and softmax steps are those of [scaled_dot_product.md](scaled_dot_product.md):
$\bar V = P^\top \bar O$ and $\bar S = P \odot (\bar P - \operatorname{rowsum}(\bar P \odot
P))$ with $\bar P = \bar O V^\top$. The score Jacobians:

* dot: $\partial S_{ij} / \partial Q_{xa} = \delta_{ix} K_{ja}$,
  $\partial S_{ij} / \partial K_{ya} = \delta_{jy} Q_{ia}$;
* general: $S_{ij} = \sum_{ab} Q_{ia} W_{ab} K_{jb}$, so
  $\partial S_{ij} / \partial W_{ab} = Q_{ia} K_{jb}$,
  $\partial S_{ij} / \partial Q_{xa} = \delta_{ix} (W K^\top)_{aj}$,
  $\partial S_{ij} / \partial K_{yb} = \delta_{jy} (Q W)_{ib}$.

## Closed matrix form

$$\text{dot: } \bar Q = \bar S K, \quad \bar K = \bar S^\top Q; \qquad
  \text{general: } \bar Q = \bar S K W^\top, \quad \bar K = \bar S^\top Q W, \quad
  \bar W = Q^\top \bar S K ;$$

and $\bar V = P^\top \bar O$ for both. Dot is scaled dot-product attention without the
$1/\sqrt{d_k}$, and general with $W = I$ is dot.
"""


def prove_dot(doc: Document, m: int, n: int, d_k: int, d_v: int) -> None:
    """Dot-product attention's closed forms and engine backward at one size."""
    size = sizes(m=m, n=n, d_k=d_k, d_v=d_v)
    der = derive(lambda Q, K, V: A.dot_product(Q, K, V)[0],
                 {"Q": (m, d_k), "K": (n, d_k), "V": (n, d_v)})
    Q, K, V = (der.inputs[k].data for k in "QKV")
    g = der.cotangents[0]
    P = softmax_rows(Q @ K.T)
    S_bar = softmax_backward(P, g @ V.T)
    doc.check(r"dot: $\bar Q = \bar S K,\ \bar K = \bar S^\top Q,\ \bar V = P^\top \bar O$"
              r" vs `sympy.diff`", size,
              der.prove({"Q": S_bar @ K, "K": S_bar.T @ Q, "V": P.T @ g}))
    doc.check("dot: engine backward vs `sympy.diff`", size, der.prove_engine())


def prove_general(doc: Document, m: int, n: int, d_q: int, d_k: int, d_v: int) -> None:
    """General attention's closed forms and engine backward at one size."""
    size = sizes(m=m, n=n, d_q=d_q, d_k=d_k, d_v=d_v)
    der = derive(lambda Q, K, V, W: A.general(Q, K, V, W)[0],
                 {"Q": (m, d_q), "K": (n, d_k), "V": (n, d_v), "W": (d_q, d_k)})
    Q, K, V, W = (der.inputs[k].data for k in "QKVW")
    g = der.cotangents[0]
    P = softmax_rows(Q @ W @ K.T)
    S_bar = softmax_backward(P, g @ V.T)
    doc.check(r"general: $\bar Q = \bar S K W^\top,\ \bar K = \bar S^\top Q W,\ "
              r"\bar W = Q^\top \bar S K$ vs `sympy.diff`", size,
              der.prove({"Q": S_bar @ K @ W.T, "K": S_bar.T @ Q @ W, "W": Q.T @ S_bar @ K,
                         "V": P.T @ g}))
    doc.check("general: engine backward vs `sympy.diff`", size, der.prove_engine())


def build(doc: Document) -> None:
    """The dot-product and general attention document."""
    doc.add(TEXT)
    for m, n, d_k, d_v in ((2, 2, 2, 1), (2, 3, 3, 2)):
        prove_dot(doc, m, n, d_k, d_v)
    for m, n, d_q, d_k, d_v in ((2, 2, 1, 2, 1), (2, 3, 2, 2, 2)):
        prove_general(doc, m, n, d_q, d_k, d_v)
    doc.proofs_section()
    doc.every_size("dot_product", "dot")
    doc.every_size("general", "general")


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("dot_product_general"))
