"""The attention mechanisms (``ta.attention.additive``, ...), masks and multi-head, and the
fused scaled dot-product op with its kernels (plain in ``kernels``, blocked in ``flash``).
"""
from __future__ import annotations

from .mechanisms import *  # noqa: F401,F403  the public mechanisms
from .mechanisms import __all__  # noqa: F401
