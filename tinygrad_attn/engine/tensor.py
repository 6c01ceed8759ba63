"""Tensor: an array plus the op that made it; Function: an op, torch-style.

A :class:`Tensor` holds ``data`` (a NumPy array: float32/float64 for numbers, object
for SymPy expressions) and, when it was computed from Tensors that require
gradients, ``_ctx``: the :class:`Function` instance that made it.  The ctx knows its
``parents`` (the input Tensors), its ``op`` name and the ``scope`` it was made in,
which is all that :mod:`tinygrad_attn.pictures.graph` needs to draw it.

:func:`grad` and :meth:`Tensor.backward` seed the outputs and run the one backward walk
of :mod:`tinygrad_attn.engine.autograd`.
"""
from __future__ import annotations

import weakref
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from . import autograd
from .autograd import (broadcast_shape, current_scope, is_grad_enabled, no_grad,
                       toposort)
from .backend import (SymbolicUnsupported, as_array, asarray, backend_of, check_float_dtype,
                      numeric)
from .checks import (check_expand, checked_gradients, forward_output, normalize_axes,
                     record_saved, shape_argument, symbolic_misuse, user_gradient,
                     verify_saved)


# ----------------------------------------------------------------------------- Function

class Function:
    """An op: ``forward(ctx, *arrays) -> array`` and ``backward(ctx, grad) -> grads``.

    Subclass it torch-style and call ``MyOp.apply(*args)``.  Tensor arguments reach
    ``forward`` as arrays; other arguments are passed as they are.  ``ctx.xp`` is the
    backend of the inputs (NumPy, or SymPy object arrays); a Function that uses it runs
    symbolically too.  ``ctx.save_for_backward(*arrays)`` keeps values for backward
    (read them back as ``ctx.saved_tensors``).

    ``backward(ctx, grad_output)`` returns one gradient per positional argument (None
    for non-Tensor arguments or ones without gradient).  In a user Function it receives
    and returns arrays, and the result is differentiable once.  The engine's own ops set
    ``differentiable_backward = True``: their backward receives and returns Tensors and
    is written with Tensor ops, so gradients can be differentiated again.

    ``ctx.attrs`` keeps the keyword arguments: the op's parameters, so that
    ``type(ctx).apply(*ctx.parents, **ctx.attrs)`` computes the node again.  A keyword
    that hands ``forward`` a value for this call only (weights already computed) is
    named in ``transient_kwargs`` and not kept.
    """

    differentiable_backward = False
    op: str | None = None  # display name; defaults to the class name in lower case
    transient_kwargs: tuple[str, ...] = ()
    #: What ``backward`` reads besides its upstream gradient: ``"inputs"`` (the parents'
    #: data; ``"partners"``: an input when another needs a gradient), ``"output"``,
    #: ``"saved"`` (``ctx.saved_tensors``).  These and the arrays among
    #: the keyword arguments are fingerprinted when the node is recorded, and a change
    #: before the backward raises (:func:`~tinygrad_attn.engine.checks.verify_saved`).
    saves: tuple[str, ...] = ("saved",)

    # A ctx's defaults as class attributes (read-only ones for the dicts): making a ctx,
    # once per op call, sets only what the call changes.
    parents: tuple["Tensor | None", ...] = ()
    needs_input_grad: tuple[bool, ...] = ()
    saved_tensors: tuple[Any, ...] = ()
    scope: tuple[str, ...] = ()
    xp: Any = numeric
    attrs: Mapping[str, Any] = MappingProxyType({})
    _output: Any = None
    _fingerprints: Mapping[Any, Any] = MappingProxyType({})
    freed = False

    # -- the torch-style ctx interface
    def save_for_backward(self, *values: Any) -> None:
        self.saved_tensors = values

    def release(self) -> None:
        """Free what the backward needed (a backward without ``retain_graph`` calls it):
        a later backward through this node raises."""
        self.freed, self.saved_tensors, self._fingerprints = True, (), {}

    @property
    def output(self) -> "Tensor":
        """The Tensor this op produced (held weakly, to avoid a reference cycle)."""
        out = self._output() if self._output is not None else None
        if out is None:
            raise RuntimeError(f"{self.name}: its output Tensor no longer exists")
        return out

    @property
    def name(self) -> str:
        return type(self).op or type(self).__name__.lower()

    @staticmethod
    def forward(ctx: "Function", *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: "Function", grad_output: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> "Tensor":
        """Run ``forward`` on the arrays of the Tensor arguments and record the node."""
        return cls.apply_with_ctx(*args, **kwargs)[0]

    @classmethod
    def apply_with_ctx(cls, *args: Any, **kwargs: Any) -> tuple["Tensor", "Function"]:
        """:meth:`apply`, also returning the ctx its ``forward`` filled in, whether or not
        a node was recorded (it is not when no input requires grad).  An op whose forward
        computes more than its output hands the rest back as an attribute of ctx: the
        fused attention op leaves its weights in ``ctx.weights``."""
        ctx = cls()
        tensors, arrays, needs, plain = [], [], [], True   # one plain loop: every op runs it
        for a in args:
            t = a if isinstance(a, Tensor) else None
            a = a if t is None else a.data
            tensors.append(t)
            arrays.append(a)
            needs.append(t is not None and t.requires_grad)
            plain = plain and type(a) is np.ndarray and not a.dtype.hasobject
        ctx.xp = xp = numeric if plain else backend_of(*arrays)  # plain: numeric arrays
        ctx.attrs = kwargs if not cls.transient_kwargs else {
            key: value for key, value in kwargs.items() if key not in cls.transient_kwargs}
        if xp.symbolic:  # numeric Tensors meeting symbolic ones become exact constants
            arrays = [xp.constant(a, a) if t is not None and a.dtype != object else a
                      for t, a in zip(tensors, arrays)]
        try:
            data = cls.forward(ctx, *arrays, **kwargs)
        except SymbolicUnsupported as exc:
            raise SymbolicUnsupported(f"{cls.__name__}.forward: {exc}") from None
        except (TypeError, AttributeError) as exc:
            if xp.symbolic and not cls.__module__.startswith(__package__ + "."):
                raise symbolic_misuse(cls.__name__, "forward", exc) from None
            raise
        if isinstance(data, Tensor):
            raise TypeError(f"{cls.__name__}.forward returned a Tensor; forward works on "
                            f"arrays: return an array (its .data)")
        data = forward_output(cls.__name__, data)
        requires_grad = True in needs and is_grad_enabled()
        out = Tensor(data, requires_grad, _validated=True)
        if requires_grad:
            ctx.parents = tuple(tensors)
            ctx.needs_input_grad = tuple(needs)
            ctx.scope = current_scope()
            ctx._output = weakref.ref(out)
            out._ctx = ctx
            if cls.saves or ctx.attrs:  # else nothing the backward reads can change
                ctx._fingerprints = record_saved(ctx)
        return out, ctx

    def vjp(self, g: "Tensor") -> tuple["Tensor | None", ...]:
        """The gradients for the parents, as Tensors, one per positional argument, from the
        upstream gradient ``g``: ``backward`` called as the op asks (Tensors for the
        engine's own ops; arrays, wrapped back into Tensors, for a user Function).  The
        backward walk (:func:`~tinygrad_attn.engine.autograd.backprop`) calls it, after
        checking that nothing the backward reads changed since the forward."""
        if self.freed:
            raise RuntimeError(f"backward: the graph through {self.name} was freed by an "
                               f"earlier backward; pass retain_graph=True to the first "
                               f"backward (or ta.grad) to go through the graph again")
        verify_saved(self, self._fingerprints)
        if self.differentiable_backward:
            grads = type(self).backward(self, g)
        else:
            with no_grad():
                try:
                    raw = type(self).backward(self, g.data)
                except (TypeError, AttributeError) as exc:
                    if not self.xp.symbolic:
                        raise
                    raise symbolic_misuse(type(self).__name__, "backward", exc) from None
            grads = _OnceDifferentiable.wrap(self, raw)
        return checked_gradients(type(self).__name__, grads, self.parents)


class _OnceDifferentiable(Function):
    """Holds the array gradient a user Function returned; differentiating it raises."""

    op = "user_backward"
    saves = ()

    @staticmethod
    def wrap(fn_ctx: Function, raw: Any) -> tuple["Tensor | None", ...]:
        raw = tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)
        out: list[Tensor | None] = []
        name = type(fn_ctx).__name__
        for i, g in enumerate(raw):
            if g is None:
                out.append(None)
                continue
            if isinstance(g, Tensor):
                raise TypeError(f"{name}.backward returned a Tensor for input {i}; a "
                                f"backward written with arrays returns arrays (write it "
                                f"with Tensor ops and set differentiable_backward = True)")
            parent = fn_ctx.parents[i] if i < len(fn_ctx.parents) else None
            dtype = None if parent is None or parent.data.dtype == object else parent.dtype
            t = Tensor(user_gradient(name, i, g, dtype), _validated=True)
            if is_grad_enabled():  # create_graph: mark it so a second derivative fails loudly
                t.requires_grad = True
                ctx = _OnceDifferentiable()
                ctx.attrs = {"function": type(fn_ctx).__name__}
                ctx.parents = ()
                t._ctx = ctx
            out.append(t)
        return tuple(out)

    @staticmethod
    def backward(ctx: Function, grad_output: Any) -> Any:
        raise RuntimeError(
            f"{ctx.attrs['function']}.backward is written with arrays, so its gradient "
            f"cannot be differentiated again; write it with Tensor ops and set "
            f"differentiable_backward = True")


# ----------------------------------------------------------------------------- Tensor

class Tensor:
    """An n-dimensional array that records the ops applied to it.

    ``Tensor(data, requires_grad=False, name=None, dtype=None)``: float64 by default for
    Python data; a NumPy float32 array stays float32; an object array of SymPy
    expressions makes a symbolic Tensor.
    """

    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__

    name: str | None = None  # defaults as class attributes: an op's output sets 2 fields
    grad: np.ndarray | None = None
    _ctx: Function | None = None
    role: str | None = None  # "parameter" for nn parameters (styles ta.draw)

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None,
                 dtype: Any = None, _validated: bool = False) -> None:
        if not (_validated and type(data) is np.ndarray):
            data = as_array(data.data if isinstance(data, Tensor) else data, dtype)
        self.data: np.ndarray = data
        self.requires_grad = requires_grad is True or bool(requires_grad)
        if name is not None:
            self.name = name

    # -- array-like facts
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> Any:
        return self.data.item()

    def __repr__(self) -> str:
        extra = f", name={self.name!r}" if self.name else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        extra += f", op={self._ctx.name}" if self._ctx is not None else ""
        return f"Tensor({np.array2string(self.data, precision=4)}{extra})"

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        raise TypeError("Tensor: the truth value of a Tensor is ambiguous; "
                        "compare its .data instead")

    # -- autograd
    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor(self.data, name=self.name, _validated=True)

    def zero_grad(self) -> None:
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    def backward(self, grad: Any = None, create_graph: bool = False,
                 retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` (a NumPy array) for every leaf.

        ``grad`` is the upstream gradient; it may be omitted only for a scalar.  As in
        PyTorch the graph is freed afterwards, so a second backward through it raises,
        unless ``retain_graph`` (by default ``create_graph``) keeps it.
        """
        order = toposort([self])
        leaves = [t for t in order if t._ctx is None and t.requires_grad]
        keep = create_graph if retain_graph is None else retain_graph
        grads = run_backward([self], [grad], leaves, create_graph, retain_graph=keep,
                             order=order)
        for leaf, g in zip(leaves, grads):
            if g is None:
                continue
            leaf.grad = g.data.copy() if leaf.grad is None else leaf.grad + g.data

    # -- constants and binary ops
    def _const(self, value: Any) -> "Tensor":
        if isinstance(value, Tensor):
            return value
        xp = backend_of(self.data)
        if not xp.symbolic and isinstance(value, np.ndarray) and value.dtype.kind == "f" \
                and value.ndim > 0:
            return Tensor(value, _validated=True)  # a float array keeps its dtype, as NumPy
        return Tensor(xp.constant(value, self.data), _validated=True)

    def __add__(self, other: Any) -> "Tensor":
        return ops.Add.apply(self, self._const(other))

    def __radd__(self, other: Any) -> "Tensor":
        return ops.Add.apply(self._const(other), self)

    def __sub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(self, self._const(other))

    def __rsub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(self._const(other), self)

    def __mul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(self, self._const(other))

    def __rmul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(self._const(other), self)

    def __truediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(self, self._const(other))

    def __rtruediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(self._const(other), self)

    def __pow__(self, other: Any) -> "Tensor":
        if isinstance(other, Tensor):
            return ops.Pow.apply(self, other)
        if np.ndim(other) == 0 and not isinstance(other, np.ndarray):
            return ops.PowScalar.apply(self, exponent=other)
        return ops.Pow.apply(self, self._const(other))

    def __rpow__(self, other: Any) -> "Tensor":
        return ops.Pow.apply(self._const(other), self)

    def __matmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(self, self._const(other))

    def __rmatmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(self._const(other), self)

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    # -- element-wise
    def exp(self) -> "Tensor":
        return ops.Exp.apply(self)

    def log(self) -> "Tensor":
        return ops.Log.apply(self)

    def tanh(self) -> "Tensor":
        return ops.Tanh.apply(self)

    def sigmoid(self) -> "Tensor":
        return ops.Sigmoid.apply(self)

    def relu(self) -> "Tensor":
        return ops.Relu.apply(self)

    def sqrt(self) -> "Tensor":
        return ops.Sqrt.apply(self)

    def abs(self) -> "Tensor":
        return ops.Abs.apply(self)

    # -- reductions
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        return ops.Sum.apply(self, axis=normalize_axes("sum", axis, self.shape), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        return ops.Mean.apply(self, axis=normalize_axes("mean", axis, self.shape),
                              keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        return ops.Max.apply(self, axis=normalize_axes("max", axis, self.shape), keepdims=keepdims)

    def softmax(self, axis: int = -1) -> "Tensor":
        return self._along("softmax", ops.Softmax, axis)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        return self._along("log_softmax", ops.LogSoftmax, axis)

    def _along(self, name: str, op: type[Function], axis: int) -> "Tensor":
        """``op`` along one axis; a 0-d Tensor is taken as one element along axis 0."""
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"{name}: axis must be an int, got {axis!r}")
        (ax,) = normalize_axes(name, axis, self.shape) or (0,)
        if self.ndim == 0:
            return op.apply(self.reshape(1), axis=0).reshape(())
        return op.apply(self, axis=ax)

    # -- shapes
    def reshape(self, *shape: Any) -> "Tensor":
        shape = shape_argument(shape)
        try:  # NumPy's reshape decides; its error is said in the Tensor's terms
            return ops.Reshape.apply(self, shape=shape)
        except (ValueError, TypeError):
            raise ValueError(f"reshape: cannot reshape a Tensor of shape {self.shape} "
                             f"into shape {shape}") from None

    def transpose(self, *axes: int) -> "Tensor":
        """Permute axes as ``numpy.transpose``; no arguments reverses them all."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = tuple(range(self.ndim))[::-1] if not axes else \
            normalize_axes("transpose", axes, self.shape)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the "
                             f"{self.ndim} axes of a Tensor of shape {self.shape}")
        return ops.Permute.apply(self, axes=axes)

    permute = transpose

    @property
    def T(self) -> "Tensor":
        """All axes reversed, as NumPy's ``.T``."""
        return self.transpose()

    @property
    def mT(self) -> "Tensor":
        """The last two axes swapped (a batch of matrix transposes)."""
        if self.ndim < 2:
            raise ValueError(f"mT: needs at least 2 dimensions, got shape {self.shape}")
        axes = list(range(self.ndim))
        axes[-2], axes[-1] = axes[-1], axes[-2]
        return ops.Permute.apply(self, axes=tuple(axes))

    def expand(self, *shape: Any) -> "Tensor":
        """Broadcast to ``shape`` (NumPy rules); the gradient sums back."""
        shape = shape_argument(shape)
        check_expand(self.shape, shape)
        return ops.Expand.apply(self, shape=shape)

    def unsqueeze(self, axis: int) -> "Tensor":
        """A new axis of size 1 at ``axis`` (of the result, as ``np.expand_dims``)."""
        (ax,) = normalize_axes("unsqueeze", axis, self.shape, new_axis=True)
        return self.reshape(self.shape[:ax] + (1,) + self.shape[ax:])

    def squeeze(self, axis: int | None = None) -> "Tensor":
        """Without the axes of size 1 (``axis``: only that one, which must have size 1)."""
        axes = normalize_axes("squeeze", axis, self.shape)
        for a in axes or ():
            if self.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {self.shape} has size "
                                 f"{self.shape[a]}, not 1")
        axes = [a for a, n in enumerate(self.shape) if n == 1] if axes is None else axes
        return self.reshape(tuple(n for a, n in enumerate(self.shape) if a not in axes))

    def __getitem__(self, index: Any) -> "Tensor":
        index = _norm_index(index)
        try:
            np.empty(self.shape, dtype=np.bool_)[index]
        except IndexError as exc:
            raise IndexError(f"getitem: index {index!r} is invalid for a Tensor of shape "
                             f"{self.shape}: {exc}") from None
        return ops.GetItem.apply(self, index=index)

    def astype(self, dtype: Any) -> "Tensor":
        """The values in ``dtype`` (float32 or float64); the gradient comes back in this
        Tensor's dtype."""
        dtype = np.dtype(dtype)
        if dtype == object:
            raise TypeError("astype: dtype must be float32 or float64, got object")
        check_float_dtype("astype", dtype)
        return ops.Cast.apply(self, dtype=dtype)

    def masked_fill(self, mask: Any, value: float) -> "Tensor":
        """Where ``mask`` is True put ``value``, elsewhere keep self (as torch)."""
        return where(mask, self._const(value), self)

    # -- comparisons (boolean Tensors, no gradient) and more ops: engine/ops_more.py
    def __lt__(self, other: Any) -> "Tensor":
        return ops_more.compare("lt", self, other)
    def __le__(self, other: Any) -> "Tensor":
        return ops_more.compare("le", self, other)
    def __gt__(self, other: Any) -> "Tensor":
        return ops_more.compare("gt", self, other)
    def __ge__(self, other: Any) -> "Tensor":
        return ops_more.compare("ge", self, other)
    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return ops_more.compare("eq", self, other)
    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return ops_more.compare("ne", self, other)
    def maximum(self, other: Any) -> "Tensor":
        return ops_more.maximum(self, other)
    def minimum(self, other: Any) -> "Tensor":
        return ops_more.minimum(self, other)
    def clamp(self, min: Any = None, max: Any = None) -> "Tensor":  # noqa: A002 - torch's
        return ops_more.clamp(self, min, max)
    def elu(self, alpha: float = 1.0) -> "Tensor":
        return ops_more.elu(self, alpha)
    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> "Tensor":
        return ops_more.softplus(self, beta, threshold)
    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return ops_more.logsumexp(self, axis, keepdims)
    def sin(self) -> "Tensor":
        return ops_more.Sin.apply(self)
    def cos(self) -> "Tensor":
        return ops_more.Cos.apply(self)


# ----------------------------------------------------------------------------- helpers

def _norm_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``cond`` is True, else ``b`` (NumPy broadcasting; cond is constant)."""
    cond = cond.data if isinstance(cond, Tensor) else asarray(cond)
    if cond.dtype != np.bool_ and cond.dtype != object:  # object: SymPy relations (x > 0)
        raise TypeError(f"where: the condition must be a boolean array, got dtype {cond.dtype}")
    ref = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    a, b = ref._const(a), ref._const(b)
    shape = broadcast_shape("where", a.shape, b.shape)
    broadcast_shape("where", cond.shape, shape)
    return ops.Where.apply(a, b, cond=cond)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join Tensors along an existing axis (``numpy.concatenate``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one Tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concat: 0-d Tensors have no axis to join along; use stack")
    (ax,) = normalize_axes("concat", axis, tensors[0].shape)
    for t in tensors:
        if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1:] != \
                tensors[0].shape[:ax] + tensors[0].shape[ax + 1:]:
            raise ValueError(f"concat: shapes {[t.shape for t in tensors]} differ outside "
                             f"axis {axis}")
    return ops.Concat.apply(*tensors, axis=ax)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join Tensors along a new axis (``numpy.stack``)."""
    tensors = list(tensors)
    if not tensors or any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: needs Tensors of one shape, got "
                         f"{[t.shape for t in tensors]}")
    (ax,) = normalize_axes("stack", axis, tensors[0].shape, new_axis=True)
    return ops.Stack.apply(*tensors, axis=ax)


# ----------------------------------------------------------------------------- backward

def _seed(output: Tensor, grad: Any) -> Tensor:
    if grad is None:
        if output.size != 1:
            raise RuntimeError(
                f"backward: the output has shape {output.shape}, not a scalar; pass the "
                f"upstream gradient (an array of shape {output.shape}) or reduce it first")
        return Tensor(backend_of(output.data).constant(np.ones(output.shape), output.data),
                      _validated=True)
    g = grad if isinstance(grad, Tensor) else Tensor(
        np.asarray(grad) if backend_of(output.data).symbolic else
        np.asarray(grad, dtype=output.dtype), _validated=True)
    if g.shape != output.shape:
        raise ValueError(f"backward: the gradient has shape {g.shape} but the output has "
                         f"shape {output.shape}")
    return g


def run_backward(outputs: Sequence[Tensor], grad_outputs: Sequence[Any],
                 inputs: Sequence[Tensor], create_graph: bool,
                 retain_graph: bool = True, order: Sequence[Tensor] | None = None
                 ) -> list[Tensor | None]:
    """Seed each output with its upstream gradient (None: ones, for a scalar) and run the
    one backward walk (:func:`~tinygrad_attn.engine.autograd.backprop`) to ``inputs``.

    The graph is kept by default here, for tools that look at gradients without
    consuming the graph (``draw(show_grads=True)``); :meth:`Tensor.backward` and
    :func:`grad` free it unless asked to retain it."""
    for out in outputs:
        if not out.requires_grad:
            raise RuntimeError("backward: the output does not require grad (no input "
                               "it depends on has requires_grad=True)")
    seeds = [_seed(o, g) for o, g in zip(outputs, grad_outputs)]
    return autograd.backprop(outputs, seeds, inputs, create_graph, retain_graph, order)


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, create_graph: bool = False,
         allow_unused: bool = False, retain_graph: bool | None = None
         ) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, as new Tensors.

    As ``torch.autograd.grad``: ``.grad`` is never touched.  With ``create_graph=True``
    the returned Tensors carry their own graph and can be differentiated again
    (second derivatives, Hessian-vector products).  The graph is freed afterwards (a
    second call through it raises) unless ``retain_graph`` (by default
    ``create_graph``) keeps it.
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    gos = [None] * len(outs) if grad_outputs is None else (
        [grad_outputs] if isinstance(outputs, Tensor) else list(grad_outputs))
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"grad: input {i} does not require grad")
    res = run_backward(outs, gos, ins, create_graph,
                       create_graph if retain_graph is None else retain_graph)
    for i, g in enumerate(res):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} ({ins[i].name or 'unnamed'}, shape "
                               f"{ins[i].shape}) was not used to compute the output; "
                               f"pass allow_unused=True to get None")
    if not create_graph:
        res = [None if g is None else g.detach() for g in res]
    return tuple(res)


# The package's one import cycle, kept to this line: ops.py and ops_more.py (the op table)
# define the op classes on top of Function and Tensor (they import this module at their top),
# and Tensor's methods call them as ``ops.Add.apply(...)`` at run time, so they are imported
# here, once both classes exist.
from . import ops, ops_more  # noqa: E402
