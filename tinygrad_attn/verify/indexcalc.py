"""A small, sound normaliser for sums in index notation, and a prover built on it.

SymPy differentiates index-notation expressions correctly -- ``diff(Sum(Q[i, a] * K[j, a],
(a, 0, d_k - 1)), Q[x, y])`` gives ``Sum(KroneckerDelta(i, x) * KroneckerDelta(a, y) * K[j, a],
...)`` -- but cannot reduce the Kronecker deltas under nested sums. This module decides
equality of such sums by bringing both sides to one normal form:

* every term becomes one *prenex* sum  $c \\sum_{i_1 \\in R_1} \\cdots \\sum_{i_k \\in R_k}
  f_1 \\cdots f_p$  (sums distributed over ``+`` and over products, bound variables renamed
  apart so that nothing is captured);
* $\\sum_{i \\in R} \\delta_{i v} f(i) = f(v)$ collapses a delta, **only** when $v$ is a
  variable whose range is the same range $R$ (same lower and upper bound expressions);
* $\\sum_{t<A}\\sum_{c<B} \\delta_{tB + c,\\, q} f(t, c) = f(\\lfloor q/B \\rfloor, q \\bmod B)$
  for $q \\in [0, AB)$ (an axis of size $AB$ read as $A$ heads of width $B$), only when the
  ranges are exactly these;
* a bound variable that no factor uses becomes the factor $|R| = hi - lo + 1$;
* $\\sum_{j \\in R} f(j)\\, Z^e = Z^{e+1}$ when $Z = \\sum_{k \\in R} f(k)$ and $f(j)$ is
  every factor that mentions $j$ (a softmax row sums to one: $Z \\cdot 1/Z = 1$);
* $\\exp(a)^p \\exp(b)^q = \\exp(pa + qb)$ (integer $p, q$) and $u^a u^b = u^{a+b}$;
* functions (``exp``, ``tanh``, ``1/Z``, ``sqrt``, ...) are opaque units whose arguments are
  normalised recursively;
* bound variables are renamed canonically: every permutation of the variables of the
  same range is tried and the smallest key kept;
* coefficients (expressions in sizes such as $d_k$, $n$ with no index in them) are summed per
  term and compared by ``sympy.simplify``.

Soundness: every step above is an equality of the sums it rewrites, so two expressions whose
normal forms agree are equal (under the stated assumptions). The converse does not hold: an
identity whose two sides reach different normal forms is reported *not proven*, never
*false*. Assumptions, stated in every :class:`Proof`:

* each free index variable lies in the range it is declared with in ``ranges``;
* sizes are integers, so a range ``(lo, hi)`` has ``hi - lo + 1`` elements (SymPy's Karr
  convention makes this exact even for empty ranges);
* every ``1/Z`` that appears is defined (``Z != 0``), as the expressions themselves assume.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import sympy as sp
from sympy import KroneckerDelta

from ..engine.symcache import clear as clear_symbol_caches
from ..engine.symcache import free_symbols, is_renaming, keep_facts, srepr
from .proof import Proof

__all__ = ["Range", "Ranges", "Unsupported", "prove_equal", "normal_form", "evaluate",
           "freshen", "clear_caches"]

#: An inclusive index range ``(lo, hi)``; the ranges of the free indices, by index.
Range = tuple[sp.Expr, sp.Expr]
Ranges = Mapping[sp.Symbol, Range]

# Binders other than Sum: we do not reason about them, so we refuse rather than guess.
_OTHER_BINDERS = (sp.Product, sp.Integral, sp.Lambda, sp.Derivative, sp.Subs)
_MAX_EXPAND_POWER = 6


class Unsupported(Exception):
    """The expression uses a construct the normaliser does not reason about."""


# ---------------------------------------------------------------------------------------
# Raw terms: coeff * Sum_{bound} prod(base ** exp)


@dataclass
class _Term:
    coeff: sp.Expr
    bound: dict[sp.Symbol, Range] = field(default_factory=dict)
    factors: list[tuple[sp.Expr, sp.Expr]] = field(default_factory=list)

    def times(self, other: "_Term") -> "_Term":
        # Bound variables of different terms are distinct Dummies (every opened Sum gets
        # fresh ones), so the union cannot capture.
        assert not set(self.bound) & set(other.bound)
        return _Term(self.coeff * other.coeff, {**self.bound, **other.bound},
                     self.factors + other.factors)


def _range_key(r: Range) -> str:
    return _memo(_RANGE_CACHE, tuple(r), lambda: sp.srepr(sp.Tuple(*r)))


def _fresh(v: sp.Symbol) -> sp.Dummy:
    return sp.Dummy(v.name, integer=True)


def _rebuild(expr: sp.Basic, args: tuple) -> sp.Basic:
    """``expr.func(*args)``; functions other than the Kronecker delta are not re-evaluated
    (evaluating ``tanh(u)`` queries SymPy's assumptions about every Sum in ``u``, a cost
    out of all proportion to a renaming), the delta is, so that a substituted
    ``delta(v, v)`` becomes 1."""
    if isinstance(expr, sp.Function) and not isinstance(expr, KroneckerDelta):
        return expr.func(*args, evaluate=False)
    return expr.func(*args)


def _subs(expr: sp.Basic, mapping: dict, renaming: bool = False) -> sp.Basic:
    """Replace symbols by symbols (like ``xreplace``), rebuilding with :func:`_rebuild`;
    ``renaming``: ``mapping`` renames variables to fresh ones (``is_renaming``), so each
    rebuilt node keeps the facts SymPy derived for the node it renames (``keep_facts``)."""
    if expr in mapping:
        return mapping[expr]
    if not expr.args:
        return expr
    new = tuple(_subs(a, mapping, renaming) for a in expr.args)
    if all(a is b for a, b in zip(new, expr.args)):
        return expr
    out = _rebuild(expr, new)
    if renaming:
        keep_facts(expr, out)
    return out


def freshen(expr: sp.Basic) -> sp.Basic:
    """Rename every Sum's bound variables to fresh Dummies (alpha-renaming, value unchanged).

    After this no bound variable shares a name with a free one or with another binder, so
    substituting a free variable anywhere can never be captured.  The fresh variables are
    made innermost Sum first (:func:`_plan_fresh`), then the tree is rebuilt once, each
    node with every enclosing renaming applied (:func:`_renamed`).
    """
    plan: list[dict[sp.Basic, sp.Basic]] = []
    _plan_fresh(expr, plan)
    renaming = all(is_renaming(m) for m in plan)
    return _renamed(expr, {}, iter(plan), renaming)


def _opaque_leaf(expr: sp.Basic) -> bool:
    return not expr.args or isinstance(expr, (sp.Indexed, sp.Symbol, sp.Number))


def _plan_fresh(expr: sp.Basic, plan: list) -> None:
    """Append one renaming per Sum of ``expr`` in preorder, making each Sum's fresh
    variables after those of the Sums inside it."""
    if isinstance(expr, sp.Sum):
        slot = len(plan)
        plan.append({})
        _plan_fresh(expr.function, plan)
        plan[slot] = {v: _fresh(v) for v, _, _ in expr.limits}
    elif not _opaque_leaf(expr):
        for a in expr.args:
            _plan_fresh(a, plan)


def _renamed(expr: sp.Basic, outer: dict, plan: Any, renaming: bool) -> sp.Basic:
    """``expr`` with each Sum's variables renamed by the next renaming of ``plan``, inner
    binders shadowing outer ones, and the free variables renamed by ``outer``."""
    if isinstance(expr, sp.Sum):
        mapping = {**outer, **next(plan)}
        body = _renamed(expr.function, mapping, plan, renaming)
        # a bound may mention another limit's variable
        limits = [(mapping[v], _subs(lo, mapping, renaming), _subs(hi, mapping, renaming))
                  for v, lo, hi in expr.limits]
        out = sp.Sum(body, *limits)
    elif _opaque_leaf(expr):
        return _subs(expr, outer, renaming) if outer else expr
    else:
        new = tuple(_renamed(a, outer, plan, renaming) for a in expr.args)
        if all(a is b for a, b in zip(new, expr.args)):
            return expr
        out = _rebuild(expr, new)
    if renaming:
        keep_facts(expr, out)
    return out


def _has_sum_or_indexed(expr: sp.Basic) -> bool:
    return _memo(_HAS_CACHE, expr, lambda: bool(expr.has(sp.Sum) or expr.has(sp.Indexed)))


class _Normaliser:
    """Normal forms relative to a set of variables with known ranges (``env``)."""

    def __init__(self, env: dict[sp.Symbol, Range], depth: int):
        self.env = env
        self.depth = depth

    # -- is an expression a plain coefficient (no index, no Sum, no Indexed)? --
    def is_coeff(self, expr: sp.Basic, bound: set) -> bool:
        if _has_sum_or_indexed(expr):
            return False
        syms = free_symbols(expr)
        if any(isinstance(s, sp.Dummy) for s in syms):
            return False  # a bound variable
        return not (syms & (set(self.env) | bound))

    # -- raw expansion into prenex terms --
    def expand(self, expr: sp.Basic, bound: frozenset = frozenset()) -> list[_Term]:
        """Distribute sums over + and products: ``expr = sum(t.coeff * Sum_t.bound prod)``."""
        if isinstance(expr, _OTHER_BINDERS):
            raise Unsupported(f"binder {type(expr).__name__} is not supported")
        if self.is_coeff(expr, set(bound)):
            return [_Term(expr)]
        if isinstance(expr, sp.Add):
            return [t for a in expr.args for t in self.expand(a, bound)]
        if isinstance(expr, sp.Mul):
            terms = [_Term(sp.Integer(1))]
            for a in expr.args:
                # one expansion of a serves all products: each product is its own term
                ex = self.expand(a, bound)
                terms = [s.times(t) for s in terms for t in ex]
            return terms
        if isinstance(expr, sp.Sum):
            return self._expand_sum(expr, bound)
        if isinstance(expr, sp.Pow):
            return self._expand_pow(expr, bound)
        if isinstance(expr, sp.exp):
            # exp(a) is kept as exp(a)^1 so that products combine into exp(a + b).
            return [_Term(sp.Integer(1), {}, [(expr, sp.Integer(1))])]
        if expr.has(*_OTHER_BINDERS):
            raise Unsupported(f"a binder inside {type(expr).__name__} is not supported")
        # Indexed, KroneckerDelta, index symbols, tanh, ... : an opaque factor.
        return [_Term(sp.Integer(1), {}, [(expr, sp.Integer(1))])]

    def _expand_sum(self, expr: sp.Sum, bound: frozenset) -> list[_Term]:
        mapping: dict[sp.Basic, sp.Basic] = {}
        new_bound: dict[sp.Symbol, Range] = {}
        # A range may depend on sizes only: not on this Sum's own variables, an enclosing
        # bound variable or a free index (a triangular sum is refused, not mis-normalised).
        indices = set(bound) | set(self.env) | {lim[0] for lim in expr.limits}
        for v, lo, hi in expr.limits:
            for bexpr in (lo, hi):
                syms = free_symbols(bexpr)
                if (syms & indices or any(isinstance(q, sp.Dummy) for q in syms)
                        or _has_sum_or_indexed(bexpr)):
                    raise Unsupported(f"range ({lo}, {hi}) of {v} depends on an index")
            nv = _fresh(v)
            mapping[v] = nv
            new_bound[nv] = (lo, hi)
        body = _subs(expr.function, mapping, is_renaming(mapping))
        inner = self.expand(body, bound | frozenset(new_bound))
        out = []
        for t in inner:
            t.bound = {**new_bound, **t.bound}
            out.append(t)
        return out

    def _expand_pow(self, expr: sp.Pow, bound: frozenset) -> list[_Term]:
        base, e = expr.args
        if not self.is_coeff(e, set(bound)):
            return [_Term(sp.Integer(1), {}, [(expr, sp.Integer(1))])]
        if e.is_Integer and isinstance(base, sp.Mul):
            # (a b)^e = a^e b^e for integer e
            return self.expand(sp.Mul(*[a ** e for a in base.args]), bound)
        if e.is_Integer and 0 < e <= _MAX_EXPAND_POWER and isinstance(base, (sp.Add, sp.Sum)):
            terms = [_Term(sp.Integer(1))]
            for _ in range(int(e)):  # each expansion opens its sums with fresh variables
                ex = self.expand(base, bound)
                terms = [s.times(t) for s in terms for t in ex]
            return terms
        if self.is_coeff(base, set(bound)):
            return [_Term(expr)]
        return [_Term(sp.Integer(1), {}, [(base, e)])]

    # -- per-term rewrites: delta collapse, unused variables, exp combination --
    def range_of(self, v: sp.Basic, term: _Term) -> Range | None:
        if v in term.bound:
            return term.bound[v]
        return self.env.get(v)  # type: ignore[arg-type]

    def reduce(self, term: _Term) -> _Term | None:
        """Apply the rewrite rules to one term; ``None`` if the term is zero."""
        term = _Term(term.coeff, dict(term.bound), list(term.factors))
        changed = True
        while changed:
            changed = False
            for idx, (base, e) in enumerate(term.factors):
                if not isinstance(base, KroneckerDelta) or not (e.is_Integer and e > 0):
                    continue
                pair = self._collapsible(base, term)
                sub = {pair[0]: pair[1]} if pair else self._mixed_radix(base, term)
                if sub is None:
                    continue
                # Sum_{a in R} delta(a, b) f(a) = f(b)   (b ranges over the same R), or the
                # mixed-radix pair of _mixed_radix
                for a in sub:
                    del term.bound[a]
                rest = term.factors[:idx] + term.factors[idx + 1:]
                term.factors = [(_subs(f, sub), ex) for f, ex in rest]
                changed = True
                break
            if not self._move_numbers(term):
                return None
        while self._absorb(term):
            pass
        # exp(a)^p exp(b)^q = exp(p a + q b) for integer p, q
        exps = [(b, e) for b, e in term.factors if isinstance(b, sp.exp) and e.is_Integer]
        if len(exps) > 1 or (exps and exps[0][1] != 1):
            others = [(b, e) for b, e in term.factors if not (isinstance(b, sp.exp)
                                                             and e.is_Integer)]
            arg = sp.Add(*[e * b.args[0] for b, e in exps])
            term.factors = others + [(sp.exp(arg, evaluate=False), sp.Integer(1))]
        # delta^k = delta for positive integer k
        term.factors = [(b, sp.Integer(1)) if isinstance(b, KroneckerDelta) and e.is_Integer
                        and e > 0 else (b, e) for b, e in term.factors]
        # Sum over a variable no factor uses: a factor |R|
        used: set = set()
        for b, e in term.factors:
            used |= free_symbols(b) | free_symbols(e)
        for v in list(term.bound):
            if v not in used:
                lo, hi = term.bound.pop(v)
                term.coeff = term.coeff * (hi - lo + 1)
        return term

    def _absorb(self, term: _Term) -> bool:
        """One rewrite :math:`\\sum_{j \\in R} f(j)\\, Z^e = Z^{e+1}` where
        :math:`Z = \\sum_{k \\in R} f(k)` and :math:`e < 0` (a softmax row times its
        normaliser: :math:`\\sum_j P_{ij} = 1`); True if one was made.

        Sound because :math:`f(j)` is *every* factor of the term that mentions ``j``, so
        the sum over ``j`` applies to it alone and gives :math:`Z` (equal normal forms of
        :math:`f(k)` and of the body of :math:`Z`); :math:`Z \\ne 0` is assumed, as for
        every :math:`1/Z`.
        """
        for idx, (base, e) in enumerate(term.factors):
            if not (isinstance(base, sp.Sum) and e.is_Integer and e < 0
                    and len(base.limits) == 1):
                continue
            k, lo, hi = base.limits[0]
            for j, rng in term.bound.items():
                if _range_key(rng) != _range_key((lo, hi)) or j in free_symbols(base):
                    continue
                mine = [q for q, (b, ex) in enumerate(term.factors) if q != idx
                        and (j in free_symbols(b) or j in free_symbols(ex))]
                if mine and self._is_body(term, [term.factors[q] for q in mine], j, base):
                    del term.bound[j]
                    rest = [f for q, f in enumerate(term.factors) if q not in mine and q != idx]
                    term.factors = rest + ([(base, e + 1)] if e + 1 else [])
                    return True
        return False

    def _is_body(self, term: _Term, factors: list, j: sp.Symbol, z: sp.Sum) -> bool:
        """Whether the product of ``factors``, with ``j`` renamed to the bound variable of
        ``z``, has the normal form of the body of ``z``."""
        k, lo, hi = z.limits[0]
        env = {**self.env, **{v: r for v, r in term.bound.items() if v != j}, k: (lo, hi)}
        inner = _Normaliser(env, self.depth + 1)
        product = sp.Mul(*[_subs(b, {j: k}) ** _subs(ex, {j: k}) for b, ex in factors])
        try:
            return inner.poly_key(product) == inner.poly_key(z.function)
        except Unsupported:
            return False

    def _collapsible(self, delta: KroneckerDelta, term: _Term) -> tuple | None:
        args = delta.args
        drange = args[2] if len(args) > 2 else None
        for a, b in ((args[0], args[1]), (args[1], args[0])):
            if a not in term.bound or not isinstance(b, sp.Symbol) or a == b:
                continue
            ra, rb = term.bound[a], self.range_of(b, term)
            if rb is None or _range_key(ra) != _range_key(rb):
                continue  # b's range unknown or different: the collapse would be unsound
            if drange is not None and _range_key(tuple(drange)) != _range_key(ra):
                continue
            return a, b
        return None

    def _mixed_radix(self, delta: KroneckerDelta, term: _Term) -> dict | None:
        """$\\sum_{t<A}\\sum_{c<B} \\delta_{tB + c,\\, q} f(t, c) = f(\\lfloor q/B
        \\rfloor, q \\bmod B)$ for $q \\in [0, AB)$: the one pair with $tB + c = q$ (an
        axis of size $AB$ read as $(A, B)$, the heads of a reshape).  Returns the
        substitution of ``t`` and ``c``, or None when the delta is not of this form (both
        bound, $c$ over $[0, B)$, $t$ over $[0, A)$, $q$ a variable over $[0, AB)$, $B$ a
        positive size)."""
        if len(delta.args) > 2:
            return None
        p0, q0 = delta.args
        for p, q in ((p0, q0), (q0, p0)):
            rq = self.range_of(q, term) if isinstance(q, sp.Symbol) else None
            parts = sp.Add.make_args(sp.expand(p))
            if rq is None or rq[0] != 0 or len(parts) != 2:
                continue
            for c, tb in (parts, parts[::-1]):
                ts = [v for v in free_symbols(tb) if v in term.bound]
                if c not in term.bound or len(ts) != 1 or q in (c, ts[0]) or ts[0] == c:
                    continue
                t = ts[0]
                b = sp.cancel(tb / t)
                if not (self.is_coeff(b, set(term.bound)) and b.is_positive):
                    continue
                (lc, hc), (lt, ht) = term.bound[c], term.bound[t]
                if lc == 0 and lt == 0 and sp.expand(hc + 1 - b) == 0 and \
                        sp.expand((ht + 1) * b - rq[1] - 1) == 0:
                    return {t: sp.floor(q / b), c: sp.Mod(q, b)}
        return None

    def _move_numbers(self, term: _Term) -> bool:
        """Move factors that became free of indices into the coefficient; False if zero."""
        keep = []
        for b, e in term.factors:
            if self.is_coeff(b, set(term.bound)) and self.is_coeff(e, set(term.bound)):
                term.coeff = term.coeff * b ** e
            else:
                keep.append((b, e))
        term.factors = keep
        return term.coeff != 0

    # -- canonical keys --
    def poly(self, expr: sp.Basic) -> dict[str, sp.Expr]:
        """Normal form of ``expr``: canonical term key -> coefficient (zeros dropped)."""
        out: dict[str, sp.Expr] = {}
        for raw in self.expand(expr):
            term = self.reduce(raw)
            if term is None:
                continue
            key = self.term_key(term)
            out[key] = out.get(key, sp.Integer(0)) + term.coeff
        return {k: c for k, c in out.items() if _simplify(c) != 0}

    def poly_key(self, expr: sp.Basic) -> str:
        """The normal form of ``expr`` as one string, remembered (like :meth:`base_key`)."""
        def make() -> str:
            terms = sorted(self.poly(expr).items())
            return "{" + " + ".join(f"[{_coeff_key(c)}]*{k}" for k, c in terms) + "}"
        return _memo(_POLY_CACHE, (expr, self.depth, self._relevant(expr)), make)

    def term_key(self, term: _Term) -> str:
        groups: dict[str, list[sp.Symbol]] = {}
        for v, r in term.bound.items():
            groups.setdefault(_range_key(r), []).append(v)
        order = sorted(groups)
        names: list[list[sp.Symbol]] = []
        count = 0
        for rk in order:
            names.append([sp.Symbol(f"_b{self.depth}_{count + k}", integer=True)
                          for k in range(len(groups[rk]))])
            count += len(groups[rk])
        env = dict(self.env)
        for rk, ns in zip(order, names):
            r = term.bound[groups[rk][0]]
            for s in ns:
                env[s] = r
        inner = _Normaliser(env, self.depth + 1)
        best: str | None = None
        for perm in itertools.product(*[itertools.permutations(groups[rk]) for rk in order]):
            mapping = {v: s for vs, ns in zip(perm, names) for v, s in zip(vs, ns)}
            fresh = is_renaming(mapping)  # the canonical names of this depth are new here
            fk = inner.factors_key([(_subs(b, mapping, fresh), _subs(e, mapping, fresh))
                                    for b, e in term.factors])
            if best is None or fk < best:
                best = fk
        head = ",".join(f"{rk}x{len(groups[rk])}" for rk in order)
        return f"S<{head}>({best})"

    def factors_key(self, factors: list[tuple[sp.Expr, sp.Expr]]) -> str:
        powers: dict[str, sp.Expr] = {}
        for b, e in factors:
            k = self.base_key(b)
            powers[k] = powers.get(k, sp.Integer(0)) + e  # u^a u^b = u^(a+b)
        return "*".join(f"{k}^{_coeff_key(e)}" for k, e in sorted(powers.items())
                        if _simplify(e) != 0)

    def _relevant(self, expr: sp.Basic) -> tuple:
        """What a key of ``expr`` depends on besides ``expr`` and the depth: the ranges of
        its free variables."""
        syms = free_symbols(expr)
        return tuple(sorted((srepr(s), _range_key(r)) for s, r in self.env.items()
                            if s in syms))

    def base_key(self, b: sp.Basic) -> str:
        return _memo(_KEY_CACHE, (b, self.depth, self._relevant(b)), lambda: self._base_key(b))

    def _index_key(self, i: sp.Basic) -> str:
        if isinstance(i, (sp.Symbol, sp.Integer)):
            return srepr(i)
        return self.poly_key(i)

    def _base_key(self, b: sp.Basic) -> str:
        if isinstance(b, sp.Indexed):
            idx = ";".join(self._index_key(i) for i in b.indices)
            return f"I({srepr(b.base.label)};{idx})"
        if isinstance(b, KroneckerDelta):
            parts = sorted(srepr(a) for a in b.args[:2])
            extra = srepr(b.args[2]) if len(b.args) > 2 else ""
            return f"D({parts[0]},{parts[1]}{extra})"
        if isinstance(b, sp.Symbol):
            return f"V({srepr(b)})"
        if isinstance(b, (sp.Add, sp.Sum, sp.Mul, sp.Pow)):
            return f"P{self.poly_key(b)}"
        if isinstance(b, sp.Expr) and b.args and all(isinstance(a, sp.Expr) for a in b.args):
            return f"F({type(b).__name__};{';'.join(self.poly_key(a) for a in b.args)})"
        if b.args:
            parts = ";".join(self.poly_key(a) if isinstance(a, sp.Expr) else self.base_key(a)
                             for a in b.args)
            return f"G({type(b).__name__};{parts})"
        return f"A({srepr(b)})"


# Pure functions of hashable (immutable) SymPy expressions, remembered per process.
_SIMPLIFY_CACHE: dict[sp.Expr, sp.Expr] = {}
_KEY_CACHE: dict[tuple, str] = {}
_HAS_CACHE: dict[sp.Basic, bool] = {}
_RANGE_CACHE: dict[tuple, str] = {}
_COEFF_CACHE: dict[sp.Expr, str] = {}
_POLY_CACHE: dict[tuple, str] = {}
_CACHES = (_SIMPLIFY_CACHE, _KEY_CACHE, _HAS_CACHE, _RANGE_CACHE, _COEFF_CACHE, _POLY_CACHE)


def _memo(cache: dict, key: Any, make: Any) -> Any:
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _simplify(c: sp.Expr) -> sp.Expr:
    return _memo(_SIMPLIFY_CACHE, c, lambda: sp.simplify(c))


def clear_caches() -> None:
    """Forget memoised simplifications and keys (for cold-start timings)."""
    for cache in _CACHES:
        cache.clear()
    clear_symbol_caches()


def _coeff_key(c: sp.Expr) -> str:
    return _memo(_COEFF_CACHE, c, lambda: sp.srepr(sp.factor(_simplify(c))))


def _check_names(exprs: list[sp.Basic]) -> None:
    for ex in exprs:
        for s in ex.atoms(sp.Symbol):
            if s.name.startswith("_b") and not isinstance(s, sp.Dummy):
                raise ValueError(f"symbol name {s.name!r} is reserved for canonical indices")


def _assumptions(ranges: Ranges) -> tuple[str, ...]:
    return tuple(f"{v} in [{lo}, {hi}]" for v, (lo, hi) in ranges.items()) + (
        "sizes are integers; every 1/Z that appears is defined",)


def normal_form(expr: sp.Basic, ranges: Ranges) -> dict[str, sp.Expr]:
    """The normal form of ``expr``: canonical prenex term -> summed coefficient.

    ``ranges`` maps each free index variable to its inclusive range ``(lo, hi)``.
    """
    expr = sp.sympify(expr)
    _check_names([expr])
    return _Normaliser(dict(ranges), 0).poly(freshen(expr))


def prove_equal(lhs: sp.Basic, rhs: sp.Basic, ranges: Ranges, claim: str = "") -> Proof:
    """Decide ``lhs == rhs`` for every value of the free symbols and every size.

    $$\\text{proven} \\iff NF(lhs) = NF(rhs)$$ with $NF$ the normal form described in the
    module docstring. A ``Proof`` with ``ok=False`` means *not proven*, never *false*.
    ``ranges``: free index variable -> inclusive range ``(lo, hi)`` it is assumed to lie in.
    """
    t0 = time.perf_counter()
    claim = claim or f"{lhs} == {rhs}"
    assumptions = _assumptions(ranges)
    lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
    try:
        _check_names([lhs, rhs])
        norm = _Normaliser(dict(ranges), 0)
        pl = norm.poly(freshen(sp.sympify(lhs)))
        pr = norm.poly(freshen(sp.sympify(rhs)))
    except (Unsupported, RecursionError) as exc:
        return Proof(claim, False, "normal form", reason=f"unsupported: {exc}",
                     seconds=time.perf_counter() - t0, assumptions=assumptions)
    residual = []
    for key in sorted(set(pl) | set(pr)):
        diff = _simplify(pl.get(key, sp.Integer(0)) - pr.get(key, sp.Integer(0)))
        if diff != 0:
            residual.append(f"({diff}) * {key}")
    if residual:
        reason = (f"{len(residual)} normal-form term(s) of lhs - rhs do not cancel "
                  f"(lhs has {len(pl)}, rhs {len(pr)})")
    else:
        reason = f"both sides reach the same normal form of {len(pl)} term(s)"
    return Proof(claim, not residual, "normal form", reason=reason, lhs_terms=len(pl),
                 rhs_terms=len(pr), residual=tuple(residual), assumptions=assumptions,
                 seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# Numeric evaluation at concrete sizes: an independent cross-check of proven identities.

_FUNCS = {sp.exp: math.exp, sp.tanh: math.tanh, sp.log: math.log, sp.sin: math.sin,
          sp.cos: math.cos, sp.Abs: abs, sp.floor: math.floor, sp.Mod: lambda a, b: a % b}


def evaluate(expr: sp.Basic, values: Mapping[Any, Any]) -> float:
    """Evaluate ``expr`` numerically by looping over every Sum (no normalisation involved).

    ``values`` maps size and index symbols to numbers and IndexedBase labels (or bases) to
    NumPy arrays: ``evaluate(Sum(Q[i, a], (a, 0, d_k - 1)), {d_k: 3, i: 0, Q: arr})``.
    """
    env: dict[Any, Any] = {}
    for k, v in values.items():
        env[k.label if isinstance(k, sp.IndexedBase) else k] = v
    return float(_ev(sp.sympify(expr), env))


def _ev(e: sp.Basic, env: dict) -> Any:
    if isinstance(e, sp.Number):
        return float(e) if not e.is_Integer else int(e)
    if isinstance(e, sp.Symbol):
        if e not in env:
            raise KeyError(f"no value for {e}")
        return env[e]
    if isinstance(e, sp.NumberSymbol):
        return float(e)
    if isinstance(e, sp.Add):
        return sum(_ev(a, env) for a in e.args)
    if isinstance(e, sp.Mul):
        out = 1.0
        for a in e.args:
            out *= _ev(a, env)
        return out
    if isinstance(e, sp.Pow):
        return float(_ev(e.args[0], env)) ** float(_ev(e.args[1], env))
    if isinstance(e, sp.Indexed):
        return float(env[e.base.label][tuple(int(_ev(i, env)) for i in e.indices)])
    if isinstance(e, KroneckerDelta):
        return 1 if int(_ev(e.args[0], env)) == int(_ev(e.args[1], env)) else 0
    if isinstance(e, sp.Sum):
        return _ev_sum(e.function, list(e.limits), env)
    if type(e) in _FUNCS:
        return _FUNCS[type(e)](*[float(_ev(a, env)) for a in e.args])
    raise Unsupported(f"cannot evaluate {type(e).__name__}")


def _ev_sum(body: sp.Basic, limits: list, env: dict) -> float:
    if not limits:
        return _ev(body, env)
    (v, lo, hi), rest = limits[-1], limits[:-1]  # the last limit is the outermost
    total = 0.0
    for val in range(int(_ev(lo, env)), int(_ev(hi, env)) + 1):
        inner = dict(env)
        inner[v] = val
        total += _ev_sum(body, rest, inner)
    return total
