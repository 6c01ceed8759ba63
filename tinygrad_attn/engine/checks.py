"""What the engine checks about what it is given, so that a mistake is named where it is
made, never reported from deep inside NumPy: axes, shapes of the shape methods, matmul
operands, reductions of empty axes, indices.

Each check names the op, the argument and the value or shapes at fault.  The functions
work on shapes and arrays only (no Tensor), so the Tensor methods and the op table both
call them.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def normalize_axes(op: str, axis: Any, shape: tuple[int, ...], new_axis: bool = False
                   ) -> tuple[int, ...] | None:
    """Axes as non-negative ints (None: all), each an int, none repeated.

    NumPy's rule, as ``np.sum`` applies it: a 0-d Tensor takes axis 0 or -1, naming its
    one element (reducing over no axis).  ``new_axis``: an axis of a result with one more
    dimension (``stack``, ``unsqueeze``).
    """
    if axis is None:
        return None
    ndim = len(shape) + new_axis
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a Tensor of shape {shape}"
                             f"{' and a new axis' if new_axis else ''} ({ndim} dimensions)")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) < len(out):
        raise ValueError(f"{op}: axis {axis!r} repeats axis "
                         f"{next(a for a in out if out.count(a) > 1)}")
    return tuple(out) if ndim else ()


def shape_argument(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` alike: the shape as a tuple."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
        else tuple(shape)


def check_expand(shape: tuple[int, ...], target: tuple[Any, ...]) -> None:
    """``shape`` broadcasts to ``target`` (NumPy's rule), or a ValueError naming both."""
    tail = target[len(target) - len(shape):]
    ints = all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0
               for n in target)
    if not ints or len(target) < len(shape) or \
            any(n != 1 and n != t for n, t in zip(shape, tail)):
        raise ValueError(f"expand: cannot expand a Tensor of shape {shape} to shape "
                         f"{target}: the target needs at least {len(shape)} non-negative "
                         f"int sizes, the last {len(shape)} equal to {shape} where that "
                         f"is not 1")


def check_matmul(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """The batch shape of ``a @ b`` (NumPy's rules), or a ValueError naming both shapes."""
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes "
                         f"{sa} and {sb}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not match: the last axis of "
                         f"the left operand ({ka}) must equal the "
                         f"{'first' if len(sb) == 1 else 'second-to-last'} axis of the "
                         f"right operand ({kb})")
    try:
        return np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(f"matmul (batch axes): shapes {sa[:-2]} and {sb[:-2]} cannot be "
                         f"broadcast together") from None


def check_reduced_sizes(op: str, shape: tuple[int, ...], axis: tuple[int, ...] | None) -> None:
    """No axis reduced by ``op`` (a max: no identity) has size 0, NumPy's rule."""
    for i in range(len(shape)) if axis is None else axis:
        if shape[i] == 0:
            raise ValueError(f"{op}: axis {i} has size 0 in shape {shape}: the maximum of "
                             f"no elements is undefined")


def is_basic_index(index: Any) -> bool:
    """True when an index has no advanced (integer-array / boolean) parts."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               for p in parts)
