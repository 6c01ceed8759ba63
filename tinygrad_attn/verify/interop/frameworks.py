r"""One function, three frameworks: its output, VJP and Hessian-vector product.

Each runner takes the function, its inputs (NumPy arrays by parameter name; the mask
boolean), the names of the differentiable inputs, the dtype, a cotangent :math:`g` of
the output's shape and one direction :math:`u_x` per differentiable input, and returns
the arrays of :class:`Derivatives`:

* the output :math:`f(x)`;
* the VJP :math:`\bar x = (\partial f / \partial x)^\top g` for each input;
* the HVP :math:`H u`, the derivative of :math:`\bar x` along :math:`u`: the Hessian of
  :math:`L(x) = \langle g, f(x)\rangle` times :math:`u`.

The engine differentiates twice with ``ta.grad(..., create_graph=True)``; PyTorch with
``torch.autograd.grad(..., create_graph=True)`` twice; JAX with ``jax.jvp`` of
``jax.vjp``.  PyTorch and JAX are imported here, on first use only (the extras
``tinygrad_attn[torch]`` and ``tinygrad_attn[jax]``); JAX runs with 64-bit floats
enabled (``jax_enable_x64``), so that its float64 is float64.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ...engine import Tensor, grad
from ...engine.checks import raised_in

__all__ = ["FRAMEWORKS", "Derivatives", "run_engine", "run_jax", "run_torch", "user_line"]


@dataclass
class Derivatives:
    """The output, the VJP and the HVP of each differentiable input (float64 copies)."""

    output: np.ndarray
    vjp: dict[str, np.ndarray]
    hvp: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)     # "VJP"/"HVP" -> what raised


def call(fn: Callable[..., Any], names: Sequence[str], values: Mapping[str, Any]) -> Any:
    """``fn`` applied to the inputs in parameter order."""
    return fn(*[values[n] for n in names])


def as_array(x: Any, what: str) -> np.ndarray:
    """A float64 NumPy copy of a framework's array (a clear TypeError otherwise)."""
    if isinstance(x, Tensor):
        return np.array(x.data, dtype=np.float64)
    if hasattr(x, "detach"):                          # torch
        return x.detach().cpu().numpy().astype(np.float64)
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} returned {type(x).__name__}, not an array: return one "
                        f"array (for a mechanism returning (context, weights), the "
                        f"context)") from None


def run_engine(fn: Callable[..., Any], names: Sequence[str], inputs: Mapping[str, np.ndarray],
               diff: Sequence[str], g: np.ndarray, us: Mapping[str, np.ndarray],
               dtype: str = "float64") -> tuple[Derivatives, Tensor, list[Tensor]]:
    """The reference, in ``dtype``: also its output Tensor and input Tensors (to name
    elements by the graph: :mod:`..locate`)."""
    xs = {n: Tensor(np.asarray(inputs[n], dtype=dtype), requires_grad=True, name=n)
          for n in diff}
    g = np.asarray(g, dtype=dtype)
    us = {n: np.asarray(u, dtype=dtype) for n, u in us.items()}
    out = call(fn, names, {**inputs, **xs})
    if not isinstance(out, Tensor):
        raise TypeError(f"the reference {fn.__name__} returned {type(out).__name__}, not a "
                        f"Tensor: return one Tensor (for a mechanism returning (context, "
                        f"weights), the context)")
    leaves = [xs[n] for n in diff]
    gs = grad(out, leaves, grad_outputs=g, create_graph=True, allow_unused=True)
    vjp = {n: zeros_or(gx, inputs[n]) for n, gx in zip(diff, gs)}
    used = [gx for gx in gs if gx is not None and gx.requires_grad]
    hvp = {n: np.zeros(np.shape(inputs[n])) for n in diff}
    if used:
        s = sum((gx * us[n]).sum() for n, gx in zip(diff, gs) if gx is not None
                and gx.requires_grad)
        for n, h in zip(diff, grad(s, leaves, allow_unused=True)):
            hvp[n] = zeros_or(h, inputs[n])
    return Derivatives(as_array(out, "the reference"), vjp, hvp), out, leaves


def zeros_or(x: Any, like: np.ndarray) -> np.ndarray:
    """``x`` as float64, or zeros of ``like``'s shape for an unused input (None)."""
    return np.zeros(np.shape(like)) if x is None else as_array(x, "the gradient")


def run_torch(fn: Callable[..., Any], names: Sequence[str], inputs: Mapping[str, np.ndarray],
              diff: Sequence[str], dtype: str, g: np.ndarray,
              us: Mapping[str, np.ndarray]) -> Derivatives:
    """``fn`` in PyTorch: double backward through ``torch.autograd.grad``.  An exception
    in the backward or the double backward is kept in ``errors`` (the stages before it
    are still compared)."""
    torch = import_framework("torch")
    tdt = getattr(torch, dtype)
    values = {n: torch.tensor(a, dtype=torch.bool if a.dtype == bool else tdt)
              for n, a in inputs.items()}
    for n in diff:
        values[n].requires_grad_(True)
    out = call(fn, names, values)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the implementation {fn.__name__} returned {type(out).__name__}, "
                        f"not a torch.Tensor: return one tensor")
    leaves = [values[n] for n in diff]
    zeros = {n: np.zeros(inputs[n].shape) for n in diff}
    result = Derivatives(as_array(out, "the implementation"), dict(zeros), dict(zeros))
    if not out.requires_grad:
        result.notes.append("the implementation's output does not depend on any input "
                            "through autograd (detached?): its VJPs are taken as zero")
        return result
    with stage(result, "VJP", fn):
        gs = torch.autograd.grad(out, leaves, grad_outputs=torch.tensor(g, dtype=out.dtype),
                                 create_graph=True, allow_unused=True)
        result.vjp = {n: zeros_or(gx, inputs[n]) for n, gx in zip(diff, gs)}
        terms = [(gx * torch.tensor(us[n], dtype=gx.dtype)).sum()
                 for n, gx in zip(diff, gs) if gx is not None and gx.requires_grad]
        flat = [n for n, gx in zip(diff, gs) if gx is not None and not gx.requires_grad]
        if flat:
            result.notes.append(f"the implementation's VJP of {', '.join(flat)} does not "
                                f"depend on the inputs through autograd (made from tensors "
                                f"a custom autograd.Function saved in forward, or detached): "
                                f"the double backward takes it as a constant")
    if "VJP" in result.errors or not terms:
        return result
    with stage(result, "HVP", fn):
        hs = torch.autograd.grad(sum(terms), leaves, allow_unused=True)
        result.hvp = {n: zeros_or(h, inputs[n]) for n, h in zip(diff, hs)}
    return result


def run_jax(fn: Callable[..., Any], names: Sequence[str], inputs: Mapping[str, np.ndarray],
            diff: Sequence[str], dtype: str, g: np.ndarray,
            us: Mapping[str, np.ndarray]) -> Derivatives:
    """``fn`` in JAX: ``jax.vjp``, and ``jax.jvp`` of the VJP for the HVP, run eagerly
    (not under ``jax.jit``: a function that branches in Python on its values runs as it
    does under ``jax.grad``); each operation compiles once per shape and dtype."""
    jax = import_framework("jax")
    jnp = jax.numpy
    fixed = {n: jnp.asarray(a) if a.dtype == bool else jnp.asarray(a, dtype=dtype)
             for n, a in inputs.items() if n not in diff}

    def f(*xs: Any) -> Any:
        return call(fn, names, {**fixed, **dict(zip(diff, xs))})

    primals = tuple(jnp.asarray(inputs[n], dtype=dtype) for n in diff)
    out, pullback = jax.vjp(f, *primals)
    zeros = {n: np.zeros(inputs[n].shape) for n in diff}
    result = Derivatives(as_array(out, "the implementation"), dict(zeros), dict(zeros))
    cot = jnp.asarray(g, dtype=out.dtype)
    with stage(result, "VJP", fn):
        result.vjp = {n: as_array(a, "the VJP") for n, a in zip(diff, pullback(cot))}
    if "VJP" in result.errors:
        return result
    tangents = tuple(jnp.asarray(us[n], dtype=dtype) for n in diff)
    with stage(result, "HVP", fn):
        _, hvp = jax.jvp(lambda *xs: jax.vjp(f, *xs)[1](cot), primals, tangents)
        result.hvp = {n: as_array(a, "the HVP") for n, a in zip(diff, hvp)}
    return result


@contextmanager
def stage(result: Derivatives, kind: str, fn: Callable[..., Any]) -> Iterator[None]:
    """Keep an exception raised while computing ``kind`` in ``result.errors``."""
    try:
        yield
    except Exception as exc:  # the user's backward
        result.errors[kind] = f"{type(exc).__name__}: {exc}{user_line(exc, fn)}"


def user_line(exc: BaseException, fn: Callable[..., Any]) -> str:
    """`` (file.py:12)``: the last line of ``fn``'s file in the exception's traceback."""
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    at = raised_in(exc, source)
    return f" ({at.filename}:{at.lineno})" if at else ""


#: The runners by framework name.
FRAMEWORKS: dict[str, Callable[..., Derivatives]] = {"torch": run_torch, "jax": run_jax}


def import_framework(name: str) -> Any:
    """Import ``torch`` or ``jax`` (with 64-bit floats on), or say how to install it."""
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError:
        raise ImportError(f"comparing with {name} needs {name} installed: pip install "
                          f"'tinygrad_attn[{name}]'") from None
    if name == "jax":
        module.config.update("jax_enable_x64", True)
    return module
