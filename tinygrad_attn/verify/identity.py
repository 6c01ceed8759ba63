r"""Polynomial identity testing: is each element of ``lhs - rhs`` zero, with an error bound.

Both sides are lifted (:mod:`tinygrad_attn.verify.atoms`: transcendental atoms become
independent variables) to rational functions :math:`N/D` and evaluated exactly at a
random point of :math:`\mathbb F_p` for a random 62-bit prime :math:`p`
(:mod:`tinygrad_attn.verify.field`).  A side is explicit expressions
(:class:`Expressions`) or the exact derivative of an objective, computed by reverse mode
over its DAG in the same field (:class:`Gradients`), so the reference derivative of a
large function is never written out as expressions.

If the difference :math:`\Delta = N/D` of one element is not the zero rational function,
one trial finds it zero only if

* the prime is *bad*: it divides every coordinate of every coefficient of :math:`N`.
  Each is an integer of absolute value below :math:`2^h`, so at most :math:`h/61` of the
  :math:`> 2^{55.1}` primes of :math:`[2^{61}, 2^{62})` are bad (Rosser-Schoenfeld:
  :math:`x/\ln x < \pi(x) < 1.25506\,x/\ln x`); or
* the prime is good and the point is a root of :math:`N \bmod p`, a nonzero polynomial
  of degree at most :math:`\delta`: probability at most :math:`\delta / p`
  (Schwartz-Zippel).

:math:`\delta` and :math:`h` come from the DAG (:mod:`tinygrad_attn.verify.bounds`).  With
``t`` independent trials (prime and point) and a union bound over the elements, the
chance that some nonzero element passes is at most
:math:`\varepsilon = \sum_i (\delta_i 2^{-61} + \lfloor h_i/61 \rfloor 2^{-55.1})^t`,
reported as :math:`k = \lfloor -\log_2 \varepsilon \rfloor` (each term divided by
:math:`1 - \eta`, with :math:`\eta` the same kind of bound for the chance that a point
hits a zero denominator and is drawn again): proven with probability at
least :math:`1 - 2^{-k}`.  A nonzero residue proves the *lifts* differ, not the
originals (a forgotten relation between atoms); the caller then evaluates numerically.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import sympy as sp

from .atoms import AtomTable
from .bounds import Bound, BoundAlgebra
from .dag import DagEvaluator, Unsupported, reverse_gradients
from .field import PRIME_BITS, FieldAlgebra, random_prime

__all__ = ["Expressions", "Gradients", "IdentityResult", "Side", "identity_test",
           "LOG2_PRIMES", "MAX_ATTEMPTS"]

#: log2 of a lower bound on the number of primes in [2^61, 2^62).
LOG2_PRIMES = (PRIME_BITS - 1) + math.log2(2 / (PRIME_BITS * math.log(2))
                                           - 1.25506 / ((PRIME_BITS - 1) * math.log(2)))
#: Fresh primes and points tried when one hits a zero denominator, per trial.
MAX_ATTEMPTS = 4


class Side:
    """One side of an element-wise identity, evaluable in any algebra."""

    def roots(self) -> list[sp.Basic]:
        """Every expression the side's values are computed from (for the atom table)."""
        raise NotImplementedError

    def values(self, ev: DagEvaluator) -> list[Any]:
        """The values of the side's elements, in order."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def select(self, index: Sequence[int]) -> "Side":
        """The side restricted to the elements ``index``."""
        raise NotImplementedError


@dataclass
class Expressions(Side):
    """Explicit expressions, one per element."""

    exprs: list[sp.Basic]

    def roots(self) -> list[sp.Basic]:
        return list(self.exprs)

    def values(self, ev: DagEvaluator) -> list[Any]:
        return ev.values(self.exprs)

    def __len__(self) -> int:
        return len(self.exprs)

    def select(self, index: Sequence[int]) -> "Expressions":
        return Expressions([self.exprs[i] for i in index])


@dataclass
class Gradients(Side):
    """:math:`\\partial L / \\partial x` for each ``x`` in ``wrt``, with
    :math:`L = \\sum_k c_k o_k` over the ``seeds`` ``(o_k, c_k)``, by reverse mode
    (:func:`~tinygrad_attn.verify.dag.reverse_gradients`)."""

    seeds: list[tuple[sp.Basic, sp.Basic]]
    wrt: list[sp.Symbol]

    def roots(self) -> list[sp.Basic]:
        return [o for o, _ in self.seeds] + [c for _, c in self.seeds] + list(self.wrt)

    def values(self, ev: DagEvaluator) -> list[Any]:
        return reverse_gradients(ev, self.seeds, self.wrt)

    def __len__(self) -> int:
        return len(self.wrt)

    def select(self, index: Sequence[int]) -> "Gradients":
        return Gradients(self.seeds, [self.wrt[i] for i in index])


@dataclass
class Joined(Side):
    """Several sides one after the other."""

    parts: list[Side]

    def roots(self) -> list[sp.Basic]:
        return [r for p in self.parts for r in p.roots()]

    def values(self, ev: DagEvaluator) -> list[Any]:
        return [v for p in self.parts for v in p.values(ev)]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def select(self, index: Sequence[int]) -> "Joined":
        out, start = [], 0
        for p in self.parts:
            mine = [i - start for i in index if start <= i < start + len(p)]
            out.append(p.select(mine))
            start += len(p)
        return Joined(out)


__all__.append("Joined")


@dataclass
class IdentityResult:
    """What :func:`identity_test` found: ``nonzero`` (indices of elements whose lifted
    difference is not zero), ``k`` (the proven ones hold with probability at least
    :math:`1 - 2^{-k}`; ``None`` when every difference is exactly zero already in the
    bounds), ``degree`` and ``height`` (the largest bounds), ``primes`` (one per trial)."""

    nonzero: list[int]
    k: int | None
    degree: int
    height: float
    primes: list[int] = field(default_factory=list)

    @property
    def trials(self) -> int:
        return len(self.primes)


def identity_test(lhs: Side, rhs: Side, trials: int = 2, seed: int = 0) -> IdentityResult:
    """Test ``lhs[i] == rhs[i]`` for every element ``i`` (see the module doc).

    Raises :class:`~tinygrad_attn.verify.dag.Unsupported` when an expression has a
    construct the lifting has no rule for, or when every point tried hit a zero
    denominator.
    """
    if len(lhs) != len(rhs):
        raise ValueError(f"identity_test: {len(lhs)} elements on the left, {len(rhs)} on "
                         f"the right")
    table = AtomTable(lhs.roots() + rhs.roots())
    bounds, delta = _difference_bounds(table, lhs, rhs)
    rng = random.Random(seed)
    zero = [True] * len(bounds)
    unknown = [i for i, b in enumerate(bounds) if not b.is_zero]
    primes: list[int] = []
    for _ in range(trials if unknown else 0):
        p, residues = _trial(table, lhs, rhs, rng)
        primes.append(p)
        for i, r in enumerate(residues):
            if r != 0:
                zero[i] = False
        unknown = [i for i in unknown if zero[i]]
        if not unknown:
            break
    passed = [bounds[i] for i, z in enumerate(zero) if z and not bounds[i].is_zero]
    eps = sum((_one_trial_error(b) / (1 - delta)) ** len(primes) for b in passed) \
        if passed and delta < 1 else 1.0
    k = None if not passed else (math.floor(-math.log2(eps)) if eps > 0 else 10**6)
    return IdentityResult(nonzero=[i for i, z in enumerate(zero) if not z], k=k,
                          degree=max((b.deg for b in bounds), default=0),
                          height=max((b.h for b in bounds), default=0.0), primes=primes)


def _difference_bounds(table: AtomTable, lhs: Side, rhs: Side) -> tuple[list[Bound], float]:
    """The degree and height bounds of every ``lhs - rhs``, and a bound on the chance
    that a trial hits a zero denominator (some inverted factor vanishes at the point or
    modulo the prime): a trial that does is discarded, so the error of an accepted one
    is at most its error divided by ``1 - delta``."""
    alg = BoundAlgebra(table)
    ev = DagEvaluator(alg)
    left, right = lhs.values(ev), rhs.values(ev)
    delta = sum(_one_trial_error(Bound(d, h, {})) for d, h in alg.factors.values())
    return [alg.difference(a, b) for a, b in zip(left, right)], delta


def _trial(table: AtomTable, lhs: Side, rhs: Side, rng: random.Random
           ) -> tuple[int, list[Any]]:
    """One prime and one point: the residues of every ``lhs - rhs``."""
    for _ in range(MAX_ATTEMPTS):
        p = random_prime(rng)
        alg = FieldAlgebra(table, p, rng)
        ev = DagEvaluator(alg)
        try:
            left, right = lhs.values(ev), rhs.values(ev)
        except ZeroDivisionError:
            continue
        return p, [alg.add([a, alg.neg(b)]) for a, b in zip(left, right)]
    raise Unsupported(f"identity test: {MAX_ATTEMPTS} random points all hit a zero "
                      f"denominator (is a denominator identically zero?)")


def _one_trial_error(b: Bound) -> float:
    """Chance that one trial finds a nonzero difference with these bounds zero."""
    bad_primes = math.floor(b.h / (PRIME_BITS - 1))
    return b.deg * 2.0 ** -(PRIME_BITS - 1) + bad_primes * 2.0 ** -LOG2_PRIMES
