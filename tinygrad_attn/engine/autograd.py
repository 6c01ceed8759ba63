"""The backward walk and the state it runs in: grad mode, scopes, broadcasting.

:func:`backprop` walks the recorded graph once, in reverse topological order found
without recursion (:func:`toposort`), *accumulating* every contribution into a dict
keyed by node, and sums each gradient back to its node's shape in one place
(:func:`unbroadcast`).  It reads only what every node has (``_ctx``, ``parents``,
``requires_grad``, ``vjp``, ``release``), so this module imports no Tensor.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, Sequence

import numpy as np

# ----------------------------------------------------------------------------- modes
# Context variables, so each thread (it starts with the defaults) and each asyncio task (it
# starts with a copy of its creator's) has its own grad mode and scope, as PyTorch's is per
# thread: one thread's no_grad never stops another thread recording its graph.

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tinygrad_attn_grad_enabled", default=True)
_scopes: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "tinygrad_attn_scopes", default=())


def is_grad_enabled() -> bool:
    """Whether new ops record a graph in this thread (False inside :func:`no_grad`)."""
    return _grad_enabled.get()


class _grad_mode(contextlib.ContextDecorator):
    """Set the grad mode inside a ``with`` block (or a decorated function) and restore it
    after; a class rather than a generator, as every backward walk enters one."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tokens: list[contextvars.Token[bool]] = []  # one per entry: reentrant

    def __enter__(self) -> None:
        self.tokens.append(_grad_enabled.set(self.enabled))

    def __exit__(self, *exc: Any) -> None:
        _grad_enabled.reset(self.tokens.pop())


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Ops computed inside record no graph, as ``torch.no_grad`` (in this thread only)."""
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Ops computed inside record a graph (used by ``create_graph=True``)."""
    return _grad_mode(True)


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Group the ops made inside into a named scope (a cluster in :func:`draw`)."""
    token = _scopes.set(_scopes.get() + (str(name),))
    try:
        yield
    finally:
        _scopes.reset(token)


def current_scope() -> tuple[str, ...]:
    return _scopes.get()


# ----------------------------------------------------------------------------- shapes

def broadcast_shape(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The NumPy broadcast of shapes ``a`` and ``b``, or a ValueError naming ``op``."""
    if a == b or not b:  # the common cases first: equal shapes, a scalar
        return a
    if not a:
        return b
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together") from None


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` back to ``shape``: the one place broadcast gradients are reduced.

    Leading axes that broadcasting added are summed away; axes where ``shape`` has 1
    are summed with ``keepdims``.  ``grad`` is a Tensor (the backward walk) or an array
    (the fused attention kernels): both have ``.sum(axis, keepdims)`` and ``.reshape``.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape) if grad.shape != shape else grad


def keep_reduced(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """The gradient ``g`` of a reduction over ``axis`` of an input of ``shape``, reshaped
    with the reduced axes kept (size 1) so it broadcasts back against the input (a 0-d
    ``g`` broadcasts as it is)."""
    if keepdims or g.ndim == 0 or axis is None and g.ndim == len(shape):
        return g
    axes = range(len(shape)) if axis is None else axis
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


# ----------------------------------------------------------------------------- the walk

def toposort(roots: Sequence[Any], constants: bool = False) -> list[Any]:
    """Nodes reachable from ``roots`` through recorded ops, parents before children
    (with ``constants``, also the parents that need no gradient: what a picture shows).

    Iterative depth-first post-order, so a chain 100,000 ops deep needs no recursion.
    """
    order: list[Any] = []
    seen: set[int] = set()
    for root in roots:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, _parents(root))]       # each node with the parents it has left
        while stack:
            node, parents = stack[-1]
            for p in parents:
                if p is not None and id(p) not in seen and (constants or p.requires_grad):
                    seen.add(id(p))
                    stack.append((p, _parents(p)))
                    break
            else:                               # every parent placed: the node follows
                stack.pop()
                order.append(node)
    return order


def _parents(node: Any) -> Iterator[Any]:
    return iter(node._ctx.parents if node._ctx is not None else ())


def backprop(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Any],
             create_graph: bool, retain_graph: bool = True,
             order: Sequence[Any] | None = None) -> list[Any]:
    """The one backward pass: accumulate VJPs from ``outputs`` (seeded with the upstream
    gradients ``seeds``, Tensors of the outputs' shapes) down to ``inputs``.

    Nodes are visited once each in reverse topological order; every contribution to a
    node is *added* into a dict keyed by the node, then summed back to its shape
    (:func:`unbroadcast`).  With ``create_graph`` the VJPs record a graph of their own.
    Without ``retain_graph`` each node is released once its VJP ran, so a second walk
    through it raises instead of silently adding the same gradients again.
    ``order`` is ``toposort(outputs)`` when the caller has it already.
    Returns one gradient (a Tensor, or None if unreached) per input.
    """
    wanted = {id(t) for t in inputs}
    acc: dict[int, Any] = {}
    for o, g in zip(outputs, seeds):
        acc[id(o)] = acc[id(o)] + g if id(o) in acc else g
    result: dict[int, Any] = {}
    mode = enable_grad() if create_graph else no_grad()
    with mode:
        for node in reversed(toposort(outputs) if order is None else order):
            g = acc.pop(id(node), None)
            if g is None:
                continue
            if id(node) in wanted:
                result[id(node)] = g
            if node._ctx is None:
                continue
            ctx = node._ctx
            grads = ctx.vjp(g)
            if not retain_graph:
                ctx.release()
            for parent, pg in zip(ctx.parents, grads):
                if parent is None or pg is None or not parent.requires_grad:
                    continue
                pg = unbroadcast(pg, parent.shape)
                if pg.dtype != parent.dtype and object not in (pg.dtype, parent.dtype):
                    pg = pg.astype(parent.dtype)  # a gradient has its Tensor's dtype
                acc[id(parent)] = acc[id(parent)] + pg if id(parent) in acc else pg
    return [result.get(id(t)) for t in inputs]
