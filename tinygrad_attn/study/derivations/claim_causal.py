r"""Claim: with a causal mask the future cannot reach the past,
$\partial O_t / \partial x_j = 0$ exactly for $j > t$; masking after the softmax leaks.

``python -m tinygrad_attn.study.derivations.claim_causal --out derivations`` rebuilds
``derivations/claim_causal.md``.
"""
from __future__ import annotations

import sympy as sp

from ... import attention as A
from ...verify.symbolic import derive
from ..claims import mask_after_softmax
from .algebra import zero_proof
from .document import Document, sizes

TITLE = "Causal masking: the future cannot reach the past"

TEXT = r"""
## The claim

In a decoder, position $t$ may attend only positions $j \le t$
(Vaswani et al. 2017, sec. 3.2.3). With the causal mask the scores of later positions are
$-\infty$, so (see [causal_masking.md](causal_masking.md) for the gradients):

1. the weights $P_{tj}$, $j > t$, are **exactly** 0, and they stay 0 for every value of
   the inputs: $\partial P_{tj} / \partial (\text{any input}) = 0$ and the adjoint of a
   masked score is $\bar S_{tj} = 0$. (The adjoint of the weight itself,
   $\bar P_{tj} = \sum_c \bar O_{tc} V_{jc}$, is *not* zero: $O_t$ would change if
   $P_{tj}$ could; it cannot, so nothing flows through it.)
2. hence the output at $t$ is a function of $x_0, \dots, x_t$ alone (positions count from
   0): $\partial O_t / \partial x_j = 0$ for every $j > t$ — **changing a later input
   cannot change an earlier output**, so a model can be trained on all positions of a
   sequence at once without seeing the answer.

Below, causal self-attention $O = P\, X W_v$, $P = \operatorname{softmax}_\text{rows}(S)$
with $S_{tj} = (x_t W_q) \cdot (x_j W_k) / \sqrt{d_k}$ for $j \le t$ and
$S_{tj} = -\infty$ for $j > t$, is run on symbolic $X$ ($n$ positions, $m = n$), and
$\partial O_t / \partial x_j$ is read off the gradient as the coefficient of $\bar O_t$ in
$\partial L / \partial x_j$ (with $L = \sum \bar O \odot O$), from `sympy.diff` and from
the engine's backward.

## The mistake this rules out

Masking *after* the softmax, $\tilde P = \operatorname{softmax}(S) \odot M$
(`tinygrad_attn.study.claims.mask_after_softmax`), also gives $\tilde P_{tj} = 0$ for
$j > t$, yet the normaliser $\sum_l \exp S_{tl}$ still runs over the future positions:
$O_t$ then depends on later inputs. At $n = 2$, $d = d_k = d_v = 1$ (inputs $x_0, x_1$,
weights $w_q, w_k, w_v$), `sympy.diff` gives
"""


def leak_of_masking_after_softmax(doc: Document) -> None:
    """$\\partial \\tilde O_0 / \\partial x_1$ of the leaky variant, in closed form."""
    leaky = derive(lambda X, W_q, W_k, W_v: mask_after_softmax(X, W_q, W_k, W_v)[0],
                   {"X": (2, 1), "W_q": (1, 1), "W_k": (1, 1), "W_v": (1, 1)})
    g = leaky.cotangents[0]
    dep = sp.simplify(sp.diff(leaky.gradients["X"][1, 0], g[0, 0]))
    names = {sym: ("x_" + sym.name.split("_")[1]) if sym.name.startswith("X") else
             ("w_" + sym.name.split("_")[1]) for sym in dep.free_symbols}
    doc.add(r"$$\frac{\partial \tilde O_0}{\partial x_1} = " + sp.latex(dep, symbol_names=names)
            + r" \not\equiv 0 ,$$" + "\n\n(not identically zero: it vanishes only where a "
            "factor does), while with the mask applied to the scores it is identically 0, "
            "as proven below.")


def prove_causal(doc: Document, n: int, d: int, d_k: int) -> None:
    """Masked weights are 0, later inputs do not reach earlier outputs (`sympy.diff` and
    the engine), and the engine backward is right, composed and fused."""
    size = sizes(n=n, d=d, d_k=d_k, d_v=1)
    der = derive(lambda X, W_q, W_k, W_v: A.self_attention(X, W_q, W_k, W_v, causal=True,
                                                           fused=False),
                 {"X": (n, d), "W_q": (d, d_k), "W_k": (d, d_k), "W_v": (d, 1)},
                 output_names=["O", "P"])
    P = der.outputs[1]
    doc.check(r"masked weights $P_{tj} = 0$ exactly ($j > t$)", size,
              zero_proof("masked weights", [P[t, j] for t in range(n)
                                            for j in range(t + 1, n)]))
    g = der.cotangents[0]
    for label, grads in (("`sympy.diff`", der.gradients["X"]),
                         ("engine backward", der.engine_gradients()["X"])):
        future = [sp.diff(grads[j, a], g[t, 0]) for t in range(n)
                  for j in range(t + 1, n) for a in range(d)]
        doc.check(r"$\partial O_t / \partial X_j = 0$ for $j > t$, " + label, size,
                  zero_proof("future does not reach the past", future))
    doc.check("engine backward (composed ops) vs `sympy.diff`", size, der.prove_engine())
    doc.check("the same through the fused op", size, der.prove_engine(
        fn=lambda *a: A.self_attention(*a, causal=True, fused=True)))


def build(doc: Document) -> None:
    """The causal claim's document."""
    doc.add(TEXT)
    leak_of_masking_after_softmax(doc)
    for n, d, d_k in ((2, 1, 1), (3, 2, 1)):
        prove_causal(doc, n, d, d_k)
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_causal"))
