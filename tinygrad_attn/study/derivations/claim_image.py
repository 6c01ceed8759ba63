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

1. **patchify**: an image $I \in \mathbb{R}^{H_\text{img} \times W_\text{img} \times C}$
   (height, width, channels; subscripted so as not to be read as a head count or a
   weight matrix) becomes $N = (H_\text{img}/p)(W_\text{img}/p)$ rows of $p^2 C$
   numbers, patch $(a, b)$ holding $I_{ap + u,\ bp + v,\ c}$ at column $(up + v)C + c$;
2. **project**: $Q, K, V = X W_q, X W_k, X W_v$ (key width $d_k$, value width $d_v$);
3. **attend**: $O = \operatorname{softmax}(QK^\top / \sqrt{d_k})\, V$, every patch
   against every patch ($m = n = N$), an $N \times N$ attention map;
4. **un-patchify**: $I' = \operatorname{unpatchify}(O W_o)$, back to
   $H_\text{img} \times W_\text{img} \times C$.

Patchify only moves numbers (a permutation of the entries), so its VJP is its inverse:
$\bar I = \operatorname{unpatchify}(\bar X)$. Its graph, a gradient check three ways and
an attention map over the patches of a synthetic image are in
[docs/study.md](../docs/study.md).
"""

CAVEATS = r"""
## What the picture leaves out

- **Positions.** Without position information self-attention is permutation-equivariant:
  shuffle the patches and the outputs shuffle the same way, so the layout of the image
  is invisible. ViT therefore *adds* a learned position embedding to every patch
  embedding before the first layer (Dosovitskiy et al. 2021, eq. 1, $E_{pos}$; the
  equation number is not verified here). The computation above has none, on purpose:
  it shows the mechanism alone.
- **Dot product is not similarity.** "Attention finds the patches that look like the
  query" holds for the cosine of content attention, not for the dot product. A patch
  $c\,x$ with the same pattern as the query $x$ but $c > 1$ times brighter scores
  $x \cdot cx = c \lVert x \rVert^2$, more than the identical patch's
  $\lVert x \rVert^2$, while the cosine gives both 1 (proven below). With the query
  patch, an identical patch and one {bright} times brighter among the keys, dot-product
  attention gives weights {dot}, content (cosine, $\beta = 1$) attention {cos}.
- **Patches are the answer to $n^2$.** Attention over pixels would compare every pixel
  with every other: a $224 \times 224$ image has {pixels} pixels, {pixel_pairs} pairs.
  In $16 \times 16$ patches it has {patches} positions and {patch_pairs} pairs, {ratio}
  times fewer ([claim_cost.md](claim_cost.md)).
"""


def brighter_copy(doc: Document, width: int = 4, bright: int = 2) -> None:
    """Dot product prefers a brighter copy, cosine does not: numbers and an exact proof."""
    import sympy as sp

    from ... import attention as A
    from .algebra import symbol_array as sym

    x = np.linspace(0.2, 0.5, width)
    keys = np.stack([x, x, bright * x])
    fmt = lambda w: "(" + ", ".join(f"{v:.3f}" for v in w) + ")"  # noqa: E731
    dot = A.dot_product(x, keys, keys)[1].data
    cos = A.content(x, keys, keys)[1].data
    pixels, patches = 224 * 224, (224 // 16) ** 2
    doc.add(CAVEATS.replace("{bright}", str(bright)).replace("{dot}", fmt(dot))
            .replace("{cos}", fmt(cos)).replace("{pixels}", f"{pixels:,}")
            .replace("{pixel_pairs}", f"{pixels ** 2:,}").replace("{patches}", str(patches))
            .replace("{patch_pairs}", f"{patches ** 2:,}")
            .replace("{ratio}", f"{pixels ** 2 // patches ** 2:,}"))
    v, c = sym("x", (width,)), sp.Symbol("c", positive=True)
    sq = sum(e * e for e in v)                                   # |x|^2
    dot = sum(e * c * e for e in v)                              # x . (c x)
    doc.check(r"dot score of $cx$ against $x$ is $c \lVert x \rVert^2$; its cosine "
              r"is 1 (squared: $(x \cdot cx)^2 / (\lVert x \rVert^2 \lVert cx \rVert^2) = 1$)",
              sizes(d=width), equivalent(
                  {"dot": dot, "cos^2": dot ** 2 / (sq * sum((c * e) ** 2 for e in v))},
                  {"dot": c * sq, "cos^2": sp.Integer(1)}, subject="brighter copy"))



def prove_patchify(doc: Document, H: int, W: int, C: int, p: int) -> None:  # noqa: N803
    """Patchify's layout, its inverse, and its VJP."""
    img = symbol_array("I", (H, W, C))
    X = patchify(Tensor(img), p).data
    by_formula = np.empty(X.shape, dtype=object)
    for a, b, u, v, c in np.ndindex(H // p, W // p, p, p, C):
        by_formula[a * (W // p) + b, (u * p + v) * C + c] = img[a * p + u, b * p + v, c]
    size = sizes(H_img=H, W_img=W, C=C, p=p)
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
    size = sizes(H_img=H, W_img=W, C=C, p=p, d_k=d_k, d_v=1)
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
    brighter_copy(doc)
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_image"))
