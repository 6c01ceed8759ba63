r"""The engine's own backward proven for every size: its code run on index arrays.

:mod:`tinygrad_attn.verify.everysize` proves *hand-written* closed forms for symbolic
sizes; the explicit-size checks prove the *engine's* VJPs at small sizes only.  Here the
engine's code itself runs at symbolic sizes: each input is an index array of
:mod:`tinygrad_attn.engine.indexbackend` (shape $(m, d_k)$, element $Q_{ia}$), the
mechanism's forward runs through the engine (the op table's forwards, or the fused op's),
``ta.grad`` runs its backward (the op table's VJP functions, or the fused op's
hand-written backward) for a symbolic upstream gradient $\bar O$, and each input's
gradient comes back as one index expression $\bar X_{xy}$.  Then, for every input,

$$\bar X_{xy} \overset{?}{=} \frac{\partial L}{\partial X_{xy}},\qquad
  L = \sum_{ic} \bar O_{ic}\,O_{ic},$$

with $O$ the engine's own forward expression, the right side from ``sympy.diff``, decided
by :func:`tinygrad_attn.verify.indexcalc.prove_equal` (sound: a false identity is never
proven).  Where the paper's formula is at hand the engine's forward is also proven equal
to it (``forward = closed form``), so the derivative is that of the mechanism itself.

Public entry points: :data:`CASES`, :func:`run_case`, :func:`prove_case`,
:func:`proven`, :func:`prove_all`, :func:`timing_table`, :func:`every_size_lines`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

from ..attention import mechanisms as mech
from ..engine import Tensor, grad
from ..engine.backend import SymbolicUnsupported
from ..engine.indexbackend import IndexArray, index_input, stand_in
from . import indexforms as F
from .everysize import MECHANISMS as CLOSED_FORMS
from .indexcalc import prove_equal
from .proof import Proof

__all__ = ["Case", "Run", "CASES", "run_case", "prove_case", "proven", "prove_all",
           "timing_table", "every_size_lines", "OUT_OF_REACH", "out_of_reach_reason"]

_FREE = sp.symbols("x y z", integer=True)     # the free indices of a gradient
Runner = Callable[[dict[str, Tensor], Any], Tensor]


@dataclass(frozen=True)
class Case:
    """A mechanism run by the engine at symbolic sizes.

    ``inputs``: (name, sizes) of each differentiated input (sizes named as in
    ``docs/notation.md``); ``mask``: the sizes of a 0/1 mask input ``M`` (None: no mask);
    ``run(tensors, mask)`` returns the engine's output Tensor; ``closed_form(x, y)`` (may
    be None) is the paper's $O_{xy}$ in index notation, proven equal to the engine's
    forward.  ``mechanism`` is the derivation document the result belongs to."""

    name: str
    mechanism: str
    inputs: tuple[tuple[str, tuple[str, ...]], ...]
    run: Runner
    mask: tuple[str, ...] | None = None
    closed_form: Callable[[Any, Any], Any] | None = None
    note: str = ""


@dataclass
class Run:
    """What one case's engine run gave: its output, upstream gradient, input gradients,
    the loss $L$ and the seconds the forward and backward took."""

    case: Case
    output: IndexArray
    upstream: IndexArray
    grads: dict[str, IndexArray]
    loss: Any
    seconds: float
    proofs: list[Proof] = field(default_factory=list)


def _sum(body: Any, *limits: tuple[Any, Any]) -> Any:
    return sp.Sum(body, *[(v, 0, s - 1) for v, s in limits])


def run_case(case: Case) -> Run:
    """Run the case's forward and the engine's backward on index arrays."""
    t0 = time.perf_counter()
    arrays = {name: index_input(name, sizes) for name, sizes in case.inputs}
    tensors = {name: Tensor(a, requires_grad=True, name=name) for name, a in arrays.items()}
    mask = None if case.mask is None else Tensor(index_input("M", case.mask, mask=True))
    out = case.run(tensors, mask)
    upstream = index_input("Obar", out.data.sizes)
    grads = grad(out, list(tensors.values()), grad_outputs=Tensor(upstream))
    idx = [sp.Dummy(f"o{k}", integer=True) for k in range(out.ndim)]
    loss = _sum(upstream.at(*idx) * out.data.at(*idx), *zip(idx, out.data.sizes))
    return Run(case, out.data, upstream, {name: g.data for name, g in zip(tensors, grads)},
               loss, time.perf_counter() - t0)


def prove_case(case: Case) -> Run:
    """Every input's engine gradient against ``sympy.diff`` of $L$ (and the forward
    against the closed form, when the case has one); the proofs are in ``run.proofs``,
    each timed with the differentiation it needed."""
    run = run_case(case)
    for name, g in run.grads.items():
        t0 = time.perf_counter()
        free = _FREE[:g.ndim]
        lhs = sp.diff(run.loss, sp.IndexedBase(name)[free] if free else sp.Symbol(name))
        ranges = {v: (sp.Integer(0), s - 1) for v, s in zip(free, g.sizes)}
        proof = prove_equal(g.at(*free), lhs, ranges, claim=f"{case.name}: bar {name}")
        run.proofs.append(_timed(proof, time.perf_counter() - t0))
    if case.closed_form is not None:
        x, y = _FREE[:2]
        ranges = {v: (sp.Integer(0), s - 1) for v, s in zip((x, y), run.output.sizes)}
        t0 = time.perf_counter()
        proof = prove_equal(run.output.at(x, y), case.closed_form(x, y), ranges,
                            claim=f"{case.name}: forward = closed form")
        run.proofs.append(_timed(proof, time.perf_counter() - t0))
    return run


def _timed(proof: Proof, seconds: float) -> Proof:
    return dataclasses.replace(proof, seconds=seconds)


# ----------------------------------------------------------------------------- the cases

def _sdpa(fused: bool) -> Runner:
    return lambda t, mask: mech.scaled_dot_product(t["Q"], t["K"], t["V"], mask=mask,
                                                   fused=fused)[0]


def _attention_form(score: F.Score, mask: Any = None) -> Callable[[Any, Any], Any]:
    """$O_{xy} = \\sum_j P_{xj} V_{jy}$ with $P$ the (masked) softmax of ``score``."""
    j = sp.Symbol("j", integer=True)
    return lambda x, y: _sum(F.softmax(score, x, j, mask) * F.V[j, y], (j, F.n))


def _dot_score(ii: Any, jj: Any) -> Any:
    a = sp.Symbol("a", integer=True)
    return _sum(F.Q[ii, a] * F.K[jj, a], (a, F.d_k))


def _general_score(ii: Any, jj: Any) -> Any:
    a, b = sp.symbols("a b", integer=True)
    return _sum(F.Q[ii, a] * F.W[a, b] * F.K[jj, b], (a, F.d_q), (b, F.d_k))


_QKV = (("Q", ("m", "d_k")), ("K", ("n", "d_k")), ("V", ("n", "d_v")))
_SDPA, _SELF = "scaled_dot_product", "self_attention"   # self-attention: in the SDPA document


def _sdpa_cases() -> list[Case]:
    out = []
    for fused in (False, True):
        how = "fused" if fused else "composed"
        out += [
            Case(f"{_SDPA} {how}", _SDPA, _QKV, _sdpa(fused),
                 closed_form=_attention_form(F.sdpa_score)),
            Case(f"{_SDPA} {how}, mask M (m, n)", _SDPA, _QKV, _sdpa(fused), ("m", "n"),
                 closed_form=_attention_form(F.sdpa_score, F.M),
                 note="any 0/1 mask; the causal mask is M_ij = [j <= i]"),
            Case(f"{_SDPA} {how}, padding mask M (1, n)", _SDPA, _QKV, _sdpa(fused),
                 ("1", "n"), note="a key mask broadcast over the queries"),
        ]
    return out


def _projections(fused: bool) -> Runner:
    return lambda t, mask: mech.self_attention(t["X"], t["W_q"], t["W_k"], t["W_v"], mask,
                                               fused=fused)[0]


def _multi_head(fused: bool) -> Runner:
    """Multi-head self-attention with H heads (the stand-in integer of the size H)."""
    heads = stand_in(sp.Symbol("H", positive=True, integer=True))
    return lambda t, mask: mech.multi_head(t["X"], t["X"], t["W_q"], t["W_k"], t["W_v"],
                                           t["W_o"], heads, fused=fused)[0]


CASES: tuple[Case, ...] = tuple(_sdpa_cases()) + (
    Case("additive", "additive",
         (("Q", ("m", "d_q")), ("K", ("n", "d_k")), ("V", ("n", "d_v")),
          ("W_q", ("d_q", "h")), ("W_k", ("d_k", "h")), ("v", ("h",))),
         lambda t, mask: mech.additive(t["Q"], t["K"], t["V"], t["W_q"], t["W_k"],
                                       t["v"])[0],
         closed_form=_attention_form(F.additive_score)),
    Case("dot_product", "dot_product", _QKV,
         lambda t, mask: mech.dot_product(t["Q"], t["K"], t["V"])[0],
         closed_form=_attention_form(_dot_score)),
    Case("general", "general",
         (("Q", ("m", "d_q")), ("K", ("n", "d_k")), ("V", ("n", "d_v")),
          ("W", ("d_q", "d_k"))),
         lambda t, mask: mech.general(t["Q"], t["K"], t["V"], t["W"])[0],
         closed_form=_attention_form(_general_score)),
    Case(f"{_SELF} composed", _SDPA,
         (("X", ("n", "d_model")), ("W_q", ("d_model", "d_k")),
          ("W_k", ("d_model", "d_k")), ("W_v", ("d_model", "d_v"))), _projections(False)),
    Case(f"{_SELF} fused, mask M (n, n)", _SDPA,
         (("X", ("n", "d_model")), ("W_q", ("d_model", "d_k")),
          ("W_k", ("d_model", "d_k")), ("W_v", ("d_model", "d_v"))), _projections(True),
         ("n", "n"), note="any 0/1 mask; the causal mask is M_ij = [j <= i]"),
)

_MULTI_HEAD = (("X", ("n", "d_model")), ("W_q", ("d_model", "H*d_h")),
               ("W_k", ("d_model", "H*d_h")), ("W_v", ("d_model", "H*d_h")),
               ("W_o", ("H*d_h", "d_model")))

CASES += (
    Case("multi_head fused", "multi_head", _MULTI_HEAD, _multi_head(True),
         note="H heads of width d_h, self-attention (x_q = x_kv)"),
    Case("location", "location", (("Q", ("m", "d_q")), ("V", ("n", "d_v")),
                                  ("W", ("d_q", "n"))),
         lambda t, mask: mech.location(t["Q"], t["V"], t["W"])[0]),
    Case("content", "content", (("Q", ("m", "d_k")), ("K", ("n", "d_k")),
                                ("V", ("n", "d_v"))),
         lambda t, mask: mech.content(t["Q"], t["K"], t["V"], beta=2.0)[0],
         note="cosine scores with the exact norms (no eps clamp), key strength 2"),
)

#: Cases the index arrays cannot run, each with the reason the engine's code gives.
OUT_OF_REACH: tuple[Case, ...] = (
    Case("multi_head composed", "multi_head", _MULTI_HEAD, _multi_head(False),
         note="heads one by one: a Python loop over H, slices at offsets t d_h, concat"),
)


def prove_all(mechanism: str | None = None) -> list[Run]:
    """Prove every case (of ``mechanism``, if given); cached per process."""
    return [proven(c) for c in CASES if mechanism is None or c.mechanism == mechanism]


@functools.lru_cache(maxsize=None)
def proven(case: Case) -> Run:
    """:func:`prove_case`, cached per process (a document and a test share the work)."""
    return prove_case(case)


def out_of_reach_reason(case: Case) -> str:
    """Why ``case`` cannot run on index arrays: the error the engine's code raises."""
    try:
        run_case(case)
    except SymbolicUnsupported as exc:
        return str(exc)
    return "runs (no longer out of reach)"


# ----------------------------------------------------------------------------- reports

def timing_table(runs: list[Run]) -> str:
    """Markdown: case, claim, result, normal-form terms, seconds (engine run per case)."""
    rows = ["| case | claim | result | terms (engine/diff) | seconds |", "|---|---|---|---|---|"]
    total = 0.0
    for run in runs:
        rows.append(f"| `{run.case.name}` | forward and backward on index arrays | ran | | "
                    f"{run.seconds:.3f} |")
        total += run.seconds
        for pr in run.proofs:
            res = "proven" if pr.ok else "not proven"
            rows.append(f"| | `{pr.claim.split(': ', 1)[1]}` | {res} | {pr.lhs_terms}/"
                        f"{pr.rhs_terms} | {pr.seconds:.3f} |")
            total += pr.seconds
    count = sum(len(r.proofs) for r in runs)
    rows.append(f"| **total ({len(runs)} cases, {count} proofs)** | | | | **{total:.2f}** |")
    return "\n".join(rows)


_ENGINE_METHOD = (
    "The engine's own code, run at symbolic sizes (`tinygrad_attn/verify/ownbackward.py`): "
    "each input is an index array (`tinygrad_attn/engine/indexbackend.py`), the "
    "mechanism's forward and the engine's backward (the op table's VJPs, or the fused "
    "op's hand-written backward) run unchanged for a symbolic upstream gradient "
    "$\\bar O$, and each input's gradient is proven equal to `sympy.diff` of "
    "$L = \\sum \\bar O \\odot O$, $O$ the engine's own forward.")


def every_size_lines(mechanism: str) -> list[str]:
    """Markdown lines for a derivation document: which of ``mechanism``'s gradients hold
    for every size *for the engine's code* (proven here), and that the intermediate
    identities hold for every size for the hand-written closed forms only."""
    runs = prove_all(mechanism)
    reach = [c for c in OUT_OF_REACH if c.mechanism == mechanism]
    if not runs and not reach:
        return []
    lines = ["### The engine's own code, every size", "", _ENGINE_METHOD, ""]
    for run in runs:
        proven = [p.claim.split(": ", 1)[1] for p in run.proofs if p.ok]
        failed = [p.claim.split(": ", 1)[1] for p in run.proofs if not p.ok]
        lines.append(f"- `{run.case.name}`: " + ", ".join(f"`{p}`" for p in proven)
                     + " proven from the engine's code" +
                     (f"; **not proven**: {', '.join(failed)}" if failed else "")
                     + (f" ({run.case.note})" if run.case.note else ""))
    for case in reach:
        lines.append(f"- `{case.name}`: out of reach for the engine's code ({case.note}): "
                     f"{out_of_reach_reason(case)}")
    if mechanism not in CLOSED_FORMS:
        return lines + ["", "No hand-written closed form of this mechanism is proven for "
                        "every size (the section above): what holds for every size here "
                        "is the engine's code.", ""]
    return lines + ["", "What holds for every size only for the hand-written closed forms: "
                    "the intermediate identities of the section above (the adjoints of "
                    "$P$ and $S$, the softmax Jacobian and its row sums, "
                    "$\\operatorname{rowsum}(P \\odot \\bar P)$), which the engine's code "
                    "never states apart: it is proven on the gradients of its inputs, "
                    "which compose them.", ""]
