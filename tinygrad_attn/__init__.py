"""tinygrad_attn: attention you can verify.

A tiny tensor autograd engine on NumPy that runs every classic attention mechanism
forward and backward, SymPy proofs of its gradients, and Graphviz pictures of its graphs.

The package is laid out by role, one folder a layer (``docs/architecture.md``):
``engine`` (Tensor, the op table, the backward walk), ``attention`` (the mechanisms and
their fused kernels), ``nn`` (layers), ``pictures`` (graphs), ``verify`` (gradient
checks and proofs), ``study`` (derivations, claims, the toy task, the demo) and ``cli``.

``import tinygrad_attn`` loads NumPy and nothing heavy: SymPy, graphviz and matplotlib
load when a feature first needs them (``ta.symbolic``, ``ta.draw``, ``ta.claims``).
"""
from __future__ import annotations

import importlib
from typing import Any

from .engine import (Function, Tensor, clamp, concat, cos, einsum, elu, enable_grad, grad,
                     is_grad_enabled, logsumexp, maximum, minimum, no_grad, scope, sin,
                     softplus, stack, unbroadcast, where)
from .verify.gradcheck import GradcheckError, GradcheckReport, gradcheck
from . import attention, nn

__version__ = "0.1.0"

#: Public names whose modules load on first use: (module, attribute or None for the module).
_LAZY = {
    "symbolic": ("tinygrad_attn.verify.symbolic", None),
    "claims": ("tinygrad_attn.study.claims", None),
    "draw": ("tinygrad_attn.pictures.graph", "draw"),
    "render": ("tinygrad_attn.pictures.graph", "render"),
    "interop": ("tinygrad_attn.verify.interop", None),
}


def __getattr__(name: str) -> Any:
    """Load ``ta.symbolic``, ``ta.claims``, ``ta.draw``, ``ta.render`` and ``ta.interop``
    on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'tinygrad_attn' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Function", "Tensor", "concat", "enable_grad", "grad", "is_grad_enabled", "no_grad",
    "scope", "stack", "unbroadcast", "where", "maximum", "minimum", "clamp", "elu",
    "softplus", "logsumexp", "einsum", "sin", "cos", "gradcheck", "GradcheckReport",
    "GradcheckError", "draw", "render", "attention", "claims", "interop", "nn", "symbolic",
    "__version__",
]
