r"""The primitive ops: forward and VJP side by side, one table of them (:data:`OPS`).

Each op is a :class:`~tinygrad_attn.engine.tensor.Function`.  ``forward`` works on arrays with
the backend ``ctx.xp`` (NumPy numbers or SymPy expressions: the same code serves both).
``backward`` receives the upstream gradient ``g`` as a Tensor and returns one Tensor per
input, written with Tensor ops, so gradients are differentiable again
(``ta.grad(..., create_graph=True)``).  Gradients may have the broadcast shape; the
engine sums them back to each input's shape in one place
(:func:`~tinygrad_attn.engine.autograd.unbroadcast`).

Notation in the docstrings: :math:`\bar{x}` is the gradient of the final scalar with
respect to :math:`x` (the VJP), :math:`g = \bar{y}` the upstream gradient.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import broadcast_shape, keep_reduced, unbroadcast
from .backend import symbolic
from .checks import check_matmul, check_reduced_sizes, is_basic_index
from .tensor import Function, Tensor, where


def _const(like: Tensor, array: Any) -> Tensor:
    """A constant (no-gradient) Tensor made from an array computed in a VJP."""
    return Tensor(np.asarray(array), _validated=True) if not isinstance(array, Tensor) \
        else array


class _Op(Function):
    """An op of the engine: its backward receives and returns Tensors and is written with
    Tensor ops, so it is differentiable again."""

    differentiable_backward = True
    saves: tuple[str, ...] = ()


def _shape_of(a: Any) -> tuple[int, ...]:
    return a.shape if isinstance(a, (Tensor, np.ndarray)) else np.shape(a)


class _Binary(_Op):
    """Shared by the element-wise binary ops: a broadcast check naming the op."""

    @classmethod
    def apply(cls, a: Any, b: Any, **kwargs: Any) -> Tensor:  # type: ignore[override]
        sa, sb = _shape_of(a), _shape_of(b)
        if sa != sb:  # equal shapes need no check
            broadcast_shape(cls.op or cls.__name__.lower(), sa, sb)
        return cls.apply_with_ctx(a, b, **kwargs)[0]


# ----------------------------------------------------------------------------- arithmetic

class Add(_Binary):
    r"""$y = a + b$;  $\bar a = g,\ \bar b = g$."""

    op = "add"

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(_Binary):
    r"""$y = a - b$;  $\bar a = g,\ \bar b = -g$."""

    op = "sub"

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, -g


class Neg(_Op):
    r"""$y = -a$;  $\bar a = -g$."""

    op = "neg"
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return (-g,)


class Mul(_Binary):
    r"""$y = a b$ (element-wise);  $\bar a = g b,\ \bar b = g a$."""

    op = "mul"
    saves = ("partners",)

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.parents
        return (g * b if ctx.needs_input_grad[0] else None,
                g * a if ctx.needs_input_grad[1] else None)


class Div(_Binary):
    r"""$y = a / b$;  $\bar a = g / b,\ \bar b = -g\,a / b^2 = -g\,y / b$."""

    op = "div"
    saves = ("inputs",)

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.parents
        ga = g / b if ctx.needs_input_grad[0] else None
        gb = -(g * a) / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(_Binary):
    r"""$y = a^b$ (both Tensors);  $\bar a = g\,b\,a^{b-1},\ \bar b = g\,y \log a$."""

    op = "pow"
    saves = ("inputs", "output")

    @staticmethod
    def forward(ctx, a, b):
        return ctx.xp.power(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.parents
        ga = gb = None
        if ctx.needs_input_grad[0]:  # 0 where a = b = 0 (0 * 0^-1): a^0 is constant there
            flat = _where_any(ctx.xp.is_zero(b.data))
            flat = flat if flat is None else _where_any(flat & ctx.xp.is_zero(a.data))
            ga = _zero_at(flat, g * b * _one_at(flat, a) ** (b - 1.0))
        if ctx.needs_input_grad[1]:  # 0 where a = 0 and b >= 0: 0^b is constant near b
            zero = _where_any(ctx.xp.is_zero(a.data))         # log(0) never enters the graph
            flat = zero if zero is None else _where_any(zero & ctx.xp.is_nonnegative(b.data))
            gb = _zero_at(flat, g * ctx.output * _one_at(zero, a).log())
        return ga, gb


def _where_any(cond: np.ndarray) -> np.ndarray | None:
    """``cond``, or None when it holds nowhere (the common case: no select recorded)."""
    return cond if np.any(cond) else None


def _one_at(cond: np.ndarray | None, a: Tensor) -> Tensor:
    """``a`` with 1 where ``cond``: a base whose power and log stay finite there, so the
    selected-away branch gives no NaN to a second derivative either."""
    return a if cond is None else where(cond, 1.0, a)


def _zero_at(cond: np.ndarray | None, t: Tensor) -> Tensor:
    """``t`` with exactly 0 where ``cond``."""
    return t if cond is None else where(cond, 0.0, t)


class PowScalar(_Op):
    r"""$y = a^p$ for a constant exponent $p$;  $\bar a = g\,p\,a^{p-1}$."""

    op = "pow"
    saves = ("inputs",)
    @staticmethod
    def forward(ctx, a, exponent):
        return ctx.xp.power(a, ctx.xp.constant(exponent, a))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.parents
        p = ctx.attrs["exponent"]
        if p == 1:
            return (g,)
        if p == 0:  # a^0 = 1: a zero gradient, also at a = 0 (where p a^(p-1) is 0 * inf)
            return (_const(a, ctx.xp.zeros(a.shape, a.data)),)
        return (g * p * a ** (p - 1),)


class MatMul(_Op):
    r"""$Y = A B$ with NumPy's rules (batch axes broadcast, 1-D operands promoted);
    $\bar A = g B^\top,\ \bar B = A^\top g$."""

    op = "matmul"
    saves = ("partners",)
    @staticmethod
    def forward(ctx, a, b):
        check_matmul(a.shape, b.shape)
        return ctx.xp.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.parents
        if a.ndim == b.ndim == 2:  # plain matrices: the formulas as they stand
            return (g @ b.mT if ctx.needs_input_grad[0] else None,
                    a.mT @ g if ctx.needs_input_grad[1] else None)
        if b.ndim == 2 and a.ndim > 2:
            # a weight shared by a batch, (..., n, k) @ (k, m): B-bar = sum over the batch
            # of A^T G, taken as one 2-D product rather than a batch of them then a sum
            ga = g @ b.mT if ctx.needs_input_grad[0] else None
            rows = int(np.prod(a.shape[:-1]))                    # not -1: a may be empty
            gb = a.reshape(rows, a.shape[-1]).mT @ g.reshape(rows, b.shape[1]) \
                if ctx.needs_input_grad[1] else None
            return ga, gb
        a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a     # (..., n, k)
        b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b     # (..., k, m)
        g2 = g
        if a.ndim == 1:
            g2 = g2.unsqueeze(-2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = g2.unsqueeze(-1)                                # (..., n, m)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g2 @ b2.mT, a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(a2.mT @ g2, b2.shape).reshape(b.shape)
        return ga, gb


# ----------------------------------------------------------------------------- element-wise

class Exp(_Op):
    r"""$y = e^a$;  $\bar a = g\,y$."""

    op = "exp"
    saves = ("output",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.exp(a)

    @staticmethod
    def backward(ctx, g):
        return (g * ctx.output,)


class Log(_Op):
    r"""$y = \log a$;  $\bar a = g / a$."""

    op = "log"
    saves = ("inputs",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.log(a)

    @staticmethod
    def backward(ctx, g):
        return (g / ctx.parents[0],)


class Tanh(_Op):
    r"""$y = \tanh a$;  $\bar a = g\,(1 - y^2)$."""

    op = "tanh"
    saves = ("output",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.tanh(a)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return (g * (1.0 - y * y),)


class Sigmoid(_Op):
    r"""$y = \sigma(a) = 1 / (1 + e^{-a})$;  $\bar a = g\,y\,(1 - y)$."""

    op = "sigmoid"
    saves = ("output",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.sigmoid(a)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return (g * y * (1.0 - y),)


class Relu(_Op):
    r"""$y = \max(a, 0)$;  $\bar a = g\,H(a)$ with the step $H(0) = 0$."""

    op = "relu"
    saves = ("inputs",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.relu(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.parents[0]
        return (g * _const(a, ctx.xp.step(a.data)),)


class Sqrt(_Op):
    r"""$y = \sqrt a$;  $\bar a = g / (2 y)$."""

    op = "sqrt"
    saves = ("output",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.sqrt(a)

    @staticmethod
    def backward(ctx, g):
        return (g / (2.0 * ctx.output),)


class Abs(_Op):
    r"""$y = |a|$;  $\bar a = g\,\mathrm{sign}(a)$."""

    op = "abs"
    saves = ("inputs",)
    @staticmethod
    def forward(ctx, a):
        return ctx.xp.abs(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.parents[0]
        return (g * _const(a, ctx.xp.sign(a.data)),)


# ----------------------------------------------------------------------------- reductions

class Sum(_Op):
    r"""$y = \sum_{i \in \text{axis}} a_i$;  $\bar a = g$ broadcast back over the axis."""

    op = "sum"
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        return a.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        a = ctx.parents[0]
        return (keep_reduced(g, a.shape, ctx.attrs["axis"], ctx.attrs["keepdims"]).expand(a.shape),)


class Mean(_Op):
    r"""$y = \frac1N \sum_{i \in \text{axis}} a_i$;  $\bar a = g / N$ broadcast back."""

    op = "mean"
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        count = a.size if axis is None else int(np.prod([a.shape[i] for i in axis]))
        return np.sum(a, axis=axis, keepdims=keepdims) / ctx.xp.constant(count, a)

    @staticmethod
    def backward(ctx, g):
        a, axis = ctx.parents[0], ctx.attrs["axis"]
        count = a.size if axis is None else int(np.prod([a.shape[i] for i in axis]))
        return ((keep_reduced(g, a.shape, axis, ctx.attrs["keepdims"]) / count).expand(a.shape),)


class Max(_Op):
    r"""$y = \max_{i \in \text{axis}} a_i$;  $\bar a = g\,[a = y] / \#\{a = y\}$
    (tied maxima share the gradient equally)."""

    op = "max"
    saves = ("inputs",)
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        check_reduced_sizes("max", a.shape, axis)              # NumPy: no max of nothing
        return ctx.xp.amax(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        a, axis = ctx.parents[0], ctx.attrs["axis"]
        mask = _const(a, ctx.xp.argmax_mask(a.data, axis))
        return (keep_reduced(g, a.shape, axis, ctx.attrs["keepdims"]) * mask,)


class Softmax(_Op):
    r"""$y_i = e^{a_i} / \sum_j e^{a_j}$ along ``axis``;
    $\bar a = y \odot (g - \sum_j g_j y_j)$, i.e. $J = \mathrm{diag}(y) - y y^\top$.

    Numerics: the row maximum is subtracted first (``xp.stability_shift``), so logits
    of 1e4 neither overflow nor give NaN; a row that is entirely ``-inf`` gives zeros.
    """

    op = "softmax"
    saves = ("output",)
    @staticmethod
    def forward(ctx, a, axis):
        xp = ctx.xp
        e = xp.exp(a - xp.stability_shift(a, axis))
        s = e.sum(axis=axis, keepdims=True)
        zero = xp.is_zero(s)
        if zero.any():  # a row of -inf only: weights 0, not 0/0
            s = xp.where(zero, xp.constant(1, s), s)
        return e / s

    @staticmethod
    def backward(ctx, g):
        y, axis = ctx.output, ctx.attrs["axis"]
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)


class LogSoftmax(_Op):
    r"""$y_i = a_i - \log \sum_j e^{a_j}$ along ``axis``;
    $\bar a = g - e^{y} \sum_j g_j$."""

    op = "log_softmax"
    saves = ("output",)
    @staticmethod
    def forward(ctx, a, axis):
        xp = ctx.xp
        if a.shape[axis] == 0:  # nothing to normalise (and no log(0) of an empty sum)
            return a.copy()
        shifted = a - xp.stability_shift(a, axis)
        return shifted - xp.log(np.sum(xp.exp(shifted), axis=axis, keepdims=True))

    @staticmethod
    def backward(ctx, g):
        y, axis = ctx.output, ctx.attrs["axis"]
        return (g - y.exp() * g.sum(axis=axis, keepdims=True),)


# ----------------------------------------------------------------------------- shapes

class Reshape(_Op):
    r"""$y = \mathrm{reshape}(a)$;  $\bar a = \mathrm{reshape}(g, \text{shape of } a)$."""

    op = "reshape"
    @staticmethod
    def forward(ctx, a, shape):
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return (g.reshape(ctx.parents[0].shape),)


class Permute(_Op):
    r"""$y = a$ with axes permuted by $\pi$;  $\bar a = g$ permuted by $\pi^{-1}$."""

    op = "transpose"
    @staticmethod
    def forward(ctx, a, axes):
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        axes = ctx.attrs["axes"]
        return (g.transpose(tuple(sorted(range(len(axes)), key=axes.__getitem__))),)


class Expand(_Op):
    r"""$y = a$ broadcast to ``shape``;  $\bar a = g$ summed over the broadcast axes."""

    op = "expand"
    @staticmethod
    def forward(ctx, a, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return (g,)  # the engine's unbroadcast sums it back to a's shape


class GetItem(_Op):
    r"""$y = a[\text{index}]$;  $\bar a = $ zeros with $g$ scattered (added) at the index,
    so repeated indices accumulate."""

    op = "getitem"
    @staticmethod
    def forward(ctx, a, index):
        return a[index]

    @staticmethod
    def backward(ctx, g):
        a = ctx.parents[0]
        return (ScatterAdd.apply(g, index=ctx.attrs["index"], shape=a.shape),)


class ScatterAdd(_Op):
    r"""$y = $ zeros of ``shape`` with $a$ added at ``index`` (the VJP of indexing);
    $\bar a = g[\text{index}]$."""

    op = "scatter_add"
    @staticmethod
    def forward(ctx, a, index, shape):
        out = ctx.xp.zeros(shape, a)
        if is_basic_index(index):
            out[index] = a
        else:
            np.add.at(out, index, a)
        return out

    @staticmethod
    def backward(ctx, g):
        return (g[ctx.attrs["index"]],)


class Concat(_Op):
    r"""$y = [a_1; a_2; \dots]$ along ``axis``;  $\bar a_k = $ the k-th slice of $g$."""

    op = "concat"
    @staticmethod
    def forward(ctx, *arrays, axis):
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        axis, out, start = ctx.attrs["axis"], [], 0
        for p in ctx.parents:
            stop = start + p.shape[axis]
            index = (slice(None),) * axis + (slice(start, stop),)
            out.append(g[index])
            start = stop
        return tuple(out)


class Stack(_Op):
    r"""$y = \mathrm{stack}(a_1, a_2, \dots)$ on a new ``axis``;  $\bar a_k = g[\dots, k]$."""

    op = "stack"
    @staticmethod
    def forward(ctx, *arrays, axis):
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        axis = ctx.attrs["axis"]
        return tuple(g[(slice(None),) * axis + (k,)] for k in range(len(ctx.parents)))


class Cast(_Op):
    r"""$y = a$ in another float dtype;  $\bar a = g$ in $a$'s dtype.  Symbolic arrays
    have no float dtype: they pass unchanged."""

    op = "astype"

    @staticmethod
    def forward(ctx, a, dtype):
        return a if a.dtype == object else a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        dtype = ctx.parents[0].dtype
        return (g if object in (g.dtype, dtype) else g.astype(dtype),)


class Where(_Op):
    r"""$y = \mathrm{cond} \mathbin{?} a : b$ (``cond`` constant);
    $\bar a = \mathrm{cond} \mathbin{?} g : 0,\ \bar b = \mathrm{cond} \mathbin{?} 0 : g$:
    exactly zero gradient where an input was not selected."""

    op = "where"
    @staticmethod
    def forward(ctx, a, b, cond):  # a condition of SymPy relations (x > 0) is symbolic
        return (symbolic if cond.dtype == object else ctx.xp).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.attrs["cond"]
        return (where(cond, g, 0.0) if ctx.needs_input_grad[0] else None,
                where(cond, 0.0, g) if ctx.needs_input_grad[1] else None)


#: The op table: every primitive op, each proven by the tests parametrised over it.
#: Ops defined above the engine (the fused attention op) join it with :func:`register`.
OPS: list[type[Function]] = [
    Add, Sub, Neg, Mul, Div, Pow, PowScalar, MatMul,
    Exp, Log, Tanh, Sigmoid, Relu, Sqrt, Abs,
    Sum, Mean, Max, Softmax, LogSoftmax,
    Reshape, Permute, Expand, GetItem, ScatterAdd, Concat, Stack, Where, Cast,
]


def register(op: type[Function]) -> type[Function]:
    """Add ``op`` to the op table (usable as a class decorator); returns it unchanged.

    The table is what the tests prove op by op; a layer above the engine registers its
    own primitive ops here instead of the engine importing that layer.
    """
    if op not in OPS:
        OPS.append(op)
    return op
