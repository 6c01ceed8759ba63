r"""Transcendental atoms, normalised and lifted to independent variables.

An expression of the engine is a rational function of its input symbols and of a few
*atoms*: :math:`e^u`, :math:`\log u`, :math:`\sqrt u`, :math:`H(u)`, ...  Replacing every
atom by a fresh variable *lifts* the expression to a rational function
:math:`F(x, y)` with :math:`F(x, y(x))` the original.  If two lifts are equal as rational
functions, the originals are equal wherever they are defined; the converse can fail (a
relation between atoms, such as :math:`\sin^2 + \cos^2 = 1`, is forgotten), so lifting can
only *fail to prove* a true identity, never prove a false one.

To forget as few relations as possible the atoms are normalised first:

* :math:`e^{\sum_m c_m m} = \prod_m A_m^{c_m / q_m}`: the exponent is expanded into
  monomials :math:`m` with rational coefficients, and :math:`A_m = e^{q_m m}` with
  :math:`q_m` the gcd of all coefficients :math:`m` has anywhere, so every power is an
  integer (:math:`e^{a+b} = e^a e^b`, :math:`e^{2x} = (e^x)^2`, :math:`e^{-x} = 1/e^x`);
* :math:`\tanh u = (E^2 - 1)/(E^2 + 1)`, :math:`\sinh`, :math:`\cosh` likewise, with
  :math:`E = e^u` normalised as above; sigmoid and softplus are already written with
  :math:`e^u` by the engine;
* :math:`u^{a/b}` for a non-constant :math:`u` is :math:`T_u^{a L / b}` with
  :math:`T_u = u^{1/L}` (:math:`L` the lcm of the denominators of the powers of
  :math:`u`), and :math:`u` itself is :math:`T_u^L` wherever it appears whole, so
  :math:`(\sqrt u)^2 = u` holds in the lift;
* square roots of rational constants stay algebraic: :math:`\sqrt{c} = s \prod_p
  \sqrt{p}` over the primes of its square-free part, and the algebra keeps
  :math:`(\sqrt p)^2 = p` (:meth:`Lifted.radical`);
* :math:`H(-u) = 1 - H(u)`, :math:`\operatorname{sign}(-u) = -\operatorname{sign} u`,
  :math:`|u| = \operatorname{sign}(u)\, u`, :math:`\max(a_1, \ldots) = \sum_i a_i \prod_{j
  \ne i} H(a_i - a_j)`: valid away from the kinks (no zero argument, no ties);
* a relation :math:`u > v` (or :math:`\ge`) is :math:`H(u - v)`, one of equality 0, and
  a Piecewise the sum of its branches times the indicators that each is taken: valid
  away from equality;
* :math:`e^{c \log w} = w^c` (a power with a symbolic exponent is :math:`a^b = e^{b \log
  a}`);
* :math:`\log u`, :math:`\sin u`, :math:`\cos u`, :math:`\pi` and any other
  transcendental atom: a variable per distinct argument.

:class:`AtomTable` collects what the normalisation needs from every expression involved
(monomial coefficients, radicands); :class:`Lifted` is the part of an algebra that
interprets SymPy nodes through it, leaving arithmetic to its subclasses
(:mod:`tinygrad_attn.verify.field`, :mod:`tinygrad_attn.verify.bounds`,
:class:`LiftedSympy`).
"""
from __future__ import annotations

import math
from typing import Any, Hashable, Iterable, Sequence

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import ITE, Boolean, BooleanAtom

from .dag import DagEvaluator, SympyRing, Unsupported, topological

__all__ = ["AtomTable", "Lifted", "LiftedSympy", "Monomial", "SIZE_CAP", "TreeSize", "monomials"]

#: A monomial of an exponent: its factors and their rational powers.
Monomial = frozenset
#: Most terms an exponent is expanded into; beyond, the subexpression is one opaque factor.
EXPANSION_CAP = 4096
#: Largest power of one exp atom; beyond, exp(c m) gets an atom of its own.
MAX_EXP_POWER = 64


def _merge(a: Monomial, b: Monomial) -> tuple[Monomial, sp.Rational]:
    """The product of two monomials, and the rational factor it gives off (``sqrt(2)
    sqrt(2) = 2``)."""
    powers = dict(a)
    for base, e in b:
        powers[base] = powers.get(base, 0) + e
    coeff = sp.Integer(1)
    out = {}
    for base, e in powers.items():
        if e == 0:
            continue
        if base.is_Rational and e.is_Integer:
            coeff *= base ** e
        else:
            out[base] = e
    return frozenset(out.items()), coeff


def monomials(expr: sp.Basic, cache: dict) -> dict[Monomial, sp.Rational]:
    """``expr`` expanded into monomials with rational coefficients: ``(a + b) c / 2`` ->
    ``{ac: 1/2, bc: 1/2}``.  A subexpression whose expansion would exceed
    :data:`EXPANSION_CAP` terms stays one factor (sound, merely less canonical)."""
    if expr in cache:
        return cache[expr]
    if expr.is_Rational:
        out = {frozenset(): expr}
    elif expr.is_Add:
        out = {}
        for a in expr.args:
            for m, c in monomials(a, cache).items():
                out[m] = out.get(m, 0) + c
    elif expr.is_Mul:
        out = {frozenset(): sp.Integer(1)}
        for a in expr.args:
            out = _product(out, monomials(a, cache), expr)
    elif (expr.is_Pow and expr.exp.is_Integer and expr.exp > 0 and expr.base.is_Add
          and expr.exp <= 8):
        out = {frozenset(): sp.Integer(1)}
        for _ in range(int(expr.exp)):
            out = _product(out, monomials(expr.base, cache), expr)
    elif expr.is_Pow and expr.exp.is_Rational and not expr.base.is_Add:
        out = {frozenset({(expr.base, expr.exp)}): sp.Integer(1)}
    else:
        out = {frozenset({(expr, sp.Integer(1))}): sp.Integer(1)}
    out = {m: c for m, c in out.items() if c != 0}
    cache[expr] = out
    return out


def _product(a: dict, b: dict, whole: sp.Basic) -> dict:
    """The product of two expansions, or ``whole`` as one factor past the cap."""
    if len(a) * len(b) > EXPANSION_CAP:
        return {frozenset({(whole, sp.Integer(1))}): sp.Integer(1)}
    out: dict = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m, extra = _merge(ma, mb)
            out[m] = out.get(m, 0) + ca * cb * extra
    return out


def _rational_gcd(a: sp.Rational, b: sp.Rational) -> sp.Rational:
    """The largest rational ``q`` with ``a / q`` and ``b / q`` integers."""
    num = math.gcd(int(a.p), int(b.p))
    den = int(a.q) * int(b.q) // math.gcd(int(a.q), int(b.q))
    return sp.Rational(num, den)


def _exponent(e: sp.Basic) -> sp.Basic | None:
    """The :math:`u` of a node that is :math:`e^u` in disguise (exp, tanh, sinh, cosh, a
    power with a symbolic exponent: :math:`a^b = e^{b \\log a}`), else None."""
    if isinstance(e, (sp.exp, sp.tanh, sp.sinh, sp.cosh)):
        return e.args[0]
    if e.is_Pow and not e.exp.is_Rational:
        return sp.Mul(e.exp, sp.log(e.base))
    return None


class AtomTable:
    """What normalising the atoms of a set of expressions needs, collected once.

    ``exp_base[m]`` is the :math:`q_m` of the exp atom of monomial ``m``;
    ``root_order[u]`` is the :math:`L` of the radical atom of a non-constant ``u``.
    """

    def __init__(self, roots: Iterable[sp.Basic] = ()) -> None:
        self.cache: dict = {}
        self.exp_base: dict[Monomial, sp.Rational] = {}
        self.root_order: dict[sp.Basic, int] = {}
        self.powers: dict[sp.Basic, list] = {}  # exp_powers, per exponent
        self.scan(roots)

    def scan(self, roots: Iterable[sp.Basic]) -> list[sp.Basic]:
        """Record the exp monomials and radicands of every node; returns the nodes."""
        order = topological(roots)
        self.powers.clear()
        for e in order:
            u = _exponent(e)
            if u is not None:
                for m, c in monomials(u, self.cache).items():
                    q = self.exp_base.get(m)
                    self.exp_base[m] = abs(c) if q is None else _rational_gcd(q, c)
            elif e.is_Pow and e.exp.is_Rational and not e.exp.is_Integer \
                    and not e.base.is_number:
                old = self.root_order.get(e.base, 1)
                self.root_order[e.base] = old * int(e.exp.q) // math.gcd(old, int(e.exp.q))
        return order

    def exp_powers(self, u: sp.Basic) -> list[tuple[Hashable, Any]]:
        """:math:`e^u` as ``[(atom key, integer power), ...]``; a term :math:`c \\log w`
        gives ``(("power", w), c)``: :math:`e^{c \\log w} = w^c`."""
        if u in self.powers:
            return self.powers[u]
        out: list[tuple[Hashable, Any]] = []
        for m, c in monomials(u, self.cache).items():
            if len(m) == 1:
                (base, e), = m
                if e == 1 and isinstance(base, sp.log):
                    out.append((("power", base.args[0]), c))
                    continue
            q = self.exp_base.get(m)
            k = c / q if q else None
            if k is None or not k.is_Integer or abs(k) > MAX_EXP_POWER:
                out.append((("exp", m, c), 1))  # an atom of its own: sound, less canonical
            else:
                out.append((("exp", m, q), int(k)))
        self.powers[u] = out
        return out


class Lifted:
    """The interpretation of SymPy nodes through normalised, independent atoms.

    A subclass supplies the arithmetic: ``one``, ``zero``, ``const``, ``add``, ``mul``,
    ``neg``, ``inv(key, v)``, ``var(key)`` (the value of an atom or input symbol),
    ``pow_int(key, v, k)`` and ``radical(primes)`` (the product of :math:`\\sqrt p`).
    """

    one: Any
    zero: Any

    def __init__(self, table: AtomTable) -> None:
        self.table = table

    # -- hooks of dag.Algebra ------------------------------------------------------------
    def symbol(self, s: sp.Symbol) -> Any:
        return self.var(s)

    def intercept(self, e: sp.Basic) -> Any:
        """A radicand ``u`` is :math:`T_u^L` wherever it appears whole."""
        order = self.table.root_order.get(e)
        return None if order is None else self.pow_int(("root", e), self.var(("root", e)),
                                                         order)

    def power(self, base: sp.Basic, v: Any, e: sp.Rational) -> Any:
        if e.is_Integer:
            return self.pow_int(base, v, int(e))
        if base.is_Rational:
            return self._constant_power(base, e)
        order = self.table.root_order.get(base)
        if order is None or (e * order).q != 1:  # a radical no scan saw: its own atom
            key = ("root", base, int(e.q))
            return self.pow_int(key, self.var(key), int(e.p))
        key = ("root", base)
        return self.pow_int(key, self.var(key), int(e * order))

    def _constant_power(self, c: sp.Rational, e: sp.Rational) -> Any:
        """:math:`c^{a/2} = c^{(a-1)/2} \\sqrt c` exactly; other roots are atoms."""
        if c <= 0:
            raise Unsupported(f"no real rule for {c}**{e}")
        if e.q != 2:
            key = ("root", c, int(e.q))
            return self.pow_int(key, self.var(key), int(e.p))
        whole = self.const(c ** ((e - sp.Rational(1, 2))))
        square_free, outside = 1, sp.Integer(1)
        for prime, k in sp.factorint(int(c.p) * int(c.q)).items():
            outside *= sp.Integer(prime) ** (k // 2)
            square_free *= prime if k % 2 else 1
        primes = tuple(sorted(sp.factorint(square_free)))
        root = self.mul([self.const(outside / c.q), self.radical(primes)])
        return self.mul([whole, root])

    def function(self, e: sp.Basic, vals: Sequence[Any], ev: DagEvaluator) -> Any:
        if isinstance(e, (sp.Piecewise, ExprCondPair, Boolean)):
            return self._logic(e, vals, ev)
        if isinstance(e, sp.exp) or e.is_Pow:
            return self.exp_of(_exponent(e), ev)
        if isinstance(e, (sp.tanh, sp.sinh, sp.cosh)):
            return self._hyperbolic(e, ev)
        if isinstance(e, (sp.sign, sp.Abs)):
            u = e.args[0]
            s = self.var(("sign", -u)) if u.could_extract_minus_sign() else \
                self.var(("sign", u))
            s = self.neg(s) if u.could_extract_minus_sign() else s
            return s if isinstance(e, sp.sign) else self.mul([s, vals[0]])
        if isinstance(e, sp.Heaviside):
            u = e.args[0]
            if u.could_extract_minus_sign():
                return self.add([self.one, self.neg(self.var(("step", -u)))])
            return self.var(("step", u))
        if isinstance(e, sp.DiracDelta):
            return self.zero
        if isinstance(e, (sp.Max, sp.Min)):
            sign = 1 if isinstance(e, sp.Max) else -1
            terms = [sp.Mul(a, *[sp.Heaviside(sign * (a - b)) for b in e.args if b is not a])
                     for a in e.args]
            return ev.value(sp.Add(*terms))
        if e is sp.S.Exp1:
            return self.exp_of(sp.Integer(1), ev)
        if e.is_number and not e.args or isinstance(e, (sp.log, sp.sin, sp.cos)):
            return self.var(("atom", e))
        raise Unsupported(f"no rule for {type(e).__name__} (in {e})")

    def _logic(self, e: sp.Basic, vals: Sequence[Any], ev: DagEvaluator) -> Any:
        """A Piecewise is :math:`\\sum_i v_i c_i \\prod_{j<i} (1 - c_j)` over its branches
        (value :math:`v_i`, condition :math:`c_i` as 0 or 1); a relation between two sides
        is the step :math:`H(u)` of their difference (strict or not alike), an equation 0
        and an inequation 1 (valid away from equality); and, or, not, if-then-else are
        products."""
        if isinstance(e, ExprCondPair):
            return tuple(vals)
        if isinstance(e, sp.Piecewise):
            out, rest = [], self.one
            for v, c in vals:
                out.append(self.mul([rest, c, v]))
                rest = self.mul([rest, self.add([self.one, self.neg(c)])])
            return self.add(out)
        if isinstance(e, BooleanAtom):
            return self.one if e is sp.true else self.zero
        if e.is_Relational and e.rel_op in (">", ">=", "<", "<="):
            u = e.lhs - e.rhs if e.rel_op.startswith(">") else e.rhs - e.lhs
            return ev.value(sp.Heaviside(u))
        if e.is_Relational and e.rel_op in ("==", "!="):
            return self.zero if e.rel_op == "==" else self.one
        if isinstance(e, sp.Not):
            return self.add([self.one, self.neg(vals[0])])
        if isinstance(e, sp.And):
            return self.mul(list(vals))
        if isinstance(e, sp.Or):
            miss = self.mul([self.add([self.one, self.neg(v)]) for v in vals])
            return self.add([self.one, self.neg(miss)])
        if isinstance(e, ITE):
            otherwise = self.mul([self.add([self.one, self.neg(vals[0])]), vals[2]])
            return self.add([self.mul([vals[0], vals[1]]), otherwise])
        raise Unsupported(f"no rule for {type(e).__name__} (in {e})")

    # -- the normalised atoms -------------------------------------------------------------
    def exp_of(self, u: sp.Basic, ev: DagEvaluator) -> Any:
        """:math:`e^u = \\prod_m A_m^{k_m}` (and :math:`e^{c \\log w} = w^c`)."""
        parts = []
        for key, k in self.table.exp_powers(u):
            if key[0] == "power":
                parts.append(self.power(key[1], ev.value(key[1]), k))
            else:
                parts.append(self.pow_int(key, self.var(key), k))
        return self.mul(parts) if parts else self.one

    def _hyperbolic(self, e: sp.Basic, ev: DagEvaluator) -> Any:
        """tanh, sinh, cosh through :math:`E = e^u`."""
        u = e.args[0]
        big = self.exp_of(u, ev)
        square = self.mul([big, big])
        if isinstance(e, sp.tanh):
            num = self.add([square, self.neg(self.one)])
            return self.mul([num, self.inv(("tanh", u), self.add([square, self.one]))])
        half = self.const(sp.Rational(1, 2))
        other = self.neg(self.one) if isinstance(e, sp.sinh) else self.one
        num = self.add([square, other])
        return self.mul([half, num, self.inv(("exp", u), big)])

    # -- arithmetic, supplied by subclasses -----------------------------------------------
    def const(self, r: sp.Rational) -> Any:
        raise NotImplementedError

    def var(self, key: Hashable) -> Any:
        raise NotImplementedError

    def pow_int(self, key: Hashable, v: Any, k: int) -> Any:
        raise NotImplementedError

    def radical(self, primes: tuple[int, ...]) -> Any:
        raise NotImplementedError


class LiftedSympy(SympyRing, Lifted):
    """Lifted values as SymPy expressions in fresh symbols (one per atom), for deciding
    identities by exact cancellation (``sympy.cancel``)."""

    def __init__(self, table: AtomTable) -> None:
        super().__init__(table)
        self.atoms: dict[Hashable, sp.Symbol] = {}

    def var(self, key: Hashable) -> Any:
        if isinstance(key, sp.Symbol):
            return key
        if key not in self.atoms:
            self.atoms[key] = sp.Dummy(f"a{len(self.atoms)}")
        return self.atoms[key]

    def pow_int(self, key: Hashable, v: Any, k: int) -> Any:
        return v ** k

    def radical(self, primes: tuple[int, ...]) -> Any:
        return sp.Mul(*[sp.sqrt(p) for p in primes])


class TreeSize(Lifted):
    """The size of a lifted value written out as a tree (no sharing): what exact
    cancellation has to expand, computed without building it.  Sizes are capped at
    :data:`SIZE_CAP` so the numbers stay small."""

    one = 1
    zero = 1

    def const(self, r: sp.Rational) -> int:
        return 1

    def var(self, key: Hashable) -> int:
        return 1

    def add(self, vals: Sequence[int]) -> int:
        return min(SIZE_CAP, 1 + sum(vals))

    mul = add

    def neg(self, v: int) -> int:
        return v

    def inv(self, key: Hashable, v: int) -> int:
        return min(SIZE_CAP, 1 + v)

    def pow_int(self, key: Hashable, v: int, k: int) -> int:
        return min(SIZE_CAP, 1 + v)

    def radical(self, primes: tuple[int, ...]) -> int:
        return 1 + len(primes)


#: The largest size :class:`TreeSize` reports.
SIZE_CAP = 10**9
