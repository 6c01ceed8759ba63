r"""Scaled dot-product attention (Vaswani et al. 2017, eq. 1): the gradients of
$O = \operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$ step by step, the identity
$\operatorname{rowsum}(\bar P \odot P) = \operatorname{rowsum}(\bar O \odot O)$ of the fused
backward, and proofs of the composed and the fused engine backward.

:func:`closed_form` is reused by the multi-head and causal-masking documents.

``python -m tinygrad_attn.study.derivations.scaled_dot_product --out derivations``
rebuilds ``derivations/scaled_dot_product.md``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ... import attention as A
from ...verify.symbolic import derive, equivalent, symbols
from .algebra import rowsum, softmax_backward, softmax_rows, transpose
from .document import Document, sizes

TITLE = "Scaled dot-product attention"

TEXT = r"""
## The mechanism

Scaled dot-product attention (Vaswani et al. 2017, eq. 1), with $m$ queries
$Q \in \mathbb{R}^{m \times d_k}$, $n$ keys $K \in \mathbb{R}^{n \times d_k}$ and values
$V \in \mathbb{R}^{n \times d_v}$ (one row per vector):

$$S = \frac{Q K^\top}{\sqrt{d_k}}, \qquad P = \operatorname{softmax}_{\text{rows}}(S),
  \qquad O = P V .$$

## The gradients, step by step

Let $\bar O = \partial L / \partial O$ be the upstream gradient.

1. **Context.** $O_{ic} = \sum_j P_{ij} V_{jc}$ is linear in $P$ and in $V$:
   $$\bar V = P^\top \bar O, \qquad \bar P = \bar O V^\top .$$
2. **Softmax.** Row $i$ of $P$ depends only on row $i$ of $S$, with Jacobian
   $\operatorname{diag}(p_i) - p_i p_i^\top$ (see [softmax.md](softmax.md)):
   $$\bar S = P \odot \bigl(\bar P - \operatorname{rowsum}(\bar P \odot P)\bigr) .$$
3. **Scores.** $S_{ij} = \frac{1}{\sqrt{d_k}}\sum_a Q_{ia} K_{ja}$, so
   $\partial S_{ij} / \partial Q_{xa} = \delta_{ix} K_{ja} / \sqrt{d_k}$ and
   $\partial S_{ij} / \partial K_{ya} = \delta_{jy} Q_{ia} / \sqrt{d_k}$. The chain rule
   $\bar Q_{xa} = \sum_{ij} \bar S_{ij}\, \partial S_{ij} / \partial Q_{xa}$ gives
   $$\bar Q = \frac{\bar S K}{\sqrt{d_k}}, \qquad \bar K = \frac{\bar S^\top Q}{\sqrt{d_k}} .$$

## Closed matrix form

$$\bar V = P^\top \bar O, \quad \bar P = \bar O V^\top, \quad
  \bar S = P \odot (\bar P - D), \quad
  \bar Q = \tfrac{1}{\sqrt{d_k}}\, \bar S K, \quad
  \bar K = \tfrac{1}{\sqrt{d_k}}\, \bar S^\top Q ,$$

with the column $D = \operatorname{rowsum}(\bar P \odot P)$, one entry per query.

## The identity used by the fused backward

$$D = \operatorname{rowsum}(\bar P \odot P) = \operatorname{rowsum}(\bar O \odot O) .$$

Proof: $\sum_j P_{ij} \bar P_{ij} = \sum_j P_{ij} \sum_c \bar O_{ic} V_{jc}
= \sum_c \bar O_{ic} \sum_j P_{ij} V_{jc} = \sum_c \bar O_{ic} O_{ic}$. It holds for *any*
matrix $P$ (it is only associativity), and it lets a fused or tiled backward compute $D$
from the $m \times d_v$ matrices $\bar O$ and $O$, without the $m \times n$ matrix $\bar P$
(FlashAttention, Dao et al. 2022: the identity is derived in Appendix B.2 and used by the
backward pass, Algorithm 4). The fused op
`ScaledDotProductAttention` in `tinygrad_attn/attention/fused.py` uses it; its
hand-derived backward is proven below like the composed reference (`fused=False`).
"""


def closed_form(Q: np.ndarray, K: np.ndarray, V: np.ndarray, g: np.ndarray,  # noqa: N803
                mask: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """$O$ and the closed forms $\\bar Q, \\bar K, \\bar V$ for the upstream gradient ``g``
    $= \\bar O$ (object arrays; masked scores get weight exactly 0)."""
    d_k = Q.shape[-1]
    P = softmax_rows((Q @ transpose(K)) / sp.sqrt(d_k), mask)
    S_bar = softmax_backward(P, g @ transpose(V))
    return P @ V, S_bar @ K / sp.sqrt(d_k), transpose(S_bar) @ Q / sp.sqrt(d_k), \
        transpose(P) @ g


def prove_gradients(doc: Document, m: int, n: int, d_k: int, d_v: int) -> None:
    """Forward, closed forms, composed and fused engine backward at one size."""
    size = sizes(m=m, n=n, d_k=d_k, d_v=d_v)
    der = derive(lambda Q, K, V: A.scaled_dot_product(Q, K, V, fused=False)[0],
                 {"Q": (m, d_k), "K": (n, d_k), "V": (n, d_v)})
    Q, K, V = (der.inputs[k].data for k in "QKV")
    O, Q_bar, K_bar, V_bar = closed_form(Q, K, V, der.cotangents[0])
    doc.check(r"$O = \operatorname{softmax}(QK^\top/\sqrt{d_k})V$ (engine forward)", size,
              equivalent({"O": der.outputs[0]}, {"O": O}, subject="forward"))
    doc.check(r"closed forms $\bar Q, \bar K, \bar V$ vs `sympy.diff`", size,
              der.prove({"Q": Q_bar, "K": K_bar, "V": V_bar}))
    doc.check("engine backward, composed ops (`fused=False`) vs `sympy.diff`", size,
              der.prove_engine())
    doc.check("engine backward, fused op (`fused=True`) vs `sympy.diff`", size,
              der.prove_engine(fn=lambda Q, K, V: A.scaled_dot_product(Q, K, V)[0]))


def prove_rowsum_identity(doc: Document, m: int, n: int, d_v: int) -> None:
    """$\\operatorname{rowsum}(\\bar P \\odot P) = \\operatorname{rowsum}(\\bar O \\odot O)$
    for a symbolic matrix $P$ (any $P$, not only a softmax)."""
    P = symbols("P", (m, n)).data
    V = symbols("V", (n, d_v)).data
    g = symbols("g", (m, d_v)).data
    doc.check(r"$\operatorname{rowsum}(\bar P \odot P) = \operatorname{rowsum}(\bar O "
              r"\odot O)$ for any $P$", sizes(m=m, n=n, d_v=d_v),
              equivalent({"D": rowsum((g @ V.T) * P)}, {"D": rowsum(g * (P @ V))},
                         subject="rowsum identity"))


def build(doc: Document) -> None:
    """The scaled dot-product document."""
    doc.add(TEXT)
    for m, n, d_k, d_v in ((2, 3, 2, 1), (3, 3, 3, 3)):
        prove_gradients(doc, m, n, d_k, d_v)
    for m, n, d_v in ((2, 3, 2), (3, 3, 3)):
        prove_rowsum_identity(doc, m, n, d_v)
    doc.proofs_section()
    doc.every_size("scaled_dot_product")


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("scaled_dot_product"))
