"""The array namespaces (`xp`) that every op's forward and VJP are written against.

Two backends share one interface:

* :data:`numeric` — NumPy arrays of float32/float64; the engine computes numbers.
* :data:`symbolic` — NumPy *object* arrays whose elements are SymPy expressions; the
  same op code computes exact expressions (see :mod:`tinygrad_attn.verify.symbolic`).

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

import functools
import math
from fractions import Fraction
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


class SymbolicUnsupported(NotImplementedError):
    """An operation the symbolic backend does not provide (the message names it)."""


@functools.lru_cache(maxsize=4096)
def exact_constant(value: float) -> Any:
    """The exact SymPy number a float constant stands for, decided in three fast steps.

    1. a fraction with denominator <= 10^6 that rounds to the same float: 0.1 -> 1/10;
    2. a square root of such a fraction within 4 ulp: ``1/np.sqrt(3)`` -> sqrt(3)/3, so
       the scale of scaled dot-product attention stays the exact :math:`1/\\sqrt d`;
    3. otherwise the float's exact binary value (``sympy.Rational(value)``).

    +-inf become +-oo (``exp(-oo) = 0``: a masked score contributes exactly 0).
    """
    import sympy as sp

    v = float(value)
    if math.isnan(v):
        raise ValueError("symbolic backend: a NaN constant has no exact value")
    if math.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    frac = Fraction(v).limit_denominator(10**6)
    if float(frac) == v:
        return sp.Rational(frac.numerator, frac.denominator)
    if v != 0.0:
        sq = Fraction(v * v).limit_denominator(10**6)
        cand = math.copysign(math.sqrt(sq.numerator / sq.denominator), v)
        if abs(cand - v) <= 4 * math.ulp(v):
            return (1 if v > 0 else -1) * sp.sqrt(sp.Rational(sq.numerator, sq.denominator))
    return sp.Rational(v)


@functools.cache
def plain_function(name: str) -> Any:
    """``sympy.exp`` or ``sympy.tanh`` as a function of one expression, built without the
    assumption queries of SymPy's automatic evaluation: the same expression, faster.

    For an argument built from symbols, rationals, ``+``, ``*``, powers, ``exp`` and
    ``tanh`` only (:func:`plain_kind`), ``exp.eval`` and ``tanh.eval`` change nothing but
    ``tanh(-x) -> -tanh(x)``, applied here as SymPy applies it; what remains is their
    last query "is the argument zero?", answered "unknown" for such sums after walking
    the assumptions of every subexpression (two thirds of the symbolic forward of
    additive attention: ``benchmarks/bench_symbolic.py``).  A real argument also makes
    the result known positive (``exp``) or real (``tanh``), facts SymPy derives itself
    only at great cost (``tanh``'s finiteness goes through ``sinh`` and ``cos`` of the
    argument's real and imaginary parts).  Any other argument (a number, ``-oo``, ``log``,
    ``pi``, ``I``, a Float, ...) is evaluated by SymPy as usual.
    ``tests/test_symbolic.py`` checks the result is the expression SymPy builds.
    """
    import sympy

    func = getattr(sympy, name)
    odd, facts = name == "tanh", {"exp": {"positive": True}, "tanh": {"real": True}}[name]

    def apply(e: Any, memo: dict | None = None) -> Any:
        kind = NOT_PLAIN if getattr(e, "is_Number", True) else plain_kind(e, memo)
        if kind == NOT_PLAIN:
            return func(e)
        if odd and e.could_extract_minus_sign():
            return -apply(-e, memo)
        node = func(e, evaluate=False)
        if kind >= REAL:
            _tell(node, facts)
        if not odd and e.is_Add:
            _tell(e, {"zero": None})
        return node

    apply.__name__ = name
    return apply


#: What :func:`plain_kind` knows of an expression, each kind contained in the one before.
NOT_PLAIN, PLAIN, REAL, POSITIVE = 0, 1, 2, 3


def plain_kind(e: Any, memo: dict | None = None) -> int:
    """:data:`NOT_PLAIN` unless ``e`` is built from symbols, rationals, ``+``, ``*``,
    powers, ``exp`` and ``tanh`` only; then :data:`POSITIVE` or :data:`REAL` when that
    follows from its structure (real symbols are real and finite; a sum or product of
    positives is positive, of reals real; ``exp`` of a real positive, ``tanh`` real; a
    positive base to a real power positive, a real base to a natural power real), else
    :data:`PLAIN`.  Linear in the expression's DAG: ``memo`` (a dict, shared by the calls
    for one array) keeps the kind of every subexpression seen."""
    memo = {} if memo is None else memo
    kind = memo.get(e)
    if kind is None:
        kind = memo[e] = _kind(e, memo)
    return kind


def _kind(e: Any, memo: dict) -> int:
    """:func:`plain_kind` of ``e`` from the kinds of its arguments."""
    import sympy

    if e.is_Symbol:
        return POSITIVE if e.is_positive else REAL if e.is_real else PLAIN
    if e.is_Rational:
        return POSITIVE if e > 0 else REAL
    if e.is_Number or not isinstance(e, (sympy.Add, sympy.Mul, sympy.Pow, sympy.exp,
                                         sympy.tanh)):
        return NOT_PLAIN
    kinds = [plain_kind(a, memo) for a in e.args]
    if min(kinds) == NOT_PLAIN:
        return NOT_PLAIN
    if isinstance(e, (sympy.Add, sympy.Mul)):
        return min(kinds)
    if isinstance(e, sympy.exp):
        return POSITIVE if kinds[0] >= REAL else PLAIN
    if isinstance(e, sympy.tanh):
        return REAL if kinds[0] >= REAL else PLAIN
    (base, power), exponent = kinds, e.args[1]
    if base == POSITIVE and power >= REAL:
        return POSITIVE
    return REAL if base >= REAL and exponent.is_Integer and exponent >= 0 else PLAIN


def _tell(node: Any, facts: dict[str, bool]) -> None:
    """Record true ``facts`` about ``node`` in SymPy's cache of its assumptions (where
    ``node.is_real`` and the like look first); nothing if SymPy keeps no such cache."""
    known = getattr(node, "_assumptions", None)
    if known is None or not hasattr(known, "deduce_all_facts"):
        return
    if known is type(node).default_assumptions:
        node._assumptions = known = known.copy()
    for fact, value in facts.items():
        if value is None and fact not in known:
            known[fact] = None
    known.deduce_all_facts({k: v for k, v in facts.items() if v is not None})


class SymbolicBackend:
    """SymPy namespace: NumPy object arrays of SymPy expressions, exact arithmetic.

    Element math maps a SymPy function over the array (``exp`` and ``tanh`` through
    :func:`plain_function`); arithmetic and sums are NumPy's own object-array loops
    calling SymPy's ``+`` and ``*``; ``matmul`` adds each element's products at once.
    SymPy is imported lazily so that numeric users never pay for it.  Asking for an
    operation this backend lacks raises :class:`SymbolicUnsupported` naming it.

    Differences from the numeric backend, all of them mathematical identities or stated
    assumptions:

    * ``stability_shift`` is 0: softmax is the plain ``exp(x) / sum(exp(x))``;
    * ``step`` is ``Heaviside(x, 0)`` (H(0) = 0, as the engine's relu derivative);
    * ``argmax_mask`` is the product of ``Heaviside(x_i - x_j)`` over the other elements:
      the indicator of the maximum, exact under the assumption that there are no ties
      (the numeric backend splits a tie equally; a proof evaluates at random points,
      where ties have probability 0);
    * float constants become exact numbers (:func:`exact_constant`).
    """

    name = "sympy"
    symbolic = True

    @staticmethod
    def _sp():
        import sympy

        return sympy

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise SymbolicUnsupported(
            f"the symbolic backend has no operation {attr!r}; symbolic runs support "
            f"{', '.join(SYMBOLIC_OPERATIONS)}")

    @classmethod
    def _map(cls, fn: Any, x: Any) -> np.ndarray:
        fn = getattr(cls._sp(), fn) if isinstance(fn, str) else fn
        arr = np.asarray(x, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        flat_out = out.reshape(-1)
        for i, e in enumerate(arr.reshape(-1)):
            flat_out[i] = fn(e)
        return out

    @classmethod
    def exp(cls, x: np.ndarray) -> np.ndarray:
        apply, memo = plain_function("exp"), {}
        return cls._map(lambda e: apply(e, memo), x)

    @classmethod
    def log(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("log", x)

    @classmethod
    def tanh(cls, x: np.ndarray) -> np.ndarray:
        apply, memo = plain_function("tanh"), {}
        return cls._map(lambda e: apply(e, memo), x)

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
        """Heaviside step with H(0) = 0, as the engine's numeric relu derivative."""
        heaviside = cls._sp().Heaviside
        return cls._map(lambda e: heaviside(e, 0), x)

    @classmethod
    def relu(cls, x: np.ndarray) -> np.ndarray:
        """x H(x), with the step H(0) = 0."""
        return np.asarray(x, dtype=object) * cls.step(x)

    @classmethod
    def sigmoid(cls, x: np.ndarray) -> np.ndarray:
        """sigma(x) = 1 / (1 + e^{-x}), the plain form (no overflow guard needed)."""
        exp = plain_function("exp")
        return cls._map(lambda e: 1 / (1 + exp(-e)), x)

    @classmethod
    def power(cls, x: np.ndarray, p: Any) -> np.ndarray:
        return np.power(np.asarray(x, dtype=object), np.asarray(p, dtype=object))

    @classmethod
    def sin(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("sin", x)

    @classmethod
    def cos(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("cos", x)

    @classmethod
    def _zip(cls, fn: Any, *arrays: Any) -> np.ndarray:
        """``fn`` applied element by element to broadcast object arrays."""
        out = np.frompyfunc(fn, len(arrays), 1)(*[cls._exact(a) for a in arrays])
        return np.asarray(out, dtype=object)

    @classmethod
    def _exact(cls, a: Any) -> np.ndarray:
        """An object array of SymPy numbers and expressions (floats made exact)."""
        return a if isinstance(a, np.ndarray) and a.dtype == object else cls.constant(a, a)

    @classmethod
    def maximum(cls, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cls._zip(cls._sp().Max, a, b)

    @classmethod
    def minimum(cls, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cls._zip(cls._sp().Min, a, b)

    @classmethod
    def compare(cls, name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """SymPy relations (``x_0 > 0``) element-wise; decided ones (between numbers, or
        known from the symbols' assumptions) are True or False, and an array of decided
        ones only is a plain bool array."""
        sp = cls._sp()
        out = cls._zip(getattr(sp, COMPARISONS[name][1]), a, b)
        if all(isinstance(e, sp.logic.boolalg.BooleanAtom) for e in out.reshape(-1)):
            return np.vectorize(bool, otypes=[bool])(out) if out.size else \
                np.zeros(out.shape, dtype=bool)
        return out

    @classmethod
    def indicator(cls, cond: np.ndarray, like: Any) -> np.ndarray:
        """1 where ``cond`` holds, else 0: ``Piecewise((1, c), (0, True))`` for a relation."""
        if cond.dtype == bool:
            return cls.constant(cond.astype(int), like)
        sp = cls._sp()
        return cls._map(lambda c: sp.Piecewise((1, c), (0, True)), cond)

    @classmethod
    def step_between(cls, a: Any, b: Any, at_tie: float) -> np.ndarray:
        """``Heaviside(a - b, at_tie)`` element-wise."""
        sp = cls._sp()
        tie = exact_constant(at_tie)
        return cls._zip(lambda x, y: sp.Heaviside(x - y, tie), a, b)

    @classmethod
    def elu(cls, x: np.ndarray, alpha: float) -> np.ndarray:
        """``Piecewise((x, x > 0), (alpha (e^x - 1), True))``."""
        sp = cls._sp()
        a = exact_constant(alpha)
        return cls._map(lambda e: sp.Piecewise((e, e > 0), (a * (sp.exp(e) - 1), True)), x)

    @classmethod
    def softplus(cls, x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
        """``log(1 + e^{beta x}) / beta``, and x where beta x > threshold (a Piecewise, so
        the form is exactly what the numeric backend computes)."""
        sp = cls._sp()
        b, t = exact_constant(beta), exact_constant(threshold)
        return cls._map(lambda e: sp.Piecewise((e, b * e > t),
                                               (sp.log(1 + sp.exp(b * e)) / b, True)), x)

    @classmethod
    def clamp(cls, x: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
        """``Piecewise((hi, (x > hi) | (hi < lo)), (lo, x < lo), (x, True))``: the branches
        of min(max(x, lo), hi); an absent bound is -oo or oo, so its branch drops out."""
        sp = cls._sp()
        return cls._zip(lambda *v: sp.Piecewise(*_clamp_pieces(*v)), *_bounds(x, lo, hi))

    @classmethod
    def clamp_masks(cls, x: Any, lo: Any, hi: Any) -> tuple[np.ndarray, ...]:
        """Which of x, lo, hi the output of :meth:`clamp` follows: the indicators of its
        branches (the numeric backend's masks away from ties)."""
        sp = cls._sp()

        def branch(k: int) -> np.ndarray:
            return cls._zip(lambda *v: sp.Piecewise(
                *[(int(j == k), c) for j, (_, c) in enumerate(_clamp_pieces(*v))]),
                *_bounds(x, lo, hi))

        return branch(2), branch(1), branch(0)

    @staticmethod
    def einsum(spec: str, *arrays: np.ndarray) -> np.ndarray:
        return np.asarray(np.einsum(spec, *[np.asarray(a, dtype=object) for a in arrays]),
                          dtype=object)

    @classmethod
    def where(cls, cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
        """``cond ? a : b``; a condition of SymPy relations gives ``Piecewise((a, c),
        (b, True))``, in which a Piecewise on the same relation nested in a branch is
        replaced by the branch the relation selects (so ``where(x > 0, g, g * elu(x))``
        does not keep the branch that cannot be taken)."""
        if cond.dtype != object:
            return np.where(cond, np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        sp = cls._sp()
        for c in cond.reshape(-1):
            if not isinstance(c, sp.logic.boolalg.Boolean) or isinstance(c, sp.Symbol):
                raise TypeError(f"where: the condition must hold booleans or SymPy relations "
                                f"(x > 0), got {type(c).__name__}: {c}")
        return cls._zip(lambda c, x, y: sp.Piecewise((_taken(x, c, True), c),
                                                     (_taken(y, c, False), True)), cond, a, b)

    @classmethod
    def matmul(cls, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``np.matmul``'s result (shapes, 1-D promotion, batch broadcasting), each element
        built as one ``Add`` of its products: NumPy's object loop adds them one at a
        time, re-flattening the growing sum at every step (quadratic in the inner size);
        SymPy's canonical sum is the same either way."""
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        if a.ndim == 0 or b.ndim == 0:
            return np.matmul(a, b)                  # NumPy's error for a scalar operand
        a2 = a[None, :] if a.ndim == 1 else a                        # (..., m, k)
        b2 = b[:, None] if b.ndim == 1 else b                        # (..., k, n)
        if a2.shape[-1] != b2.shape[-2]:
            return np.matmul(a, b)                  # NumPy's error for the mismatch
        products = a2[..., :, :, None] * b2[..., None, :, :]         # (..., m, k, n)
        terms = np.moveaxis(products, -2, -1)                        # (..., m, n, k)
        add = cls._sp().Add
        out = cls.zeros(terms.shape[:-1], None)
        if terms.shape[-1]:
            flat_out, flat_terms = out.reshape(-1), terms.reshape(-1, terms.shape[-1])
            for i in range(flat_out.size):
                flat_out[i] = add(*flat_terms[i])
        if a.ndim == 1:
            out = out[..., 0, :]
        if b.ndim == 1:
            out = out[..., 0]
        return out

    @classmethod
    def amax(cls, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        sp = cls._sp()
        return cls._reduce(lambda v: sp.Max(*v), x, axis, keepdims)

    @classmethod
    def argmax_mask(cls, x: np.ndarray, axis: Any) -> np.ndarray:
        """prod_{j != i} H(x_i - x_j) along ``axis``: 1 at the maximum, assuming no ties."""
        sp = cls._sp()
        x = np.asarray(x, dtype=object)
        axes = tuple(range(x.ndim)) if axis is None else \
            tuple(a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
        moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
        flat = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
        out = np.empty(flat.shape, dtype=object)
        for idx in np.ndindex(flat.shape[:-1]):
            row = flat[idx]
            for i, xi in enumerate(row):
                out[idx + (i,)] = sp.Mul(*[sp.Heaviside(xi - xj) for j, xj in enumerate(row)
                                           if j != i])
        out = out.reshape(moved.shape)
        return np.moveaxis(out, tuple(range(-len(axes), 0)), axes)

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
    def stability_shift(x: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
        """No shift: the symbolic softmax is the plain exp(x) / sum(exp(x))."""
        shape = list(np.shape(x))
        for ax in axis if isinstance(axis, tuple) else (axis,):
            shape[ax] = 1
        return SymbolicBackend.zeros(tuple(shape), x)

    @classmethod
    def zeros(cls, shape: tuple[int, ...], like: Any) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(cls._sp().Integer(0))
        return out

    @classmethod
    def constant(cls, value: Any, like: Any) -> np.ndarray:
        """Numbers become exact SymPy numbers (1.5 -> 3/2, 1/np.sqrt(3) -> sqrt(3)/3), so
        proofs stay exact; SymPy expressions pass through."""
        sp = cls._sp()
        arr = np.asarray(value, dtype=object) if isinstance(value, sp.Basic) \
            else np.asarray(value)
        out = np.empty(arr.shape, dtype=object)
        flat_out = out.reshape(-1)
        for i, v in enumerate(arr.reshape(-1)):
            if isinstance(v, sp.Basic):
                flat_out[i] = v
            elif isinstance(v, (bool, np.bool_, int, np.integer)):
                flat_out[i] = sp.Integer(int(v))
            else:
                flat_out[i] = exact_constant(float(v))
        return out

    @staticmethod
    def is_zero(x: np.ndarray) -> np.ndarray:
        """Element-wise "is exactly 0" (structurally: exp(-oo) is 0, a symbol is not)."""
        return np.vectorize(lambda e: e == 0, otypes=[bool])(x) if np.size(x) else \
            np.zeros(np.shape(x), dtype=bool)

    @staticmethod
    def is_nonnegative(x: np.ndarray) -> np.ndarray:
        """Element-wise "is known to be >= 0" (a symbol of unknown sign is not)."""
        return np.vectorize(lambda e: bool(e.is_nonnegative), otypes=[bool])(x) \
            if np.size(x) else np.zeros(np.shape(x), dtype=bool)


#: What the symbolic backend provides (said in its error for anything else).
SYMBOLIC_OPERATIONS: tuple[str, ...] = (
    "exp", "log", "tanh", "sqrt", "abs", "sign", "step", "sigmoid", "power", "where",
    "matmul", "amax", "argmax_mask", "stability_shift", "zeros", "constant", "is_zero",
    "is_nonnegative", "relu", "sin", "cos", "maximum", "minimum", "compare", "indicator",
    "step_between", "elu", "softplus", "clamp", "einsum")

#: The comparisons: name -> (NumPy function, SymPy relation).
COMPARISONS: dict[str, tuple[Any, str]] = {
    "lt": (np.less, "Lt"), "le": (np.less_equal, "Le"), "gt": (np.greater, "Gt"),
    "ge": (np.greater_equal, "Ge"), "eq": (np.equal, "Eq"), "ne": (np.not_equal, "Ne")}


def _bounds(x: Any, lo: Any, hi: Any) -> tuple[Any, Any, Any]:
    """x and the bounds of a clamp, an absent lower one -oo and an absent upper one oo."""
    import sympy as sp

    return x, -sp.oo if lo is None else lo, sp.oo if hi is None else hi


def _clamp_pieces(x: Any, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
    """The (value, condition) branches of min(max(x, lo), hi) (hi wins when lo > hi)."""
    import sympy as sp

    return [(hi, sp.Or(x > hi, hi < lo)), (lo, x < lo), (x, sp.true)]


def _taken(branch: Any, cond: Any, holds: bool) -> Any:
    """``branch`` with every Piecewise whose first condition is ``cond`` replaced by the
    branch ``cond`` selects (``holds``: the first one, else the rest)."""
    import sympy as sp

    if not isinstance(branch, sp.Basic) or not branch.has(sp.Piecewise):
        return branch

    def pick(p: Any) -> Any:
        rest = sp.Piecewise(*p.args[1:]) if len(p.args) > 1 else sp.nan
        return p.args[0].expr if holds else rest

    return branch.replace(lambda e: isinstance(e, sp.Piecewise) and e.args[0].cond == cond,
                          pick)


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
