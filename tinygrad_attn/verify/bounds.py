r"""Degree and height bounds of lifted expressions, computed from the expression DAG.

Polynomial identity testing needs, for the difference :math:`\Delta` of two lifted
expressions, a bound on the total degree of its numerator (Schwartz-Zippel: a nonzero
polynomial of degree :math:`\delta` vanishes at a uniformly random point of
:math:`\mathbb F_p^n` with probability at most :math:`\delta / p`) and on the size of its
coefficients (a prime that divides all of them -- a *bad prime* -- makes the reduction
mod :math:`p` vanish; a nonzero integer below :math:`2^h` has at most :math:`h / 61`
prime factors of 62 bits).

:class:`BoundAlgebra` is a :class:`~tinygrad_attn.verify.atoms.Lifted` algebra whose
values are such bounds.  A value :math:`N / D` is tracked as

* ``deg``: a bound on the total degree of the numerator :math:`N` (a polynomial in the
  input symbols and atoms whose coefficients have integer coordinates in the basis of
  square-free products of :math:`\sqrt p`);
* ``h``: a bound on :math:`\log_2` of the sum of the absolute values of those
  coordinates, each weighted by its :math:`\prod \sqrt p` (a submultiplicative norm);
* ``den``: the denominator as a product of *named* factors with multiplicities -- a
  variable, a prime of a rational constant, or the numerator norm of an inverted node --
  so that a sum over a common denominator (the :math:`1/Z` of a softmax row) takes the
  lcm, the maximum multiplicity, rather than the product.

Each rule below is an inequality of the construction it mirrors, so the final bounds
hold for the actual lifted numerator, whatever cancels.
"""
from __future__ import annotations

import math
from typing import Hashable, Sequence

import sympy as sp

from .atoms import AtomTable, Lifted

__all__ = ["Bound", "BoundAlgebra"]


class Bound:
    """``deg``, ``h`` (log2 of the weighted coefficient norm), ``den`` (factor ->
    multiplicity) of one value, and ``dd``, ``dh``: the degree and height of the
    denominator written out; ``var`` is the variable's key when the value is a single
    variable.  ``deg == -1`` is the exact zero."""

    __slots__ = ("deg", "h", "den", "dd", "dh", "var")

    def __init__(self, deg: int, h: float, den: dict, dd: int = 0, dh: float = 0.0,
                 var: Hashable = None) -> None:
        self.deg = deg
        self.h = h
        self.den = den
        self.dd = dd
        self.dh = dh
        self.var = var

    @property
    def is_zero(self) -> bool:
        return self.deg < 0

    def __repr__(self) -> str:
        return f"Bound(deg={self.deg}, h={self.h:.1f}, den={len(self.den)} factors)"


ZERO = Bound(-1, 0.0, {})
ONE = Bound(0, 0.0, {})


def _log2_sum(exponents: Sequence[float]) -> float:
    """An upper bound of :math:`\\log_2 \\sum_i 2^{x_i}`."""
    top = max(exponents)
    return top + math.log2(sum(2.0 ** (x - top) for x in exponents)) + 1e-9


class BoundAlgebra(Lifted):
    """Bounds of lifted values (see the module doc); ``factors`` maps each denominator
    factor to its ``(degree, height)``."""

    one = ONE
    zero = ZERO

    def __init__(self, table: AtomTable) -> None:
        super().__init__(table)
        self.factors: dict[Hashable, tuple[int, float]] = {}
        self.radicals: set[int] = set()

    def _register(self, key: Hashable, deg: int, h: float) -> Hashable:
        """Name a denominator factor; a key already naming another polynomial gets a
        fresh one (two different factors must never share a name)."""
        old = self.factors.get(key)
        if old is None:
            self.factors[key] = (deg, h)
            return key
        if old == (deg, h):
            return key
        fresh = ("factor", key, len(self.factors))
        self.factors[fresh] = (deg, h)
        return fresh

    def _den_size(self, den: dict) -> tuple[int, float]:
        """Degree and height of a denominator written out as a polynomial."""
        deg, h = 0, 0.0
        for f, m in den.items():
            fd, fh = self.factors[f]
            deg += m * fd
            h += m * fh
        return deg, h

    # -- atoms and constants ---------------------------------------------------------------
    def var(self, key: Hashable) -> Bound:
        self.factors.setdefault(("var", key), (1, 0.0))
        return Bound(1, 0.0, {}, var=("var", key))

    def const(self, r: sp.Rational) -> Bound:
        if r == 0:
            return ZERO
        den = {}
        for q, k in sp.factorint(int(r.q)).items():
            den[("prime", q)] = k
            self.factors[("prime", q)] = (0, math.log2(q))
        return Bound(0, math.log2(abs(int(r.p))), den, 0, math.log2(int(r.q)) + 1e-9)

    def radical(self, primes: tuple[int, ...]) -> Bound:
        self.radicals.update(primes)
        return Bound(0, 0.5 * sum(math.log2(q) for q in primes) + 1e-9, {})

    # -- arithmetic ------------------------------------------------------------------------
    def add(self, vals: Sequence[Bound]) -> Bound:
        vals = [v for v in vals if not v.is_zero]
        if not vals:
            return ZERO
        if len(vals) == 1:
            return vals[0]
        den: dict = {}
        for v in vals:
            for f, m in v.den.items():
                if m > den.get(f, 0):
                    den[f] = m
        dd, dh = self._den_size(den)
        # D / D_i has the degree and height of D minus those of D_i (D_i divides D)
        deg = max(v.deg + dd - v.dd for v in vals)
        return Bound(deg, _log2_sum([v.h + dh - v.dh for v in vals]), den, dd, dh)

    def mul(self, vals: Sequence[Bound]) -> Bound:
        if any(v.is_zero for v in vals):
            return ZERO
        vals = [v for v in vals if v.deg or v.h or v.den]
        if len(vals) <= 1:
            return vals[0] if vals else ONE
        den: dict = {}
        for v in vals:
            for f, m in v.den.items():
                den[f] = den.get(f, 0) + m
        return Bound(sum(v.deg for v in vals), sum(v.h for v in vals), den,
                     sum(v.dd for v in vals), sum(v.dh for v in vals))

    def neg(self, v: Bound) -> Bound:
        return v

    def inv(self, key: Hashable, v: Bound) -> Bound:
        """:math:`1/(N/D) = D \\operatorname{adj}(N) / \\operatorname{Norm}(N)`, the norm
        over the :math:`2^r` conjugates :math:`\\sqrt p \\to \\pm\\sqrt p`."""
        if v.is_zero:
            raise ZeroDivisionError(f"the inverse of an exact zero (at {key})")
        if v.var is not None:
            return Bound(0, 0.0, {v.var: 1}, 1, 0.0)
        conj = 2 ** len(self.radicals)
        fd, fh = conj * v.deg, conj * v.h + 1e-9
        name = self._register(("inverse", key), fd, fh)
        return Bound(v.dd + (conj - 1) * v.deg, v.dh + (conj - 1) * v.h, {name: 1}, fd, fh)

    def pow_int(self, key: Hashable, v: Bound, k: int) -> Bound:
        if k == 0:
            return ONE
        if k < 0:
            v, k = self.inv(key, v), -k
        if k == 1:
            return v
        if v.is_zero:
            return ZERO
        return Bound(v.deg * k, v.h * k, {f: m * k for f, m in v.den.items()}, v.dd * k,
                     v.dh * k)

    def difference(self, a: Bound, b: Bound) -> Bound:
        """The bound of ``a - b``."""
        return self.add([a, self.neg(b)])

