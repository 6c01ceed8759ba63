r"""Causal masking (Vaswani et al. 2017, sec. 3.2.3): a masked score has exactly zero
gradient; a fully masked row gets, by the engine's convention, zero context and
gradients; proven for the composed and the fused scaled dot-product attention.

``python -m tinygrad_attn.study.derivations.causal_masking --out derivations`` rebuilds
``derivations/causal_masking.md``.
"""
from __future__ import annotations

import numpy as np

from ... import attention as A
from ...verify.symbolic import derive
from .algebra import zero_proof
from .document import Document, sizes
from .scaled_dot_product import closed_form

TITLE = "Causal masking"

TEXT = r"""
## The mechanism

Causal (decoder) self-attention lets query $i$ attend key $j$ only when $j \le i$
(Vaswani et al. 2017, sec. 3.2.3); queries and keys are the same $n$ positions
($m = n$). The mask $M_{ij} = [j \le i]$ enters in **one** of two equivalent ways:
additively, the masked scores set to $-\infty$ before an ordinary softmax,

$$S_{ij} = \begin{cases} \frac{q_i \cdot k_j}{\sqrt{d_k}} & j \le i \\ -\infty & j > i
  \end{cases}, \qquad P_{ij} = \frac{\exp S_{ij}}{\sum_l \exp S_{il}}, \qquad O = P V ,$$

or multiplicatively, the scores left finite ($S_{ij} = q_i \cdot k_j / \sqrt{d_k}$ for
every $j$) and the softmax restricted to the allowed keys,

$$P_{ij} = \frac{M_{ij} \exp S_{ij}}{\sum_l M_{il} \exp S_{il}} .$$

With $\exp(-\infty) = 0$ the two give the same $P$ for every row that keeps at least one
key (the engine computes the first; [the every-size proof](scaled_dot_product.md) uses
the second). Symbolically $\exp(-\infty)$ is exactly 0, so a masked entry is not "small":
it is absent.

## The gradients, step by step

Everything is as in [scaled_dot_product.md](scaled_dot_product.md), with two facts about
the masked entries:

1. $P_{ij} = 0$ for $j > i$, so
   $\bar S_{ij} = P_{ij} (\bar P_{ij} - D_i) = 0$: **a masked score has exactly zero
   gradient**, and $\partial L / \partial S_{ij}$ does not even contain a masked entry.
2. Hence in $\bar Q = \bar S K / \sqrt{d_k}$ row $i$ sums only over keys $j \le i$, and in
   $\bar K = \bar S^\top Q / \sqrt{d_k}$ key $j$ collects only from queries $i \ge j$; the
   last key receives gradient from the last query alone, and $\bar V_j$ likewise.

A fully masked row (padding) is outside the mathematics: both forms divide $0$ by $0$
there. The engine adopts a **convention**: such a row gets $P_{i:} = 0$ (the empty sum
is taken as 1), so its context and all its gradients are 0 rather than NaN. This is a
choice made for padding, checked below as the engine's behaviour, not a consequence of
the formulas above.

## Closed matrix form

$$\bar S = P \odot \bigl(\bar P - \operatorname{rowsum}(\bar P \odot P)\bigr) \text{ with }
  \bar S_{ij} = 0 \ (j > i), \qquad \bar Q = \tfrac{1}{\sqrt{d_k}}\,\bar S K, \quad
  \bar K = \tfrac{1}{\sqrt{d_k}}\,\bar S^\top Q, \quad \bar V = P^\top \bar O .$$
"""


def prove_causal(doc: Document, n: int, d: int) -> None:
    """Closed forms and engine backward (composed and fused) under the causal mask, and
    the exactly-zero gradient of every masked score, at $m = n$, $d_k = d_v = d$."""
    size = sizes(m=n, n=n, d_k=d, d_v=d)
    mask = A.causal_mask(n)
    der = derive(lambda Q, K, V: A.scaled_dot_product(Q, K, V, causal=True, fused=False)[0],
                 {"Q": (n, d), "K": (n, d), "V": (n, d)})
    Q, K, V = (der.inputs[k].data for k in "QKV")
    _, Q_bar, K_bar, V_bar = closed_form(Q, K, V, der.cotangents[0], mask)
    doc.check(r"closed forms $\bar Q, \bar K, \bar V$ vs `sympy.diff`", size,
              der.prove({"Q": Q_bar, "K": K_bar, "V": V_bar}))
    doc.check("engine backward, composed (`fused=False`) vs `sympy.diff`", size,
              der.prove_engine())
    doc.check("engine backward, fused op vs `sympy.diff`", size,
              der.prove_engine(fn=lambda Q, K, V: A.scaled_dot_product(Q, K, V,
                                                                       causal=True)[0]))
    scores = derive(lambda S, V: A.attend(S, V, mask)[0], {"S": (n, n), "V": (n, d)})
    above = [(i, j) for i in range(n) for j in range(n) if j > i]
    masked = [scores.gradients["S"][ij] for ij in above] + \
        [scores.engine_gradients()["S"][ij] for ij in above]
    doc.check(r"masked scores ($j > i$): $\partial L/\partial S_{ij} = 0$ exactly, "
              r"in `sympy.diff` and in the engine", size,
              zero_proof("masked gradients are 0", masked))


def prove_fully_masked_row(doc: Document) -> None:
    """A query that may attend no key: context, `sympy.diff` and engine gradient are 0."""
    pad = np.array([[True, True, False], [False, False, False]])
    der = derive(lambda Q, K, V: A.scaled_dot_product(Q, K, V, mask=pad)[0],
                 {"Q": (2, 2), "K": (3, 2), "V": (3, 1)})
    row = [der.outputs[0][1, 0]] + list(der.gradients["Q"][1]) + \
        list(der.engine_gradients()["Q"][1])
    doc.check("fully masked query row (the engine's convention $P_{i:} = 0$): context, "
              "`sympy.diff` of that computation and engine gradient exactly 0",
              sizes(m=2, n=3, d_k=2, d_v=1), zero_proof("fully masked row", row))


def build(doc: Document) -> None:
    """The causal-masking document."""
    doc.add(TEXT)
    for n, d in ((2, 2), (3, 2)):
        prove_causal(doc, n, d)
    prove_fully_masked_row(doc)
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("causal_masking"))
