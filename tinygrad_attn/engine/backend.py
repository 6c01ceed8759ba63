"""The array namespaces (`xp`) that every op's forward and VJP are written against.

Two backends share one interface:

* :data:`numeric` — NumPy arrays of float32/float64; the engine computes numbers.
* :data:`symbolic` — NumPy *object* arrays whose elements are SymPy expressions; the
  same op code computes exact expressions (the namespace is
  :mod:`.symbolic_backend`; see :mod:`tinygrad_attn.verify.symbolic`).

A third namespace, :mod:`.indexbackend` (index arrays of symbolic size, for proofs at
every size), is not a NumPy array: such an array names its namespace itself
(``__xp__``), and :func:`backend_of`, :func:`as_array` and :func:`asarray` hand it through.

An op never imports NumPy for element math; it asks ``ctx.xp`` (the backend of its
inputs, chosen by :func:`backend_of`).  Structural operations that NumPy performs
identically on object arrays (reshape, transpose, indexing, concatenate, matmul, sum)
are plain NumPy calls in both backends.

Where a numeric form differs from the mathematical one *only for numerics* the
difference lives here, in one place: :meth:`NumericBackend.stability_shift` returns the
row maximum (so ``exp`` never overflows), :meth:`SymbolicBackend.stability_shift`
returns 0 (so a softmax is the plain ``exp(x) / sum(exp(x))``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .symbolic_backend import (COMPARISONS, SymbolicBackend, SymbolicUnsupported,  # noqa: F401
                               exact_constant, plain_function, plain_kind)


class NumericBackend:
    """NumPy namespace: element math on float arrays."""

    name = "numpy"
    symbolic = False

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    tanh = staticmethod(np.tanh)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    where = staticmethod(np.where)
    matmul = staticmethod(np.matmul)
    power = staticmethod(np.power)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def compare(name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a < b`` (``name`` one of :data:`COMPARISONS`) element-wise: a bool array."""
        return COMPARISONS[name][0](a, b)

    @staticmethod
    def indicator(cond: np.ndarray, like: np.ndarray) -> np.ndarray:
        """1 where ``cond`` holds, else 0, in the dtype of ``like``."""
        return cond.astype(like.dtype)

    @staticmethod
    def step_between(a: np.ndarray, b: np.ndarray, at_tie: float) -> np.ndarray:
        """H(a - b) with H(0) = ``at_tie``, by comparison (equal infinities tie too)."""
        like = np.result_type(a, b)
        return np.where(a > b, 1.0, np.where(a == b, at_tie, 0.0)).astype(like, copy=False)

    @staticmethod
    def elu(x: np.ndarray, alpha: float) -> np.ndarray:
        """x above 0, alpha (e^x - 1) elsewhere (expm1 of min(x, 0): no overflow)."""
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)

    @staticmethod
    def softplus(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
        """log(1 + e^{beta x}) / beta (as logaddexp(0, beta x): no overflow), and x itself
        where beta x > threshold, as PyTorch."""
        z = x * beta
        return np.where(z > threshold, x, np.logaddexp(0, z) / beta).astype(x.dtype, copy=False)

    @staticmethod
    def clamp(x: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None) -> np.ndarray:
        """min(max(x, lo), hi); a bound that is None is absent (hi wins when lo > hi)."""
        out = x if lo is None else np.maximum(x, lo)
        return out if hi is None else np.minimum(out, hi)

    @staticmethod
    def clamp_masks(x: np.ndarray, lo: Any, hi: Any) -> tuple[np.ndarray, ...]:
        """Which of x, lo, hi the output of :meth:`clamp` follows, with PyTorch's ties:
        x where lo <= x <= hi, lo where x < lo < hi, hi where x > hi or hi < lo."""
        x_in = np.logical_and(True if lo is None else x >= lo, True if hi is None else x <= hi)
        lo_in = None if lo is None else np.logical_and(x < lo, True if hi is None else lo < hi)
        hi_in = None if hi is None else np.logical_or(x > hi, False if lo is None else hi < lo)
        return tuple(None if m is None else np.asarray(m).astype(x.dtype)
                     for m in (x_in, lo_in, hi_in))

    @staticmethod
    def einsum(spec: str, *arrays: np.ndarray) -> np.ndarray:
        """``numpy.einsum``; with two operands or more ``optimize=True``, which contracts
        through BLAS (``tensordot``) where it can and orders three or more pairwise."""
        return np.einsum(spec, *arrays, optimize=len(arrays) > 1)

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        """sigma(x) = 1 / (1 + e^{-x}), evaluated without overflow for large |x|."""
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)

    @staticmethod
    def step(x: np.ndarray) -> np.ndarray:
        """Heaviside step H(x) with H(0) = 0: the derivative of relu."""
        return (x > 0).astype(x.dtype)

    @staticmethod
    def relu(x: np.ndarray) -> np.ndarray:
        """max(x, 0): 0 at -inf (not -inf * 0), NaN stays NaN."""
        return np.maximum(x, x.dtype.type(0))

    @staticmethod
    def amax(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def argmax_mask(x: np.ndarray, axis: Any) -> np.ndarray:
        """Indicator of the maxima along ``axis``, ties sharing the gradient equally."""
        hit = (x == np.max(x, axis=axis, keepdims=True, initial=-np.inf)).astype(x.dtype)
        return hit / np.sum(hit, axis=axis, keepdims=True)

    @staticmethod
    def stability_shift(x: np.ndarray, axis: int) -> np.ndarray:
        """Row maximum subtracted before ``exp`` (numerics only; -inf rows and empty rows
        shift by 0)."""
        m = x.max(axis=axis, keepdims=True, initial=-np.inf)
        return np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)

    @staticmethod
    def zeros(shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        return np.zeros(shape, dtype=like.dtype)

    @staticmethod
    def constant(value: Any, like: np.ndarray) -> np.ndarray:
        """A Python/NumPy constant in the dtype of ``like`` (float32 stays float32)."""
        return np.asarray(value, dtype=like.dtype)

    @staticmethod
    def is_zero(x: np.ndarray) -> np.ndarray:
        return x == 0

    @staticmethod
    def is_nonnegative(x: np.ndarray) -> np.ndarray:
        return x >= 0


numeric = NumericBackend()
symbolic = SymbolicBackend()


def backend_of(*arrays: Any) -> Any:
    """The backend for these arrays: an array that names its own namespace (``__xp__``,
    the index arrays of :mod:`.indexbackend`) first, then symbolic as soon as one is an
    object array, else numeric."""
    for a in arrays:
        xp = getattr(type(a), "__xp__", None)
        if xp is not None:
            return a.__xp__
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype == object:
            return symbolic
    return numeric


# ----------------------------------------------------------------------------- data

#: The dtypes a numeric Tensor holds: the engine computes in these two only.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_dtype(who: str, dtype: np.dtype) -> None:
    """The one dtype rule: float32 or float64 (or object, symbolic), else a TypeError."""
    if dtype not in FLOAT_DTYPES and dtype != object:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype}; the engine "
                        f"computes in these two (convert explicitly, e.g. "
                        f"x.astype(np.float32))")


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Validate and convert ``data`` into an array one of the backends computes with, the
    data of a Tensor.

    Python numbers and lists become float64; NumPy float32 and float64 arrays keep their
    dtype; ``dtype``, if given, must be one of those two.  One rule for every way of
    asking: other floats (float16, longdouble) are refused, as are integer, boolean and
    complex arrays unless ``dtype`` is given; object arrays must hold SymPy expressions
    (the symbolic backend).
    """
    if getattr(type(data), "__xp__", None) is not None:
        return data  # an array of its own namespace (index arrays)
    if dtype is not None:
        dtype = np.dtype(dtype)
        check_float_dtype("Tensor", dtype)
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        arr = np.asarray(data)
        if arr.dtype.kind == "f":
            check_float_dtype("Tensor", arr.dtype)
            return arr
        if arr.dtype == object:
            _check_symbolic(arr)
            return arr
        raise TypeError(
            f"Tensor: data of dtype {arr.dtype} is not a float array; convert it "
            f"explicitly, e.g. Tensor(x.astype(np.float64)) or Tensor(x, dtype=np.float64)")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        arr_obj = np.asarray(data, dtype=object)
        if arr_obj.size and _all_sympy(arr_obj):
            return arr_obj
        raise TypeError(f"Tensor: cannot make a float array from {type(data).__name__}: "
                        f"{exc}") from None
    return arr


def asarray(data: Any) -> Any:
    """``np.asarray(data)``, except for an array of its own namespace (``__xp__``: the
    index arrays of :mod:`.indexbackend`), which is returned as it is."""
    return data if getattr(type(data), "__xp__", None) is not None else np.asarray(data)


def _all_sympy(arr: np.ndarray) -> bool:
    return all(_is_sympy(e) for e in arr.ravel())


def _check_symbolic(arr: np.ndarray) -> None:
    if arr.size and not _all_sympy(arr):
        bad = next(e for e in arr.ravel() if not _is_sympy(e))
        raise TypeError(
            f"Tensor: an object array must hold SymPy expressions (the symbolic backend); "
            f"found an element of type {type(bad).__name__}: {bad!r}")


def _is_sympy(e: Any) -> bool:
    import sympy

    return isinstance(e, sympy.Basic)
