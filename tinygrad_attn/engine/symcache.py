"""Free symbols of SymPy expressions, computed once per expression.

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
arguments'.  SymPy is imported lazily.
"""
from __future__ import annotations

from typing import Any

__all__ = ["clear", "free_symbols"]

_FREE: dict[Any, frozenset] = {}
_KINDS: dict[type, str] = {}     # node type -> "sum", "union" or "own"


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


def clear() -> None:
    """Forget every remembered set (for cold-start timings)."""
    _FREE.clear()
