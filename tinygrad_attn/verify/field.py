r"""Exact arithmetic in a random prime field, for polynomial identity testing.

:class:`FieldAlgebra` evaluates lifted expressions (:mod:`tinygrad_attn.verify.atoms`) at
one point whose coordinates are independent, uniformly random elements of
:math:`\mathbb F_p`, with :math:`p` a prime drawn uniformly from :math:`[2^{61}, 2^{62})`
(:func:`random_prime`).  Rational constants :math:`a/b` are :math:`a b^{-1} \bmod p`.
Square roots of constants stay exact: a value is an element of the ring
:math:`\mathbb F_p[T_{p_1}, \ldots]/(T_{p_i}^2 - p_i)`, stored as ``{mask: coefficient}``
over the subsets of the radical primes (an ``int`` when no root is involved).  That ring
is free over :math:`\mathbb F_p` with the basis of square-free monomials, so a lifted
expression is zero there exactly when each coordinate, a polynomial over
:math:`\mathbb F_p`, vanishes at the point: :mod:`tinygrad_attn.verify.identity` turns
that into a probability bound.

An inverse of 0 (the point hit a root of a denominator, or the prime divides one)
raises :class:`ZeroDivisionError`; the caller then draws another prime and point.
"""
from __future__ import annotations

import random
from typing import Any, Hashable, Sequence

import sympy as sp

from .atoms import AtomTable, Lifted

__all__ = ["FieldAlgebra", "PRIME_BITS", "is_prime", "random_prime"]

#: Primes are drawn from [2^(PRIME_BITS - 1), 2^PRIME_BITS).
PRIME_BITS = 62

_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def is_prime(n: int) -> bool:
    """Miller-Rabin with the first 12 primes as witnesses: deterministic below
    :math:`3.3 \\cdot 10^{24}` (so for every 62-bit ``n``)."""
    if n < 2:
        return False
    for q in _WITNESSES:
        if n % q == 0:
            return n == q
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in _WITNESSES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def random_prime(rng: random.Random, bits: int = PRIME_BITS) -> int:
    """A prime uniformly distributed over the primes of ``[2^(bits-1), 2^bits)``
    (rejection sampling of uniform integers)."""
    while True:
        n = rng.randrange(1 << (bits - 1), 1 << bits) | 1
        if is_prime(n):
            return n


class FieldAlgebra(Lifted):
    """Lifted values at a random point of :math:`\\mathbb F_p` (see the module doc)."""

    one = 1
    zero = 0

    def __init__(self, table: AtomTable, p: int, rng: random.Random,
                 radicals: Sequence[int] = ()) -> None:
        super().__init__(table)
        self.p = p
        self.rng = rng
        self.point: dict[Hashable, int] = {}
        self.primes = list(radicals)

    # -- values of atoms and constants -----------------------------------------------------
    def var(self, key: Hashable) -> Any:
        v = self.point.get(key)
        if v is None:
            v = self.point[key] = self.rng.randrange(self.p)
        return v

    def const(self, r: sp.Rational) -> Any:
        q = int(r.q)
        if q == 1:
            return int(r.p) % self.p
        if q % self.p == 0:
            raise ZeroDivisionError(f"the prime divides the denominator of {r}")
        return int(r.p) * pow(q, -1, self.p) % self.p

    def radical(self, primes: tuple[int, ...]) -> Any:
        mask = 0
        for q in primes:
            if q not in self.primes:
                self.primes.append(q)
            mask |= 1 << self.primes.index(q)
        return {mask: 1} if mask else 1

    # -- ring arithmetic -------------------------------------------------------------------
    def add(self, vals: Sequence[Any]) -> Any:
        if all(type(v) is int for v in vals):
            return sum(vals) % self.p
        out: dict[int, int] = {}
        for v in vals:
            for mask, c in (v.items() if type(v) is dict else ((0, v),)):
                out[mask] = (out.get(mask, 0) + c) % self.p
        return self._tidy(out)

    def mul(self, vals: Sequence[Any]) -> Any:
        p = self.p
        out: Any = 1
        for v in vals:
            if type(v) is int and type(out) is int:
                out = out * v % p
            else:
                out = self._mul2(out, v)
        return out

    def _mul2(self, a: Any, b: Any) -> Any:
        """The product of two ring elements: :math:`T_q^2 = q`."""
        a = a if type(a) is dict else {0: a}
        b = b if type(b) is dict else {0: b}
        out: dict[int, int] = {}
        p = self.p
        for ma, ca in a.items():
            for mb, cb in b.items():
                c = ca * cb
                both = ma & mb
                k = 0
                while both:
                    if both & 1:
                        c *= self.primes[k]
                    both >>= 1
                    k += 1
                m = ma ^ mb
                out[m] = (out.get(m, 0) + c) % p
        return self._tidy(out)

    def _tidy(self, out: dict[int, int]) -> Any:
        out = {m: c for m, c in out.items() if c}
        if not out:
            return 0
        if len(out) == 1 and 0 in out:
            return out[0]
        return out

    def neg(self, v: Any) -> Any:
        if type(v) is int:
            return -v % self.p
        return {m: -c % self.p for m, c in v.items()}

    def inv(self, key: Hashable, v: Any) -> Any:
        """:math:`v^{-1}`: multiply by the conjugates (:math:`T_q \\to -T_q`) until the
        product is a scalar, then invert that."""
        if type(v) is int:
            if v == 0:
                raise ZeroDivisionError(f"inverse of 0 mod p (at {key})")
            return pow(v, -1, self.p)
        num: Any = 1
        cur: Any = v
        for k in range(len(self.primes)):
            if type(cur) is int:
                break
            if not any(m >> k & 1 for m in cur):
                continue
            conj = {m: (-c if m >> k & 1 else c) % self.p for m, c in cur.items()}
            num = self._mul2(num, conj)
            cur = self._mul2(cur, conj)
        if type(cur) is not int or cur == 0:
            raise ZeroDivisionError(f"inverse of a zero divisor mod p (at {key})")
        return self.mul([num, pow(cur, -1, self.p)])

    def pow_int(self, key: Hashable, v: Any, k: int) -> Any:
        if k < 0:
            v, k = self.inv(key, v), -k
        if type(v) is int:
            return pow(v, k, self.p)
        out: Any = 1
        while k:
            if k & 1:
                out = self._mul2(out, v)
            v = self._mul2(v, v)
            k >>= 1
        return out
