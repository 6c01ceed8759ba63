r"""Zero-equivalence of two arrays of SymPy expressions, element by element.

:func:`equivalent` decides ``lhs[name] == rhs[name]`` in one of two ways, and the
:class:`~tinygrad_attn.verify.proof.Proof` it returns says which:

* ``"simplification"``: ``sympy.cancel`` (exact for rational functions) then
  ``sympy.simplify``; chosen by ``method="auto"`` when no exp/log/tanh/... appears;
* ``"evaluation"``: the difference evaluated with mpmath at several random points with
  50 significant digits (:class:`~tinygrad_attn.verify.evaluation.Evaluator`, which
  evaluates each distinct subexpression once).  A nonzero analytic difference vanishes
  at a random point with probability 0, so agreement to 40 digits at 3 points is a
  proof in the probabilistic sense -- and it takes seconds where ``simplify`` takes
  minutes once exp/tanh/log appear (``benchmarks/bench_symbolic.py --baseline``).
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import sympy as sp

from ..engine import Tensor
from ..engine.backend import symbolic as sym_xp
from .evaluation import Evaluator, random_points, to_mpf
from .proof import Proof

__all__ = ["as_expr_array", "equivalent"]

Label = tuple[str, tuple[int, ...]]


def equivalent(lhs: Mapping[str, Any], rhs: Mapping[str, Any], *, subject: str = "claim",
               method: str = "auto", points: int = 3, digits: int = 50, seed: int = 0,
               domains: Mapping[sp.Symbol, tuple] | None = None) -> Proof:
    """Prove ``lhs[name] == rhs[name]`` element-wise for every name (arrays of expressions).

    ``method``: ``"simplification"``, ``"evaluation"`` (``points`` random points at
    ``digits`` significant digits) or ``"auto"`` (simplification when the expressions are
    rational functions, where ``sympy.cancel`` decides zero exactly; evaluation otherwise).
    ``domains`` maps symbols to the interval their random values come from.  ``subject``
    becomes the proof's ``claim``.
    """
    if set(lhs) != set(rhs):
        raise ValueError(f"equivalent: lhs has {sorted(lhs)} but rhs has {sorted(rhs)}")
    if method not in ("auto", "simplification", "evaluation"):
        raise ValueError(f"equivalent: method must be 'auto', 'simplification' or "
                         f"'evaluation', got {method!r}")
    start = time.perf_counter()
    labels, lefts, rights = _elements(lhs, rhs)
    diffs = [sp.sympify(a - b) for a, b in zip(lefts, rights)]
    if method == "auto":
        # decided on both sides, not on their difference (which SymPy may or may not
        # have cancelled on construction), so the choice is deterministic
        method = "evaluation" if _has_transcendental(lefts + rights) else "simplification"
    if method == "simplification":
        failures = _by_simplification(labels, diffs)
        return Proof(subject, not failures, "simplification", len(diffs), list(lhs),
                     failures=failures, seconds=time.perf_counter() - start)
    failures, max_res = _by_evaluation(labels, diffs, rights, points, digits, seed,
                                       domains or {})
    return Proof(subject, not failures, "evaluation", len(diffs), list(lhs), points=points,
                 digits=digits, max_residual=max_res, failures=failures,
                 seconds=time.perf_counter() - start)


def as_expr_array(x: Any) -> np.ndarray:
    """An object array of SymPy expressions; numbers become exact constants (the float
    ``0.1`` is ``1/10``, see :func:`tinygrad_attn.engine.backend.exact_constant`)."""
    if isinstance(x, Tensor):
        x = x.data
    if isinstance(x, sp.Basic):
        return np.asarray(x, dtype=object)
    arr = np.asarray(x)
    if arr.dtype != object:
        return sym_xp.constant(arr, None)
    out = np.empty(arr.shape, dtype=object)
    for index in np.ndindex(arr.shape):
        e = arr[index]
        out[index] = e if isinstance(e, sp.Basic) else sym_xp.constant(e, None)[()]
    return out


def _elements(lhs: Mapping[str, Any], rhs: Mapping[str, Any]
              ) -> tuple[list[Label], list[sp.Expr], list[sp.Expr]]:
    """Every element pair, flattened: ``(name, index)`` labels, left and right sides."""
    labels: list[Label] = []
    lefts: list[sp.Expr] = []
    rights: list[sp.Expr] = []
    for name in lhs:
        a = np.asarray(as_expr_array(lhs[name]), dtype=object)
        b = np.asarray(as_expr_array(rhs[name]), dtype=object)
        if a.shape != b.shape:
            raise ValueError(f"equivalent: {name} has shape {a.shape} on the left but "
                             f"{b.shape} on the right")
        for index in np.ndindex(a.shape):
            labels.append((name, tuple(map(int, index))))
            lefts.append(sp.sympify(a[index]))
            rights.append(sp.sympify(b[index]))
    return labels, lefts, rights


def _has_transcendental(exprs: Sequence[sp.Expr]) -> bool:
    """Whether any expression leaves the rational functions (a function call such as exp,
    or a non-integer power), where ``sympy.cancel`` no longer decides zero."""
    for e in exprs:
        if e.atoms(sp.Function) or any(not p.exp.is_Integer for p in e.atoms(sp.Pow)):
            return True
    return False


def _by_simplification(labels: list[Label], diffs: list[sp.Expr]
                       ) -> list[tuple[str, tuple[int, ...], float]]:
    """The elements whose difference neither ``cancel`` nor ``simplify`` brings to 0."""
    return [(name, index, math.nan) for (name, index), d in zip(labels, diffs)
            if d != 0 and sp.cancel(d) != 0 and sp.simplify(d) != 0]


def _by_evaluation(labels: list[Label], diffs: list[sp.Expr], scales: list[sp.Expr],
                   points: int, digits: int, seed: int, domains: Mapping[sp.Symbol, tuple]
                   ) -> tuple[list[tuple[str, tuple[int, ...], float]], float]:
    """The elements whose difference, relative to ``max(1, |rhs|)``, exceeds
    :math:`10^{-(digits-10)}` at some random point (with the worst residual each), and
    the largest residual seen."""
    import mpmath

    syms = sorted(set().union(*(d.free_symbols for d in diffs + scales)) if diffs else set(),
                  key=lambda s: s.name)
    tol = mpmath.mpf(10) ** (-(digits - 10))
    worst: dict[int, float] = {}
    max_res = 0.0
    with mpmath.workdps(digits):
        for pt in random_points(syms, domains, points, seed):
            ev = Evaluator({s: to_mpf(v) for s, v in zip(syms, pt)})
            vals = [ev(e) for e in diffs + scales]
            for k, (d, s) in enumerate(zip(vals[:len(diffs)], vals[len(diffs):])):
                res = abs(d) / max(1, abs(s))
                max_res = max(max_res, float(res))
                if not res <= tol:  # also catches nan
                    worst[k] = max(worst.get(k, 0.0), float(res))
    return [(labels[k][0], labels[k][1], r) for k, r in sorted(worst.items())], max_res
