r"""Location-based attention (Luong, Pham and Manning 2015, eq. 9): the scores
$S = QW$ depend on the query alone, one per source position; their gradients, proven.

``python -m tinygrad_attn.study.derivations.location --out derivations`` rebuilds
``derivations/location.md``.
"""
from __future__ import annotations

from ... import attention as A
from ...verify.symbolic import derive
from .algebra import softmax_backward, softmax_rows
from .document import Document, sizes

TITLE = "Location-based (Luong) attention"

TEXT = r"""
## The mechanism

Location-based attention (Luong, Pham and Manning 2015, eq. 9): the scores depend on the
query alone, one per source position,

$$S = Q W, \qquad P = \operatorname{softmax}_{\text{rows}}(S), \qquad O = P V ,$$

$m$ queries $Q \in \mathbb{R}^{m \times d_q}$, $W \in \mathbb{R}^{d_q \times n}$ ($n$ = the
number of values), $V \in \mathbb{R}^{n \times d_v}$. The keys play no part.

## The gradients, step by step

Context and softmax as in [scaled_dot_product.md](scaled_dot_product.md):
$\bar V = P^\top \bar O$, $\bar S = P \odot (\bar P - \operatorname{rowsum}(\bar P \odot
P))$ with $\bar P = \bar O V^\top$. The score is a plain product,
$\partial S_{ij} / \partial Q_{xa} = \delta_{ix} W_{aj}$ and
$\partial S_{ij} / \partial W_{ab} = Q_{ia} \delta_{jb}$.

## Closed matrix form

$$\bar Q = \bar S W^\top, \qquad \bar W = Q^\top \bar S, \qquad \bar V = P^\top \bar O .$$
"""


def build(doc: Document) -> None:
    """The location-based attention document."""
    doc.add(TEXT)
    for m, n, d_q, d_v in ((1, 2, 2, 1), (2, 3, 3, 2)):
        size = sizes(m=m, n=n, d_q=d_q, d_v=d_v)
        der = derive(lambda Q, V, W: A.location(Q, V, W)[0],
                     {"Q": (m, d_q), "V": (n, d_v), "W": (d_q, n)})
        Q, V, W = (der.inputs[k].data for k in "QVW")
        g = der.cotangents[0]
        P = softmax_rows(Q @ W)
        S_bar = softmax_backward(P, g @ V.T)
        doc.check(r"$\bar Q = \bar S W^\top,\ \bar W = Q^\top \bar S,\ \bar V = P^\top \bar O$"
                  r" vs `sympy.diff`", size,
                  der.prove({"Q": S_bar @ W.T, "W": Q.T @ S_bar, "V": P.T @ g}))
        doc.check("engine backward vs `sympy.diff`", size, der.prove_engine())
    doc.proofs_section()
    doc.every_size("location")


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("location"))
