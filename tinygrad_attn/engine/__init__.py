"""The engine: array namespaces, Tensor and Function, the op table, the backward walk.

Nothing here imports a layer above it (``docs/architecture.md``); the layers above import
the engine through this package's names.
"""
from __future__ import annotations

from .autograd import (backprop, broadcast_shape, enable_grad, is_grad_enabled, no_grad, scope,
                       toposort, unbroadcast)
from .backend import asarray, backend_of, numeric
from .blas import blas_controller, blas_threads
from .tensor import Function, Tensor, concat, grad, run_backward, stack, where  # before ops:
from .ops import OPS, register  # noqa: I001  tensor.py imports ops once Tensor exists
from .ops_more import clamp, cos, einsum, elu, logsumexp, maximum, minimum, sin, softplus

__all__ = ["Function", "OPS", "Tensor", "asarray", "backend_of", "backprop", "blas_controller",
           "blas_threads", "broadcast_shape", "clamp", "concat", "cos", "einsum", "elu",
           "enable_grad", "grad", "is_grad_enabled", "logsumexp", "maximum", "minimum",
           "no_grad", "numeric", "register", "run_backward", "scope", "sin", "softplus",
           "stack", "toposort", "unbroadcast", "where"]
