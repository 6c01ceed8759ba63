"""Cross-check a PyTorch or JAX implementation against a reference written with the
engine: outputs, VJPs and Hessian-vector products, in float64 and float32, on random
inputs and on the edge cases that break attention code (``tinygrad_attn.interop``).

>>> from tinygrad_attn import interop
>>> report = interop.compare(reference, my_torch_sdpa,
...                          {"q": (2, 4, 8), "k": (2, 5, 8), "v": (2, 5, 8), "mask": (4, 5)},
...                          framework="torch")
>>> report.ok, print(report)

``compare.py`` runs the comparison, ``cases.py`` builds the inputs (random, and the edge
cases), ``frameworks.py`` differentiates a function in the engine, PyTorch and JAX,
``report.py`` is the result.  PyTorch and JAX load only when a comparison needs them
(the extras ``tinygrad_attn[torch]``, ``tinygrad_attn[jax]``).  The pytest helper is
``tinygrad_attn.testing.assert_matches_reference``; the command line ``tinygrad-attn
compare``.
"""
from __future__ import annotations

from .cases import BUILTIN, Case, Roles
from .compare import compare, tolerance
from .report import Cell, ComparisonReport, Worst

__all__ = ["BUILTIN", "Case", "Cell", "ComparisonReport", "Roles", "Worst", "compare",
           "tolerance"]
