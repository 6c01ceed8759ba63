r"""Content-based addressing (Graves, Wayne and Danihelka 2014, Neural Turing Machines,
eq. 5): scores $\beta \cos(q_i, k_j)$; the gradients through the normalisation
$x / \lVert x \rVert$ and the key strength $\beta$, proven.

``python -m tinygrad_attn.study.derivations.content --out derivations`` rebuilds
``derivations/content.md``.
"""
from __future__ import annotations

import numpy as np

from ... import attention as A
from ...verify.symbolic import derive
from .algebra import rowsum, softmax_backward, softmax_rows, sqrt
from .document import Document, sizes

TITLE = "Content-based (cosine) attention"

TEXT = r"""
## The mechanism

Content-based addressing (Graves, Wayne and Danihelka 2014, Neural Turing Machines, eq.
5): the score is the cosine similarity of query and key, sharpened by a key strength
$\beta$. With $m$ queries $Q \in \mathbb{R}^{m \times d_k}$, $n$ keys
$K \in \mathbb{R}^{n \times d_k}$ and values $V \in \mathbb{R}^{n \times d_v}$,

$$\hat q_i = \frac{q_i}{\lVert q_i \rVert}, \quad \hat k_j = \frac{k_j}{\lVert k_j \rVert},
  \qquad C = \hat Q \hat K^\top, \qquad S = \beta\, C, \qquad
  P = \operatorname{softmax}_{\text{rows}}(S), \qquad O = P V .$$

(The engine clamps a norm below $10^{-8}$ numerically, as `torch.cosine_similarity`; the
symbolic run uses the exact norm.)

## The gradients, step by step

1. Context and softmax: $\bar V = P^\top \bar O$,
   $\bar S = P \odot (\bar P - \operatorname{rowsum}(\bar P \odot P))$,
   $\bar P = \bar O V^\top$.
2. Key strength and cosine: $\bar\beta = \sum_{ij} \bar S_{ij} C_{ij}$ and
   $\bar C = \beta \bar S$; $C = \hat Q \hat K^\top$ gives
   $\bar{\hat Q} = \bar C \hat K$, $\bar{\hat K} = \bar C^\top \hat Q$.
3. Normalisation: the Jacobian of $x \mapsto x / \lVert x \rVert$ is
   $\frac{1}{\lVert x \rVert}(I - \hat x \hat x^\top)$, a projection orthogonal to $\hat x$,
   so row by row
   $$\bar q_i = \frac{\bar{\hat q}_i - \langle \bar{\hat q}_i, \hat q_i\rangle\,\hat q_i}
                    {\lVert q_i \rVert} .$$

## Closed matrix form

$$\bar Q = \frac{\bar{\hat Q} - \operatorname{rowsum}(\bar{\hat Q} \odot \hat Q)\odot \hat Q}
               {\lVert Q \rVert_{\text{rows}}}, \quad
  \bar K = \frac{\bar{\hat K} - \operatorname{rowsum}(\bar{\hat K} \odot \hat K)\odot \hat K}
               {\lVert K \rVert_{\text{rows}}}, \quad
  \bar\beta = \langle \bar S, C \rangle, \quad \bar V = P^\top \bar O ,$$

with $\bar{\hat Q} = \beta \bar S \hat K$ and $\bar{\hat K} = \beta \bar S^\top \hat Q$.
"""


def closed_form(Q: np.ndarray, K: np.ndarray, V: np.ndarray, beta: object,  # noqa: N803
                g: np.ndarray) -> dict[str, np.ndarray]:
    """The gradients of the closed matrix form, for the upstream gradient ``g``."""
    norm_q, norm_k = sqrt(rowsum(Q * Q)), sqrt(rowsum(K * K))
    Q_hat, K_hat = Q / norm_q, K / norm_k
    C = Q_hat @ K_hat.T
    P = softmax_rows(beta * C)
    S_bar = softmax_backward(P, g @ V.T)
    Q_hat_bar, K_hat_bar = beta * S_bar @ K_hat, beta * S_bar.T @ Q_hat
    return {"Q": (Q_hat_bar - rowsum(Q_hat_bar * Q_hat) * Q_hat) / norm_q,
            "K": (K_hat_bar - rowsum(K_hat_bar * K_hat) * K_hat) / norm_k,
            "beta": np.array(np.sum(S_bar * C), dtype=object), "V": P.T @ g}


def build(doc: Document) -> None:
    """The content-based attention document."""
    doc.add(TEXT)
    for m, n, d_k, d_v in ((1, 2, 2, 1), (2, 2, 2, 2)):
        size = sizes(m=m, n=n, d_k=d_k, d_v=d_v)
        der = derive(lambda Q, K, V, beta: A.content(Q, K, V, beta=beta)[0],
                     {"Q": (m, d_k), "K": (n, d_k), "V": (n, d_v), "beta": ()})
        Q, K, V = (der.inputs[k].data for k in "QKV")
        closed = closed_form(Q, K, V, der.inputs["beta"].data[()], der.cotangents[0])
        doc.check(r"closed forms $\bar Q, \bar K, \bar\beta, \bar V$ vs `sympy.diff`", size,
                  der.prove(closed))
        doc.check("engine backward vs `sympy.diff`", size, der.prove_engine())
    doc.proofs_section()
    doc.every_size("content")


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("content"))
