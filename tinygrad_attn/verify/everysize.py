"""The attention mechanisms in index notation, and their gradients proven for every size.

Each mechanism is written with ``sympy.IndexedBase`` and ``Sum`` over symbolic ranges
($n$ queries, $m$ keys, widths $d$, $e$, $h$, ...). A :class:`Claim` states a closed-form
gradient; ``claim.prove()`` differentiates the scalar loss $L = \\sum_{ic} G_{ic} O_{ic}$
with ``sympy.diff`` and decides equality with :func:`tinygrad_attn.indexcalc.prove_equal`.

Scaled dot-product attention (Vaswani et al. 2017, eq. 1):

$$S_{ij} = \\tfrac{1}{\\sqrt d}\\sum_a Q_{ia}K_{ja},\\quad
  P_{ij} = \\frac{e^{S_{ij}}}{\\sum_k e^{S_{ik}}},\\quad O_{ic} = \\sum_j P_{ij}V_{jc}.$$

Additive attention (Bahdanau et al. 2014, eq. 6 and appendix A.1.2):

$$e_{ij} = \\sum_r v_r \\tanh\\Big(\\sum_a q_{ia}W^q_{ar} + \\sum_b k_{jb}W^k_{br}\\Big).$$

Public entry points: :data:`CLAIMS`, :data:`NEGATIVE_CONTROLS`, :func:`claims_for`,
:func:`prove_all`, :func:`every_size_section`, :func:`timing_table`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from .indexcalc import Range, prove_equal
from .proof import Proof

__all__ = ["Claim", "CLAIMS", "NEGATIVE_CONTROLS", "MECHANISMS", "claims_for", "prove_all",
           "every_size_section", "timing_table", "SIZES"]

# ---------------------------------------------------------------------------------------
# Sizes, index variables, tensors

_pos = dict(positive=True, integer=True)
n, m, d, e, h = sp.symbols("n m d e h", **_pos)      # queries, keys, key width, value width,
d_k = sp.Symbol("d_k", **_pos)                        # hidden units; additive key width
H, d_h = sp.symbols("H d_h", **_pos)                  # heads, head width
SIZES: dict[str, sp.Symbol] = {"n": n, "m": m, "d": d, "e": e, "h": h, "d_k": d_k, "H": H,
                               "d_h": d_h}

_int = dict(integer=True)
i, j, k, l, a, b, c, r, t, s = sp.symbols("i j k l a b c r t s", **_int)   # bound indices
x, y, z, w = sp.symbols("x y z w", **_int)                               # free indices

Q, K, V, G = (sp.IndexedBase(name) for name in "QKVG")
Pm, Sm, M = sp.IndexedBase("P"), sp.IndexedBase("S"), sp.IndexedBase("M")
q, kk, val, Wq, Wk, v = (sp.IndexedBase(name) for name in ("q", "k", "val", "W_q", "W_k", "v"))
X, Xkv, Wv, Wo, W = (sp.IndexedBase(name) for name in ("X", "X_kv", "W_v", "W_o", "W"))
pre = sp.IndexedBase("u")


def _rng(size: sp.Expr) -> Range:
    return (sp.Integer(0), size - 1)


N, Mr, D, E, Hr, Dk = _rng(n), _rng(m), _rng(d), _rng(e), _rng(h), _rng(d_k)
HEADS, DH = _rng(H), _rng(d_h)


def _sum(body: sp.Expr, *limits: tuple) -> sp.Expr:
    """$\\sum$ over ``(var, size)`` pairs, each var running over $0..size-1$."""
    return sp.Sum(body, *[(var, 0, size - 1) for var, size in limits])


# ---------------------------------------------------------------------------------------
# Softmax attention, generic in its score function

Score = Callable[[sp.Expr, sp.Expr], sp.Expr]


def softmax(score: Score, ii: sp.Expr, jj: sp.Expr, mask: sp.IndexedBase | None = None
            ) -> sp.Expr:
    """$P_{ij} = M_{ij} e^{S_{ij}} / \\sum_k M_{ik} e^{S_{ik}}$ (no $M$ when unmasked)."""
    mk = (lambda p, o: mask[p, o]) if mask is not None else (lambda p, o: 1)
    return mk(ii, jj) * sp.exp(score(ii, jj)) / _sum(mk(ii, k) * sp.exp(score(ii, k)), (k, m))


def softmax_backward(P: Score, dP: Score, ii: sp.Expr, jj: sp.Expr) -> sp.Expr:
    """$dS_{ij} = P_{ij}\\,(dP_{ij} - \\sum_l P_{il}\\,dP_{il})$."""
    return P(ii, jj) * (dP(ii, jj) - _sum(P(ii, l) * dP(ii, l), (l, m)))


def _loss(out: Score, width: sp.Expr, rows: sp.Expr = n) -> sp.Expr:
    """$L = \\sum_{ic} G_{ic} O_{ic}$: G plays the upstream gradient $\\partial L/\\partial O$."""
    return _sum(G[i, c] * out(i, c), (i, rows), (c, width))


# --- scaled dot-product (Vaswani 2017) ---------------------------------------------------

def sdpa_score(ii: sp.Expr, jj: sp.Expr) -> sp.Expr:
    """$S_{ij} = \\sum_a Q_{ia} K_{ja} / \\sqrt d$."""
    return _sum(Q[ii, a] * K[jj, a], (a, d)) / sp.sqrt(d)


def _sdpa_parts(mask: sp.IndexedBase | None = None) -> tuple[Score, Score, Score, sp.Expr]:
    P = lambda ii, jj: softmax(sdpa_score, ii, jj, mask)           # noqa: E731
    dP = lambda ii, jj: _sum(G[ii, c] * V[jj, c], (c, e))          # noqa: E731
    dS = lambda ii, jj: softmax_backward(P, dP, ii, jj)            # noqa: E731
    L = _loss(lambda ii, cc: _sum(P(ii, j) * V[j, cc], (j, m)), e)
    return P, dP, dS, L


def _sdpa_dV(mask=None, wrong=False):
    P, _, _, L = _sdpa_parts(mask)
    rhs = _sum((P(x, i) if wrong else P(i, x)) * G[i, y], (i, n))
    return sp.diff(L, V[x, y]), rhs, {x: Mr, y: E}


def _sdpa_dP(mask=None, wrong=False):
    L = _loss(lambda ii, cc: _sum(Pm[ii, j] * V[j, cc], (j, m)), e)
    rhs = _sum(G[x, c] * V[y, c], (c, e)) if not wrong else _sum(G[x, c] * V[x, c], (c, e))
    return sp.diff(L, Pm[x, y]), rhs, {x: N, y: Mr}


def _scores_as_input(mask=None):
    """P, dP, L with the scores S an independent input."""
    P = lambda ii, jj: softmax(lambda p, o: Sm[p, o], ii, jj, mask)  # noqa: E731
    dP = lambda ii, jj: _sum(G[ii, c] * V[jj, c], (c, e))           # noqa: E731
    L = _loss(lambda ii, cc: _sum(P(ii, j) * V[j, cc], (j, m)), e)
    return P, dP, L


def _sdpa_dS(mask=None, wrong=False):
    P, dP, L = _scores_as_input(mask)
    rhs = P(x, y) * dP(x, y) if wrong else softmax_backward(P, dP, x, y)
    return sp.diff(L, Sm[x, y]), rhs, {x: N, y: Mr}


def _sdpa_dS_via_D(mask=None, wrong=False):
    P, dP, L = _scores_as_input(mask)
    O = lambda ii, cc: _sum(P(ii, j) * V[j, cc], (j, m))           # noqa: E731
    Dx = _sum(G[x, c] * O(x, c), (c, e))
    rhs = P(x, y) * (dP(x, y) - (0 if wrong else Dx))
    return sp.diff(L, Sm[x, y]), rhs, {x: N, y: Mr}


def _sdpa_rowsum(mask=None, wrong=False):
    P, dP, _, _ = _sdpa_parts(mask)
    O = lambda ii, cc: _sum(P(ii, j) * V[j, cc], (j, m))           # noqa: E731
    lhs = _sum(P(x, l) * dP(x, l), (l, m))
    rhs = _sum(G[x, c] * (V[x, c] if wrong else O(x, c)), (c, e))
    return lhs, rhs, {x: N}


def _sdpa_dQ(mask=None, wrong=False):
    _, _, dS, L = _sdpa_parts(mask)
    rhs = _sum(dS(x, j) * K[j, y], (j, m)) * (1 if wrong else 1 / sp.sqrt(d))
    return sp.diff(L, Q[x, y]), rhs, {x: N, y: D}


def _sdpa_dK(mask=None, wrong=False):
    _, _, dS, L = _sdpa_parts(mask)
    rhs = _sum(dS(i, x) * Q[i, y], (i, n)) * (1 if wrong else 1 / sp.sqrt(d))
    return sp.diff(L, K[x, y]), rhs, {x: Mr, y: D}


def _softmax_jacobian(mask=None, wrong=False):
    P = lambda ii, jj: softmax(lambda p, o: Sm[p, o], ii, jj, mask)  # noqa: E731
    sign = 1 if wrong else -1
    rhs = sp.KroneckerDelta(i, x) * P(i, j) * (sp.KroneckerDelta(j, y) + sign * P(i, y))
    return sp.diff(P(i, j), Sm[x, y]), rhs, {i: N, j: Mr, x: N, y: Mr}


# --- additive (Bahdanau 2014) -------------------------------------------------------------

def additive_preactivation(ii: sp.Expr, jj: sp.Expr, rr: sp.Expr) -> sp.Expr:
    """$u_{ijr} = \\sum_a q_{ia} W^q_{ar} + \\sum_b k_{jb} W^k_{br}$."""
    return _sum(q[ii, a] * Wq[a, rr], (a, d)) + _sum(kk[jj, b] * Wk[b, rr], (b, d_k))


def additive_score(ii: sp.Expr, jj: sp.Expr) -> sp.Expr:
    """$e_{ij} = \\sum_r v_r \\tanh(u_{ijr})$."""
    return _sum(v[r] * sp.tanh(additive_preactivation(ii, jj, r)), (r, h))


def _additive_parts():
    P = lambda ii, jj: softmax(additive_score, ii, jj)                 # noqa: E731
    dP = lambda ii, jj: _sum(G[ii, c] * val[jj, c], (c, e))            # noqa: E731
    dS = lambda ii, jj: softmax_backward(P, dP, ii, jj)                # noqa: E731
    L = _loss(lambda ii, cc: _sum(P(ii, j) * val[j, cc], (j, m)), e)

    def dU(ii, jj, rr, wrong=False):
        """$du_{ijr} = de_{ij}\\, v_r (1 - \\tanh^2 u_{ijr})$."""
        tanh_prime = 1 if wrong else 1 - sp.tanh(additive_preactivation(ii, jj, rr)) ** 2
        return dS(ii, jj) * v[rr] * tanh_prime
    return P, dS, dU, L


def _additive_dvalues(wrong=False):
    P, _, _, L = _additive_parts()
    rhs = _sum((P(x, i) if wrong else P(i, x)) * G[i, y], (i, n))
    return sp.diff(L, val[x, y]), rhs, {x: Mr, y: E}


def _additive_dv(wrong=False):
    _, dS, _, L = _additive_parts()
    u = additive_preactivation(i, j, x)
    rhs = _sum(dS(i, j) * (u if wrong else sp.tanh(u)), (i, n), (j, m))
    return sp.diff(L, v[x]), rhs, {x: Hr}


def _additive_dWq(wrong=False):
    _, _, dU, L = _additive_parts()
    rhs = _sum(q[i, x] * dU(i, j, y, wrong), (i, n), (j, m))
    return sp.diff(L, Wq[x, y]), rhs, {x: D, y: Hr}


def _additive_dWk(wrong=False):
    _, _, dU, L = _additive_parts()
    rhs = _sum(kk[j, x] * dU(i, j, y, wrong), (i, n), (j, m))
    return sp.diff(L, Wk[x, y]), rhs, {x: Dk, y: Hr}


def _additive_dq(wrong=False):
    _, _, dU, L = _additive_parts()
    rhs = _sum(dU(x, j, r, wrong) * Wq[y, r], (j, m), (r, h))
    return sp.diff(L, q[x, y]), rhs, {x: N, y: D}


def _additive_dk(wrong=False):
    _, _, dU, L = _additive_parts()
    rhs = _sum(dU(i, x, r, wrong) * Wk[y, r], (i, n), (r, h))
    return sp.diff(L, kk[x, y]), rhs, {x: Mr, y: Dk}


def _additive_tanh_backward(wrong=False):
    """Pre-activations $u$ as an independent input: the $1 - \\tanh^2$ factor alone."""
    score = lambda ii, jj: _sum(v[r] * sp.tanh(pre[ii, jj, r]), (r, h))  # noqa: E731
    P = lambda ii, jj: softmax(score, ii, jj)                           # noqa: E731
    dP = lambda ii, jj: _sum(G[ii, c] * val[jj, c], (c, e))             # noqa: E731
    L = _loss(lambda ii, cc: _sum(P(ii, j) * val[j, cc], (j, m)), e)
    tanh_prime = 1 if wrong else 1 - sp.tanh(pre[x, y, z]) ** 2
    rhs = softmax_backward(P, dP, x, y) * v[z] * tanh_prime
    return sp.diff(L, pre[x, y, z]), rhs, {x: N, y: Mr, z: Hr}


# --- Luong dot and general (Luong et al. 2015) --------------------------------------------

def _luong_parts(general: bool):
    if general:
        score = lambda ii, jj: _sum(Q[ii, a] * W[a, b] * K[jj, b], (a, d), (b, d))  # noqa
    else:
        score = lambda ii, jj: _sum(Q[ii, a] * K[jj, a], (a, d))  # noqa: E731
    P = lambda ii, jj: softmax(score, ii, jj)                       # noqa: E731
    dP = lambda ii, jj: _sum(G[ii, c] * V[jj, c], (c, e))           # noqa: E731
    dS = lambda ii, jj: softmax_backward(P, dP, ii, jj)             # noqa: E731
    L = _loss(lambda ii, cc: _sum(P(ii, j) * V[j, cc], (j, m)), e)
    return dS, L


def _dot_dQ(wrong=False):
    dS, L = _luong_parts(False)
    rhs = _sum(dS(x, j) * K[j, y], (j, m)) / (sp.sqrt(d) if wrong else 1)
    return sp.diff(L, Q[x, y]), rhs, {x: N, y: D}


def _dot_dK(wrong=False):
    dS, L = _luong_parts(False)
    rhs = _sum(dS(i, x) * (K[i, y] if wrong else Q[i, y]), (i, n))
    return sp.diff(L, K[x, y]), rhs, {x: Mr, y: D}


def _general_dW(wrong=False):
    dS, L = _luong_parts(True)
    rhs = _sum(Q[i, x] * dS(i, j) * K[j, (x if wrong else y)], (i, n), (j, m))
    return sp.diff(L, W[x, y]), rhs, {x: D, y: D}


def _general_dQ(wrong=False):
    dS, L = _luong_parts(True)
    rhs = _sum(dS(x, j) * K[j, b] * W[(b, y) if wrong else (y, b)], (j, m), (b, d))
    return sp.diff(L, Q[x, y]), rhs, {x: N, y: D}


def _general_dK(wrong=False):
    dS, L = _luong_parts(True)
    rhs = _sum(dS(i, x) * Q[i, a] * W[(y, a) if wrong else (a, y)], (i, n), (a, d))
    return sp.diff(L, K[x, y]), rhs, {x: Mr, y: D}


# --- multi-head, head axis explicit (Vaswani 2017, section 3.2.2) -------------------------
# Q_{tib} = sum_a X_{ia} W^q_{atb}; head t owns W^q[:, t, :] -- the PyTorch column block
# t*d_h:(t+1)*d_h, with the head written as its own index.

def _mh_parts(self_attention: bool = False):
    Xk = X if self_attention else Xkv
    Qh = lambda tt, ii, bb: _sum(X[ii, a] * Wq[a, tt, bb], (a, d))      # noqa: E731
    Kh = lambda tt, jj, bb: _sum(Xk[jj, a] * Wk[a, tt, bb], (a, d))     # noqa: E731
    Vh = lambda tt, jj, cc: _sum(Xk[jj, a] * Wv[a, tt, cc], (a, d))     # noqa: E731
    score = lambda tt: (lambda ii, jj: _sum(Qh(tt, ii, b) * Kh(tt, jj, b), (b, d_h))
                        / sp.sqrt(d_h))                                # noqa: E731
    P = lambda tt, ii, jj: softmax(score(tt), ii, jj)                  # noqa: E731
    C = lambda tt, ii, cc: _sum(P(tt, ii, j) * Vh(tt, j, cc), (j, m))  # noqa: E731
    out = lambda ii, rr: _sum(C(t, ii, c) * Wo[t, c, rr], (t, H), (c, d_h))  # noqa: E731
    L = _sum(G[i, s] * out(i, s), (i, n), (s, d))
    dC = lambda tt, ii, cc: _sum(G[ii, s] * Wo[tt, cc, s], (s, d))     # noqa: E731
    dP = lambda tt, ii, jj: _sum(dC(tt, ii, c) * Vh(tt, jj, c), (c, d_h))  # noqa: E731
    dS = lambda tt, ii, jj: softmax_backward(lambda p, o: P(tt, p, o),
                                             lambda p, o: dP(tt, p, o), ii, jj)  # noqa
    parts = dict(Q=Qh, K=Kh, V=Vh, P=P, C=C, dC=dC, dS=dS)
    return parts, L


def _mh_dWo(wrong=False):
    p, L = _mh_parts()
    rhs = _sum(p["C"](x, i, y) * G[i, (y if wrong else z)], (i, n))
    return sp.diff(L, Wo[x, y, z]), rhs, {x: HEADS, y: DH, z: D}


def _mh_dWv(wrong=False):
    p, L = _mh_parts()
    dV = lambda tt, jj, cc: _sum(p["P"](tt, i, jj) * p["dC"](tt, i, cc), (i, n))  # noqa
    rhs = _sum(Xkv[j, x] * dV(y, j, z), (j, m))
    if wrong:
        rhs = _sum(X[j, x] * dV(y, j, z), (j, m))
    return sp.diff(L, Wv[x, y, z]), rhs, {x: D, y: HEADS, z: DH}


def _mh_dWq(wrong=False):
    p, L = _mh_parts()
    dQ = lambda tt, ii, bb: (_sum(p["dS"](tt, ii, j) * p["K"](tt, j, bb), (j, m))
                             * (1 if wrong else 1 / sp.sqrt(d_h)))       # noqa: E731
    rhs = _sum(X[i, x] * dQ(y, i, z), (i, n))
    return sp.diff(L, Wq[x, y, z]), rhs, {x: D, y: HEADS, z: DH}


def _mh_dWk(wrong=False):
    p, L = _mh_parts()
    dK = lambda tt, jj, bb: (_sum(p["dS"](tt, i, jj) * p["Q"](tt, i, bb), (i, n))
                             * (1 if wrong else 1 / sp.sqrt(d_h)))       # noqa: E731
    rhs = _sum(Xkv[j, x] * dK(y, j, z), (j, m))
    return sp.diff(L, Wk[x, y, z]), rhs, {x: D, y: HEADS, z: DH}


# ---------------------------------------------------------------------------------------
# Claims

@dataclass(frozen=True)
class Claim:
    """One identity: ``build()`` returns ``(lhs, rhs, ranges)``; ``prove()`` decides it.

    ``holds`` is False for a negative control (a deliberately wrong closed form), which
    the prover must not prove.
    """

    mechanism: str
    name: str
    latex: str
    build: Callable[[], tuple[sp.Expr, sp.Expr, dict]]
    holds: bool = True
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.mechanism}.{self.name}"

    def prove(self) -> Proof:
        """$\\partial L / \\partial X_{xy} = \\text{closed form}$, decided for symbolic sizes."""
        return _prove(self)


@functools.lru_cache(maxsize=None)
def _prove(claim: Claim) -> Proof:
    lhs, rhs, ranges = claim.build()
    return prove_equal(lhs, rhs, ranges, claim=claim.key)


V17, B14, L15 = "Vaswani et al. 2017", "Bahdanau et al. 2014", "Luong et al. 2015"
_SD = "\\tfrac{1}{\\sqrt d}"


def _c(mech: str, name: str, latex: str, fn: Callable, src: str, **kw) -> Claim:
    return Claim(mech, name, latex, functools.partial(fn, **kw), True, src)


def _bad(mech: str, name: str, latex: str, fn: Callable, src: str, **kw) -> Claim:
    return Claim(mech, name, latex, functools.partial(fn, wrong=True, **kw), False, src)


_dS_tex = "P_{xy}\\big(dP_{xy} - \\textstyle\\sum_l P_{xl}\\,dP_{xl}\\big)"
CLAIMS: tuple[Claim, ...] = (
    _c("scaled_dot_product", "dV = P^T G",
       "\\frac{\\partial L}{\\partial V_{xy}} = \\sum_i P_{ix} G_{iy}", _sdpa_dV, V17),
    _c("scaled_dot_product", "dP = G V^T",
       "\\frac{\\partial L}{\\partial P_{xy}} = \\sum_c G_{xc} V_{yc}", _sdpa_dP, V17),
    _c("scaled_dot_product", "dS = P * (dP - rowsum(P * dP))",
       f"\\frac{{\\partial L}}{{\\partial S_{{xy}}}} = {_dS_tex}", _sdpa_dS, V17),
    _c("scaled_dot_product", "rowsum(P * dP) = rowsum(G * O)",
       "\\sum_l P_{xl}\\,dP_{xl} = \\sum_c G_{xc} O_{xc}", _sdpa_rowsum, V17),
    _c("scaled_dot_product", "dS = P * (dP - D), D = rowsum(G * O)",
       "\\frac{\\partial L}{\\partial S_{xy}} = P_{xy}\\big(dP_{xy} - \\textstyle"
       "\\sum_c G_{xc}O_{xc}\\big)", _sdpa_dS_via_D, V17),
    _c("scaled_dot_product", "dQ = dS K / sqrt(d)",
       f"\\frac{{\\partial L}}{{\\partial Q_{{xy}}}} = {_SD}\\sum_j dS_{{xj}} K_{{jy}}",
       _sdpa_dQ, V17),
    _c("scaled_dot_product", "dK = dS^T Q / sqrt(d)",
       f"\\frac{{\\partial L}}{{\\partial K_{{xy}}}} = {_SD}\\sum_i dS_{{ix}} Q_{{iy}}",
       _sdpa_dK, V17),
    _c("scaled_dot_product", "softmax Jacobian",
       "\\frac{\\partial P_{ij}}{\\partial S_{xy}} = \\delta_{ix} P_{ij}"
       "(\\delta_{jy} - P_{iy})", _softmax_jacobian, V17),
    _c("scaled_dot_product", "masked dV = P^T G",
       "\\frac{\\partial L}{\\partial V_{xy}} = \\sum_i P_{ix} G_{iy}", _sdpa_dV, V17, mask=M),
    _c("scaled_dot_product", "masked dS = P * (dP - rowsum(P * dP))",
       f"\\frac{{\\partial L}}{{\\partial S_{{xy}}}} = {_dS_tex}", _sdpa_dS, V17, mask=M),
    _c("scaled_dot_product", "masked dQ = dS K / sqrt(d)",
       f"\\frac{{\\partial L}}{{\\partial Q_{{xy}}}} = {_SD}\\sum_j dS_{{xj}} K_{{jy}}",
       _sdpa_dQ, V17, mask=M),
    _c("scaled_dot_product", "masked dK = dS^T Q / sqrt(d)",
       f"\\frac{{\\partial L}}{{\\partial K_{{xy}}}} = {_SD}\\sum_i dS_{{ix}} Q_{{iy}}",
       _sdpa_dK, V17, mask=M),
    _c("scaled_dot_product", "masked softmax Jacobian",
       "\\frac{\\partial P_{ij}}{\\partial S_{xy}} = \\delta_{ix} P_{ij}"
       "(\\delta_{jy} - P_{iy})", _softmax_jacobian, V17, mask=M),
    _c("additive", "d values = alpha^T G",
       "\\frac{\\partial L}{\\partial \\mathit{val}_{xy}} = \\sum_i \\alpha_{ix} G_{iy}",
       _additive_dvalues, B14),
    _c("additive", "du = de v (1 - tanh^2 u)",
       "\\frac{\\partial L}{\\partial u_{xyz}} = de_{xy}\\, v_z (1 - \\tanh^2 u_{xyz})",
       _additive_tanh_backward, B14),
    _c("additive", "dv = sum_ij de_ij tanh(u_ij)",
       "\\frac{\\partial L}{\\partial v_x} = \\sum_{ij} de_{ij} \\tanh u_{ijx}",
       _additive_dv, B14),
    _c("additive", "dW_q = q^T du",
       "\\frac{\\partial L}{\\partial W^q_{xy}} = \\sum_{ij} q_{ix}\\, du_{ijy}",
       _additive_dWq, B14),
    _c("additive", "dW_k = k^T du",
       "\\frac{\\partial L}{\\partial W^k_{xy}} = \\sum_{ij} k_{jx}\\, du_{ijy}",
       _additive_dWk, B14),
    _c("additive", "dq = du W_q^T",
       "\\frac{\\partial L}{\\partial q_{xy}} = \\sum_{jr} du_{xjr} W^q_{yr}",
       _additive_dq, B14),
    _c("additive", "dk = du W_k^T",
       "\\frac{\\partial L}{\\partial k_{xy}} = \\sum_{ir} du_{ixr} W^k_{yr}",
       _additive_dk, B14),
    _c("dot_product", "dQ = dS K",
       "\\frac{\\partial L}{\\partial Q_{xy}} = \\sum_j dS_{xj} K_{jy}", _dot_dQ, L15),
    _c("dot_product", "dK = dS^T Q",
       "\\frac{\\partial L}{\\partial K_{xy}} = \\sum_i dS_{ix} Q_{iy}", _dot_dK, L15),
    _c("general", "dW = Q^T dS K",
       "\\frac{\\partial L}{\\partial W_{xy}} = \\sum_{ij} Q_{ix}\\, dS_{ij} K_{jy}",
       _general_dW, L15),
    _c("general", "dQ = dS K W^T",
       "\\frac{\\partial L}{\\partial Q_{xy}} = \\sum_{jb} dS_{xj} K_{jb} W_{yb}",
       _general_dQ, L15),
    _c("general", "dK = dS^T Q W",
       "\\frac{\\partial L}{\\partial K_{xy}} = \\sum_{ia} dS_{ix} Q_{ia} W_{ay}",
       _general_dK, L15),
    _c("multi_head", "dW_o = C^T G",
       "\\frac{\\partial L}{\\partial W^o_{xyz}} = \\sum_i C_{xiy} G_{iz}", _mh_dWo, V17),
    _c("multi_head", "dW_v = X_kv^T dV",
       "\\frac{\\partial L}{\\partial W^v_{xyz}} = \\sum_j X^{kv}_{jx}\\, dV_{yjz},\\ "
       "dV_{tjc} = \\sum_i P_{tij}\\, dC_{tic}", _mh_dWv, V17),
    _c("multi_head", "dW_q = X^T dQ",
       "\\frac{\\partial L}{\\partial W^q_{xyz}} = \\sum_i X_{ix}\\, dQ_{yiz},\\ "
       "dQ_{tib} = \\tfrac{1}{\\sqrt{d_h}} \\sum_j dS_{tij} K_{tjb}", _mh_dWq, V17),
    _c("multi_head", "dW_k = X_kv^T dK",
       "\\frac{\\partial L}{\\partial W^k_{xyz}} = \\sum_j X^{kv}_{jx}\\, dK_{yjz},\\ "
       "dK_{tjb} = \\tfrac{1}{\\sqrt{d_h}} \\sum_i dS_{tij} Q_{tib}", _mh_dWk, V17),
)

NEGATIVE_CONTROLS: tuple[Claim, ...] = (
    _bad("scaled_dot_product", "dV = P G (not transposed)",
         "\\sum_i P_{xi} G_{iy}", _sdpa_dV, V17),
    _bad("scaled_dot_product", "dP = G V^T with a wrong index",
         "\\sum_c G_{xc} V_{xc}", _sdpa_dP, V17),
    _bad("scaled_dot_product", "dS = P * dP (no D term)", "P_{xy}\\,dP_{xy}", _sdpa_dS, V17),
    _bad("scaled_dot_product", "dS = P * dP (no D = rowsum(G * O) term)",
         "P_{xy}\\,dP_{xy}", _sdpa_dS_via_D, V17),
    _bad("scaled_dot_product", "rowsum(P * dP) = rowsum(G * V)",
         "\\sum_c G_{xc} V_{xc}", _sdpa_rowsum, V17),
    _bad("scaled_dot_product", "dQ = dS K (no 1/sqrt(d))", "\\sum_j dS_{xj} K_{jy}",
         _sdpa_dQ, V17),
    _bad("scaled_dot_product", "dK = dS^T Q (no 1/sqrt(d))", "\\sum_i dS_{ix} Q_{iy}",
         _sdpa_dK, V17),
    _bad("scaled_dot_product", "softmax Jacobian with + P",
         "\\delta_{ix} P_{ij}(\\delta_{jy} + P_{iy})", _softmax_jacobian, V17),
    _bad("scaled_dot_product", "masked dS = P * dP (no D term)", "P_{xy}\\,dP_{xy}",
         _sdpa_dS, V17, mask=M),
    _bad("scaled_dot_product", "masked dQ = dS K (no 1/sqrt(d))", "\\sum_j dS_{xj} K_{jy}",
         _sdpa_dQ, V17, mask=M),
    _bad("additive", "d values = alpha G (not transposed)", "\\sum_i \\alpha_{xi} G_{iy}",
         _additive_dvalues, B14),
    _bad("additive", "du = de v (no 1 - tanh^2)", "de_{xy} v_z", _additive_tanh_backward,
         B14),
    _bad("additive", "dv with u for tanh(u)", "\\sum_{ij} de_{ij} u_{ijx}", _additive_dv, B14),
    _bad("additive", "dW_q with no 1 - tanh^2", "\\sum_{ij} q_{ix}\\, de_{ij} v_y",
         _additive_dWq, B14),
    _bad("additive", "dW_k with no 1 - tanh^2", "\\sum_{ij} k_{jx}\\, de_{ij} v_y",
         _additive_dWk, B14),
    _bad("additive", "dq with no 1 - tanh^2", "\\sum_{jr} de_{xj} v_r W^q_{yr}",
         _additive_dq, B14),
    _bad("additive", "dk with no 1 - tanh^2", "\\sum_{ir} de_{ix} v_r W^k_{yr}",
         _additive_dk, B14),
    _bad("dot_product", "dQ = dS K / sqrt(d) (a scale dot has not)",
         "\\tfrac{1}{\\sqrt d}\\sum_j dS_{xj} K_{jy}", _dot_dQ, L15),
    _bad("dot_product", "dK = dS^T K", "\\sum_i dS_{ix} K_{iy}", _dot_dK, L15),
    _bad("general", "dW = Q^T dS K with a wrong index", "\\sum_{ij} Q_{ix} dS_{ij} K_{jx}",
         _general_dW, L15),
    _bad("general", "dQ = dS K W (W not transposed)", "\\sum_{jb} dS_{xj} K_{jb} W_{by}",
         _general_dQ, L15),
    _bad("general", "dK = dS^T Q W^T", "\\sum_{ia} dS_{ix} Q_{ia} W_{ya}", _general_dK, L15),
    _bad("multi_head", "dW_o with a wrong index", "\\sum_i C_{xiy} G_{iy}", _mh_dWo, V17),
    _bad("multi_head", "dW_v with the query input", "\\sum_j X_{jx} dV_{yjz}", _mh_dWv, V17),
    _bad("multi_head", "dW_q with no 1/sqrt(d_h)", "\\sum_i X_{ix} dQ_{yiz}", _mh_dWq, V17),
)

MECHANISMS: tuple[str, ...] = ("scaled_dot_product", "additive", "dot_product", "general",
                               "multi_head")

# What the notation does not cover, by mechanism (said in the rendered section).
_NOT_COVERED: dict[str, str] = {
    "scaled_dot_product": (
        "The mask is a multiplicative $M_{ij}$ (any values, 0/1 in use), which equals the "
        "additive $-\\infty$ mask wherever a row keeps at least one key; the additive "
        "$-\\infty$ form itself and a *fully masked row* (the engine returns zeros there, "
        "the formula divides by $\\sum_k M_{ik}e^{S_{ik}} = 0$) are outside the notation. "
        "A causal mask is the special case $M_{ij} = [j \\le i]$ of an arbitrary $M$, so it "
        "is covered; the max-shift of the stable softmax is a numerical device and is "
        "not modelled."),
    "multi_head": (
        "Heads are written as their own index $t$ ($W^q_{atb}$, $Q_{tib}$). The PyTorch "
        "layout slices columns $t d_h + b$ of one projection; a Kronecker delta "
        "$\\delta(t d_h + b, y)$ with a compound index is never collapsed by the prover, so "
        "the sliced form is not proven here: the head axis is the same tensor reshaped. "
        "$\\partial L/\\partial X$ (a sum over the $Q$, $K$ and $V$ paths) and masks in "
        "multi-head are not among the claims."),
    "additive": (
        "Masks and batches are not written out; the mask enters exactly as for "
        "scaled dot-product attention (the softmax backward is shared)."),
}

_NOT_PROVEN_HERE: dict[str, str] = {
    "location": "Luong's location score $a = \\operatorname{softmax}(W h)$",
    "content": "content (cosine) attention with its norms",
    "self_attention": "self-attention (the input feeds Q, K and V)",
}

_INTROS: dict[str, str] = {
    "scaled_dot_product": (
        "S_{ij} = \\tfrac{1}{\\sqrt d}\\sum_{a} Q_{ia}K_{ja},\\quad "
        "P_{ij} = \\frac{M_{ij}e^{S_{ij}}}{\\sum_k M_{ik} e^{S_{ik}}},\\quad "
        "O_{ic} = \\sum_j P_{ij}V_{jc},\\quad L = \\sum_{ic} G_{ic}O_{ic},\\quad "
        "dP_{ij} = \\sum_c G_{ic}V_{jc},\\quad dS_{ij} = P_{ij}\\big(dP_{ij} - "
        "\\textstyle\\sum_l P_{il}\\,dP_{il}\\big)"),
    "additive": (
        "u_{ijr} = \\sum_a q_{ia}W^q_{ar} + \\sum_b k_{jb}W^k_{br},\\quad "
        "e_{ij} = \\sum_r v_r \\tanh u_{ijr},\\quad "
        "\\alpha_{ij} = \\frac{e^{e_{ij}}}{\\sum_k e^{e_{ik}}},\\quad "
        "O_{ic} = \\sum_j \\alpha_{ij}\\mathit{val}_{jc},\\quad L = \\sum_{ic} G_{ic}O_{ic},"
        "\\quad de_{ij} = \\alpha_{ij}\\big(d\\alpha_{ij} - \\textstyle\\sum_l \\alpha_{il}"
        "\\,d\\alpha_{il}\\big),\\quad du_{ijr} = de_{ij}\\,v_r(1 - \\tanh^2 u_{ijr})"),
    "dot_product": (
        "S_{ij} = \\sum_a Q_{ia}K_{ja},\\quad P = \\operatorname{softmax}_j S,\\quad "
        "O_{ic} = \\sum_j P_{ij}V_{jc},\\quad L = \\sum_{ic} G_{ic}O_{ic}"),
    "general": (
        "S_{ij} = \\sum_{ab} Q_{ia}W_{ab}K_{jb},\\quad P = \\operatorname{softmax}_j S,\\quad "
        "O_{ic} = \\sum_j P_{ij}V_{jc},\\quad L = \\sum_{ic} G_{ic}O_{ic}"),
    "multi_head": (
        "Q_{tib} = \\sum_a X_{ia}W^q_{atb},\\ K_{tjb} = \\sum_a X^{kv}_{ja}W^k_{atb},\\ "
        "V_{tjc} = \\sum_a X^{kv}_{ja}W^v_{atc},\\ "
        "S_{tij} = \\tfrac{1}{\\sqrt{d_h}}\\sum_b Q_{tib}K_{tjb},\\ "
        "C_{tic} = \\sum_j P_{tij}V_{tjc},\\ O_{is} = \\sum_{tc} C_{tic}W^o_{tcs},\\ "
        "L = \\sum_{is} G_{is}O_{is}"),
}

_SIZES_TEXT: dict[str, str] = {
    "scaled_dot_product": "$n$ queries, $m$ keys, key width $d$, value width $e$",
    "additive": ("$n$ queries, $m$ keys, query width $d$, key width $d_k$, value width $e$, "
                 "$h$ hidden units"),
    "dot_product": "$n$ queries, $m$ keys, width $d$, value width $e$",
    "general": "$n$ queries, $m$ keys, width $d$, value width $e$",
    "multi_head": "$n$ queries, $m$ keys, model width $d$, $H$ heads of width $d_h$",
}


def claims_for(mechanism: str | None = None, negative: bool = False) -> list[Claim]:
    """The claims (or, with ``negative=True``, the negative controls) of a mechanism."""
    pool = NEGATIVE_CONTROLS if negative else CLAIMS
    return [cl for cl in pool if mechanism is None or cl.mechanism == mechanism]


def prove_all(mechanism: str | None = None) -> list[Proof]:
    """Prove every claim of ``mechanism`` (all mechanisms if None); cached per process."""
    return [cl.prove() for cl in claims_for(mechanism)]


def every_size_section(mechanism: str) -> str:
    """Markdown (with LaTeX) section "For every size" for ``derivations/<mechanism>.md``.

    Runs the proofs of the mechanism (cached) and states each result; deterministic (no
    timings), so a document that embeds it can be checked fresh. ``mechanism`` is one of
    :data:`MECHANISMS` or ``location``, ``content``, ``self_attention`` (which get a section
    saying that nothing is proven for every size yet). Any other name raises ValueError.
    """
    lines = ["## For every size", ""]
    if mechanism in _NOT_PROVEN_HERE:
        lines += [f"The gradients of {_NOT_PROVEN_HERE[mechanism]} are not yet proven for "
                  "symbolic sizes; the checks in this document hold at the explicit sizes "
                  "they use. `tinygrad_attn.everysize` proves the scaled dot-product, "
                  "additive, dot, general and multi-head forms for every size.", ""]
        return "\n".join(lines)
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; expected one of "
                         f"{MECHANISMS + tuple(_NOT_PROVEN_HERE)}")
    claims = claims_for(mechanism)
    proofs = [cl.prove() for cl in claims]
    negs = claims_for(mechanism, negative=True)
    neg_proofs = [cl.prove() for cl in negs]
    lines += [
        f"The identities below are proven for **symbolic sizes** ({_SIZES_TEXT[mechanism]}), "
        "not for one shape. The mechanism is written in index notation (`sympy.IndexedBase`, "
        "`Sum` over symbolic ranges), `sympy.diff` gives the exact derivative full of "
        "Kronecker deltas, and `tinygrad_attn.indexcalc.prove_equal` brings both sides to "
        "one normal form: sums distributed into one prenex sum per term, "
        "$\\sum_i \\delta_{iv} f(i) = f(v)$ collapsed only within one range, unused sums "
        "turned into a size factor, bound indices renamed canonically, $\\exp$, $\\tanh$ and "
        "$1/Z$ kept as opaque units. The normaliser is sound: it may fail to prove a true "
        "identity, never prove a false one. Free indices $x, y, z$ are assumed to lie in "
        "their ranges.", "",
        "$$" + _INTROS[mechanism] + "$$", ""]
    for cl, pr in zip(claims, proofs):
        status = "proven" if pr.ok else f"**not proven** ({pr.reason})"
        lines += [f"- `{cl.name}` ({cl.source}): {status}", "",
                  "  $$" + cl.latex + "$$", ""]
    rejected = sum(not pr.ok for pr in neg_proofs)
    lines += [f"Negative controls: {rejected} of {len(negs)} deliberately wrong closed forms "
              "(a dropped term, a missing factor, a wrong index) are rejected by the same "
              "prover.", ""]
    if mechanism in _NOT_COVERED:
        lines += ["Not covered by the notation: " + _NOT_COVERED[mechanism], ""]
    lines += [
        "What the explicit-size checks still add: the symbolic-size proofs are about the "
        "*mathematics* (the closed forms in this document). The engine's own backward -- "
        "the VJPs in `ops.py` run symbolically -- is proven equal to `sympy.diff` at the "
        "explicit sizes of the derivation above, and checked numerically against finite "
        "differences; masks given as booleans, fully masked rows and the numerically stable "
        "softmax are exercised there too.", ""]
    return "\n".join(lines)


def timing_table(proofs: list[Proof] | None = None) -> str:
    """Markdown table: claim, result, normal-form terms, seconds."""
    proofs = prove_all() if proofs is None else proofs
    rows = ["| claim | result | terms (lhs/rhs) | seconds |", "|---|---|---|---|"]
    for pr in proofs:
        res = "proven" if pr.ok else "not proven"
        rows.append(f"| `{pr.claim}` | {res} | {pr.lhs_terms}/{pr.rhs_terms} | "
                    f"{pr.seconds:.3f} |")
    total = sum(pr.seconds for pr in proofs)
    rows.append(f"| **total ({len(proofs)} proofs)** | | | **{total:.2f}** |")
    return "\n".join(rows)
