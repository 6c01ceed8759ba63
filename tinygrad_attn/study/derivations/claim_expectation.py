r"""Claim: the context vector is an expectation, $c = \mathbb{E}_{J \sim p}[v_J]$; its
score gradient is a covariance; a Monte-Carlo estimate errs as $N^{-1/2}$.  Proven with
``sympy.stats`` (attention never enters the right-hand side).

``python -m tinygrad_attn.study.derivations.claim_expectation --out derivations``
rebuilds ``derivations/claim_expectation.md``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ... import attention as A
from ...verify.symbolic import derive, equivalent
from ..claims import expectation
from .algebra import softmax_list, symbol_array
from .document import Document, sizes

TITLE = "The context vector is an expectation"

TEXT = r"""
## The claim

Attention turns scores $s \in \mathbb{R}^n$ into weights $p = \operatorname{softmax}(s)$:
non-negative, summing to 1, a probability distribution over the n positions. The context
vector is the average of the values under that distribution:

$$c = \sum_{j=1}^n p_j v_j = \mathbb{E}_{J \sim p}\,[v_J] .$$

So attention is a *soft lookup*: instead of reading the one value at a sampled position
$J$, it returns the value one would read *on average*. Below, the right-hand side is
computed by `sympy.stats` from the finite random variable $J$ with $P(J = j) = p_j$
(attention never enters) and proven equal to what `attend` computes, with values
$V \in \mathbb{R}^{n \times d_v}$.

## Its gradient is a covariance

Differentiating the expectation through the softmax,
$\partial p_j / \partial s_k = p_j (\delta_{jk} - p_k)$, gives the Jacobian of the context
with respect to the scores, a $d_v \times n$ matrix,

$$\frac{\partial c}{\partial s} = V^\top \bigl(\operatorname{diag}(p) - p p^\top\bigr),
  \qquad \frac{\partial c_a}{\partial s_k} = p_k (V_{ka} - c_a)
  = \operatorname{Cov}_{J \sim p}\bigl(V_{Ja},\ [J = k]\bigr) ,$$

the covariance, under $J \sim p$, of the value read and the indicator that position $k$
was the one read ($\mathbb{E}[V_{Ja} [J = k]] - \mathbb{E}[V_{Ja}]\,\mathbb{E}[[J = k]]
= p_k V_{ka} - c_a p_k$). For the upstream gradient $\bar c$ of the context,

$$\bar s = \bigl(\operatorname{diag}(p) - p p^\top\bigr) V \bar c, \qquad
  \bar s_k = p_k\,\langle v_k - c,\ \bar c\,\rangle
  = \operatorname{Cov}_{J \sim p}\bigl(\langle v_J, \bar c\rangle,\ [J = k]\bigr) ,$$

the score-function identity $\nabla_s \mathbb{E}_p[v_J] = \mathbb{E}_p[v_J \nabla_s \log p_J]$:
raising a score moves the context towards that position's value, in proportion to its
weight and to how far its value is from the current average. Below, the covariance is
computed by `sympy.stats` from $J$ alone and proven equal to `sympy.diff`.

## A Monte-Carlo estimate converges at rate $1/\sqrt N$

Sampling $J_1, \dots, J_N \sim p$ independently and averaging,
$\hat c_N = \frac1N \sum_k v_{J_k}$, is unbiased, and its error shrinks as $N^{-1/2}$:

$$\mathbb{E}[\hat c_N] = c, \qquad
  \mathbb{E}\,\lVert \hat c_N - c \rVert^2 = \frac{\operatorname{tr}\operatorname{Cov}(v_J)}{N},
  \qquad \operatorname{Cov}(v_J) = \mathbb{E}[v_J v_J^\top] - c c^\top .$$

Both are proven below with `sympy.stats` over the product space of $N$ independent draws
(one value column, $p = (p_0, p_1, 1 - p_0 - p_1)$) for $N = 1, 2, 3$ **only**: the product
space has $3^N$ outcomes. For larger $N$ they are the textbook facts (linearity of
expectation; the variance of a mean of $N$ independent draws), not proven here; the
measured slope of the error against $N$
on a log-log plot is drawn in [docs/study.md](../docs/study.md) (about $-0.5$);
`tinygrad_attn.study.claims.monte_carlo_error` computes it.
"""


def covariance(p: list, V: np.ndarray, g: np.ndarray) -> np.ndarray:  # noqa: N803
    r"""$\operatorname{Cov}_{J \sim p}(\langle v_J, \bar c\rangle, [J = k])$ for every $k$, by
    ``sympy.stats`` from the distribution of $J$ alone (three expectations)."""
    n = len(p)
    read = np.array([[sum(V[j, a] * g[a] for a in range(V.shape[1]))] for j in range(n)],
                    dtype=object)                      # <v_j, c_bar>, one row per outcome
    out = []
    for k in range(n):
        hit = np.array([[int(j == k)] for j in range(n)], dtype=object)
        both = read * hit
        out.append(expectation(p, both)[0] - expectation(p, read)[0] * expectation(p, hit)[0])
    return np.array(out, dtype=object)


def prove_context(doc: Document, n: int, d_v: int) -> None:
    """`attend`'s context is the expectation; its score gradient is the covariance form."""
    size = sizes(n=n, d_v=d_v)
    der = derive(lambda s, V: A.attend(s, V)[0], {"s": (n,), "V": (n, d_v)},
                 output_names=["c"])
    s, V = der.inputs["s"].data, der.inputs["V"].data
    p = softmax_list(s)
    doc.check(r"`attend` context $=\ \mathbb{E}_{J \sim p}[v_J]$ (`sympy.stats`)", size,
              equivalent({"c": der.outputs[0]}, {"c": expectation(p, V)},
                         subject="context is an expectation"))
    c = np.array(p, dtype=object) @ V
    g = der.cotangents[0]
    closed = np.array([p[k] * sum((V[k, a] - c[a]) * g[a] for a in range(d_v))
                       for k in range(n)], dtype=object)
    doc.check(r"$\bar s_k = p_k \langle v_k - c, \bar c\rangle$ vs `sympy.diff`", size,
              der.prove({"s": closed}))
    doc.check(r"$\bar s_k = \operatorname{Cov}_{J \sim p}(\langle v_J, \bar c\rangle, [J = k])$ "
              r"(`sympy.stats`) vs `sympy.diff`", size, der.prove({"s": covariance(p, V, g)}))
    doc.check("engine backward of `attend` vs `sympy.diff`", size, der.prove_engine())


def prove_monte_carlo(doc: Document, samples: int) -> None:
    """Mean and mean squared error of the estimate from ``samples`` independent draws."""
    from sympy import stats

    p0, p1 = sp.symbols("p_0 p_1", positive=True)
    p = [p0, p1, 1 - p0 - p1]
    v = list(symbol_array("v", (3,)))
    c = sum(pj * vj for pj, vj in zip(p, v))
    var = sum(pj * vj ** 2 for pj, vj in zip(p, v)) - c ** 2
    draws = [stats.FiniteRV(f"J{k}", {j: p[j] for j in range(3)}, check=False)
             for k in range(samples)]
    est = sum(sum(v[j] * sp.KroneckerDelta(J, j) for j in range(3)) for J in draws) / samples
    doc.check(r"$\mathbb{E}[\hat c_N] = c$ and $\mathbb{E}(\hat c_N - c)^2 = "
              r"\operatorname{Var}(v_J)/N$", sizes(n=3, N=samples),
              equivalent({"mean": stats.E(est), "error": stats.E((est - c) ** 2)},
                         {"mean": c, "error": var / samples},
                         subject=f"Monte-Carlo estimate, N = {samples}",
                         method="simplification"))


def build(doc: Document) -> None:
    """The expectation claim's document."""
    doc.add(TEXT)
    for n, d_v in ((3, 2), (4, 1)):
        prove_context(doc, n, d_v)
    for samples in (1, 2, 3):
        prove_monte_carlo(doc, samples)
    doc.proofs_section()


if __name__ == "__main__":
    from . import main

    raise SystemExit(main("claim_expectation"))
