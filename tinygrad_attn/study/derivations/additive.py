r"""Additive attention (Bahdanau, Cho and Bengio 2014, eq. 6): a one-hidden-layer network
$S_{ij} = v^\top \tanh(q_i W_q + k_j W_k)$ scores each pair; its gradients with
respect to the queries, keys, values, both projections and the score vector $v$.

``python -m tinygrad_attn.study.derivations.additive --out derivations`` rebuilds
``derivations/additive.md``.
"""
from __future__ import annotations

import numpy as np

from ... import attention as A
from ...verify.symbolic import derive
from .algebra import softmax_backward, softmax_rows, tanh
from .document import Document, sizes

TITLE = "Additive (Bahdanau) attention"

TEXT = r"""
## The mechanism

Additive attention (Bahdanau, Cho and Bengio 2014, eq. 6 and Appendix A.1.2): a
one-hidden-layer network scores each query-key pair. With $m$ queries
$Q \in \mathbb{R}^{m \times d_q}$, $n$ keys $K \in \mathbb{R}^{n \times d_k}$, values
$V \in \mathbb{R}^{n \times d_v}$, $W_q \in \mathbb{R}^{d_q \times h}$,
$W_k \in \mathbb{R}^{d_k \times h}$ and the score vector $v \in \mathbb{R}^h$ (Bahdanau's
$v_a$; the engine's parameter `v` of `additive`):

$$U_{ijr} = (Q W_q)_{ir} + (K W_k)_{jr}, \qquad T = \tanh(U), \qquad
  S_{ij} = \sum_r v_r T_{ijr}, \qquad P = \operatorname{softmax}_{\text{rows}}(S), \qquad
  O = P V .$$

## The gradients, step by step

1. **Context and softmax** as in [scaled_dot_product.md](scaled_dot_product.md):
   $\bar V = P^\top \bar O$, $\bar P = \bar O V^\top$,
   $\bar S = P \odot (\bar P - \operatorname{rowsum}(\bar P \odot P))$.
2. **Score network.** $\partial S_{ij} / \partial v_r = T_{ijr}$ and
   $\partial S_{ij} / \partial U_{ijr} = v_r (1 - T_{ijr}^2)$ (since
   $\tanh' = 1 - \tanh^2$), so
   $$\bar v_r = \sum_{ij} \bar S_{ij} T_{ijr}, \qquad
     \bar U_{ijr} = \bar S_{ij}\, v_r\, (1 - T_{ijr}^2) .$$
3. **Projections.** $U_{ijr}$ depends on $(QW_q)_{ir}$ for every $j$ and on $(KW_k)_{jr}$
   for every $i$: the broadcast sums the gradient back,
   $$\overline{QW_q} = \sum_j \bar U_{:j:} =: A \in \mathbb{R}^{m \times h}, \qquad
     \overline{KW_k} = \sum_i \bar U_{i::} =: B \in \mathbb{R}^{n \times h},$$
   and a product $XW$ has $\bar X = \overline{XW}\, W^\top$, $\bar W = X^\top \overline{XW}$.

## Closed matrix form

$$\bar v = \sum_{ij} \bar S_{ij} T_{ij:}, \quad
  \bar Q = A W_q^\top, \quad \bar W_q = Q^\top A, \quad
  \bar K = B W_k^\top, \quad \bar W_k = K^\top B, \quad \bar V = P^\top \bar O ,$$

with $A_{ir} = \sum_j \bar S_{ij} v_r (1 - T_{ijr}^2)$ and
$B_{jr} = \sum_i \bar S_{ij} v_r (1 - T_{ijr}^2)$.
"""

INPUTS = ("Q", "K", "V", "W_q", "W_k", "v")


def closed_form(Q: np.ndarray, K: np.ndarray, V: np.ndarray, W_q: np.ndarray,  # noqa: N803
                W_k: np.ndarray, v: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    """The six gradients of the closed matrix form, for the upstream gradient ``g``."""
    T = tanh((Q @ W_q)[:, None, :] + (K @ W_k)[None, :, :])   # (m, n, h)
    P = softmax_rows(T @ v)                                     # (m, n)
    S_bar = softmax_backward(P, g @ V.T)
    U_bar = S_bar[:, :, None] * v * (1 - T * T)                 # (m, n, h)
    A_, B_ = U_bar.sum(axis=1), U_bar.sum(axis=0)               # (m, h), (n, h)
    return {"Q": A_ @ W_q.T, "W_q": Q.T @ A_, "K": B_ @ W_k.T, "W_k": K.T @ B_,
            "v": np.einsum("ij,ijr->r", S_bar, T), "V": P.T @ g}


def build(doc: Document) -> None:
    """The additive-attention document."""
    doc.add(TEXT)
    for m, n, d_q, d_k, h, d_v in ((1, 2, 1, 2, 2, 1), (2, 3, 2, 2, 2, 2)):
        size = sizes(m=m, n=n, d_q=d_q, d_k=d_k, h=h, d_v=d_v)
        der = derive(lambda Q, K, V, W_q, W_k, v: A.additive(Q, K, V, W_q, W_k, v)[0],
                     {"Q": (m, d_q), "K": (n, d_k), "V": (n, d_v), "W_q": (d_q, h),
                      "W_k": (d_k, h), "v": (h,)})
        closed = closed_form(*(der.inputs[k].data for k in INPUTS), der.cotangents[0])
        doc.check(r"closed forms $\bar Q, \bar K, \bar V, \bar W_q, \bar W_k, \bar v$ vs "
                  r"`sympy.diff`", size, der.prove(closed))
        doc.check("engine backward vs `sympy.diff`", size, der.prove_engine())
    doc.proofs_section()
    doc.every_size("additive")


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("additive"))
