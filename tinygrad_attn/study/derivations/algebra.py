r"""Closed forms written as matrix equations on arrays of SymPy expressions.

The derivations state every gradient in closed matrix form (``P.T @ g``,
``rowsum(P_bar * P)``, ...); these helpers let the code read the same way, on NumPy object
arrays whose entries are SymPy expressions, so the closed form can be proven equal to
``sympy.diff`` entry by entry.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp

from ...verify.symbolic import Proof, equivalent, symbols

__all__ = ["elementwise", "exp", "tanh", "sqrt", "transpose", "rowsum", "softmax_rows",
           "softmax_list", "softmax_backward", "symbol_array", "zero_proof"]


def elementwise(fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    """``fn`` applied to every entry of an object array."""
    return np.vectorize(fn, otypes=[object])(x)


def exp(x: np.ndarray) -> np.ndarray:
    """Entrywise $e^x$."""
    return elementwise(sp.exp, x)


def tanh(x: np.ndarray) -> np.ndarray:
    """Entrywise $\\tanh x$."""
    return elementwise(sp.tanh, x)


def sqrt(x: np.ndarray) -> np.ndarray:
    """Entrywise $\\sqrt x$."""
    return elementwise(sp.sqrt, x)


def transpose(x: np.ndarray) -> np.ndarray:
    """$X^\\top$ of the last two axes."""
    return np.swapaxes(x, -1, -2)


def rowsum(x: np.ndarray) -> np.ndarray:
    """$\\operatorname{rowsum}(X)_i = \\sum_j X_{ij}$, kept as a column."""
    return np.sum(x, axis=-1, keepdims=True)


def softmax_rows(s: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Plain row softmax of an object array (no max subtracted); masked entries are
    exactly 0, and a fully masked row is all 0."""
    e = exp(s)
    if mask is not None:
        e = np.where(mask, e, sp.Integer(0))
    z = rowsum(e)
    z = np.where(z == 0, sp.Integer(1), z)
    return e / z


def softmax_list(s: Sequence[Any]) -> list[Any]:
    """The softmax of a list of expressions, as a list."""
    e = [sp.exp(x) for x in s]
    return [x / sum(e) for x in e]


def softmax_backward(p: np.ndarray, p_bar: np.ndarray) -> np.ndarray:
    """$\\bar S = P \\odot (\\bar P - \\operatorname{rowsum}(\\bar P \\odot P))$."""
    return p * (p_bar - rowsum(p_bar * p))


def symbol_array(name: str, shape: tuple[int, ...], positive: bool = False) -> np.ndarray:
    """An object array of fresh real symbols ``name_i_j`` (positive ones if asked)."""
    return symbols(name, shape, positive=positive).data


def zero_proof(subject: str, entries: list[Any]) -> Proof:
    """A proof, by simplification, that every expression in ``entries`` is exactly 0."""
    entries = list(entries) or [sp.Integer(0)]
    return equivalent({"entries": np.array(entries, dtype=object)},
                      {"entries": np.zeros(len(entries), dtype=int)},
                      subject=subject, method="simplification")
