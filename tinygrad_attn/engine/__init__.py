"""The engine: array namespaces, Tensor and Function, the op table, the backward walk.

Nothing here imports a layer above it (``docs/architecture.md``).
"""
from __future__ import annotations

from .tensor import (Function, Tensor, concat, enable_grad, grad, is_grad_enabled, no_grad,
                     scope, stack, unbroadcast, where)

__all__ = ["Function", "Tensor", "concat", "enable_grad", "grad", "is_grad_enabled",
           "no_grad", "scope", "stack", "unbroadcast", "where"]
