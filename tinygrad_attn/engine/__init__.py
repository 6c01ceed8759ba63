"""The engine: array namespaces, Tensor and Function, the op table, the backward walk.

Nothing here imports a layer above it (``docs/architecture.md``).
"""
from __future__ import annotations

from .autograd import (backprop, broadcast_shape, enable_grad, is_grad_enabled, no_grad, scope,
                       toposort, unbroadcast)
from .tensor import Function, Tensor, concat, grad, run_backward, stack, where

__all__ = ["Function", "Tensor", "backprop", "broadcast_shape", "concat", "enable_grad", "grad",
           "is_grad_enabled", "no_grad", "run_backward", "scope", "stack", "toposort",
           "unbroadcast", "where"]
