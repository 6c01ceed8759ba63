"""The attention mechanisms (``ta.attention.additive``, ...), masks and multi-head, and the
fused scaled dot-product op with its kernels.

``mechanisms`` (every mechanism, re-exported here) -> ``fused`` (the fused op and its
weights node, registered into the engine's op table; ``choose_impl``) -> ``kernels`` (the
plain kernels) and ``flash`` (the blocked kernels), which cut their tiles with ``tiling``
and run them on the threads and memory of ``workers``.
"""
from __future__ import annotations

from .mechanisms import *  # noqa: F401,F403  the public mechanisms
from .mechanisms import __all__  # noqa: F401
