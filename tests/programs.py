"""The machinery of the property suite (tests/test_properties*.py): a *program* (a
function of Tensors and its twin on the reference of tests/reference.py, grown op by
op, with its random inputs) and :func:`run`, which checks a program's forward, its VJP
along a random direction and (optionally) its second derivative along two, against
finite differences of the reference at 50 digits, never against the engine's backward.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import hypothesis.extra.numpy as hnp
import numpy as np
import reference as R
from hypothesis import event, settings
from hypothesis import strategies as st

import tinygrad_attn as ta

DTYPES = (np.float64, np.float32)
#: Floats per domain: ``any``; ``positive`` for log, sqrt, pow bases and denominators;
#: ``apart`` (distinct, away from 0) for relu, abs and max, whose kinks have no derivative.
DOMAINS = {"any": (-3.0, 3.0), "positive": (0.25, 3.0), "apart": (0.125, 3.0)}


def scaled(weight: float) -> int:
    """This test's examples: the profile's count times ``weight``."""
    return max(1, int(settings().max_examples * weight))


# ----------------------------------------------------------------------------- programs

@dataclass
class Program:
    """A function of Tensors and its reference twin, grown one op at a time."""

    data: Any
    dtype: Any
    inputs: list[np.ndarray] = field(default_factory=list)
    engine: Callable[[list[Any]], Any] = lambda xs: xs[0]
    ref: Callable[[list[Any]], Any] = lambda xs: xs[0]
    shape: tuple[int, ...] = ()
    positive: bool = False
    ops: list[str] = field(default_factory=list)
    logits: float = 0.0                    # the largest logit scale, for the tolerance
    tolerance_dtype: Any = None            # float32 once a cast lowered the precision
    edges: bool = False                    # values near the float range's ends were met

    def draw(self, strategy: Any) -> Any:
        return self.data.draw(strategy)

    def fresh(self, shape: tuple[int, ...], domain: str = "any") -> int:
        """A new random input of ``shape``; its index among the inputs."""
        lo, hi = DOMAINS[domain]
        width = 32 if self.dtype == np.float32 else 64
        elements = st.floats(lo, hi, width=width)
        if domain == "apart":
            elements = st.builds(lambda x, s: x * s, elements, st.sampled_from([-1.0, 1.0]))
        x = self.draw(hnp.arrays(self.dtype, shape, elements=elements,
                                 unique=domain == "apart"))
        self.inputs.append(x)
        return len(self.inputs) - 1

    def then(self, name: str, shape: tuple[int, ...], fe: Callable, fr: Callable,
             positive: bool = False) -> None:
        """Apply an op: ``fe(t, xs)`` on the engine, ``fr(r, xs)`` on the reference."""
        e, r = self.engine, self.ref
        self.engine = lambda xs: fe(e(xs), xs)
        self.ref = lambda xs: np.asarray(fr(r(xs), xs), dtype=object)  # 0-d stays an array
        self.shape, self.positive = tuple(shape), positive
        self.ops.append(name)

    def make_positive(self) -> None:
        """t -> t * t + 0.5, when the next op needs positive values."""
        if not self.positive:
            self.then("positive", self.shape, lambda t, xs: t * t + 0.5,
                      lambda r, xs: R.binary(lambda a, b: a + b,
                                             R.binary(lambda a, b: a * b, r, r), 0.5),
                      positive=True)


def broadcastable(p: Program, shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape`` (the current one; either may grow)."""
    shape = p.shape if shape is None else shape
    return p.draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=len(shape) + 1,
                                           min_side=0 if 0 in shape else 1, max_side=3))


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return np.broadcast_shapes(a, b)


def random_axis(p: Program, new: bool = False) -> int:
    n = len(p.shape) + new
    return p.draw(st.integers(-max(n, 1), max(n, 1) - 1))


def reduced_shape(shape: tuple[int, ...], axes: Any, keepdims: bool) -> tuple[int, ...]:
    return np.sum(np.zeros(shape), axis=axes, keepdims=keepdims).shape


# ----------------------------------------------------------------------------- checking

def tolerance(p: Program) -> float:
    """Relative tolerance: a few thousand rounding errors of the working dtype, more for
    large logits (a score's rounding error is relative to the score itself)."""
    dtype = p.tolerance_dtype or p.dtype
    return float(np.finfo(dtype).eps) * (2048 + 16 * p.logits)


def reference(p: Program, fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``fn()`` evaluated by the reference at the program's precision, and the kinks met
    (the values near the float range's ends are in ``p.edges``)."""
    R.KINKS.clear()
    R.EDGES.clear()
    with R.precision(p.tolerance_dtype or p.dtype):
        value = fn()
    p.edges = p.edges or bool(R.EDGES)
    return value, list(R.KINKS)


def check_forward(p: Program, outs: tuple[ta.Tensor, ...], want: tuple[np.ndarray, ...],
                  rtol: float) -> bool:
    """The engine's outputs equal the reference's; True when they are finite everywhere."""
    assert len(outs) == len(want), p.ops
    scale = max([1.0] + [float(np.max(np.abs(x), initial=0)) for x in p.inputs])
    finite_everywhere = True
    for y, ref in zip(outs, want):
        got = y.data.astype(np.float64)
        assert got.shape == ref.shape, (p.ops, got.shape, ref.shape)
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=str(p.ops))
        np.testing.assert_array_equal(got[np.isinf(ref)], ref[np.isinf(ref)],
                                      err_msg=str(p.ops))
        big = max(scale, float(np.max(np.abs(ref[finite]), initial=0)))
        np.testing.assert_allclose(got[finite], ref[finite], rtol=rtol, atol=rtol * big,
                                   err_msg=str(p.ops))
        finite_everywhere &= bool(np.all(finite))
    return finite_everywhere


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """A program's outputs: one value or a tuple of them, None (not computed) left out."""
    return tuple(v for v in (value if isinstance(value, tuple) else (value,)) if v is not None)


def run(p: Program, second: bool) -> None:
    """Check the program's forward, first and (``second``) second directional
    derivatives against the reference."""
    xs = [ta.Tensor(x, requires_grad=True) for x in p.inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outs = _as_tuple(p.engine(xs))
    mp_xs = [R.to_mp(x) for x in p.inputs]
    fn = lambda *a: _as_tuple(p.ref(list(a)))               # noqa: E731
    want, kinks = reference(p, lambda: tuple(R.to_float(r) for r in fn(*mp_xs)))
    rtol = tolerance(p)
    if not check_forward(p, outs, want, rtol):
        event("non-finite output: forward only")
        return
    rng = np.random.default_rng(p.draw(st.integers(0, 2**32 - 1)))
    w = [rng.standard_normal(y.shape).astype(y.dtype).astype(np.float64) for y in outs]
    u = [rng.standard_normal(x.shape) for x in p.inputs]
    exact, kinks_fd = reference(p, lambda: R.directional(fn, mp_xs, w, u))
    if kinks or kinks_fd:
        event(f"forward only: {(kinks + kinks_fd)[0]}")
        return
    grads = ta.grad(list(outs), xs, grad_outputs=[g.astype(y.dtype) for g, y in zip(w, outs)],
                    allow_unused=True, create_graph=second)
    _agree(p, "first derivative", grads, u, exact, w, rtol)
    if second:
        _second(p, xs, grads, mp_xs, fn, w, u, rng, rtol)


def _dot(grads: Any, directions: list[np.ndarray]) -> tuple[float, float]:
    """sum_i <g_i, d_i> in float64 and sum_i <|g_i|, |d_i|> (its scale)."""
    pairs = [(np.asarray(g.data, np.float64), d) for g, d in zip(grads, directions)
             if g is not None]
    return (float(sum(np.sum(g * d) for g, d in pairs)),
            float(sum(np.sum(np.abs(g * d)) for g, d in pairs)))


def _agree(p: Program, what: str, grads: Any, u: list[np.ndarray], exact: Any,
           w: list[np.ndarray], rtol: float) -> None:
    got, size = _dot(grads, u)
    if p.edges and not math.isfinite(got):
        event(f"{what} not finite: near the float range's end")   # powers left the range
        return
    assert all(g is None or g.dtype == x.dtype for g, x in zip(grads, p.inputs)), p.ops
    floor = sum(float(np.sum(np.abs(g))) for g in w) * max(
        [1.0] + [float(np.max(np.abs(d), initial=0)) for d in u])
    bound = rtol * (size + abs(float(exact)) + floor)
    assert math.isfinite(got) and abs(got - float(exact)) <= bound, \
        f"{what} of {p.ops}: engine {got!r}, reference {float(exact)!r}, bound {bound:.3g}"


def _second(p: Program, xs: list[ta.Tensor], grads: Any, mp_xs: list[Any],
            fn: Callable[..., Any], w: list[np.ndarray], u: list[np.ndarray],
            rng: np.random.Generator, rtol: float) -> None:
    v = [rng.standard_normal(x.shape) for x in p.inputs]
    terms = [(g * v_i.astype(g.dtype)).sum() for g, v_i in zip(grads, v)
             if g is not None and g.requires_grad]
    hv: Any = [None] * len(xs)
    if terms:
        s = terms[0]
        for t in terms[1:]:
            s = s + t
        hv = ta.grad(s, xs, allow_unused=True)
    exact, kinks = reference(p, lambda: R.second_directional(fn, mp_xs, w, u, v))
    if kinks:
        event(f"no second derivative: {kinks[0]}")
        return
    # curvature grows with the square of the logits' scale, and so do the terms that
    # cancel in float arithmetic: one more factor of it
    _agree(p, "second derivative", hv, u, exact, w, rtol * 8 * (1 + p.logits / 64))


