"""An independent reference for the property suite: every op and mechanism written again,
plainly, on NumPy object arrays of ``mpmath.mpf`` numbers (50 significant digits), and
derivatives taken by central finite differences at that precision.

Nothing here calls the engine.  The formulas are the textbook ones (softmax is
``exp(x) / sum(exp(x))`` with no shift: mpmath does not overflow), so a bug in an op's
forward or VJP cannot hide in its reference.  Two conventions of the engine are mirrored
because they are definitions, not formulas: a row with nothing to attend to has zero
weights, and the cosine similarity clamps a norm below ``eps`` to ``eps``.

Float range: after every op the values are rounded into the range of the dtype under
test (beyond its largest finite value: +-inf; below its smallest normal: 0), so the
reference overflows and underflows where the engine does.  Points where the function is
not differentiable (relu and abs at 0, tied maxima) and values that are not finite (a
NaN or an infinity inside, even when the output is finite) are *recorded* in
:data:`KINKS` while evaluating; a caller skips derivative checks there (the engine's
subgradient is a convention there, and IEEE arithmetic is not calculus).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import mpmath
import numpy as np

DIGITS = 50
KINKS: list[str] = []
#: Values within the fourth root of the float range's ends met while evaluating: powers of
#: them in a VJP (b * b * b * b in a second derivative of a / b) may leave the range.
EDGES: list[str] = []
_RANGE = {"max": mpmath.mpf(np.finfo(np.float64).max), "tiny": mpmath.mpf(0.0),
          "kink": mpmath.mpf(0.0), "low": mpmath.mpf(0.0), "high": mpmath.mpf("inf")}


@contextlib.contextmanager
def precision(dtype: Any) -> Iterator[None]:
    """Evaluate with :data:`DIGITS` digits, the float range and kink tolerance of ``dtype``
    (a kink is a point within a few hundred rounding errors of a non-differentiable one)."""
    info = np.finfo(dtype)
    saved = dict(_RANGE)
    _RANGE.update(max=mpmath.mpf(float(info.max)), tiny=mpmath.mpf(float(info.tiny)),
                  kink=mpmath.mpf(float(info.eps)) * 256,
                  low=mpmath.mpf(float(info.tiny)) ** 0.25,
                  high=mpmath.mpf(float(info.max)) ** 0.25)
    with mpmath.workdps(DIGITS):
        try:
            yield
        finally:
            _RANGE.update(saved)


def _fix(x: Any) -> Any:
    """One number rounded into the float range (nan stays nan); a value that is not
    finite is recorded in :data:`KINKS`: derivatives through it are IEEE arithmetic
    (0 * nan is nan), not calculus."""
    if not isinstance(x, mpmath.mpf):
        return x
    if mpmath.isnan(x):
        KINKS.append("a NaN inside")
        return x
    if abs(x) > _RANGE["max"]:
        KINKS.append("an infinity inside")
        return mpmath.inf if x > 0 else -mpmath.inf
    if abs(x) < _RANGE["tiny"]:
        return mpmath.mpf(0)
    if x and not _RANGE["low"] <= abs(x) <= _RANGE["high"]:
        EDGES.append("near the float range's end")
    return x


def _real(x: Any) -> Any:
    """A complex result (a log or a root of a negative number) is nan, as in NumPy."""
    return mpmath.nan if isinstance(x, mpmath.mpc) else x


def _map(fn: Callable[[Any], Any]) -> Callable[[np.ndarray], np.ndarray]:
    ufunc = np.frompyfunc(lambda x: _fix(_real(fn(x))), 1, 1)
    return lambda a: np.asarray(ufunc(np.asarray(a, dtype=object)), dtype=object)


def fix(a: np.ndarray) -> np.ndarray:
    """Every element rounded into the float range."""
    return np.asarray(np.frompyfunc(_fix, 1, 1)(np.asarray(a, dtype=object)), dtype=object)


def to_mp(a: np.ndarray) -> np.ndarray:
    """A float array as exact mpf numbers."""
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    out.reshape(-1)[:] = [mpmath.mpf(float(v)) for v in a.reshape(-1)]
    return out


def to_float(a: np.ndarray) -> np.ndarray:
    """mpf numbers rounded to float64."""
    a = np.asarray(a, dtype=object)
    return np.array([float(v) for v in a.reshape(-1)], dtype=np.float64).reshape(a.shape)


def _kink(what: str, gap: Any) -> None:
    if abs(gap) <= _RANGE["kink"]:
        KINKS.append(what)


def _log(x: Any) -> Any:
    return -mpmath.inf if x == 0 else mpmath.log(x)


def _relu(x: Any) -> Any:
    if mpmath.isnan(x):
        return x
    _kink("relu at 0", x)
    return x if x > 0 else mpmath.mpf(0)


def _abs(x: Any) -> Any:
    _kink("abs at 0", x)
    return abs(x)


exp = _map(mpmath.exp)
_exact_exp = np.frompyfunc(mpmath.exp, 1, 1)
log = _map(_log)
tanh = _map(mpmath.tanh)
sigmoid = _map(lambda x: 1 / (1 + mpmath.exp(-x)))
relu = _map(_relu)
sqrt = _map(mpmath.sqrt)
absolute = _map(_abs)


sin = _map(mpmath.sin)
cos = _map(mpmath.cos)


def _extremum(pick: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """The element-wise maximum or minimum, recording ties (NaN wins, as NumPy)."""
    def one(a: Any, b: Any) -> Any:
        if mpmath.isnan(a) or mpmath.isnan(b):
            return mpmath.nan
        if mpmath.isfinite(a) and mpmath.isfinite(b):
            _kink("tied maximum or minimum", a - b)
        return pick(a, b)
    return np.frompyfunc(one, 2, 1)


elementwise_max = _extremum(max)
elementwise_min = _extremum(min)


def clamp(a: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    """min(max(a, lo), hi) (a bound may be None), recording x at a bound and tied bounds."""
    def one(x: Any, low: Any, high: Any) -> Any:
        if mpmath.isnan(x):
            return x
        if low is not None:
            _kink("clamp at its lower bound", x - low)
            x = max(x, mpmath.mpf(low))
        if high is not None:
            _kink("clamp at its upper bound", x - high)
            x = min(x, mpmath.mpf(high))
        if low is not None and high is not None:
            _kink("clamp's bounds tied", mpmath.mpf(low) - high)
        return x
    bounds = [np.asarray(b, dtype=object) for b in (a, lo, hi)]
    return fix(np.asarray(np.frompyfunc(one, 3, 1)(*bounds), dtype=object))


def elu(a: np.ndarray, alpha: float) -> np.ndarray:
    """x above 0, alpha (e^x - 1) elsewhere; 0 is a kink (of the second derivative)."""
    def one(x: Any) -> Any:
        if mpmath.isnan(x):
            return x
        _kink("elu at 0", x)
        return x if x > 0 else alpha * mpmath.expm1(x)
    return _map(one)(a)


def softplus(a: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """log(1 + e^{beta x}) / beta, and x where beta x > threshold (PyTorch's switch)."""
    def one(x: Any) -> Any:
        if mpmath.isnan(x):
            return x
        _kink("softplus at its threshold", beta * x - threshold)
        return x if beta * x > threshold else mpmath.log1p(mpmath.exp(beta * x)) / beta
    return _map(one)(a)


def logsumexp(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """log(sum(exp(a))) along ``axis`` (all: None); log of nothing is -inf."""
    z = np.sum(_exact_exp(np.asarray(a, dtype=object)), axis=axis, keepdims=keepdims,
               initial=mpmath.mpf(0))
    return fix(np.asarray(np.frompyfunc(_log, 1, 1)(z), dtype=object))


def einsum(spec: str, *arrays: np.ndarray) -> np.ndarray:
    """numpy.einsum on the mpf arrays (an empty sum is 0)."""
    out = np.einsum(spec, *[np.asarray(a, dtype=object) for a in arrays])
    return fix(np.asarray(np.frompyfunc(mpmath.mpf, 1, 1)(out), dtype=object))


def _pow(a: Any, b: Any) -> Any:
    if b == 0 or a == 1:                                      # IEEE: nan ** 0 = 1 ** nan = 1
        return mpmath.mpf(1)
    if mpmath.isnan(a) or mpmath.isnan(b):
        return mpmath.nan
    if a == 0:
        return mpmath.mpf(1) if b == 0 else mpmath.mpf(0) if b > 0 else mpmath.inf
    return _fix(_real(mpmath.power(a, b)))


power = np.frompyfunc(_pow, 2, 1)


def binary(op: Callable[[Any, Any], Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An element-wise binary op with NumPy broadcasting, rounded into the float range."""
    return fix(np.asarray(op(np.asarray(a, dtype=object), np.asarray(b, dtype=object)),
                          dtype=object))


def divide(a: Any, b: Any) -> Any:
    if b == 0:
        return mpmath.nan if a == 0 or mpmath.isnan(a) else mpmath.inf * mpmath.sign(a)
    return a / b


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if a.shape[-1] == 0:  # an empty sum: zeros of the product's shape
        return fix(np.matmul(np.zeros(a.shape, float), np.zeros(b.shape, float))
                   .astype(object) * mpmath.mpf(0))
    return fix(np.matmul(a, b))


def total(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Sum (0 for nothing), exactly as NumPy's axis rules."""
    a = np.asarray(a, dtype=object)
    out = np.sum(a, axis=axis, keepdims=keepdims, initial=mpmath.mpf(0))
    return fix(np.asarray(out, dtype=object))


def maximum(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Max along ``axis``, recording near-ties (where the derivative is not defined)."""
    a = np.asarray(a, dtype=object)
    axes = tuple(range(a.ndim)) if axis is None else tuple(axis)
    if not axes:                                              # over no axis: itself
        return a.copy()
    moved = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
    keep = a.ndim - len(axes)
    flat = moved.reshape(moved.shape[:keep] + (int(np.prod(moved.shape[keep:])),))
    out = np.empty(flat.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        if any(mpmath.isnan(x) for x in flat[idx]):       # NaN wins, as np.max
            out[idx] = mpmath.nan
            continue
        row = sorted(flat[idx], reverse=True)
        if len(row) > 1:
            _kink("tied maxima", row[0] - row[1])
        out[idx] = row[0]
    return np.expand_dims(out, axes) if keepdims else out


def softmax(a: np.ndarray, axis: int = -1, mask: np.ndarray | None = None) -> np.ndarray:
    """exp(a) / sum(exp(a)) along ``axis``; masked entries (mask False) are exactly 0 and
    a row with nothing allowed is all 0 (the engine's convention)."""
    a = np.asarray(a, dtype=object)
    e = _exact_exp(a)                                         # no overflow inside an op
    if mask is not None:
        e = np.where(np.broadcast_to(mask, e.shape), e, mpmath.mpf(0))
    z = np.sum(e, axis=axis, keepdims=True, initial=mpmath.mpf(0))
    z = np.where(z == 0, mpmath.mpf(1), z)
    return fix(e / z)


def log_softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    a = np.asarray(a, dtype=object)
    z = np.sum(_exact_exp(a), axis=axis, keepdims=True, initial=mpmath.mpf(0))
    return fix(a - np.frompyfunc(_log, 1, 1)(z))


def scatter_add(a: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.fill(mpmath.mpf(0))
    np.add.at(out, index, np.asarray(a, dtype=object))
    return out


# ----------------------------------------------------------------------------- derivatives

def objective(fn: Callable[..., Any], xs: Sequence[np.ndarray], w: Sequence[np.ndarray]
              ) -> Any:
    """L(x) = sum_k <w_k, f_k(x)> at mp precision; ``fn`` returns one array or a tuple."""
    out = fn(*xs)
    outs = out if isinstance(out, tuple) else (out,)
    return sum((np.sum(np.asarray(o, dtype=object) * to_mp(g), initial=mpmath.mpf(0))
                for o, g in zip(outs, w)), mpmath.mpf(0))


def _moved(xs: Sequence[np.ndarray], steps: Sequence[tuple[Any, Sequence[np.ndarray]]]
           ) -> list[np.ndarray]:
    """xs + sum of h * direction (each direction one array per input, float)."""
    out = [np.asarray(x, dtype=object).copy() for x in xs]
    for h, direction in steps:
        out = [np.asarray(o + to_mp(d) * h, dtype=object) for o, d in zip(out, direction)]
    return out


def directional(fn: Callable[..., Any], xs: Sequence[np.ndarray], w: Sequence[np.ndarray],
                u: Sequence[np.ndarray]) -> Any:
    """d/dt L(x + t u) at t = 0, by a central difference with step 1e-15."""
    h = mpmath.mpf("1e-15")
    plus = objective(fn, _moved(xs, [(h, u)]), w)
    minus = objective(fn, _moved(xs, [(-h, u)]), w)
    return (plus - minus) / (2 * h)


def second_directional(fn: Callable[..., Any], xs: Sequence[np.ndarray],
                       w: Sequence[np.ndarray], u: Sequence[np.ndarray],
                       v: Sequence[np.ndarray]) -> Any:
    """d^2/ds dt L(x + s u + t v) at 0 (u^T H v), by a mixed central difference."""
    h = mpmath.mpf("1e-12")
    value = [objective(fn, _moved(xs, [(a * h, u), (b * h, v)]), w)
             for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    return (value[0] - value[1] - value[2] + value[3]) / (4 * h * h)


def clamp_kink(sq: np.ndarray, floor: float) -> None:
    """Record a kink where a squared norm sits at the clamp ``floor`` of a cosine."""
    for x in np.asarray(sq, dtype=object).reshape(-1):
        if abs(x - floor) <= floor * mpmath.mpf("1e-6"):
            KINKS.append("a norm at the cosine's clamp")
