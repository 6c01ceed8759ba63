r"""SymPy expressions as DAGs: evaluation and reverse-mode differentiation in any algebra.

SymPy expressions are hash-consed trees: a subexpression used twice is one object, so a
dict keyed by node turns a forest of expressions into a DAG, and walking it costs its
number of *distinct* nodes.  :class:`DagEvaluator` computes the value of every node once,
in an :class:`Algebra` (mpmath numbers, elements of a prime field, degree bounds, or SymPy
expressions themselves); :func:`reverse_gradients` then runs reverse mode over the same
DAG: the adjoint of every node, from the outputs down to the input symbols.

The derivative rules (:func:`local_partials`) are SymPy's per-function derivatives, written
once against the algebra: :math:`\partial (a_1 \cdots a_k) / \partial a_i = \prod_{j \ne i}
a_j`, :math:`(u^e)' = e\,u^{e-1}`, :math:`\exp' = \exp`, :math:`\tanh' = 1 - \tanh^2`,
:math:`\log' u = 1/u`, and, away from the kinks, :math:`|u|' = \operatorname{sign} u`,
:math:`H' = \operatorname{sign}' = 0`, :math:`\partial \max / \partial a_i = \prod_{j \ne
i} H(a_i - a_j)`, and the derivative of a Piecewise is that of the branch taken (its
conditions, relations such as :math:`x > 0`, are constant away from equality).  They
never look at the engine's op table: this is the reference the engine's backward is
checked against.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Protocol, Sequence

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean

__all__ = ["Algebra", "DagEvaluator", "SympyAlgebra", "Unsupported", "branch_indicator",
           "count_nodes", "local_partials", "reverse_gradients", "topological"]


def branch_indicator(e: sp.Piecewise, i: int) -> sp.Basic:
    """1 where the Piecewise ``e`` takes its branch ``i``, else 0, as a Piecewise of
    the same conditions."""
    return sp.Piecewise(*[(int(j == i), pair.cond) for j, pair in enumerate(e.args)])


class Unsupported(ValueError):
    """An expression uses a construct an algebra has no rule for (the message names it)."""


class Algebra(Protocol):
    """What :class:`DagEvaluator` and :func:`reverse_gradients` need of a number system.

    ``key`` arguments name the node a value belongs to, so an algebra that tracks
    denominators (:mod:`tinygrad_attn.verify.bounds`) can recognise the same one twice.
    """

    one: Any
    zero: Any

    def const(self, r: sp.Rational) -> Any: ...
    def symbol(self, s: sp.Symbol) -> Any: ...
    def add(self, vals: Sequence[Any]) -> Any: ...
    def mul(self, vals: Sequence[Any]) -> Any: ...
    def neg(self, v: Any) -> Any: ...
    def inv(self, key: Hashable, v: Any) -> Any: ...
    def power(self, base: sp.Basic, v: Any, e: sp.Rational) -> Any: ...
    def function(self, e: sp.Basic, vals: Sequence[Any], ev: "DagEvaluator") -> Any: ...
    def intercept(self, e: sp.Basic) -> Any: ...


def topological(roots: Iterable[sp.Basic]) -> list[sp.Basic]:
    """Every distinct node reachable from ``roots``, children before parents (iterative,
    so deep expressions need no recursion)."""
    order: list[sp.Basic] = []
    seen: set[sp.Basic] = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.args))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.args)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def count_nodes(roots: Iterable[sp.Basic]) -> int:
    """The number of distinct nodes of the DAG of ``roots``."""
    return len(topological(roots))


class DagEvaluator:
    """The value of every node of a DAG in ``algebra``, each computed once (``memo``)."""

    def __init__(self, algebra: Algebra) -> None:
        self.alg = algebra
        self.memo: dict[sp.Basic, Any] = {}

    def values(self, exprs: Sequence[sp.Basic]) -> list[Any]:
        """The values of ``exprs``."""
        return [self.value(e) for e in exprs]

    def value(self, expr: sp.Basic) -> Any:
        """The value of one expression (and, on the way, of all its subexpressions)."""
        memo = self.memo
        if expr in memo:
            return memo[expr]
        stack = [expr]
        while stack:
            e = stack[-1]
            if e in memo:
                stack.pop()
                continue
            hit = self.alg.intercept(e)
            if hit is not None:
                memo[e] = hit
                stack.pop()
                continue
            pending = [a for a in e.args if a not in memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[e] = self._node(e)
        return memo[expr]

    def _node(self, e: sp.Basic) -> Any:
        """The value of ``e`` from the values of its arguments (already in ``memo``)."""
        alg = self.alg
        if e.is_Number:
            if e.is_Rational:
                return alg.const(e)
            if e.is_Float:
                return alg.const(sp.Rational(e))
            raise Unsupported(f"no rule for the number {e}")
        if e.is_Symbol:
            return alg.symbol(e)
        vals = [self.memo[a] for a in e.args]
        if e.is_Add:
            return alg.add(vals)
        if e.is_Mul:
            return alg.mul(vals)
        if e.is_Pow and e.exp.is_Rational:
            return alg.power(e.base, vals[0], e.exp)
        return alg.function(e, vals, self)


def local_partials(ev: DagEvaluator, e: sp.Basic, active: Sequence[bool]) -> list[Any]:
    """:math:`\\partial e / \\partial a` for every argument ``a`` of ``e`` that is
    ``active`` (depends on a differentiated symbol), ``None`` for the others."""
    alg = ev.alg
    vals = [ev.value(a) for a in e.args]
    if e.is_Add:
        return [alg.one if a else None for a in active]
    if e.is_Mul:
        return _mul_partials(alg, vals, active)
    if e.is_Pow:
        base, ex = e.args
        if ex.is_Rational:
            return [alg.mul([alg.const(ex), alg.power(base, vals[0], ex - 1)]), None]
        value = ev.value(e)  # a^b: b a^b / a and a^b log a
        return [alg.mul([vals[1], value, alg.inv(base, vals[0])]) if active[0] else None,
                alg.mul([value, ev.value(sp.log(base))]) if active[1] else None]
    if isinstance(e, sp.exp):
        return [ev.value(e)]
    if isinstance(e, sp.log):
        return [alg.inv(e.args[0], vals[0])]
    if isinstance(e, sp.tanh):
        t = ev.value(e)
        return [alg.add([alg.one, alg.neg(alg.mul([t, t]))])]
    if isinstance(e, sp.Abs):
        return [ev.value(sp.sign(e.args[0]))]
    if isinstance(e, (sp.sign, sp.Heaviside, sp.DiracDelta)):
        return [None] * len(active)  # 0 away from the kink, where the proof holds
    if isinstance(e, (sp.Max, sp.Min)):
        return _extremum_partials(ev, e, active)
    if isinstance(e, sp.sin):
        return [ev.value(sp.cos(e.args[0]))]
    if isinstance(e, sp.cos):
        return [alg.neg(ev.value(sp.sin(e.args[0])))]
    if isinstance(e, sp.Piecewise):  # d/d(branch i) = [branch i is the one taken]
        return [ev.value(branch_indicator(e, i)) if a else None for i, a in enumerate(active)]
    if isinstance(e, ExprCondPair):
        return [alg.one if active[0] else None, None]
    if isinstance(e, Boolean):  # relations and their logic: constant away from equality
        return [None] * len(active)
    raise Unsupported(f"no derivative rule for {type(e).__name__} (in {e})")


def _mul_partials(alg: Algebra, vals: list[Any], active: Sequence[bool]) -> list[Any]:
    """Products of all factors but one, by prefix and suffix products (no division)."""
    k = len(vals)
    if sum(active) == 1:
        i = list(active).index(True)
        out: list[Any] = [None] * k
        rest = vals[:i] + vals[i + 1:]
        out[i] = alg.mul(rest) if rest else alg.one
        return out
    prefix = [alg.one]
    for v in vals[:-1]:
        prefix.append(alg.mul([prefix[-1], v]))
    out = [None] * k
    suffix = alg.one
    for i in range(k - 1, -1, -1):
        if active[i]:
            out[i] = alg.mul([prefix[i], suffix])
        if i:
            suffix = alg.mul([vals[i], suffix])
    return out


def _extremum_partials(ev: DagEvaluator, e: sp.Basic, active: Sequence[bool]) -> list[Any]:
    """:math:`\\partial \\max / \\partial a_i = \\prod_{j \\ne i} H(a_i - a_j)` (no ties);
    for min the steps point the other way."""
    sign = 1 if isinstance(e, sp.Max) else -1
    args = e.args
    out: list[Any] = []
    for i, a in enumerate(args):
        if not active[i]:
            out.append(None)
            continue
        steps = [sp.Heaviside(sign * (a - b)) for j, b in enumerate(args) if j != i]
        out.append(ev.value(sp.Mul(*steps)))
    return out


def reverse_gradients(ev: DagEvaluator, seeds: Sequence[tuple[sp.Basic, sp.Basic]],
                      wrt: Sequence[sp.Symbol]) -> list[Any]:
    """:math:`\\partial L / \\partial x` for every ``x`` in ``wrt``, where
    :math:`L = \\sum_k c_k\\, o_k` over the ``seeds`` ``(o_k, c_k)`` (an output element
    and its upstream gradient, both expressions), in the evaluator's algebra.

    Reverse mode over the DAG: each node's adjoint is the sum of its parents' adjoints
    times the local partials, accumulated as lists and summed once.
    """
    alg = ev.alg
    order = topological([o for o, _ in seeds])
    targets = set(wrt)
    active: dict[sp.Basic, bool] = {}
    for node in order:
        active[node] = node in targets or any(active[a] for a in node.args)
    adjoints: dict[sp.Basic, list[Any]] = {}
    for out, c in seeds:
        if active.get(out) and c != 0:
            adjoints.setdefault(out, []).append(ev.value(c))
    grads: dict[sp.Basic, Any] = {}
    for node in reversed(order):
        parts = adjoints.pop(node, None)
        if not parts:
            continue
        adj = parts[0] if len(parts) == 1 else alg.add(parts)
        if node in targets:
            grads[node] = adj
            continue
        flags = [active[a] for a in node.args]
        for arg, d in zip(node.args, local_partials(ev, node, flags)):
            if d is not None:
                adjoints.setdefault(arg, []).append(alg.mul([adj, d]))
    return [grads.get(x, alg.zero) for x in wrt]


class SympyRing:
    """The ring operations on values that are SymPy expressions, shared by the algebras
    whose values are expressions (here, and the lifted one of :mod:`.atoms`)."""

    one = sp.Integer(1)
    zero = sp.Integer(0)

    def const(self, r: sp.Rational) -> Any:
        return r

    def add(self, vals: Sequence[Any]) -> Any:
        return sp.Add(*vals)

    def mul(self, vals: Sequence[Any]) -> Any:
        return sp.Mul(*vals)

    def neg(self, v: Any) -> Any:
        return -v

    def inv(self, key: Hashable, v: Any) -> Any:
        return 1 / v


class SympyAlgebra(SympyRing):
    """Values that are SymPy expressions with their true meaning: every node is its own
    value, so :func:`reverse_gradients` in this algebra builds the gradient expressions
    themselves (in time linear in the DAG, where ``sympy.diff`` walks every expression
    once per input symbol)."""

    def symbol(self, s: sp.Symbol) -> Any:
        return s

    def power(self, base: sp.Basic, v: Any, e: sp.Rational) -> Any:
        return v ** e

    def function(self, e: sp.Basic, vals: Sequence[Any], ev: DagEvaluator) -> Any:
        return e

    def intercept(self, e: sp.Basic) -> Any:
        return e
