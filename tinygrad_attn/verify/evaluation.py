"""Numbers from SymPy expressions: at exact random points, to many digits, or compiled.

When identity testing cannot decide (:mod:`tinygrad_attn.verify.equivalence`), a
difference is evaluated at random rational points with mpmath (:class:`MpmathAlgebra`,
:func:`random_points`): a numerical check, not a proof.
``Derivation.evaluate`` turns exact gradients into float64 code
(:func:`compile_expressions`) or evaluates them with mpmath.  Heaviside, DiracDelta, Max
and Min -- the kinks of relu, abs and max -- get numeric rules here: the points avoid 0
and ties, where they are not differentiable.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import operator

import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean, BooleanAtom

__all__ = ["DEFAULT_DOMAIN", "POSITIVE_DOMAIN", "MpmathAlgebra", "compile_expressions",
           "random_points", "to_mpf"]

#: Interval random evaluation points are drawn from, unless an input says otherwise.
DEFAULT_DOMAIN = (-1.5, 1.5)
#: The interval for inputs declared positive (log, sqrt, powers).
POSITIVE_DOMAIN = (0.5, 2.0)


def _heaviside(x: Any, h0: Any = 0.5) -> Any:
    """The step function in mpmath: 1 above 0, 0 below, ``h0`` at 0."""
    import mpmath

    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(h0)


def _dirac(x: Any, *k: Any) -> Any:
    """DiracDelta away from 0 (zero); at 0 the function was not differentiable."""
    import mpmath

    if x != 0:
        return mpmath.mpf(0)
    raise ZeroDivisionError("DiracDelta evaluated at 0 (a point where the function is "
                            "not differentiable)")


_MPMATH = [{"Heaviside": _heaviside, "DiracDelta": _dirac, "Max": max, "Min": min}, "mpmath"]


def _select(conditions: Sequence[Any], choices: Sequence[Any], default: Any = np.nan) -> Any:
    """``numpy.select`` (a compiled Piecewise) with every condition made a bool array: a
    condition may be ``True`` or a Piecewise of truth values itself."""
    return np.select([np.asarray(c).astype(bool) for c in conditions], choices, default)


_NUMPY = [{"Heaviside": lambda x, h0=0.5: np.where(x > 0, 1.0, np.where(x < 0, 0.0, h0)),
           "DiracDelta": lambda x, *k: np.zeros_like(x),
           "Max": np.maximum, "Min": np.minimum, "select": _select}, "numpy"]


def compile_expressions(syms: Sequence[sp.Symbol], exprs: Sequence[sp.Expr],
                        modules: str = "mpmath") -> Callable[..., list]:
    """``lambdify`` with common-subexpression elimination: ``f(*values)`` -> list of
    values, one per expression.  ``modules`` is ``"mpmath"`` (arbitrary precision) or
    ``"numpy"`` (float64, fast)."""
    mods = _MPMATH if modules == "mpmath" else _NUMPY
    return sp.lambdify(list(syms), list(exprs), modules=mods, cse=True)


class MpmathAlgebra:
    """True values with mpmath at the working precision (:class:`~tinygrad_attn.verify.
    dag.Algebra`): ``exp`` is :math:`e^x`, not an atom.  ``env`` gives every symbol's
    value.  Walked by :class:`~tinygrad_attn.verify.dag.DagEvaluator`, each distinct
    subexpression is evaluated once."""

    def __init__(self, env: Mapping[sp.Symbol, Any]) -> None:
        import mpmath

        self.mp = mpmath
        self.env = env
        self.one = mpmath.mpf(1)
        self.zero = mpmath.mpf(0)

    def const(self, r: sp.Rational) -> Any:
        return self.mp.mpf(int(r.p)) / int(r.q)

    def symbol(self, s: sp.Symbol) -> Any:
        if s not in self.env:
            raise ValueError(f"evaluate: no value for the symbol {s}")
        return self.env[s]

    def add(self, vals: Sequence[Any]) -> Any:
        return self.mp.fsum(vals)

    def mul(self, vals: Sequence[Any]) -> Any:
        out = self.one
        for x in vals:
            out = out * x
        return out

    def neg(self, v: Any) -> Any:
        return -v

    def inv(self, key: Any, v: Any) -> Any:
        return 1 / v

    def power(self, base: sp.Basic, v: Any, e: sp.Rational) -> Any:
        if e.is_Integer:
            return v ** int(e)
        return v ** self.const(e)

    def intercept(self, e: sp.Basic) -> Any:
        return None

    def function(self, e: sp.Basic, v: Sequence[Any], ev: Any) -> Any:
        mp = self.mp
        if isinstance(e, (sp.Piecewise, ExprCondPair, Boolean)):
            return _logic(e, v)
        if not e.args:
            return self._number(e)
        name = type(e).__name__
        unary = {"exp": mp.exp, "log": mp.log, "tanh": mp.tanh, "Abs": abs, "sinh": mp.sinh,
                 "cosh": mp.cosh, "sign": mp.sign, "sin": mp.sin, "cos": mp.cos}
        if name in unary and len(v) == 1:
            return unary[name](v[0])
        if name == "Heaviside":
            return _heaviside(*v)
        if name == "DiracDelta":
            return _dirac(*v)
        if name == "Max":
            return max(v)
        if name == "Min":
            return min(v)
        if name == "Pow":
            return v[0] ** v[1]
        raise ValueError(f"evaluate: no numeric rule for {name} (in {e})")

    def _number(self, e: sp.Basic) -> Any:
        mp = self.mp
        if e is sp.S.Infinity or e is sp.S.NegativeInfinity:
            return mp.inf if e.is_positive else -mp.inf
        if e is sp.S.Pi:
            return +mp.pi
        if e is sp.S.Exp1:
            return mp.e
        return mp.mpf(e.evalf(mp.mp.dps))


#: The relations by their operator: ``(x > 0).rel_op`` is ``">"``.
_RELATIONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
              "==": operator.eq, "!=": operator.ne}


def _logic(e: sp.Basic, v: Sequence[Any]) -> Any:
    """Piecewise (the value of the first branch whose condition holds), its branches and
    conditions (relations, and, or, not, if-then-else) at a point: ``v`` are the
    arguments' values."""
    if isinstance(e, ExprCondPair):
        return tuple(v)
    if isinstance(e, sp.Piecewise):
        for value, holds in v:
            if holds:
                return value
        raise ValueError(f"evaluate: no branch of {e} holds")
    if isinstance(e, BooleanAtom):
        return bool(e)
    if e.is_Relational:
        return _RELATIONS[e.rel_op](v[0], v[1])
    logic = {"Not": lambda: not v[0], "And": lambda: all(v), "Or": lambda: any(v),
             "ITE": lambda: v[1] if v[0] else v[2]}
    if type(e).__name__ in logic:
        return logic[type(e).__name__]()
    raise ValueError(f"evaluate: no numeric rule for {type(e).__name__} (in {e})")


def random_points(syms: Sequence[sp.Symbol], domains: Mapping[sp.Symbol, tuple],
                   points: int, seed: int) -> list[list[Any]]:
    """``points`` lists of exact random rationals, one per symbol, none 0, no two equal
    (so Heaviside, sign and Max are evaluated away from their kinks)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < points:
        vals = []
        for s in syms:
            lo, hi = domains.get(s, DEFAULT_DOMAIN)
            k = int(rng.integers(0, 1_000_003))
            vals.append(sp.Rational(lo) + (sp.Rational(hi) - sp.Rational(lo))
                        * sp.Rational(2 * k + 1, 2_000_006))
        if all(v != 0 for v in vals) and len(set(vals)) == len(vals):
            out.append(vals)
    return out


def to_mpf(value: Any) -> Any:
    """An mpmath number for a SymPy rational (exactly, at the working precision) or a
    float."""
    import mpmath

    if isinstance(value, sp.Rational):
        return mpmath.mpf(int(value.p)) / int(value.q)
    return mpmath.mpf(value)
