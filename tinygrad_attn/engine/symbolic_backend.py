"""The symbolic array namespace: NumPy *object* arrays whose elements are SymPy
expressions, so that the op code the engine runs on numbers computes exact expressions
(:data:`tinygrad_attn.engine.backend.symbolic` is its one instance; see
:mod:`tinygrad_attn.verify.symbolic`). SymPy is imported inside the functions, on first
use: importing this module loads NumPy only.

Also here: :func:`exact_constant` (the exact number a float constant stands for),
:func:`plain_function` (``exp`` and ``tanh`` built without SymPy's assumption queries
where the argument's structure makes them needless), :data:`COMPARISONS` (the comparison
ops, numeric and symbolic), :class:`SymbolicUnsupported`.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np

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
    def _plain(cls, name: str, x: np.ndarray) -> np.ndarray:
        """``exp`` or ``tanh`` element-wise through :func:`plain_function`, one memo of
        plain arguments shared by the array's elements."""
        apply, memo = plain_function(name), {}
        return cls._map(lambda e: apply(e, memo), x)

    @classmethod
    def exp(cls, x: np.ndarray) -> np.ndarray:
        return cls._plain("exp", x)

    @classmethod
    def log(cls, x: np.ndarray) -> np.ndarray:
        return cls._map("log", x)

    @classmethod
    def tanh(cls, x: np.ndarray) -> np.ndarray:
        return cls._plain("tanh", x)

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
