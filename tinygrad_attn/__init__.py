"""tinygrad_attn: attention you can verify.

A tiny tensor autograd engine on NumPy that runs every classic attention mechanism
forward and backward, SymPy proofs of its gradients, and Graphviz pictures of its graphs.
"""
from __future__ import annotations

from .tensor import (Function, Tensor, concat, enable_grad, grad, is_grad_enabled,
                     no_grad, scope, stack, unbroadcast, where)
from .check import GradcheckError, GradcheckReport, gradcheck
from .graph import draw, render
from . import attention, claims, nn, symbolic  # noqa: E402  ta.attention.additive, ...

__version__ = "0.1.0"

__all__ = [
    "Function", "Tensor", "concat", "enable_grad", "grad", "is_grad_enabled", "no_grad",
    "scope", "stack", "unbroadcast", "where", "gradcheck", "GradcheckReport",
    "GradcheckError", "draw", "render", "attention", "claims", "nn", "symbolic", "__version__",
]
