r"""The attention mechanisms and their gradients in index notation, for symbolic sizes.

Each mechanism is written with ``sympy.IndexedBase`` and ``Sum`` over symbolic ranges,
in the project's notation (``docs/notation.md``): $m$ queries (index $i$), $n$ keys
(index $j$), key width $d_k$, value width $d_v$, and the upstream gradient $\bar O$ of
the output, which makes the scalar differentiated $L = \sum_{ic} \bar O_{ic} O_{ic}$
(``g`` in the code, the tensor ``Obar``).  Scaled dot-product attention (Vaswani et al.
2017, eq. 1):

$$S_{ij} = \tfrac{1}{\sqrt{d_k}}\sum_a Q_{ia}K_{ja},\quad
  P_{ij} = \frac{e^{S_{ij}}}{\sum_k e^{S_{ik}}},\quad O_{ic} = \sum_j P_{ij}V_{jc}.$$

Every *identity builder* below (``sdpa_dV``, ``additive_dWq``, ...) returns
``(lhs, rhs, ranges)``: ``lhs`` the exact derivative from ``sympy.diff``, ``rhs`` the
closed form claimed for it, ``ranges`` the free indices and their ranges.  With
``wrong=True`` it returns a deliberately wrong closed form instead (a dropped term, a
missing factor, a wrong index): the negative control the prover must reject.
:mod:`tinygrad_attn.verify.everysize` pairs each builder with its statement and proves it.
"""

from __future__ import annotations

from typing import Callable

import sympy as sp

from .indexcalc import Range

__all__ = [
    "SIZES", "Identity", "Score", "softmax", "softmax_backward", "loss", "sdpa_score",
    "sdpa_dV", "sdpa_dP", "sdpa_dS", "sdpa_dS_via_D", "sdpa_rowsum", "sdpa_dQ", "sdpa_dK",
    "softmax_jacobian", "softmax_rows", "softmax_jacobian_rows", "sdpa_dS_rows",
    "additive_preactivation", "additive_score", "additive_dV",
    "additive_dv", "additive_dWq", "additive_dWk", "additive_dQ", "additive_dK",
    "additive_tanh_backward", "dot_dQ", "dot_dK", "general_dW", "general_dQ", "general_dK",
    "mh_dWo", "mh_dWv", "mh_dWq", "mh_dWk",
]

# ---------------------------------------------------------------------------------------
# Sizes, index variables, tensors

_pos = dict(positive=True, integer=True)
m, n = sp.symbols("m n", **_pos)                    # queries, keys
d_k, d_v = sp.symbols("d_k d_v", **_pos)            # key width, value width
d_q = sp.Symbol("d_q", **_pos)                      # query width, where it may differ
h = sp.Symbol("h", **_pos)                          # hidden units of the additive score
H, d_h, d_model = sp.symbols("H d_h d_model", **_pos)  # heads, head width, model width
SIZES: dict[str, sp.Symbol] = {"m": m, "n": n, "d_k": d_k, "d_v": d_v, "d_q": d_q, "h": h,
                               "H": H, "d_h": d_h, "d_model": d_model}

_int = dict(integer=True)
i, j, k, l, a, b, c, r, t, s = sp.symbols("i j k l a b c r t s", **_int)   # bound indices
x, y, z = sp.symbols("x y z", **_int)                                    # free indices

Q, K, V = (sp.IndexedBase(name) for name in "QKV")
g = sp.IndexedBase("Obar")                           # the upstream gradient \bar O
Pm, Sm, M, U = (sp.IndexedBase(name) for name in "PSMU")   # P, S, mask, pre-activation
Wq, Wk, Wv, Wo, W = (sp.IndexedBase(name) for name in ("W_q", "W_k", "W_v", "W_o", "W"))
v = sp.IndexedBase("v")                              # Bahdanau's score vector v_a
Xq, Xkv = sp.IndexedBase("X_q"), sp.IndexedBase("X_kv")


def _rng(size: sp.Expr) -> Range:
    """The range $0..size-1$."""
    return (sp.Integer(0), size - 1)


QUERIES, KEYS, DK, DV, DQ, HIDDEN = _rng(m), _rng(n), _rng(d_k), _rng(d_v), _rng(d_q), _rng(h)
HEADS, DH, DMODEL = _rng(H), _rng(d_h), _rng(d_model)

Score = Callable[[sp.Expr, sp.Expr], sp.Expr]
#: What an identity builder returns: ``(sympy.diff result, closed form, free-index ranges)``.
Identity = tuple[sp.Expr, sp.Expr, dict[sp.Symbol, Range]]


def _sum(body: sp.Expr, *limits: tuple) -> sp.Expr:
    """$\\sum$ over ``(var, size)`` pairs, each var running over $0..size-1$."""
    return sp.Sum(body, *[(var, 0, size - 1) for var, size in limits])


# ---------------------------------------------------------------------------------------
# Softmax attention, generic in its score function

def softmax(score: Score, ii: sp.Expr, jj: sp.Expr, mask: sp.IndexedBase | None = None
            ) -> sp.Expr:
    """$P_{ij} = M_{ij} e^{S_{ij}} / \\sum_k M_{ik} e^{S_{ik}}$ (no $M$ when unmasked)."""
    mk = (lambda p, o: mask[p, o]) if mask is not None else (lambda p, o: 1)
    return mk(ii, jj) * sp.exp(score(ii, jj)) / _sum(mk(ii, k) * sp.exp(score(ii, k)), (k, n))


def softmax_backward(P: Score, dP: Score, ii: sp.Expr, jj: sp.Expr) -> sp.Expr:
    """$\\bar S_{ij} = P_{ij}\\,(\\bar P_{ij} - \\sum_l P_{il}\\,\\bar P_{il})$."""
    return P(ii, jj) * (dP(ii, jj) - _sum(P(ii, l) * dP(ii, l), (l, n)))


def loss(out: Score, width: sp.Expr, rows: sp.Expr = m) -> sp.Expr:
    """$L = \\sum_{ic} \\bar O_{ic} O_{ic}$: the derivative of $L$ by any input is the
    vector-Jacobian product with the upstream gradient $\\bar O$.  ``out`` must not bind
    ``i`` or ``c`` itself (a Sum over them would capture these free uses)."""
    return _sum(g[i, c] * out(i, c), (i, rows), (c, width))


def _context(P: Score, values: sp.IndexedBase) -> Score:
    """$O_{ic} = \\sum_j P_{ij} V_{jc}$."""
    return lambda ii, cc: _sum(P(ii, j) * values[j, cc], (j, n))


def _dP(values: sp.IndexedBase) -> Score:
    """$\\bar P_{ij} = \\sum_c \\bar O_{ic} V_{jc}$."""
    return lambda ii, jj: _sum(g[ii, c] * values[jj, c], (c, d_v))


# --- scaled dot-product (Vaswani 2017) ---------------------------------------------------

def sdpa_score(ii: sp.Expr, jj: sp.Expr) -> sp.Expr:
    """$S_{ij} = \\sum_a Q_{ia} K_{ja} / \\sqrt{d_k}$."""
    return _sum(Q[ii, a] * K[jj, a], (a, d_k)) / sp.sqrt(d_k)


def _sdpa_parts(mask: sp.IndexedBase | None = None) -> tuple[Score, Score, Score, sp.Expr]:
    """$P$, $\\bar P$, $\\bar S$ and $L$ of scaled dot-product attention."""
    P = lambda ii, jj: softmax(sdpa_score, ii, jj, mask)           # noqa: E731
    dS = lambda ii, jj: softmax_backward(P, _dP(V), ii, jj)        # noqa: E731
    return P, _dP(V), dS, loss(_context(P, V), d_v)


def sdpa_dV(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\bar V = P^\\top \\bar O$ (wrong: $P \\bar O$)."""
    P, _, _, L = _sdpa_parts(mask)
    rhs = _sum((P(x, i) if wrong else P(i, x)) * g[i, y], (i, m))
    return sp.diff(L, V[x, y]), rhs, {x: KEYS, y: DV}


def sdpa_dP(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\bar P = \\bar O V^\\top$, with $P$ an independent input (wrong: an index)."""
    L = loss(_context(lambda ii, jj: Pm[ii, jj], V), d_v)
    rhs = _sum(g[x, c] * V[x if wrong else y, c], (c, d_v))
    return sp.diff(L, Pm[x, y]), rhs, {x: QUERIES, y: KEYS}


def _scores_as_input(mask: sp.IndexedBase | None = None) -> tuple[Score, Score, sp.Expr]:
    """$P$, $\\bar P$ and $L$ with the scores $S$ an independent input."""
    P = lambda ii, jj: softmax(lambda p, o: Sm[p, o], ii, jj, mask)  # noqa: E731
    return P, _dP(V), loss(_context(P, V), d_v)


def sdpa_dS(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\bar S = P \\odot (\\bar P - \\operatorname{rowsum}(P \\odot \\bar P))$ (wrong:
    $P \\odot \\bar P$)."""
    P, dP, L = _scores_as_input(mask)
    rhs = P(x, y) * dP(x, y) if wrong else softmax_backward(P, dP, x, y)
    return sp.diff(L, Sm[x, y]), rhs, {x: QUERIES, y: KEYS}


def sdpa_dS_via_D(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\bar S = P \\odot (\\bar P - D)$, $D = \\operatorname{rowsum}(\\bar O \\odot O)$
    (wrong: no $D$)."""
    P, dP, L = _scores_as_input(mask)
    D = _sum(g[x, c] * _context(P, V)(x, c), (c, d_v))
    rhs = P(x, y) * (dP(x, y) - (0 if wrong else D))
    return sp.diff(L, Sm[x, y]), rhs, {x: QUERIES, y: KEYS}


def sdpa_rowsum(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\operatorname{rowsum}(P \\odot \\bar P) = \\operatorname{rowsum}(\\bar O \\odot O)$
    (wrong: $V$ for $O$); not a derivative: both sides are closed forms."""
    P, dP, _, _ = _sdpa_parts(mask)
    lhs = _sum(P(x, l) * dP(x, l), (l, n))
    rhs = _sum(g[x, c] * (V[x, c] if wrong else _context(P, V)(x, c)), (c, d_v))
    return lhs, rhs, {x: QUERIES}


def sdpa_dQ(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\bar Q = \\bar S K / \\sqrt{d_k}$ (wrong: no $1/\\sqrt{d_k}$)."""
    _, _, dS, L = _sdpa_parts(mask)
    rhs = _sum(dS(x, j) * K[j, y], (j, n)) * (1 if wrong else 1 / sp.sqrt(d_k))
    return sp.diff(L, Q[x, y]), rhs, {x: QUERIES, y: DK}


def sdpa_dK(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\bar K = \\bar S^\\top Q / \\sqrt{d_k}$ (wrong: no $1/\\sqrt{d_k}$)."""
    _, _, dS, L = _sdpa_parts(mask)
    rhs = _sum(dS(i, x) * Q[i, y], (i, m)) * (1 if wrong else 1 / sp.sqrt(d_k))
    return sp.diff(L, K[x, y]), rhs, {x: KEYS, y: DK}


def softmax_jacobian(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\partial P_{ij} / \\partial S_{xy} = \\delta_{ix} P_{ij} (\\delta_{jy} - P_{iy})$
    (wrong: $+ P_{iy}$)."""
    P = lambda ii, jj: softmax(lambda p, o: Sm[p, o], ii, jj, mask)  # noqa: E731
    sign = 1 if wrong else -1
    rhs = sp.KroneckerDelta(i, x) * P(i, j) * (sp.KroneckerDelta(j, y) + sign * P(i, y))
    return sp.diff(P(i, j), Sm[x, y]), rhs, {i: QUERIES, j: KEYS, x: QUERIES, y: KEYS}


def _scores_softmax(mask: sp.IndexedBase | None) -> Score:
    """$P_{ij} = \\operatorname{softmax}_j S_{ij}$ with the scores an independent input."""
    return lambda ii, jj: softmax(lambda p, o: Sm[p, o], ii, jj, mask)


def softmax_rows(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\sum_j P_{xj} = 1$: a softmax row sums to one, $Z \\cdot 1/Z = 1$ (wrong: a
    column, $\\sum_i P_{ix} = 1$)."""
    P = _scores_softmax(mask)
    lhs = _sum(P(i, x), (i, m)) if wrong else _sum(P(x, j), (j, n))
    return lhs, sp.Integer(1), {x: KEYS if wrong else QUERIES}


def softmax_jacobian_rows(mask: sp.IndexedBase | None = None, wrong: bool = False
                          ) -> Identity:
    """$\\sum_j \\partial P_{ij} / \\partial S_{xy} = 0$: the outputs of a softmax row
    keep summing to one (wrong: summed over the queries $i$ instead)."""
    P = _scores_softmax(mask)
    if wrong:
        return _sum(sp.diff(P(i, j), Sm[x, y]), (i, m)), sp.Integer(0), \
            {j: KEYS, x: QUERIES, y: KEYS}
    return _sum(sp.diff(P(i, j), Sm[x, y]), (j, n)), sp.Integer(0), \
        {i: QUERIES, x: QUERIES, y: KEYS}


def sdpa_dS_rows(mask: sp.IndexedBase | None = None, wrong: bool = False) -> Identity:
    """$\\sum_y \\partial L / \\partial S_{xy} = 0$: adding a constant to a row of
    scores changes nothing (wrong: $= \\sum_y \\bar P_{xy}$, the rowsum term dropped)."""
    _, dP, L = _scores_as_input(mask)
    rhs = _sum(dP(x, y), (y, n)) if wrong else sp.Integer(0)
    return _sum(sp.diff(L, Sm[x, y]), (y, n)), rhs, {x: QUERIES}


# --- additive (Bahdanau 2014) -------------------------------------------------------------

def additive_preactivation(ii: sp.Expr, jj: sp.Expr, rr: sp.Expr) -> sp.Expr:
    """$U_{ijr} = \\sum_a Q_{ia} (W_q)_{ar} + \\sum_b K_{jb} (W_k)_{br}$."""
    return _sum(Q[ii, a] * Wq[a, rr], (a, d_q)) + _sum(K[jj, b] * Wk[b, rr], (b, d_k))


def additive_score(ii: sp.Expr, jj: sp.Expr) -> sp.Expr:
    """$S_{ij} = \\sum_r v_r \\tanh(U_{ijr})$."""
    return _sum(v[r] * sp.tanh(additive_preactivation(ii, jj, r)), (r, h))


def _additive_parts() -> tuple[Score, Score, Callable[..., sp.Expr], sp.Expr]:
    """$P$, $\\bar S$, $\\bar U$ (wrong: without $1 - \\tanh^2$) and $L$."""
    P = lambda ii, jj: softmax(additive_score, ii, jj)                 # noqa: E731
    dS = lambda ii, jj: softmax_backward(P, _dP(V), ii, jj)            # noqa: E731

    def dU(ii: sp.Expr, jj: sp.Expr, rr: sp.Expr, wrong: bool = False) -> sp.Expr:
        """$\\bar U_{ijr} = \\bar S_{ij}\\, v_r (1 - \\tanh^2 U_{ijr})$."""
        tanh_prime = 1 if wrong else 1 - sp.tanh(additive_preactivation(ii, jj, rr)) ** 2
        return dS(ii, jj) * v[rr] * tanh_prime
    return P, dS, dU, loss(_context(P, V), d_v)


def additive_dV(wrong: bool = False) -> Identity:
    """$\\bar V = P^\\top \\bar O$ (wrong: $P \\bar O$)."""
    P, _, _, L = _additive_parts()
    rhs = _sum((P(x, i) if wrong else P(i, x)) * g[i, y], (i, m))
    return sp.diff(L, V[x, y]), rhs, {x: KEYS, y: DV}


def additive_dv(wrong: bool = False) -> Identity:
    """$\\bar v_r = \\sum_{ij} \\bar S_{ij} \\tanh U_{ijr}$ (wrong: $U$ for $\\tanh U$)."""
    _, dS, _, L = _additive_parts()
    u = additive_preactivation(i, j, x)
    rhs = _sum(dS(i, j) * (u if wrong else sp.tanh(u)), (i, m), (j, n))
    return sp.diff(L, v[x]), rhs, {x: HIDDEN}


def additive_dWq(wrong: bool = False) -> Identity:
    """$\\bar W_q = \\sum_j Q^\\top \\bar U_{:j:}$ (wrong: no $1 - \\tanh^2$)."""
    _, _, dU, L = _additive_parts()
    rhs = _sum(Q[i, x] * dU(i, j, y, wrong), (i, m), (j, n))
    return sp.diff(L, Wq[x, y]), rhs, {x: DQ, y: HIDDEN}


def additive_dWk(wrong: bool = False) -> Identity:
    """$\\bar W_k = \\sum_i K^\\top \\bar U_{i::}$ (wrong: no $1 - \\tanh^2$)."""
    _, _, dU, L = _additive_parts()
    rhs = _sum(K[j, x] * dU(i, j, y, wrong), (i, m), (j, n))
    return sp.diff(L, Wk[x, y]), rhs, {x: DK, y: HIDDEN}


def additive_dQ(wrong: bool = False) -> Identity:
    """$\\bar Q = (\\sum_j \\bar U_{:j:}) W_q^\\top$ (wrong: no $1 - \\tanh^2$)."""
    _, _, dU, L = _additive_parts()
    rhs = _sum(dU(x, j, r, wrong) * Wq[y, r], (j, n), (r, h))
    return sp.diff(L, Q[x, y]), rhs, {x: QUERIES, y: DQ}


def additive_dK(wrong: bool = False) -> Identity:
    """$\\bar K = (\\sum_i \\bar U_{i::}) W_k^\\top$ (wrong: no $1 - \\tanh^2$)."""
    _, _, dU, L = _additive_parts()
    rhs = _sum(dU(i, x, r, wrong) * Wk[y, r], (i, m), (r, h))
    return sp.diff(L, K[x, y]), rhs, {x: KEYS, y: DK}


def additive_tanh_backward(wrong: bool = False) -> Identity:
    """$\\bar U = \\bar S\\, v (1 - \\tanh^2 U)$ with the pre-activations $U$ an independent
    input: the $1 - \\tanh^2$ factor alone (wrong: without it)."""
    score = lambda ii, jj: _sum(v[r] * sp.tanh(U[ii, jj, r]), (r, h))  # noqa: E731
    P = lambda ii, jj: softmax(score, ii, jj)                         # noqa: E731
    L = loss(_context(P, V), d_v)
    tanh_prime = 1 if wrong else 1 - sp.tanh(U[x, y, z]) ** 2
    rhs = softmax_backward(P, _dP(V), x, y) * v[z] * tanh_prime
    return sp.diff(L, U[x, y, z]), rhs, {x: QUERIES, y: KEYS, z: HIDDEN}


# --- Luong dot and general (Luong et al. 2015) --------------------------------------------

def _luong_parts(general: bool) -> tuple[Score, sp.Expr]:
    """$\\bar S$ and $L$ of the dot score $Q K^\\top$ or the general score $Q W K^\\top$."""
    if general:
        score = lambda ii, jj: _sum(Q[ii, a] * W[a, b] * K[jj, b], (a, d_q), (b, d_k))  # noqa
    else:
        score = lambda ii, jj: _sum(Q[ii, a] * K[jj, a], (a, d_k))  # noqa: E731
    P = lambda ii, jj: softmax(score, ii, jj)                       # noqa: E731
    dS = lambda ii, jj: softmax_backward(P, _dP(V), ii, jj)         # noqa: E731
    return dS, loss(_context(P, V), d_v)


def dot_dQ(wrong: bool = False) -> Identity:
    """$\\bar Q = \\bar S K$ (wrong: a $1/\\sqrt{d_k}$ the dot score does not have)."""
    dS, L = _luong_parts(False)
    rhs = _sum(dS(x, j) * K[j, y], (j, n)) / (sp.sqrt(d_k) if wrong else 1)
    return sp.diff(L, Q[x, y]), rhs, {x: QUERIES, y: DK}


def dot_dK(wrong: bool = False) -> Identity:
    """$\\bar K = \\bar S^\\top Q$ (wrong: $K$ for $Q$)."""
    dS, L = _luong_parts(False)
    rhs = _sum(dS(i, x) * (K[i, y] if wrong else Q[i, y]), (i, m))
    return sp.diff(L, K[x, y]), rhs, {x: KEYS, y: DK}


def general_dW(wrong: bool = False) -> Identity:
    """$\\bar W = Q^\\top \\bar S K$ (wrong: an index)."""
    dS, L = _luong_parts(True)
    rhs = _sum(Q[i, x] * dS(i, j) * K[j, (x if wrong else y)], (i, m), (j, n))
    return sp.diff(L, W[x, y]), rhs, {x: DQ, y: DK}


def general_dQ(wrong: bool = False) -> Identity:
    """$\\bar Q = \\bar S K W^\\top$ (wrong: $W$ not transposed)."""
    dS, L = _luong_parts(True)
    rhs = _sum(dS(x, j) * K[j, b] * W[(b, y) if wrong else (y, b)], (j, n), (b, d_k))
    return sp.diff(L, Q[x, y]), rhs, {x: QUERIES, y: DQ}


def general_dK(wrong: bool = False) -> Identity:
    """$\\bar K = \\bar S^\\top Q W$ (wrong: $W^\\top$)."""
    dS, L = _luong_parts(True)
    rhs = _sum(dS(i, x) * Q[i, a] * W[(y, a) if wrong else (a, y)], (i, m), (a, d_q))
    return sp.diff(L, K[x, y]), rhs, {x: KEYS, y: DK}


# --- multi-head, head axis explicit (Vaswani 2017, section 3.2.2) -------------------------
# Q_{tib} = sum_a (X_q)_{ia} (W_q)_{atb}; head t owns (W_q)[:, t, :] -- the PyTorch column
# block t*d_h:(t+1)*d_h, with the head written as its own index.

def _mh_parts() -> tuple[dict[str, Callable[..., sp.Expr]], sp.Expr]:
    """The per-head $Q, K, V, P, C$ and adjoints $\\bar C, \\bar S$ of multi-head
    attention (by name), and $L = \\sum_{is} \\bar O_{is} O_{is}$."""
    Qh = lambda tt, ii, bb: _sum(Xq[ii, a] * Wq[a, tt, bb], (a, d_model))    # noqa: E731
    Kh = lambda tt, jj, bb: _sum(Xkv[jj, a] * Wk[a, tt, bb], (a, d_model))   # noqa: E731
    Vh = lambda tt, jj, cc: _sum(Xkv[jj, a] * Wv[a, tt, cc], (a, d_model))   # noqa: E731
    score = lambda tt: (lambda ii, jj: _sum(Qh(tt, ii, b) * Kh(tt, jj, b), (b, d_h))
                        / sp.sqrt(d_h))                                    # noqa: E731
    P = lambda tt, ii, jj: softmax(score(tt), ii, jj)                      # noqa: E731
    C = lambda tt, ii, cc: _sum(P(tt, ii, j) * Vh(tt, j, cc), (j, n))      # noqa: E731
    out = lambda ii, rr: _sum(C(t, ii, c) * Wo[t, c, rr], (t, H), (c, d_h))  # noqa: E731
    L = _sum(g[i, s] * out(i, s), (i, m), (s, d_model))  # s: out binds c itself
    dC = lambda tt, ii, cc: _sum(g[ii, s] * Wo[tt, cc, s], (s, d_model))   # noqa: E731
    dP = lambda tt, ii, jj: _sum(dC(tt, ii, c) * Vh(tt, jj, c), (c, d_h))  # noqa: E731
    dS = lambda tt, ii, jj: softmax_backward(lambda p, o: P(tt, p, o),
                                             lambda p, o: dP(tt, p, o), ii, jj)  # noqa
    return dict(Q=Qh, K=Kh, V=Vh, P=P, C=C, dC=dC, dS=dS), L


def mh_dWo(wrong: bool = False) -> Identity:
    """$(\\bar W_o)_{tcs} = \\sum_i C_{tic} \\bar O_{is}$ (wrong: an index)."""
    p, L = _mh_parts()
    rhs = _sum(p["C"](x, i, y) * g[i, (y if wrong else z)], (i, m))
    return sp.diff(L, Wo[x, y, z]), rhs, {x: HEADS, y: DH, z: DMODEL}


def mh_dWv(wrong: bool = False) -> Identity:
    """$(\\bar W_v)_{atc} = \\sum_j (X_{kv})_{ja} \\bar V_{tjc}$ (wrong: the query input)."""
    p, L = _mh_parts()
    dV = lambda tt, jj, cc: _sum(p["P"](tt, i, jj) * p["dC"](tt, i, cc), (i, m))  # noqa
    rhs = _sum((Xq if wrong else Xkv)[j, x] * dV(y, j, z), (j, n))
    return sp.diff(L, Wv[x, y, z]), rhs, {x: DMODEL, y: HEADS, z: DH}


def mh_dWq(wrong: bool = False) -> Identity:
    """$(\\bar W_q)_{atb} = \\sum_i (X_q)_{ia} \\bar Q_{tib}$ (wrong: no $1/\\sqrt{d_h}$)."""
    p, L = _mh_parts()
    dQ = lambda tt, ii, bb: (_sum(p["dS"](tt, ii, j) * p["K"](tt, j, bb), (j, n))
                             * (1 if wrong else 1 / sp.sqrt(d_h)))       # noqa: E731
    rhs = _sum(Xq[i, x] * dQ(y, i, z), (i, m))
    return sp.diff(L, Wq[x, y, z]), rhs, {x: DMODEL, y: HEADS, z: DH}


def mh_dWk(wrong: bool = False) -> Identity:
    """$(\\bar W_k)_{atb} = \\sum_j (X_{kv})_{ja} \\bar K_{tjb}$."""
    p, L = _mh_parts()
    dK = lambda tt, jj, bb: (_sum(p["dS"](tt, i, jj) * p["Q"](tt, i, bb), (i, m))
                             * (1 if wrong else 1 / sp.sqrt(d_h)))       # noqa: E731
    rhs = _sum(Xkv[j, x] * dK(y, j, z), (j, n))
    return sp.diff(L, Wk[x, y, z]), rhs, {x: DMODEL, y: HEADS, z: DH}
