"""The array namespaces (`xp`) that every op's forward and VJP are written against.

Two backends share one interface:

* :data:`numeric` — NumPy arrays of float32/float64; the engine computes numbers.
* :data:`symbolic` — NumPy *object* arrays whose elements are SymPy expressions; the
  same op code computes exact expressions (see :mod:`tinygrad_attn.symbolic`).

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
    def amax(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def argmax_mask(x: np.ndarray, axis: Any) -> np.ndarray:
        """Indicator of the maxima along ``axis``, ties sharing the gradient equally."""
        hit = (x == np.max(x, axis=axis, keepdims=True)).astype(x.dtype)
        return hit / np.sum(hit, axis=axis, keepdims=True)

    @staticmethod
    def stability_shift(x: np.ndarray, axis: int) -> np.ndarray:
        """Row maximum subtracted before ``exp`` (numerics only; -inf rows shift by 0)."""
        m = np.max(x, axis=axis, keepdims=True)
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


class SymbolicBackend:
    """SymPy namespace: NumPy object arrays of SymPy expressions, exact arithmetic.

    SymPy is imported lazily so that numeric users never pay for it.
    """

    name = "sympy"
    symbolic = True

    @staticmethod
    def _sp():  # noqa: ANN205 - the sympy module
        import sympy

        return sympy

    @classmethod
    def _map(cls, fn_name: str, x: np.ndarray) -> np.ndarray:
        fn = getattr(cls._sp(), fn_name)
        out = np.empty(np.shape(x), dtype=object)
        flat_in, flat_out = np.asarray(x, dtype=object).ravel(), out.ravel()
        for i, e in enumerate(flat_in):
            flat_out[i] = fn(e)
        return out

    @classmethod
    def exp(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("exp", x)

    @classmethod
    def log(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("log", x)

    @classmethod
    def tanh(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("tanh", x)

    @classmethod
    def sqrt(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("sqrt", x)

    @classmethod
    def abs(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("Abs", x)

    @classmethod
    def sign(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("sign", x)

    @classmethod
    def step(cls, x: np.ndarray) -> np.ndarray:
        """Heaviside step, as SymPy differentiates Max(x, 0)."""
        return cls._map("Heaviside", x)

    @classmethod
    def sigmoid(cls, x: np.ndarray) -> np.ndarray:
        sp = cls._sp()
        out = np.empty(np.shape(x), dtype=object)
        for i, e in enumerate(np.asarray(x, dtype=object).ravel()):
            out.ravel()[i] = 1 / (1 + sp.exp(-e))
        return out

    @classmethod
    def power(cls, x: np.ndarray, p: Any) -> np.ndarray:
        return np.power(np.asarray(x, dtype=object), p)

    @staticmethod
    def where(cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, np.asarray(a, dtype=object), np.asarray(b, dtype=object))

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(np.asarray(a, dtype=object), np.asarray(b, dtype=object))

    @classmethod
    def amax(cls, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        sp = cls._sp()
        return cls._reduce(lambda v: sp.Max(*v), x, axis, keepdims)

    @classmethod
    def argmax_mask(cls, x: np.ndarray, axis: Any) -> np.ndarray:
        raise NotImplementedError(
            "max: the symbolic backend has no argmax (the maximum of symbols is not "
            "decided); use softmax or a smooth function in symbolic runs")

    @staticmethod
    def _reduce(fn: Any, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        axes = tuple(range(x.ndim)) if axis is None else \
            tuple(a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
        moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
        flat = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
        out = np.empty(flat.shape[:-1], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = fn(list(flat[idx]))
        if keepdims:
            out = np.expand_dims(out, axes)
        return out

    @staticmethod
    def stability_shift(x: np.ndarray, axis: int) -> np.ndarray:
        """No shift: the symbolic softmax is the plain exp(x) / sum(exp(x))."""
        shape = list(np.shape(x))
        shape[axis] = 1
        return np.zeros(shape, dtype=object)

    @classmethod
    def zeros(cls, shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(cls._sp().Integer(0))
        return out

    @classmethod
    def constant(cls, value: Any, like: np.ndarray) -> np.ndarray:
        """Float constants become exact rationals (1.5 -> 3/2), so proofs stay exact."""
        sp = cls._sp()
        arr = np.asarray(value)
        out = np.empty(arr.shape, dtype=object)
        for i, v in enumerate(arr.ravel()):
            out.ravel()[i] = v if isinstance(v, sp.Basic) else sp.nsimplify(v, rational=True)
        return out

    @staticmethod
    def is_zero(x: np.ndarray) -> np.ndarray:
        return np.vectorize(lambda e: e == 0, otypes=[bool])(x) if np.size(x) else \
            np.zeros(np.shape(x), dtype=bool)


numeric = NumericBackend()
symbolic = SymbolicBackend()


def backend_of(*arrays: Any) -> NumericBackend | SymbolicBackend:
    """The backend for these arrays: symbolic as soon as one is an object array."""
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype == object:
            return symbolic
    return numeric
