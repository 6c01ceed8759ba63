r"""Zero-equivalence of two arrays of SymPy expressions, element by element, decided.

:func:`equivalent` (and :func:`decide`, behind ``Derivation.prove_engine`` and
``Derivation.prove``) tries up to three deciders in turn on the elements not yet decided;
the :class:`~tinygrad_attn.verify.proof.Proof` names the weakest one an element needed:

1. **exact cancellation** (``"exact"``): both sides lifted to rational functions
   (transcendental atoms normalised and made independent variables,
   :mod:`tinygrad_attn.verify.atoms`) and ``sympy.cancel(lhs - rhs) == 0``.  Exact; tried
   by ``method="auto"`` only when the differences, written out as trees, have at most
   :data:`EXACT_TREE` nodes together: cancellation grows with the tree, not the DAG, and
   past that size costs seconds to minutes where identity testing costs milliseconds
   (``benchmarks/bench_symbolic.py --routes``);
2. **identity testing** (``"identity testing"``): the lifted difference evaluated exactly
   in a random prime field at random points, with an error bound from the DAG's degree
   and coefficient sizes (:mod:`tinygrad_attn.verify.identity`): proven with probability
   at least :math:`1 - 2^{-k}`;
3. **numerical evaluation** (``"evaluation"``): for an element whose lifted difference is
   *not* zero -- either the identity is false, or it needs a relation between atoms the
   lifting forgets -- the true difference is evaluated with mpmath at ``points`` random
   points with ``digits`` significant digits.  Agreement is reported as "agrees
   numerically (not a proof)"; a difference as FAILED.

Lifting can only fail to prove a true identity, never prove a false one, so the first two
are proofs; the third is labelled as what it is.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import sympy as sp

from ..engine import Tensor
from ..engine.backend import symbolic as sym_xp
from .atoms import AtomTable, LiftedSympy, TreeSize
from .dag import DagEvaluator, Unsupported, topological
from .evaluation import MpmathAlgebra, random_points, to_mpf
from .identity import Expressions, Side, identity_test
from .proof import Proof

__all__ = ["EXACT_TREE", "METHOD_CHOICES", "as_expr_array", "decide", "equivalent",
           "tree_size"]

Label = tuple[str, tuple[int, ...]]

#: Largest total tree size of the lifted differences ``method="auto"`` cancels exactly:
#: up to it ``sympy.cancel`` takes well under a second, beyond it seconds to minutes
#: (``benchmarks/bench_symbolic.py --routes``).
EXACT_TREE = 10_000
#: The ``method`` values: which deciders are tried ("simplification" is the old name of
#: "exact").
METHOD_CHOICES = ("auto", "exact", "identity", "evaluation", "simplification")

_KINKS = (sp.Heaviside, sp.sign, sp.Abs, sp.Max, sp.Min, sp.Piecewise)


def equivalent(lhs: Mapping[str, Any], rhs: Mapping[str, Any], *, subject: str = "claim",
               method: str = "auto", points: int = 3, digits: int = 50, seed: int = 0,
               domains: Mapping[sp.Symbol, tuple] | None = None, trials: int = 2,
               sample: int | None = None) -> Proof:
    """Decide ``lhs[name] == rhs[name]`` element-wise for every name (arrays of
    expressions of equal shapes).

    ``method``: ``"auto"`` (exact cancellation when the DAG is small, else identity
    testing; numerical evaluation for what neither proves), ``"exact"``, ``"identity"``
    or ``"evaluation"`` (that decider, then evaluation).  ``trials``: independent primes
    and points of the identity test; ``points``, ``digits``, ``domains`` (symbol ->
    interval): the numerical evaluation.  ``sample=K`` checks ``K`` elements drawn at
    random (``seed``) instead of all.  ``subject`` becomes the proof's ``claim``.
    """
    if set(lhs) != set(rhs):
        raise ValueError(f"equivalent: lhs has {sorted(lhs)} but rhs has {sorted(rhs)}")
    labels, lefts, rights = _elements(lhs, rhs)
    return decide(labels, Expressions(lefts), Expressions(rights), subject=subject,
                  names=list(lhs), method=method, points=points, digits=digits, seed=seed,
                  domains=domains, trials=trials, sample=sample)


def decide(labels: Sequence[Label], lhs: Side, rhs: Side, *, subject: str,
           names: Sequence[str], method: str = "auto", points: int = 3, digits: int = 50,
           seed: int = 0, domains: Mapping[sp.Symbol, tuple] | None = None,
           trials: int = 2, sample: int | None = None) -> Proof:
    """:func:`equivalent` for two :class:`~tinygrad_attn.verify.identity.Side` objects
    (explicit expressions, or reverse-mode derivatives that are never written out)."""
    if method not in METHOD_CHOICES:
        raise ValueError(f"equivalent: method must be one of {METHOD_CHOICES}, got "
                         f"{method!r}")
    start = time.perf_counter()
    total = len(labels)
    labels, lhs, rhs = _sampled(list(labels), lhs, rhs, sample, seed)
    roots = lhs.roots() + rhs.roots()
    nodes = topological(roots)
    todo = list(range(len(labels)))
    info: dict[str, Any] = {"exact": 0, "tested": 0, "numeric": 0}
    tried = []
    if method in ("exact", "simplification") or (
            method == "auto" and tree_size(lhs, rhs, limit=EXACT_TREE) <= EXACT_TREE):
        todo = _exact_route(lhs, rhs, todo)
        info["exact"] = len(labels) - len(todo)
        tried.append("exact cancellation")
    if todo and method in ("auto", "identity"):
        todo, info = _identity_route(lhs, rhs, todo, trials, seed, info)
        tried.append("identity testing")
    failures, max_res = [], 0.0
    if todo:
        info["numeric"] = len(todo)
        failures, max_res = _numeric_route(labels, lhs, rhs, todo, nodes, points, digits,
                                           seed, domains or {})
    kinks = any(isinstance(e, _KINKS) for e in nodes)
    return Proof(subject, not failures, _weakest(info, failures), len(labels), list(names),
                 points=points if todo else 0, digits=digits if todo else 0,
                 max_residual=max_res, failures=failures,
                 assumptions=(KINK_ASSUMPTION,) if kinks else (),
                 seconds=time.perf_counter() - start, k=info.get("k"),
                 trials=info.get("trials", 0), degree=info.get("degree", 0),
                 height=info.get("height", 0),
                 exact=info["exact"], tested=info["tested"], numeric=info["numeric"],
                 population=total, reason=" and ".join(tried) if todo else "")


#: What a proof involving relu, abs, sign, max or min assumes.
KINK_ASSUMPTION = ("away from the kinks: no argument of a step, sign, abs, max or min is 0, "
                   "no two arguments of a max or min tie and no comparison's sides are equal")
__all__.append("KINK_ASSUMPTION")


def _weakest(info: Mapping[str, Any], failures: list) -> str:
    """The proof's method: the weakest decider any element needed."""
    if failures or info["numeric"]:
        return "evaluation"
    return "identity testing" if info["tested"] else "exact"


def _sampled(labels: list[Label], lhs: Side, rhs: Side, sample: int | None, seed: int
             ) -> tuple[list[Label], Side, Side]:
    """``sample`` elements drawn at random (all of them when ``sample`` is None)."""
    if sample is None or sample >= len(labels):
        return labels, lhs, rhs
    if sample < 1:
        raise ValueError(f"equivalent: sample must be a positive number, got {sample}")
    index = sorted(np.random.default_rng(seed).choice(len(labels), sample, replace=False))
    index = [int(i) for i in index]
    return [labels[i] for i in index], lhs.select(index), rhs.select(index)


def tree_size(lhs: Side, rhs: Side, limit: int | None = None) -> int:
    """The total size of the lifted differences written out as trees (what exact
    cancellation expands), from one pass over the DAG; huge when lifting is impossible.

    With ``limit``, a total above it may be returned as soon as it is known to exceed it
    (the explicit expressions of ``lhs`` are sized one by one): what the choice of route
    needs, without lifting the whole DAG of a large problem."""
    try:
        ev = DagEvaluator(TreeSize(AtomTable(lhs.roots() + rhs.roots())))
        total = 0
        if limit is not None and isinstance(lhs, Expressions):
            for e in lhs.exprs:
                total += ev.value(e)
                if total > limit:
                    return total
        else:
            total = sum(lhs.values(ev))
        return total + sum(rhs.values(ev))
    except (Unsupported, ZeroDivisionError):
        return 2 ** 62


def _exact_route(lhs: Side, rhs: Side, todo: list[int]) -> list[int]:
    """The elements whose lifted difference ``sympy.cancel`` does not reduce to 0."""
    try:
        alg = LiftedSympy(AtomTable(lhs.roots() + rhs.roots()))
        ev = DagEvaluator(alg)
        left, right = lhs.values(ev), rhs.values(ev)
    except (Unsupported, ZeroDivisionError):
        return todo
    out = []
    for i in todo:
        d = left[i] - right[i]
        if d != 0 and sp.cancel(d) != 0:
            out.append(i)
    return out


def _identity_route(lhs: Side, rhs: Side, todo: list[int], trials: int, seed: int,
                    info: dict[str, Any]) -> tuple[list[int], dict[str, Any]]:
    """The elements identity testing does not find zero; ``info`` gains ``k``,
    ``trials``, ``degree`` and the count ``tested``."""
    try:
        res = identity_test(lhs.select(todo), rhs.select(todo), trials=trials, seed=seed)
    except Unsupported:
        return todo, info
    left = [todo[i] for i in res.nonzero]
    info = dict(info, tested=len(todo) - len(left), trials=res.trials, degree=res.degree,
                height=math.ceil(res.height))
    if res.k is None:  # every difference was an exact zero already in the bounds
        info["exact"] += info["tested"]
        info["tested"] = 0
    else:
        info["k"] = res.k
    return left, info


def _numeric_route(labels: Sequence[Label], lhs: Side, rhs: Side, todo: list[int],
                   nodes: Sequence[sp.Basic], points: int, digits: int, seed: int,
                   domains: Mapping[sp.Symbol, tuple]
                   ) -> tuple[list[tuple[str, tuple[int, ...], float]], float]:
    """The elements whose difference, relative to ``max(1, |rhs|)``, exceeds
    :math:`10^{-(digits-10)}` at some random point (with the worst residual each), and
    the largest residual seen."""
    import mpmath

    syms = sorted({e for e in nodes if e.is_Symbol}, key=lambda s: s.name)
    tol = mpmath.mpf(10) ** (-(digits - 10))
    left_side, right_side = lhs.select(todo), rhs.select(todo)
    worst: dict[int, float] = {}
    max_res = 0.0
    with mpmath.workdps(digits):
        for pt in random_points(syms, domains, points, seed):
            ev = DagEvaluator(MpmathAlgebra({s: to_mpf(v) for s, v in zip(syms, pt)}))
            left, right = left_side.values(ev), right_side.values(ev)
            for k, (a, b) in enumerate(zip(left, right)):
                res = abs(a - b) / max(1, abs(b))
                max_res = max(max_res, float(res))
                if not res <= tol:  # also catches nan
                    worst[todo[k]] = max(worst.get(todo[k], 0.0), float(res))
    return [(labels[k][0], labels[k][1], r) for k, r in sorted(worst.items())], max_res


def as_expr_array(x: Any) -> np.ndarray:
    """An object array of SymPy expressions; numbers become exact constants (the float
    ``0.1`` is ``1/10``, see :func:`tinygrad_attn.engine.symbolic_backend.exact_constant`)."""
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
