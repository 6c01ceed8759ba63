"""The attention gradients proven for every size, and the sections that state them.

A :class:`Claim` pairs an identity builder of :mod:`tinygrad_attn.verify.indexforms`
(the mechanism in index notation, its exact derivative and a closed form) with the
statement a document prints; ``claim.prove()`` decides it for symbolic sizes with
:func:`tinygrad_attn.verify.indexcalc.prove_equal`.  :data:`CLAIMS` are the closed-form
gradients of scaled dot-product and multi-head attention (forward: Vaswani et al. 2017),
additive (forward: Bahdanau et al. 2014), dot and general attention (forward: Luong et al.
2015); the papers give the forward passes, the gradients are derived here, and each
claim's ``source`` says what its source gives. :data:`NEGATIVE_CONTROLS`
are deliberately wrong forms the prover must reject.  Sizes and symbols follow the
project notation (``docs/notation.md``): $m$ queries, $n$ keys, key width $d_k$, value
width $d_v$, upstream gradient $\\bar O$, the adjoint of $X$ written $\\bar X$.

Public entry points: :data:`CLAIMS`, :data:`NEGATIVE_CONTROLS`, :data:`MECHANISMS`,
:func:`claims_for`, :func:`prove_all`, :func:`every_size_section`, :func:`timing_table`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from . import indexforms as F
from .indexcalc import prove_equal
from .indexforms import SIZES
from .proof import Proof

__all__ = ["Claim", "CLAIMS", "NEGATIVE_CONTROLS", "MECHANISMS", "claims_for", "prove_all",
           "every_size_section", "timing_table", "SIZES"]


@dataclass(frozen=True)
class Claim:
    """One identity: ``build()`` returns ``(lhs, rhs, ranges)``; ``prove()`` decides it.

    ``name`` is a short ASCII statement (``bar X`` is the adjoint :math:`\\bar X`),
    ``latex`` the identity in index notation as documents print it, ``source`` what the
    claim rests on (the paper whose forward pass it differentiates, or the paper that
    derives the identity).
    ``holds`` is False for a negative control (a deliberately wrong closed form), which
    the prover must not prove.
    """

    mechanism: str
    name: str
    latex: str
    build: Callable[[], F.Identity]
    holds: bool = True
    source: str = ""

    @property
    def key(self) -> str:
        """``mechanism.name``: unique over all claims and controls."""
        return f"{self.mechanism}.{self.name}"

    def prove(self) -> Proof:
        """$\\partial L / \\partial X_{xy} = \\text{closed form}$, decided for symbolic sizes
        (cached per process)."""
        return _prove(self)


@functools.lru_cache(maxsize=None)
def _prove(claim: Claim) -> Proof:
    """Build and prove one claim; the cache makes every later section free."""
    lhs, rhs, ranges = claim.build()
    return prove_equal(lhs, rhs, ranges, claim=claim.key)


def _c(mech: str, name: str, latex: str, fn: Callable, src: str, **kw: Any) -> Claim:
    """A claim that holds."""
    return Claim(mech, name, latex, functools.partial(fn, **kw), True, src)


def _bad(mech: str, name: str, latex: str, fn: Callable, src: str, **kw: Any) -> Claim:
    """A negative control: the builder's deliberately wrong closed form."""
    return Claim(mech, name, latex, functools.partial(fn, wrong=True, **kw), False, src)


#: What each source gives: the papers define the forward passes only (none writes a
#: gradient), so a gradient cites the forward it differentiates; the identity
#: rowsum(P * bar P) = rowsum(bar O * O) is derived by FlashAttention; the softmax facts
#: follow from its definition.
V17 = "gradient of Vaswani et al. 2017, eq. 1, derived here"
MH17 = "gradient of Vaswani et al. 2017, sec. 3.2.2, derived here"
B14 = "gradient of Bahdanau et al. 2014, Appendix A.1.2, derived here"
L15 = "gradient of Luong et al. 2015, eq. 8, derived here"
D22 = "Dao et al. 2022, Appendix B.2; used in its Algorithm 4"
SMX = "softmax, from its definition"
SDPA, ADD, DOT, GEN, MH = "scaled_dot_product", "additive", "dot_product", "general", \
    "multi_head"
_SD = "\\tfrac{1}{\\sqrt{d_k}}"
_SH = "\\tfrac{1}{\\sqrt{d_h}}"
_dS = "P_{xy}\\big(\\bar P_{xy} - \\textstyle\\sum_l P_{xl}\\,\\bar P_{xl}\\big)"
_JAC = "\\frac{\\partial P_{ij}}{\\partial S_{xy}} = \\delta_{ix} P_{ij}(\\delta_{jy} - P_{iy})"


def _d(name: str) -> str:
    """$\\partial L / \\partial name$ in LaTeX."""
    return f"\\frac{{\\partial L}}{{\\partial {name}}} = "


CLAIMS: tuple[Claim, ...] = (
    _c(SDPA, "bar V = P^T bar O", _d("V_{xy}") + "\\sum_i P_{ix} \\bar O_{iy}", F.sdpa_dV, V17),
    _c(SDPA, "bar P = bar O V^T", _d("P_{xy}") + "\\sum_c \\bar O_{xc} V_{yc}", F.sdpa_dP, V17),
    _c(SDPA, "bar S = P * (bar P - rowsum(P * bar P))", _d("S_{xy}") + _dS, F.sdpa_dS, V17),
    _c(SDPA, "rowsum(P * bar P) = rowsum(bar O * O)",
       "\\sum_l P_{xl}\\,\\bar P_{xl} = \\sum_c \\bar O_{xc} O_{xc}", F.sdpa_rowsum, D22),
    _c(SDPA, "bar S = P * (bar P - D), D = rowsum(bar O * O)",
       _d("S_{xy}") + "P_{xy}\\big(\\bar P_{xy} - \\textstyle\\sum_c \\bar O_{xc}O_{xc}\\big)",
       F.sdpa_dS_via_D, D22),
    _c(SDPA, "bar Q = bar S K / sqrt(d_k)", _d("Q_{xy}") + _SD + "\\sum_j \\bar S_{xj} K_{jy}",
       F.sdpa_dQ, V17),
    _c(SDPA, "bar K = bar S^T Q / sqrt(d_k)",
       _d("K_{xy}") + _SD + "\\sum_i \\bar S_{ix} Q_{iy}", F.sdpa_dK, V17),
    _c(SDPA, "softmax Jacobian", _JAC, F.softmax_jacobian, SMX),
    _c(SDPA, "softmax rows sum to one", "\\sum_j P_{xj} = 1", F.softmax_rows, SMX),
    _c(SDPA, "softmax Jacobian rows sum to zero",
       "\\sum_j \\frac{\\partial P_{ij}}{\\partial S_{xy}} = 0", F.softmax_jacobian_rows, SMX),
    _c(SDPA, "rows of bar S sum to zero", "\\sum_y \\frac{\\partial L}{\\partial S_{xy}} = 0",
       F.sdpa_dS_rows, V17),
    _c(SDPA, "masked bar V = P^T bar O", _d("V_{xy}") + "\\sum_i P_{ix} \\bar O_{iy}",
       F.sdpa_dV, V17, mask=F.M),
    _c(SDPA, "masked bar S = P * (bar P - rowsum(P * bar P))", _d("S_{xy}") + _dS, F.sdpa_dS,
       V17, mask=F.M),
    _c(SDPA, "masked bar Q = bar S K / sqrt(d_k)",
       _d("Q_{xy}") + _SD + "\\sum_j \\bar S_{xj} K_{jy}", F.sdpa_dQ, V17, mask=F.M),
    _c(SDPA, "masked bar K = bar S^T Q / sqrt(d_k)",
       _d("K_{xy}") + _SD + "\\sum_i \\bar S_{ix} Q_{iy}", F.sdpa_dK, V17, mask=F.M),
    _c(SDPA, "masked softmax Jacobian", _JAC, F.softmax_jacobian, SMX, mask=F.M),
    _c(SDPA, "masked softmax rows sum to one", "\\sum_j P_{xj} = 1", F.softmax_rows, SMX,
       mask=F.M),
    _c(SDPA, "masked rows of bar S sum to zero",
       "\\sum_y \\frac{\\partial L}{\\partial S_{xy}} = 0", F.sdpa_dS_rows, V17, mask=F.M),
    _c(ADD, "bar V = P^T bar O", _d("V_{xy}") + "\\sum_i P_{ix} \\bar O_{iy}", F.additive_dV,
       B14),
    _c(ADD, "bar U = bar S v (1 - tanh^2 U)",
       _d("U_{xyz}") + "\\bar S_{xy}\\, v_z (1 - \\tanh^2 U_{xyz})", F.additive_tanh_backward,
       B14),
    _c(ADD, "bar v = sum_ij bar S_ij tanh(U_ij)",
       _d("v_x") + "\\sum_{ij} \\bar S_{ij} \\tanh U_{ijx}", F.additive_dv, B14),
    _c(ADD, "bar W_q = Q^T bar U", _d("(W_q)_{xy}") + "\\sum_{ij} Q_{ix}\\, \\bar U_{ijy}",
       F.additive_dWq, B14),
    _c(ADD, "bar W_k = K^T bar U", _d("(W_k)_{xy}") + "\\sum_{ij} K_{jx}\\, \\bar U_{ijy}",
       F.additive_dWk, B14),
    _c(ADD, "bar Q = bar U W_q^T", _d("Q_{xy}") + "\\sum_{jr} \\bar U_{xjr} (W_q)_{yr}",
       F.additive_dQ, B14),
    _c(ADD, "bar K = bar U W_k^T", _d("K_{xy}") + "\\sum_{ir} \\bar U_{ixr} (W_k)_{yr}",
       F.additive_dK, B14),
    _c(DOT, "bar Q = bar S K", _d("Q_{xy}") + "\\sum_j \\bar S_{xj} K_{jy}", F.dot_dQ, L15),
    _c(DOT, "bar K = bar S^T Q", _d("K_{xy}") + "\\sum_i \\bar S_{ix} Q_{iy}", F.dot_dK, L15),
    _c(GEN, "bar W = Q^T bar S K", _d("W_{xy}") + "\\sum_{ij} Q_{ix}\\, \\bar S_{ij} K_{jy}",
       F.general_dW, L15),
    _c(GEN, "bar Q = bar S K W^T", _d("Q_{xy}") + "\\sum_{jb} \\bar S_{xj} K_{jb} W_{yb}",
       F.general_dQ, L15),
    _c(GEN, "bar K = bar S^T Q W", _d("K_{xy}") + "\\sum_{ia} \\bar S_{ix} Q_{ia} W_{ay}",
       F.general_dK, L15),
    _c(MH, "bar W_o = C^T bar O", _d("(W_o)_{xyz}") + "\\sum_i C_{xiy} \\bar O_{iz}",
       F.mh_dWo, MH17),
    _c(MH, "bar W_v = X_kv^T bar V",
       _d("(W_v)_{xyz}") + "\\sum_j (X_{kv})_{jx}\\, \\bar V_{yjz},\\ "
       "\\bar V_{tjc} = \\sum_i P_{tij}\\, \\bar C_{tic}", F.mh_dWv, MH17),
    _c(MH, "bar W_q = X_q^T bar Q",
       _d("(W_q)_{xyz}") + "\\sum_i (X_q)_{ix}\\, \\bar Q_{yiz},\\ "
       "\\bar Q_{tib} = " + _SH + " \\sum_j \\bar S_{tij} K_{tjb}", F.mh_dWq, MH17),
    _c(MH, "bar W_k = X_kv^T bar K",
       _d("(W_k)_{xyz}") + "\\sum_j (X_{kv})_{jx}\\, \\bar K_{yjz},\\ "
       "\\bar K_{tjb} = " + _SH + " \\sum_i \\bar S_{tij} Q_{tib}", F.mh_dWk, MH17),
)

NEGATIVE_CONTROLS: tuple[Claim, ...] = (
    _bad(SDPA, "bar V = P bar O (not transposed)", "\\sum_i P_{xi} \\bar O_{iy}", F.sdpa_dV,
         V17),
    _bad(SDPA, "bar P = bar O V^T with a wrong index", "\\sum_c \\bar O_{xc} V_{xc}",
         F.sdpa_dP, V17),
    _bad(SDPA, "bar S = P * bar P (no D term)", "P_{xy}\\,\\bar P_{xy}", F.sdpa_dS, V17),
    _bad(SDPA, "bar S = P * bar P (no D = rowsum(bar O * O) term)", "P_{xy}\\,\\bar P_{xy}",
         F.sdpa_dS_via_D, D22),
    _bad(SDPA, "rowsum(P * bar P) = rowsum(bar O * V)", "\\sum_c \\bar O_{xc} V_{xc}",
         F.sdpa_rowsum, D22),
    _bad(SDPA, "bar Q = bar S K (no 1/sqrt(d_k))", "\\sum_j \\bar S_{xj} K_{jy}", F.sdpa_dQ,
         V17),
    _bad(SDPA, "bar K = bar S^T Q (no 1/sqrt(d_k))", "\\sum_i \\bar S_{ix} Q_{iy}",
         F.sdpa_dK, V17),
    _bad(SDPA, "softmax Jacobian with + P", "\\delta_{ix} P_{ij}(\\delta_{jy} + P_{iy})",
         F.softmax_jacobian, SMX),
    _bad(SDPA, "softmax columns sum to one", "\\sum_i P_{ix} = 1", F.softmax_rows, SMX),
    _bad(SDPA, "softmax Jacobian columns sum to zero",
         "\\sum_i \\frac{\\partial P_{ij}}{\\partial S_{xy}} = 0", F.softmax_jacobian_rows,
         V17),
    _bad(SDPA, "rows of bar S sum to rows of bar P",
         "\\sum_y \\frac{\\partial L}{\\partial S_{xy}} = \\sum_y \\bar P_{xy}", F.sdpa_dS_rows,
         V17),
    _bad(SDPA, "masked softmax columns sum to one", "\\sum_i P_{ix} = 1", F.softmax_rows, SMX,
         mask=F.M),
    _bad(SDPA, "masked bar S = P * bar P (no D term)", "P_{xy}\\,\\bar P_{xy}", F.sdpa_dS,
         V17, mask=F.M),
    _bad(SDPA, "masked bar Q = bar S K (no 1/sqrt(d_k))", "\\sum_j \\bar S_{xj} K_{jy}",
         F.sdpa_dQ, V17, mask=F.M),
    _bad(ADD, "bar V = P bar O (not transposed)", "\\sum_i P_{xi} \\bar O_{iy}",
         F.additive_dV, B14),
    _bad(ADD, "bar U = bar S v (no 1 - tanh^2)", "\\bar S_{xy} v_z", F.additive_tanh_backward,
         B14),
    _bad(ADD, "bar v with U for tanh(U)", "\\sum_{ij} \\bar S_{ij} U_{ijx}", F.additive_dv,
         B14),
    _bad(ADD, "bar W_q with no 1 - tanh^2", "\\sum_{ij} Q_{ix}\\, \\bar S_{ij} v_y",
         F.additive_dWq, B14),
    _bad(ADD, "bar W_k with no 1 - tanh^2", "\\sum_{ij} K_{jx}\\, \\bar S_{ij} v_y",
         F.additive_dWk, B14),
    _bad(ADD, "bar Q with no 1 - tanh^2", "\\sum_{jr} \\bar S_{xj} v_r (W_q)_{yr}",
         F.additive_dQ, B14),
    _bad(ADD, "bar K with no 1 - tanh^2", "\\sum_{ir} \\bar S_{ix} v_r (W_k)_{yr}",
         F.additive_dK, B14),
    _bad(DOT, "bar Q = bar S K / sqrt(d_k) (a dot score has no scale)",
         _SD + "\\sum_j \\bar S_{xj} K_{jy}", F.dot_dQ, L15),
    _bad(DOT, "bar K = bar S^T K", "\\sum_i \\bar S_{ix} K_{iy}", F.dot_dK, L15),
    _bad(GEN, "bar W = Q^T bar S K with a wrong index",
         "\\sum_{ij} Q_{ix} \\bar S_{ij} K_{jx}", F.general_dW, L15),
    _bad(GEN, "bar Q = bar S K W (W not transposed)", "\\sum_{jb} \\bar S_{xj} K_{jb} W_{by}",
         F.general_dQ, L15),
    _bad(GEN, "bar K = bar S^T Q W^T", "\\sum_{ia} \\bar S_{ix} Q_{ia} W_{ya}", F.general_dK,
         L15),
    _bad(MH, "bar W_o with a wrong index", "\\sum_i C_{xiy} \\bar O_{iy}", F.mh_dWo, MH17),
    _bad(MH, "bar W_v with the query input", "\\sum_j (X_q)_{jx} \\bar V_{yjz}", F.mh_dWv,
         V17),
    _bad(MH, "bar W_q with no 1/sqrt(d_h)", "\\sum_i (X_q)_{ix} \\bar Q_{yiz}", F.mh_dWq, MH17),
)

MECHANISMS: tuple[str, ...] = (SDPA, ADD, DOT, GEN, MH)


def claims_for(mechanism: str | None = None, negative: bool = False) -> list[Claim]:
    """The claims (or, with ``negative=True``, the negative controls) of a mechanism."""
    pool = NEGATIVE_CONTROLS if negative else CLAIMS
    return [cl for cl in pool if mechanism is None or cl.mechanism == mechanism]


def prove_all(mechanism: str | None = None) -> list[Proof]:
    """Prove every claim of ``mechanism`` (all mechanisms if None); cached per process."""
    return [cl.prove() for cl in claims_for(mechanism)]


# ---------------------------------------------------------------------------------------
# The sections embedded in derivations/<mechanism>.md

#: The sizes of each mechanism, in the project notation.
_SIZES_TEXT: dict[str, str] = {
    SDPA: "$m$ queries, $n$ keys, key width $d_k$, value width $d_v$",
    ADD: ("$m$ queries, $n$ keys, query width $d_q$, key width $d_k$, value width $d_v$, "
          "$h$ hidden units"),
    DOT: "$m$ queries, $n$ keys, query and key width $d_k$, value width $d_v$",
    GEN: "$m$ queries, $n$ keys, query width $d_q$, key width $d_k$, value width $d_v$",
    MH: "$m$ queries, $n$ keys, model width $d_{model}$, $H$ heads of width $d_h$",
}

_LOSS = "L = \\sum_{ic} \\bar O_{ic}O_{ic}"
_SOFTMAX_BACKWARD = ("\\bar P_{ij} = \\sum_c \\bar O_{ic}V_{jc},\\quad \\bar S_{ij} = "
                     "P_{ij}\\big(\\bar P_{ij} - \\textstyle\\sum_l P_{il}\\,\\bar P_{il}\\big)")
_CONTEXT = "P = \\operatorname{softmax}_j S,\\quad O_{ic} = \\sum_j P_{ij}V_{jc},\\quad "

#: The mechanism in index notation, with the adjoints its claims use.
_INTROS: dict[str, str] = {
    SDPA: ("S_{ij} = \\tfrac{1}{\\sqrt{d_k}}\\sum_{a} Q_{ia}K_{ja},\\quad "
           "P_{ij} = \\frac{M_{ij}e^{S_{ij}}}{\\sum_k M_{ik} e^{S_{ik}}},\\quad "
           f"O_{{ic}} = \\sum_j P_{{ij}}V_{{jc}},\\quad {_LOSS},\\quad {_SOFTMAX_BACKWARD}"),
    ADD: ("U_{ijr} = \\sum_a Q_{ia}(W_q)_{ar} + \\sum_b K_{jb}(W_k)_{br},\\quad "
          f"S_{{ij}} = \\sum_r v_r \\tanh U_{{ijr}},\\quad {_CONTEXT}{_LOSS},\\quad "
          f"{_SOFTMAX_BACKWARD},\\quad \\bar U_{{ijr}} = \\bar S_{{ij}}\\,v_r"
          "(1 - \\tanh^2 U_{ijr})"),
    DOT: f"S_{{ij}} = \\sum_a Q_{{ia}}K_{{ja}},\\quad {_CONTEXT}{_LOSS},\\quad {_SOFTMAX_BACKWARD}",
    GEN: (f"S_{{ij}} = \\sum_{{ab}} Q_{{ia}}W_{{ab}}K_{{jb}},\\quad {_CONTEXT}{_LOSS},\\quad "
          f"{_SOFTMAX_BACKWARD}"),
    MH: ("Q_{tib} = \\sum_a (X_q)_{ia}(W_q)_{atb},\\ K_{tjb} = \\sum_a (X_{kv})_{ja}"
         "(W_k)_{atb},\\ V_{tjc} = \\sum_a (X_{kv})_{ja}(W_v)_{atc},\\ "
         "S_{tij} = \\tfrac{1}{\\sqrt{d_h}}\\sum_b Q_{tib}K_{tjb},\\ "
         "P_{tij} = \\operatorname{softmax}_j S_{tij},\\ C_{tic} = \\sum_j P_{tij}V_{tjc},\\ "
         "O_{is} = \\sum_{tc} C_{tic}(W_o)_{tcs},\\ "
         "L = \\sum_{is} \\bar O_{is}O_{is},\\ \\bar C_{tic} = \\sum_s \\bar O_{is}(W_o)_{tcs},"
         "\\ \\bar S_{tij} = P_{tij}\\big(\\bar P_{tij} - \\textstyle\\sum_l P_{til}\\,"
         "\\bar P_{til}\\big),\\ \\bar P_{tij} = \\sum_c \\bar C_{tic} V_{tjc}"),
}

#: What the notation does not cover, by mechanism.
_NOT_COVERED: dict[str, str] = {
    SDPA: (
        "The mask is a multiplicative $M_{ij}$ (any values, 0/1 in use), which equals the "
        "additive $-\\infty$ mask wherever a row keeps at least one key; the additive "
        "$-\\infty$ form itself and a *fully masked row* (the engine returns zeros there, "
        "the formula divides by $\\sum_k M_{ik}e^{S_{ik}} = 0$) are outside the notation. "
        "A causal mask is the special case $M_{ij} = [j \\le i]$ of an arbitrary $M$, so it "
        "is covered; the max-shift of the stable softmax is a numerical device and is "
        "not modelled."),
    MH: (
        "Heads are written as their own index $t$ ($(W_q)_{atb}$, $Q_{tib}$). The PyTorch "
        "layout slices columns $t d_h + b$ of one projection: that form is not proven here "
        "for the closed forms, but from the engine's own code (below), where the prover "
        "collapses $\\delta(t d_h + b, y)$ over exactly $t < H$, $b < d_h$; the head axis "
        "is the same tensor reshaped. "
        "$\\bar X_q$ and $\\bar X_{kv}$ (sums over the $Q$, $K$ and $V$ paths) and masks "
        "in multi-head are not among the claims."),
    ADD: (
        "Masks and batches are not written out; the mask enters exactly as for "
        "scaled dot-product attention (the softmax backward is shared)."),
}

_NOT_PROVEN_HERE: dict[str, str] = {
    "location": "Luong's location score $a = \\operatorname{softmax}(W h)$",
    "content": "content (cosine) attention with its norms",
    "self_attention": "self-attention (the input feeds Q, K and V)",
}

_METHOD = (
    "The mechanism is written in index notation (`sympy.IndexedBase`, `Sum` over symbolic "
    "ranges), `sympy.diff` gives the exact derivative full of Kronecker deltas, and "
    "`tinygrad_attn.verify.indexcalc.prove_equal` brings both sides to one normal form: "
    "sums distributed into one prenex sum per term, $\\sum_i \\delta_{iv} f(i) = f(v)$ "
    "collapsed only within one range, unused sums turned into a size factor, bound indices "
    "renamed canonically, $\\exp$, $\\tanh$ and $1/Z$ kept as opaque units. The normaliser "
    "is sound: it may fail to prove a true identity, never prove a false one. Free indices "
    "$x, y, z$ are assumed to lie in their ranges.")

_EXPLICIT = (
    "What the explicit-size checks still add: the symbolic-size proofs above are about the "
    "*mathematics* (the closed forms in this document). The engine's own backward -- the "
    "VJPs of its op table, run symbolically -- is proven equal to `sympy.diff` at the "
    "explicit sizes of the derivation above (and, run on index arrays, for every size: "
    "the next section), and checked numerically against finite "
    "differences; masks given as booleans, fully masked rows and the numerically stable "
    "softmax are exercised there too.")


def every_size_section(mechanism: str) -> str:
    """Markdown (with LaTeX) section "For every size" for ``derivations/<mechanism>.md``.

    Runs the proofs of the mechanism (cached) and states each result; deterministic (no
    timings), so a document that embeds it can be checked fresh. ``mechanism`` is one of
    :data:`MECHANISMS` or ``location``, ``content``, ``self_attention`` (which get a section
    saying that nothing is proven for every size yet). Any other name raises ValueError.
    """
    lines = ["## For every size", ""]
    if mechanism in _NOT_PROVEN_HERE:
        lines += [f"The hand-written gradients of {_NOT_PROVEN_HERE[mechanism]} are not yet "
                  "proven for symbolic sizes; the checks in this document hold at the "
                  "explicit sizes they use. `tinygrad_attn.verify.everysize` proves the "
                  "scaled dot-product, additive, dot, general and multi-head forms for every "
                  "size.", ""]
        return "\n".join(lines)
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; expected one of "
                         f"{MECHANISMS + tuple(_NOT_PROVEN_HERE)}")
    lines += [f"The identities below are proven for **symbolic sizes** "
              f"({_SIZES_TEXT[mechanism]}), not for one shape. " + _METHOD, "",
              "$$" + _INTROS[mechanism] + "$$", ""]
    lines += _claim_lines(mechanism)
    if mechanism in _NOT_COVERED:
        lines += ["Not covered by the notation: " + _NOT_COVERED[mechanism], ""]
    lines += [_EXPLICIT, ""]
    return "\n".join(lines)


def _claim_lines(mechanism: str) -> list[str]:
    """One item per claim with its verdict and identity, then the negative controls."""
    lines = []
    for cl in claims_for(mechanism):
        pr = cl.prove()
        status = "proven" if pr.ok else f"**not proven** ({pr.reason})"
        lines += [f"- `{cl.name}` ({cl.source}): {status}", "", "  $$" + cl.latex + "$$", ""]
    negs = claims_for(mechanism, negative=True)
    rejected = sum(not cl.prove().ok for cl in negs)
    return lines + [f"Negative controls: {rejected} of {len(negs)} deliberately wrong closed "
                    "forms (a dropped term, a missing factor, a wrong index) are rejected by "
                    "the same prover.", ""]


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
