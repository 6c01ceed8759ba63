r"""Claim: self-attention needs a set of vectors, not a sequence; over the patches of an
image (patchify, project, attend, un-patchify) it is proven like any other mechanism.

``python -m tinygrad_attn.study.derivations.claim_image --out derivations`` rebuilds
``derivations/claim_image.md``.
"""
from __future__ import annotations

import numpy as np

from ...engine import Tensor
from ...verify.symbolic import derive, equivalent
from ..claims import image_self_attention, patchify, unpatchify
from .algebra import symbol_array
from .document import Document, sizes

TITLE = "Self-attention over the patches of an image"

TEXT = r"""
## The claim

Self-attention is not about sequences: it needs a *set* of vectors. An image becomes one
by cutting it into patches (Dosovitskiy et al. 2021, "An image is worth 16x16 words"):

1. **patchify**: an image $I \in \mathbb{R}^{H \times W \times C}$ becomes
   $N = (H/p)(W/p)$ rows of $p^2 C$ numbers, patch $(a, b)$ holding
   $I_{ap + u,\ bp + v,\ c}$ at column $(up + v)C + c$;
2. **project**: $Q, K, V = X W_q, X W_k, X W_v$ (key width $d_k$, value width $d_v$);
3. **attend**: $O = \operatorname{softmax}(QK^\top / \sqrt{d_k})\, V$, every patch
   against every patch ($m = n = N$), an $N \times N$ attention map;
4. **un-patchify**: $I' = \operatorname{unpatchify}(O W_o)$, back to $H \times W \times C$.

Patchify only moves numbers (a permutation of the entries), so its VJP is its inverse:
$\bar I = \operatorname{unpatchify}(\bar X)$. Its graph, a gradient check three ways and
an attention map over the patches of a synthetic image are in
[docs/study.md](../docs/study.md).
"""


def prove_patchify(doc: Document, H: int, W: int, C: int, p: int) -> None:  # noqa: N803
    """Patchify's layout, its inverse, and its VJP."""
    img = symbol_array("I", (H, W, C))
    X = patchify(Tensor(img), p).data
    by_formula = np.empty(X.shape, dtype=object)
    for a, b, u, v, c in np.ndindex(H // p, W // p, p, p, C):
        by_formula[a * (W // p) + b, (u * p + v) * C + c] = img[a * p + u, b * p + v, c]
    size = sizes(H=H, W=W, C=C, p=p)
    doc.check(r"patchify: $X_{(a,b),\,(up+v)C+c} = I_{ap+u,\,bp+v,\,c}$", size,
              equivalent({"X": X}, {"X": by_formula}, subject="patchify"))
    doc.check(r"$\operatorname{unpatchify}(\operatorname{patchify}(I)) = I$", size,
              equivalent({"I": unpatchify(Tensor(X), (H, W, C), p).data}, {"I": img},
                         subject="unpatchify inverts patchify"))
    der = derive(lambda I: patchify(I, p), {"I": (H, W, C)}, output_names=["X"])
    doc.check(r"VJP of patchify: $\bar I = \operatorname{unpatchify}(\bar X)$ vs "
              r"`sympy.diff`", size,
              der.prove({"I": unpatchify(Tensor(der.cotangents[0]), (H, W, C), p).data}))


def prove_attention(doc: Document, H: int, W: int, C: int, p: int,  # noqa: N803
                    d_k: int) -> None:
    """Image self-attention's engine backward, composed and fused, at one size."""
    width = p * p * C
    size = sizes(H=H, W=W, C=C, p=p, d_k=d_k, d_v=1)
    der = derive(lambda I, W_q, W_k, W_v, W_o: image_self_attention(I, p, W_q, W_k, W_v, W_o),
                 {"I": (H, W, C), "W_q": (width, d_k), "W_k": (width, d_k),
                  "W_v": (width, 1), "W_o": (1, width)}, output_names=["Y", "P"])
    doc.check("image self-attention: engine backward (composed ops) vs `sympy.diff`",
              size, der.prove_engine())
    doc.check("the same through the fused op", size, der.prove_engine(
        fn=lambda *a: image_self_attention(a[0], p, *a[1:], fused=True)))


def build(doc: Document) -> None:
    """The image claim's document."""
    doc.add(TEXT)
    prove_patchify(doc, 4, 4, 2, 2)
    for H, W, C, p, d_k in ((2, 4, 1, 2, 1), (4, 2, 1, 2, 1)):
        prove_attention(doc, H, W, C, p, d_k)
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_image"))
