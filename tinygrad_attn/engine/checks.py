"""What the engine checks about what it is given, so that a mistake is named where it is
made, never reported from deep inside NumPy: axes, shapes of the shape methods, matmul
operands, reductions of empty axes, indices; what a Function's forward and backward
return; and the data a recorded op saved for its backward, which must not change before
that backward runs.

Each check names the op, the argument and the value or shapes at fault.  The functions
work on shapes and arrays only (no Tensor), so the Tensor methods and the op table both
call them.
"""
from __future__ import annotations

import os
import traceback
import zlib
from typing import Any

import numpy as np

from .backend import asarray


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
                         f"{target}: the target's sizes are non-negative ints, and its last "
                         f"{len(shape)} equal {shape} wherever that is not 1")


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
    if sa[:-2] == sb[:-2]:  # no batch axes, or the same ones
        return sa[:-2]
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


# ----------------------------------------------------------------------------- Functions

#: The dtypes an op's output may have: the two float dtypes and object (symbolic).
RESULT_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, object))


def forward_output(fn: str, data: Any) -> np.ndarray:
    """What ``fn.forward`` returned, as the array of its output, or a TypeError saying
    what is wrong with it (a Function has one output: a float or symbolic array)."""
    if type(data) is np.ndarray and data.dtype in RESULT_DTYPES:
        return data
    if data is None or isinstance(data, (tuple, list, dict, str)):
        what = "None" if data is None else f"a {type(data).__name__}"
        raise TypeError(f"{fn}.forward returned {what}; a Function's forward returns one "
                        f"array (its one output)")
    data = asarray(data)
    if data.dtype not in (np.float32, np.float64) and data.dtype != object:
        raise TypeError(f"{fn}.forward returned an array of dtype {data.dtype}; an op must "
                        f"return a float32 or float64 (or symbolic) array")
    return data


def user_gradient(fn: str, i: int, g: Any, dtype: Any) -> np.ndarray:
    """The gradient a user's ``fn.backward`` returned for input ``i``, as an array of
    ``dtype`` (the input's; None keeps it, for symbolic inputs)."""
    try:
        return np.asarray(g, dtype=dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}.backward returned a {type(g).__name__} for input {i}; a "
                        f"gradient is an array of the input's shape (or None)") from None


def checked_gradients(fn: str, grads: Any, parents: tuple[Any, ...]) -> tuple[Any, ...]:
    """What ``fn.backward`` returned as a tuple of one gradient per input, each of a shape
    :func:`check_gradient` allows; else an error naming ``fn``."""
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    if len(grads) != len(parents):
        raise RuntimeError(f"{fn}.backward returned {len(grads)} gradients for "
                           f"{len(parents)} inputs; return one per argument of forward "
                           f"(None where there is no gradient)")
    for i, (g, parent) in enumerate(zip(grads, parents)):
        if g is not None and parent is not None and g.shape != parent.shape:
            check_gradient(fn, i, g.shape, parent.shape)
    return grads


def symbolic_misuse(fn: str, step: str, exc: Exception) -> TypeError:
    """The error of a user Function whose ``step`` (forward or backward) failed on symbolic
    (SymPy) arrays: it calls NumPy element math where ``ctx.xp`` would serve both."""
    if step == "forward":
        return TypeError(
            f"{fn}.forward failed on symbolic (SymPy) inputs; it probably calls NumPy "
            f"element math (np.exp, np.maximum, float(...)) directly. Use the array "
            f"namespace ctx.xp instead (ctx.xp.exp, ctx.xp.where, ...) so the Function runs "
            f"both numerically and symbolically. Original error: {type(exc).__name__}: {exc}")
    return TypeError(f"{fn}.backward failed on symbolic (SymPy) gradients; use ctx.xp instead "
                     f"of NumPy element math. Original error: {type(exc).__name__}: {exc}")


def check_gradient(fn: str, i: int, got: tuple[int, ...], want: tuple[int, ...]) -> None:
    """A gradient of shape ``got`` for input ``i`` of shape ``want``: the same shape, or one
    the input broadcasts to (summed back, as PyTorch allows); else a ValueError."""
    tail = got[len(got) - len(want):]
    if got != want and (len(got) < len(want) or
                        any(n != 1 and n != t for n, t in zip(want, tail))):
        raise ValueError(f"{fn}.backward returned a gradient of shape {got} for input {i} of "
                         f"shape {want}; a gradient has its input's shape, or a shape the "
                         f"input broadcasts to (which is summed back, as in PyTorch)")


# ----------------------------------------------------------------------------- saved data

#: Random odd 64-bit weights of the fingerprint of a large array (fixed, so fingerprints
#: are comparable across calls): one per 32-bit word of a block, one per block.
_BLOCK = 1 << 12
_WEIGHTS = np.random.default_rng(20240917).integers(0, 2**64, size=_BLOCK + (1 << 16),
                                                     dtype=np.uint64) | np.uint64(1)
#: Arrays up to this many bytes are fingerprinted by a copy of their bytes: exact, and
#: copying and comparing run at memory speed, ten times faster than any hash here; the
#: memory this keeps is at most this much per saved array.
SMALL_BYTES = 1 << 15


def fingerprint(a: Any) -> tuple[Any, ...] | None:
    """(shape, dtype, the bytes or a hash of them) of a numeric array; None for what is
    not checked (symbolic object arrays, non-arrays).

    Equal fingerprints mean unchanged data: exactly for a small array (up to
    :data:`SMALL_BYTES`), whose fingerprint holds a copy of its bytes; for a large one
    except with probability about 2^-32: its hash is a weighted sum modulo 2^64 of its
    32-bit words with random odd weights, which no change of one word escapes and which
    runs at several times CRC-32's speed (CRC-32 when its size is not a multiple of 4
    bytes), so checking the data costs a fraction of the ops.
    """
    if not isinstance(a, np.ndarray) or a.dtype.hasobject:
        return None
    if a.nbytes <= SMALL_BYTES:
        return a.shape, a.dtype, a.tobytes()
    if a.nbytes % 4:
        return a.shape, a.dtype, zlib.crc32(np.ascontiguousarray(a))
    b = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    words = b.view(np.uint32)
    full = words.size // _BLOCK * _BLOCK
    blocks = np.einsum("ij,j->i", words[:full].reshape(-1, _BLOCK), _WEIGHTS[:_BLOCK])
    outer = _WEIGHTS[_BLOCK:_BLOCK + blocks.size] if blocks.size <= _WEIGHTS.size - _BLOCK \
        else np.resize(_WEIGHTS[_BLOCK:], blocks.size)                # arrays over 1 GiB
    tail = words[full:]
    return a.shape, a.dtype, int(np.einsum("i,i->", blocks, outer)), \
        int(np.einsum("i,i->", tail, _WEIGHTS[:tail.size]))


def saved_data(ctx: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """What the backward of the node ``ctx`` reads besides its upstream gradient, as
    (key, array) pairs (:func:`describe` words a key): the parents' data and the
    output's when the op's ``saves`` names ``"inputs"`` and ``"output"``
    (``"partners"``: an input only when another input needs a gradient, the product
    rule), its ``saved_tensors`` for ``"saved"``, and every array among its keyword
    arguments (indices, masks)."""
    saves, out = type(ctx).saves, []
    if "inputs" in saves or "partners" in saves:
        needs, everyone = ctx.needs_input_grad, "inputs" in saves
        partners = sum(needs)                   # a partner: another input needs a gradient
        for i, t in enumerate(ctx.parents):
            if t is not None and (everyone or partners > needs[i]):
                out.append((("input", i), t.data))
    if "output" in saves:
        out.append((("output",), ctx.output.data))
    if "saved" in saves:
        for i, a in enumerate(ctx.saved_tensors):
            out.append((("saved", i), a))
    for key, value in ctx.attrs.items() if ctx.attrs else ():
        if isinstance(value, np.ndarray):
            out.append((("argument", key, None), value))
        elif isinstance(value, (tuple, list)):
            for j, a in enumerate(value):
                if isinstance(a, np.ndarray):
                    out.append((("argument", key, j), a))
    return out


def describe(ctx: Any, key: tuple[Any, ...]) -> str:
    """A key of :func:`saved_data` in words: ``input 0 (Tensor 'x', shape (2,))``."""
    if key[0] == "input":
        t = ctx.parents[key[1]]
        return f"input {key[1]} ({f'Tensor {t.name!r}, ' if t.name else ''}shape {t.shape})"
    if key[0] == "output":
        return "the output"
    if key[0] == "saved":
        return f"saved array {key[1]}"
    return f"argument {key[1]!r}" + ("" if key[2] is None else f"[{key[2]}]")


def record_saved(ctx: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The fingerprints of :func:`saved_data` by key (an array saved twice is hashed
    once); what the forward left, when the node is recorded."""
    out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    seen: dict[int, Any] = {}
    for key, a in saved_data(ctx):
        f = seen.get(id(a), seen)                  # ``seen`` itself: not hashed yet
        if f is seen:
            f = seen[id(a)] = fingerprint(a)
        if f is not None:
            out[key] = f
    return out


def verify_saved(ctx: Any, recorded: dict[tuple[Any, ...], tuple[Any, ...]]) -> None:
    """Raise if anything the node's backward reads changed since :func:`record_saved`:
    its gradient would be computed from the new values, silently wrong."""
    if not recorded:
        return
    now = record_saved(ctx)
    if now == recorded:
        return
    for key, f in recorded.items():
        if now.get(key) != f:
            what = describe(ctx, key)
            raise RuntimeError(
                f"backward: {what} of {ctx.name} was changed after the forward (modified "
                f"in place or replaced), and {ctx.name}'s gradient needs the values it "
                f"computed with. Change arrays only after backward, or run the forward "
                f"again")


def raised_in(exc: BaseException, filename: str | None) -> traceback.FrameSummary | None:
    """The deepest frame of ``exc``'s traceback in the file ``filename`` (the user's own
    code: their function, answer or implementation), or None when it passed through none.
    The command line, the exercises and the PyTorch/JAX comparison name it in their
    errors."""
    if not filename:
        return None
    target = os.path.abspath(filename)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if os.path.abspath(f.filename) == target]
    return frames[-1] if frames else None
