r"""More primitive ops, in the same op table (:data:`~tinygrad_attn.engine.ops.OPS`):
maximum, minimum, clamp, elu, softplus, logsumexp, einsum, sin and cos; and the
comparisons, which make boolean Tensors.

Each op is written as in :mod:`~tinygrad_attn.engine.ops`: ``forward`` on arrays with
``ctx.xp`` (NumPy, or SymPy object arrays: the same code computes exact expressions),
``backward`` with Tensor ops, so second derivatives work.  The functions at the bottom
(:func:`maximum`, :func:`clamp`, :func:`einsum`, ...) check their arguments and apply the
ops; Tensor's methods (``x.clamp(min=0)``, ``x.logsumexp(-1)``, ``x > 0``) call them.

Gradients at kinks follow PyTorch: ``maximum`` and ``minimum`` split a tie equally; clamp
passes the gradient to x where ``lo <= x <= hi``, to ``lo`` where ``x < lo < hi``, to ``hi``
where ``x > hi`` or ``hi < lo``; elu's gradient at 0 is ``alpha``; softplus is x itself,
with gradient 1, where ``beta x > threshold``.

**Comparisons** (``<  <=  >  >=  ==  !=``) give boolean Tensors that carry no gradient:
dtype bool numerically; symbolically an object array of SymPy relations (``x_0 > 0``),
those decided (between numbers, or from the symbols' assumptions) being True or False,
and an array of decided ones only a bool array.  :func:`~tinygrad_attn.engine.where`
takes either: on relations it builds ``sympy.Piecewise``, exact.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from .autograd import broadcast_shape, keep_reduced
from .backend import COMPARISONS, backend_of
from .checks import normalize_axes
from .einsum_spec import EinsumSpec, parse_einsum
from .ops import register
from .tensor import Function, Tensor, where


class _More(Function):
    """An op of this module: backward with Tensor ops, so differentiable again.

    A non-smooth op also says which branch each element takes (:meth:`branches`), so a
    finite difference that steps across a kink is recognised as such
    (:func:`~tinygrad_attn.verify.locate.kink_signature`)."""

    differentiable_backward = True
    saves: tuple[str, ...] = ()

    @staticmethod
    def branches(ctx: Function) -> np.ndarray | None:
        """The pattern selecting the branch of every element (None: a smooth op)."""
        return None


def _signs(*pairs: tuple[Any, Any]) -> np.ndarray:
    """The signs of ``a - b`` for each pair of arrays (None: left out), stacked."""
    return np.stack(np.broadcast_arrays(*[np.sign(a - b) for a, b in pairs
                                          if a is not None and b is not None]))


def _const(array: Any) -> Tensor:
    """A constant Tensor (no gradient) made from an array computed in a VJP."""
    return Tensor(np.asarray(array), _validated=True)


# ----------------------------------------------------------------------------- element-wise

@register
class Sin(_More):
    r"""$y = \sin a$;  $\bar a = g \cos a$."""

    op = "sin"
    saves = ("inputs",)

    @staticmethod
    def forward(ctx, a):
        return ctx.xp.sin(a)

    @staticmethod
    def backward(ctx, g):
        return (g * ctx.parents[0].cos(),)


@register
class Cos(_More):
    r"""$y = \cos a$;  $\bar a = -g \sin a$."""

    op = "cos"
    saves = ("inputs",)

    @staticmethod
    def forward(ctx, a):
        return ctx.xp.cos(a)

    @staticmethod
    def backward(ctx, g):
        return (-(g * ctx.parents[0].sin()),)


class _Extremum(_More):
    """Maximum and minimum: the forward is ``xp.maximum`` or ``xp.minimum`` (the op's
    name); the gradient goes to the input that is selected, half to each at a tie."""

    saves = ("inputs",)

    @staticmethod
    def forward(ctx, a, b):
        return getattr(ctx.xp, ctx.name)(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = (p.data for p in ctx.parents)
        big, small = (a, b) if ctx.name == "maximum" else (b, a)
        return (g * _const(ctx.xp.step_between(big, small, 0.5))
                if ctx.needs_input_grad[0] else None,
                g * _const(ctx.xp.step_between(small, big, 0.5))
                if ctx.needs_input_grad[1] else None)

    @staticmethod
    def branches(ctx):
        a, b = ctx.parents
        return _signs((a.data, b.data))


@register
class Maximum(_Extremum):
    r"""$y = \max(a, b)$ element-wise;  $\bar a = g\,H(a - b),\ \bar b = g\,H(b - a)$ with
    $H(0) = 1/2$: a tie splits the gradient equally (as ``torch.maximum``)."""

    op = "maximum"


@register
class Minimum(_Extremum):
    r"""$y = \min(a, b)$ element-wise;  $\bar a = g\,H(b - a),\ \bar b = g\,H(a - b)$ with
    $H(0) = 1/2$ (as ``torch.minimum``)."""

    op = "minimum"


@register
class Clamp(_More):
    r"""$y = \min(\max(x, lo), hi)$, either bound absent or both (hi wins if $lo > hi$);
    $\bar x = g\,[lo \le x \le hi]$, $\bar{lo} = g\,[x < lo < hi]$,
    $\bar{hi} = g\,[x > hi \lor hi < lo]$: PyTorch's masks, ties included.

    Symbolically the output is a Piecewise and the masks are its branches' indicators."""

    op = "clamp"
    saves = ("inputs",)

    @staticmethod
    def forward(ctx, x, lo, hi):
        return ctx.xp.clamp(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.parents
        masks = ctx.xp.clamp_masks(x.data, None if lo is None else lo.data,
                                   None if hi is None else hi.data)
        return tuple(g * _const(m) if need else None
                     for m, need in zip(masks, ctx.needs_input_grad))

    @staticmethod
    def branches(ctx):
        x, lo, hi = (None if t is None else t.data for t in ctx.parents)
        return _signs((x, lo), (x, hi), (hi, lo))


@register
class Elu(_More):
    r"""$y = a$ for $a > 0$, else $\alpha (e^a - 1)$;  $\bar a = g$ for $a > 0$, else
    $g\,\alpha e^a$: at 0, $\alpha$ as in PyTorch.

    The exponential is of $\min(a, 0)$ (a ``where``), so a large input overflows in
    neither derivative."""

    op = "elu"
    saves = ("inputs",)

    @staticmethod
    def forward(ctx, a, alpha):
        return ctx.xp.elu(a, alpha)

    @staticmethod
    def backward(ctx, g):
        a = ctx.parents[0]
        pos = ctx.xp.compare("gt", a.data, 0)
        negative_part = where(pos, 0.0, a)
        return (where(pos, g, g * ctx.attrs["alpha"] * negative_part.exp()),)

    @staticmethod
    def branches(ctx):
        return np.sign(ctx.parents[0].data)


@register
class Softplus(_More):
    r"""$y = \log(1 + e^{\beta a}) / \beta$, or $a$ where $\beta a > t$ (the threshold);
    $\bar a = g\,\sigma(\beta a)$, or $g$ where $\beta a > t$, as PyTorch.

    Computed as ``logaddexp(0, beta a) / beta``: no overflow."""

    op = "softplus"
    saves = ("inputs",)

    @staticmethod
    def forward(ctx, a, beta, threshold):
        return ctx.xp.softplus(a, beta, threshold)

    @staticmethod
    def backward(ctx, g):
        a, xp = ctx.parents[0], ctx.xp
        beta, threshold = ctx.attrs["beta"], ctx.attrs["threshold"]
        over = xp.compare("gt", a.data * xp.constant(beta, a.data), threshold)
        return (where(over, g, g * (a * beta).sigmoid()),)

    @staticmethod
    def branches(ctx):
        return ctx.parents[0].data * ctx.attrs["beta"] > ctx.attrs["threshold"]


# ----------------------------------------------------------------------------- reductions

@register
class LogSumExp(_More):
    r"""$y = \log \sum_{i \in \text{axis}} e^{a_i}$;  $\bar a = g\,\exp(a - y)$ (the softmax).

    Numerics: the maximum is subtracted first (``xp.stability_shift``), so logits of 1e3
    do not overflow; a row of ``-inf`` only gives ``-inf`` with a zero gradient.
    Symbolically the plain :math:`\log \sum e^{a_i}`."""

    op = "logsumexp"
    saves = ("inputs", "output")

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        xp = ctx.xp
        shift = xp.stability_shift(a, axis)
        total = np.sum(xp.exp(a - shift), axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):          # a row of -inf: log 0 = -inf
            out = xp.log(total) + shift
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def backward(ctx, g):
        a, axis, keepdims = ctx.parents[0], ctx.attrs["axis"], ctx.attrs["keepdims"]
        y = keep_reduced(ctx.output, a.shape, axis, keepdims)
        if not ctx.xp.symbolic and np.any(np.isneginf(y.data)):
            y = where(np.isneginf(y.data), 0.0, y)   # -inf - (-inf) would be NaN
        return (keep_reduced(g, a.shape, axis, keepdims) * (a - y).exp(),)


@register
class Einsum(_More):
    r"""$y = $ ``einsum(spec, a_1, a_2, ...)``, ``spec`` explicit (``'ij,jk->ik'``);
    $\bar a_k = $ ``einsum`` of the other operands and $g$ into $a_k$'s subscripts,
    broadcast over a subscript that only $a_k$ has."""

    op = "einsum"
    saves = ("partners",)

    @staticmethod
    def forward(ctx, *arrays, spec):
        return ctx.xp.einsum(spec, *arrays)

    @staticmethod
    def backward(ctx, g):
        inputs, output = ctx.attrs["spec"].split("->")
        subs = inputs.split(",")
        grads: list[Tensor | None] = []
        for k, p in enumerate(ctx.parents):
            if not ctx.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [j for j in range(len(subs)) if j != k]
            present = set(output).union(*[subs[j] for j in others])
            kept = "".join(c for c in subs[k] if c in present)
            spec = ",".join([subs[j] for j in others] + [output]) + "->" + kept
            gk = Einsum.apply(*[ctx.parents[j] for j in others], g, spec=spec)
            if kept != subs[k]:  # a subscript only a_k has: y is constant along it
                gk = gk.reshape(tuple(n if c in present else 1
                                      for c, n in zip(subs[k], p.shape))).expand(p.shape)
            grads.append(gk)
        return tuple(grads)


# ----------------------------------------------------------------------------- functions

def _tensor(like: Tensor, value: Any) -> Tensor:
    """``value`` as a Tensor: itself, or a constant in the backend and dtype of ``like``."""
    if isinstance(value, Tensor):
        return value
    return Tensor(backend_of(like.data).constant(value, like.data), _validated=True)


def _operands(who: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two operands of an element-wise op (one may be a number or an array), checked to
    broadcast together."""
    ref = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    a, b = _tensor(ref, a), _tensor(ref, b)
    broadcast_shape(who, a.shape, b.shape)
    return a, b


def _number(who: str, name: str, value: Any, positive: bool = False) -> float:
    """A finite real parameter (``positive``: > 0), or an error naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or (positive and value <= 0):
        kind = "a positive" if positive else "a finite"
        raise ValueError(f"{who}: {name} must be {kind} number, got {value!r}")
    return float(value)


#: The comparisons' operators, by name.
SYMBOLS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def compare(name: str, a: Tensor, b: Any) -> Tensor:
    """``a < b`` and the other comparisons (``name``: lt, le, gt, ge, eq, ne), element-wise
    with broadcasting: a boolean Tensor without gradient (see the module docstring).
    Something that is neither a number, a list, an array nor a Tensor gives NotImplemented
    (so ``x == None`` is False, as Python's default)."""
    if not isinstance(b, (Tensor, np.ndarray, numbers.Number, list, tuple)) and \
            not type(b).__module__.startswith("sympy"):
        return NotImplemented
    a, b = _operands(f"comparison {SYMBOLS[name]}", a, b)
    xp = backend_of(a.data, b.data)
    x, y = (xp.constant(t.data, t.data) if xp.symbolic and t.dtype != object else t.data
            for t in (a, b))
    return Tensor(xp.compare(name, x, y), _validated=True)


def maximum(a: Any, b: Any) -> Tensor:
    """The element-wise maximum (``torch.maximum``); a tie splits the gradient equally."""
    return Maximum.apply(*_operands("maximum", a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """The element-wise minimum (``torch.minimum``); a tie splits the gradient equally."""
    return Minimum.apply(*_operands("minimum", a, b))


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - torch's names
    """``min(max(x, min), max)`` as ``torch.clamp``: either bound may be None (not both), a
    number or a Tensor (then it gets a gradient too); see :class:`Clamp` for the masks."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None:
            _operands("clamp", x, bound)
            if isinstance(bound, numbers.Number) and np.isnan(bound):
                raise ValueError(f"clamp: {name} is NaN")
    lo = None if min is None else _tensor(x, min)
    hi = None if max is None else _tensor(x, max)
    return Clamp.apply(x, lo, hi)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` above 0, ``alpha (e^x - 1)`` elsewhere (``torch.nn.functional.elu``)."""
    return Elu.apply(x, alpha=_number("elu", "alpha", alpha))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + e^{beta x}) / beta``, and ``x`` where ``beta x > threshold``
    (``torch.nn.functional.softplus``)."""
    return Softplus.apply(x, beta=_number("softplus", "beta", beta, positive=True),
                          threshold=_number("softplus", "threshold", threshold))


def logsumexp(x: Tensor, axis: int | Sequence[int] | None = None,
              keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x), axis))`` without overflow (``torch.logsumexp``); ``axis=None``:
    all axes.  A row of ``-inf`` only gives ``-inf``."""
    axes = normalize_axes("logsumexp", axis, x.shape)
    return LogSumExp.apply(x, axis=tuple(range(x.ndim)) if axes is None else axes,
                           keepdims=bool(keepdims))


def einsum(spec: str, *operands: Any) -> Tensor:
    """``numpy.einsum`` / ``torch.einsum`` on Tensors, differentiable: subscripts are
    letters, ``...`` stands for broadcast axes, ``->`` gives the output (else: the
    subscripts that occur once, in alphabetical order).  A subscript repeated within one
    operand (a diagonal, a trace) is refused with a ValueError naming it."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ref = next((t for t in operands if isinstance(t, Tensor)), None)
    tensors = [_tensor(ref, t) if ref is not None else Tensor(t) for t in operands]
    parsed: EinsumSpec = parse_einsum(spec, [t.shape for t in tensors])
    tensors = [t if t.shape == shape else t.expand(shape)
               for t, shape in zip(tensors, parsed.shapes)]
    return Einsum.apply(*tensors, spec=parsed.spec)


def sin(x: Tensor) -> Tensor:
    """The element-wise sine."""
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    """The element-wise cosine."""
    return Cos.apply(x)


__all__ = ["COMPARISONS", "Clamp", "Cos", "Einsum", "Elu", "LogSumExp", "Maximum", "Minimum",
           "Sin", "Softplus", "clamp", "compare", "cos", "einsum", "elu", "logsumexp",
           "maximum", "minimum", "sin", "softplus"]
