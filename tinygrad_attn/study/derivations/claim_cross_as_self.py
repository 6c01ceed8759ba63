r"""Claim: encoder-decoder (cross) attention is masked self-attention over the
block-diagonal concatenation of the two sequences, outputs and gradients alike.

``python -m tinygrad_attn.study.derivations.claim_cross_as_self --out derivations``
rebuilds ``derivations/claim_cross_as_self.md``.
"""
from __future__ import annotations

from ... import attention as A
from ...verify.symbolic import derive
from ..claims import cross_as_masked_self
from .document import Document, sizes

TITLE = "Encoder-decoder attention is masked self-attention"

TEXT = r"""
## The claim

Cross (encoder-decoder) attention, $m$ decoder positions (the queries) attending $n$
encoder positions (the keys) (Vaswani et al. 2017, sec. 3.2.3),

$$O = \operatorname{softmax}\Bigl(\frac{X_{dec} W_q\, (X_{enc} W_k)^\top}{\sqrt{d_k}}\Bigr)
  X_{enc} W_v ,$$

is *self*-attention over one sequence with the right mask and the right projections.

**The sequence.** Stack the two, block-diagonally (so $d_{enc} \ne d_{dec}$ is fine):

$$Z = \begin{bmatrix} X_{enc} & 0 \\ 0 & X_{dec} \end{bmatrix} \in
  \mathbb{R}^{(n + m) \times (d_{enc} + d_{dec})} .$$

**The projections.** $W_q' = \begin{bmatrix} 0 \\ W_q \end{bmatrix}$,
$W_k' = \begin{bmatrix} W_k \\ 0 \end{bmatrix}$, $W_v' = \begin{bmatrix} W_v \\ 0
\end{bmatrix}$, so $Z W_q'$ holds $X_{dec} W_q$ in its decoder rows and
$Z W_k', Z W_v'$ hold $X_{enc} W_k, X_{enc} W_v$ in their encoder rows (when
$d_{enc} = d_{dec}$ one can stack $Z = [X_{enc}; X_{dec}]$ and keep $W$ unchanged).

**The mask.** Every row may attend the encoder positions only:
$M = \begin{bmatrix} \mathbf 1_{n \times n} & 0 \\ \mathbf 1_{m \times n} & 0
\end{bmatrix}$. In a decoder row the masked scores are $-\infty$, the softmax runs over
the $n$ encoder scores $q_i \cdot k_j / \sqrt{d_k}$ exactly as in cross attention, and
the context sums the encoder values. The decoder rows of the self-attention output are
the cross-attention output, and so are the gradients, since every path from the inputs
to those rows is the same computation.

A mask that leaks (a decoder row that may also see decoder positions) breaks the
equality; `tests/test_claims.py` shows that it is detected.
"""


def build(doc: Document) -> None:
    """The cross-as-self claim's document."""
    doc.add(TEXT)
    for m, n, d_dec, d_enc, d_k, d_v in ((2, 2, 2, 2, 1, 1), (1, 3, 1, 2, 2, 1)):
        size = sizes(m=m, n=n, d_dec=d_dec, d_enc=d_enc, d_k=d_k, d_v=d_v)
        der = derive(lambda x_dec, x_enc, W_q, W_k, W_v: A.cross_attention(
            x_dec, x_enc, W_q, W_k, W_v, fused=False),
            {"x_dec": (m, d_dec), "x_enc": (n, d_enc), "W_q": (d_dec, d_k),
             "W_k": (d_enc, d_k), "W_v": (d_enc, d_v)}, output_names=["O", "P"])
        doc.check("engine backward of `cross_attention` vs `sympy.diff`", size,
                  der.prove_engine())
        doc.check("masked self-attention over $Z$ (composed ops): outputs $O, P$ and "
                  "engine backward $=$ those of cross attention", size,
                  der.prove_engine(fn=lambda *a: cross_as_masked_self(*a, fused=False)))
        doc.check("the same through the fused op", size,
                  der.prove_engine(fn=lambda *a: cross_as_masked_self(*a, fused=True)))
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_cross_as_self"))
