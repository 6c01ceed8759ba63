r"""Multi-head attention (Vaswani et al. 2017, sec. 3.2.2): input projections, heads as
scaled dot-product attention on column blocks, concatenation and output projection; all
six gradients in closed form, proven, head by head and through the fused op.

``python -m tinygrad_attn.study.derivations.multi_head --out derivations`` rebuilds
``derivations/multi_head.md``.
"""
from __future__ import annotations

import numpy as np

from ... import attention as A
from ...verify.symbolic import derive
from .document import Document, sizes
from .scaled_dot_product import closed_form as attention_closed_form

TITLE = "Multi-head attention"

TEXT = r"""
## The mechanism

Multi-head attention (Vaswani et al. 2017, sec. 3.2.2), PyTorch layout: with inputs
$X_q \in \mathbb{R}^{m \times d}$ ($m$ queries), $X_{kv} \in \mathbb{R}^{n \times d}$
($n$ keys) of model width $d$, and $H$ heads of width $d_h$ (each head's
$d_k = d_v = d_h$),

$$Q = X_q W_q, \quad K = X_{kv} W_k, \quad V = X_{kv} W_v, \qquad
  \text{head } h \text{ takes columns } h d_h, \dots, (h+1) d_h - 1 ,$$

$$O_h = \operatorname{softmax}\Bigl(\frac{Q_h K_h^\top}{\sqrt{d_h}}\Bigr) V_h, \qquad
  Y = [O_1, \dots, O_H]\, W_o .$$

## The gradients, step by step

1. **Output projection.** With $C = [O_1, \dots, O_H]$ and the upstream gradient
   $\bar Y$: $\bar W_o = C^\top \bar Y$ and $\bar C = \bar Y W_o^\top$, whose column
   block $h$ is $\bar O_h$.
2. **Each head** is scaled dot-product attention (see
   [scaled_dot_product.md](scaled_dot_product.md)): from $\bar O_h$ it gives
   $\bar Q_h = \bar S_h K_h / \sqrt{d_h}$, $\bar K_h = \bar S_h^\top Q_h / \sqrt{d_h}$,
   $\bar V_h = P_h^\top \bar O_h$.
3. **Split heads.** Splitting columns is a selection, so its gradient puts each head's
   gradient back in its columns: $\bar Q = [\bar Q_1, \dots, \bar Q_H]$, and the same
   for $K$, $V$.
4. **Input projections.** $\bar W_q = X_q^\top \bar Q$, $\bar W_k = X_{kv}^\top \bar K$,
   $\bar W_v = X_{kv}^\top \bar V$, $\bar X_q = \bar Q W_q^\top$ and
   $\bar X_{kv} = \bar K W_k^\top + \bar V W_v^\top$ (both uses add up).

## Closed matrix form

$$\bar W_o = C^\top \bar Y, \quad
  \bar W_q = X_q^\top [\bar Q_h]_h, \quad \bar W_k = X_{kv}^\top [\bar K_h]_h, \quad
  \bar W_v = X_{kv}^\top [\bar V_h]_h, \quad
  \bar X_q = [\bar Q_h]_h W_q^\top, \quad
  \bar X_{kv} = [\bar K_h]_h W_k^\top + [\bar V_h]_h W_v^\top .$$
"""

INPUTS = ("X_q", "X_kv", "W_q", "W_k", "W_v", "W_o")


def closed_form(X_q: np.ndarray, X_kv: np.ndarray, W_q: np.ndarray,  # noqa: N803
                W_k: np.ndarray, W_v: np.ndarray, W_o: np.ndarray, heads: int,
                g: np.ndarray) -> dict[str, np.ndarray]:
    """The six gradients of the closed matrix form, for the upstream gradient ``g``
    $= \\bar Y$: each head by :func:`.scaled_dot_product.closed_form`."""
    Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v
    d_h = Q.shape[-1] // heads
    C_bar = g @ W_o.T
    per_head = [attention_closed_form(Q[:, cols], K[:, cols], V[:, cols], C_bar[:, cols])
                for cols in (slice(h * d_h, (h + 1) * d_h) for h in range(heads))]
    C, Q_bar, K_bar, V_bar = (np.concatenate(x, axis=1) for x in zip(*per_head))
    return {"W_o": C.T @ g, "W_q": X_q.T @ Q_bar, "W_k": X_kv.T @ K_bar,
            "W_v": X_kv.T @ V_bar, "X_q": Q_bar @ W_q.T,
            "X_kv": K_bar @ W_k.T + V_bar @ W_v.T}


def build(doc: Document) -> None:
    """The multi-head attention document."""
    doc.add(TEXT)
    for m, n, d, H, d_h in ((2, 2, 2, 2, 1), (2, 3, 2, 2, 1)):
        size = sizes(m=m, n=n, d=d, H=H, d_h=d_h)
        der = derive(lambda X_q, X_kv, W_q, W_k, W_v, W_o:
                     A.multi_head(X_q, X_kv, W_q, W_k, W_v, W_o, H, fused=False)[0],
                     {"X_q": (m, d), "X_kv": (n, d), "W_q": (d, H * d_h),
                      "W_k": (d, H * d_h), "W_v": (d, H * d_h), "W_o": (H * d_h, d)},
                     output_names=["Y"])
        closed = closed_form(*(der.inputs[k].data for k in INPUTS), H, der.cotangents[0])
        doc.check(r"closed forms of all six gradients vs `sympy.diff`", size,
                  der.prove(closed))
        doc.check("engine backward, head by head (`fused=False`) vs `sympy.diff`", size,
                  der.prove_engine())
        doc.check("engine backward, heads as a batch axis through the fused op vs "
                  "`sympy.diff`", size,
                  der.prove_engine(fn=lambda *a: A.multi_head(*a, H, fused=True)[0]))
    doc.proofs_section()
    doc.every_size("multi_head")


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("multi_head"))
