"""The one limiter of BLAS threads, shared by the blocked attention kernels and training.

NumPy's BLAS (OpenBLAS, for instance) starts its own threads inside a matrix product.
Two users want it held: the blocked attention kernels
(:mod:`tinygrad_attn.attention.workers`), which run blocks on threads of their own (two
pools of threads on the same cores slow each other down), and the training loop of the
toy models, whose products are too small to gain from threads.  Both go through
:func:`blas_threads`; it needs ``threadpoolctl`` and is a no-op without it.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

_controller: Any = None


def blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS, or False when it is not installed."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Hold the BLAS library to ``n`` threads inside the block; ``n=None``, or no
    ``threadpoolctl``, changes nothing."""
    controller = blas_controller() if n is not None else False
    if not controller:
        yield
        return
    with controller.limit(limits=n, user_api="blas"):
        yield
