"""How big and how long a symbolic run will be, known before it starts.

:func:`estimate` runs the function once on random float64 inputs of the requested shapes
(milliseconds), counts the scalar operations its recorded graph performs, and converts
them into the expected seconds of ``derive`` + ``prove_engine`` with the cost per
operation that ``benchmarks/bench_symbolic.py --estimate`` measures (building the SymPy
expressions of the forward and of the engine's backward dominates; deciding the identity
is a few times faster).  It is an order of magnitude, for a message or a progress bar,
not a promise.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TextIO

import numpy as np

from ..engine import Tensor, enable_grad, toposort
from .progress import Progress

__all__ = ["ANNOUNCE_SECONDS", "MAX_SYMBOLS", "SECONDS_PER_OPERATION", "Estimate",
           "announcement", "count_operations", "estimate", "start_progress"]

#: Most input symbols a symbolic run accepts unless ``max_symbols`` says otherwise.  The
#: cost grows about linearly with the size of the graph (scaled dot-product attention
#: with m = n = d = 16, 768 symbols, is derived and proven in seconds:
#: ``benchmarks/bench_symbolic.py``), so the limit guards against a shape typed by
#: mistake; the refusal says how long the run would take (:func:`estimate`).
MAX_SYMBOLS = 4096

#: Seconds of derive + prove_engine per scalar operation of the forward pass
#: (``benchmarks/bench_symbolic.py --estimate``: 0.3 to 0.5 ms for scaled dot-product and
#: additive attention at n = 4 to 16 on a shared 2-core machine).
SECONDS_PER_OPERATION = 4.0e-4


#: A symbolic run estimated to take at least this many seconds prints its estimate and
#: shows a progress bar when stderr is a terminal (``progress=None``).  Shorter runs end
#: before anyone wonders whether they hang, and a bar drawn for a fraction of a second
#: is noise; the estimate is an order of magnitude, so the threshold is a round number
#: well above the estimate's own cost (one numeric run of the function: milliseconds).
ANNOUNCE_SECONDS = 2.0


@dataclass(frozen=True)
class Estimate:
    """``symbols`` (input symbols), ``operations`` (scalar operations of one forward
    pass), ``seconds`` (expected time of ``derive`` + ``prove_engine``)."""

    symbols: int
    operations: int
    seconds: float

    def __str__(self) -> str:
        return (f"{self.symbols} input symbols, about {self.operations:,} scalar operations: "
                f"deriving and proving takes about {_duration(self.seconds)}")


def _duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def count_operations(outputs: tuple[Tensor, ...]) -> int:
    """Scalar operations of the graph recorded for ``outputs``: a matrix product counts
    its multiply-adds, the fused attention ops theirs, any other op the elements it reads
    and writes."""
    total = 0
    for node in toposort(list(outputs), constants=True):
        ctx = node._ctx
        if ctx is None:
            continue
        parents = [p for p in ctx.parents if p is not None]
        name = ctx.name
        if name == "matmul" and parents:
            total += node.size * max(1, parents[0].shape[-1])
        elif name in ("sdpa", "sdpa_weights") and len(parents) >= 2:
            q, k = parents[0], parents[1]
            width = q.shape[-1] + (parents[2].shape[-1] if len(parents) > 2 else 0)
            total += q.size // q.shape[-1] * k.shape[-2] * (width + 4)
        else:
            total += node.size + sum(p.size for p in parents)
    return total


def estimate(fn: Callable[..., Any], shapes: Mapping[str, Any]) -> Estimate:
    """The size of ``derive(fn, shapes)`` and the expected seconds of deriving and proving
    it, from one numeric run of ``fn`` on random inputs of those shapes (arrays in
    ``shapes`` are used as given, as ``derive`` uses them)."""
    rng = np.random.default_rng(0)
    args, symbols = [], 0
    for value in shapes.values():
        if isinstance(value, (np.ndarray, Tensor)):
            data = value.data if isinstance(value, Tensor) else value
            args.append(Tensor(np.asarray(data, dtype=np.float64)))
            continue
        shape = tuple(int(n) for n in value)
        symbols += int(np.prod(shape))
        # positive values, so log and sqrt run; the count does not depend on them
        args.append(Tensor(rng.uniform(0.5, 2.0, shape), requires_grad=True))
    with enable_grad():
        out = fn(*args)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    ops = count_operations(outs)
    symbols += sum(int(o.size) for o in outs if isinstance(o, Tensor))  # upstream gradient
    return Estimate(symbols, ops, ops * SECONDS_PER_OPERATION)


def announcement(est: Estimate) -> str:
    """The line printed before a long symbolic run: symbols, expression nodes (one per
    scalar operation of the forward), expected time."""
    return (f"symbolic check: {est.symbols:,} symbols, ~{est.operations:,} expression nodes, "
            f"estimated {_duration(est.seconds)}")


def start_progress(fn: Callable[..., Any], shapes: Mapping[str, Any], total: int,
                   progress: bool | None = None, stream: TextIO | None = None
                   ) -> Progress | None:
    """The progress bar of a symbolic run of ``fn`` at ``shapes`` over ``total`` phases,
    after printing :func:`announcement` to ``stream`` (default: stderr); None when no
    progress is shown.

    ``progress=False``: never.  ``True``: always (one plain line per update when the
    stream is not a terminal).  ``None`` (automatic): when the stream is a terminal, no
    other bar is being drawn, and the run is estimated at :data:`ANNOUNCE_SECONDS` or
    more.  Nothing is estimated when nothing would be shown.
    """
    if progress is False:
        return None
    stream = stream if stream is not None else sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if progress is None and (not tty or Progress.drawing):
        return None
    try:
        est: Estimate | None = estimate(fn, shapes)
    except Exception:  # noqa: BLE001 - fn may not run numerically; the run itself decides
        est = None
    if progress is None and (est is None or est.seconds < ANNOUNCE_SECONDS):
        return None
    if est is not None:
        stream.write(announcement(est) + "\n")
        stream.flush()
    return Progress(total, label="symbolic", stream=stream, enabled=True)
