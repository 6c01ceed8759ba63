"""SymPy expressions: what the prover asks of them again and again, computed once, and
renamings that keep what SymPy knows.

SymPy's ``Sum.free_symbols`` renames the bound variables with ``xreplace`` before it
collects the symbols, and ``xreplace`` rebuilds (and so re-evaluates) every node above a
replaced symbol even when the replacement is the symbol itself: on the nested sums of an
attention gradient one call costs milliseconds, and nothing is remembered.  The index
namespace (:mod:`~tinygrad_attn.engine.indexbackend`) and the prover
(:mod:`~tinygrad_attn.verify.indexcalc`) ask for the free symbols of the same
sub-expressions many times, so :func:`free_symbols` memoises them (SymPy expressions are
immutable and hashable) and computes a ``Sum``'s from its parts the way SymPy defines
them: the body's, less each bound variable, plus the symbols of its bounds, limit by
limit.  Every other node delegates to SymPy's own definition or is the union of its
arguments'.  :func:`srepr` remembers ``sympy.srepr``.

The prover renames bound variables to fresh ones all the time (alpha-renaming), and each
renamed node is a new SymPy object whose assumption facts SymPy derives again, walking
the sums inside it.  :func:`is_renaming` tells a renaming to fresh symbols of the same
assumptions, for which :func:`keep_facts` hands the facts already known over to the
renamed node.  SymPy is imported lazily.
"""
from __future__ import annotations

from typing import Any

__all__ = ["clear", "free_symbols", "is_renaming", "keep_facts", "srepr"]

_FREE: dict[Any, frozenset] = {}
_SREPR: dict[Any, str] = {}
_KINDS: dict[type, str] = {}     # node type -> "sum", "union" or "own"


def _sp() -> Any:
    import sympy

    return sympy


def _defined(cls: type) -> Any:
    """The ``free_symbols`` property the instances of ``cls`` use (not a metaclass's)."""
    return next((c.__dict__["free_symbols"] for c in cls.__mro__
                 if "free_symbols" in c.__dict__), None)


def _kind(cls: type) -> str:
    if cls not in _KINDS:
        import sympy as sp

        if issubclass(cls, sp.Sum):
            _KINDS[cls] = "sum"
        elif _defined(cls) is sp.Basic.__dict__["free_symbols"]:
            _KINDS[cls] = "union"        # Basic's definition: the union over the arguments
        else:
            _KINDS[cls] = "own"          # Symbol, Indexed, Derivative, ...: SymPy's own
    return _KINDS[cls]


def free_symbols(expr: Any) -> frozenset:
    """``expr.free_symbols`` (as a frozenset), remembered for ``expr``."""
    hit = _FREE.get(expr)
    if hit is not None:
        return hit
    kind = _kind(type(expr))
    if kind == "union":
        out = frozenset().union(*(free_symbols(a) for a in expr.args))
    elif kind == "sum" and all(len(lim) == 3 and lim[0].is_Symbol for lim in expr.limits):
        syms = set(free_symbols(expr.function))
        for v, lo, hi in expr.limits:
            syms.discard(v)
            syms |= free_symbols(lo) | free_symbols(hi)
        out = frozenset(syms)
    else:
        out = frozenset(expr.free_symbols)
    _FREE[expr] = out
    return out


def srepr(expr: Any) -> str:
    """``sympy.srepr(expr)``, remembered for ``expr``."""
    key = _SREPR.get(expr)
    if key is None:
        key = _SREPR[expr] = _sp().srepr(expr)
    return key


def is_renaming(mapping: dict) -> bool:
    """Whether ``mapping`` renames symbols to distinct *fresh* symbols (never in the
    expression it is applied to: the caller's guarantee) with the same assumptions."""
    symbol, targets = _sp().Symbol, list(mapping.values())
    return len(set(targets)) == len(targets) and all(
        isinstance(v, symbol) and isinstance(w, symbol) and v.assumptions0 == w.assumptions0
        for v, w in mapping.items())


def keep_facts(old: Any, new: Any) -> None:
    """Give ``new``, which is ``old`` with variables renamed by a renaming, the assumption
    facts (``is_zero``, ``is_positive``, ...) SymPy already derived for ``old``.

    Sound: renaming symbols to fresh symbols of the same assumptions is an isomorphism of
    expressions, so every fact of ``old`` is a fact of ``new``.  Why: SymPy forgets what
    it knew about a rebuilt node, and asking again (``Mul`` asks ``is_zero`` of every
    exponent) walks each ``Sum`` inside it, which is most of the cost of a renaming."""
    known = getattr(old, "_assumptions", None)
    if not known or new is old or not isinstance(getattr(new, "_assumptions", None), dict):
        return
    if new._assumptions is type(new).default_assumptions:
        new._assumptions = new._assumptions.copy()
    for fact, value in known.items():
        new._assumptions.setdefault(fact, value)


def clear() -> None:
    """Forget every remembered set and representation (for cold-start timings)."""
    _FREE.clear()
    _SREPR.clear()
