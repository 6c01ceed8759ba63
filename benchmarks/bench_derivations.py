"""CPU seconds of each derivation document, each built cold in a fresh Python process
(``tinygrad_attn.study.derivations.run(name)``, imports excluded), most of them the
index-notation prover's (``verify/indexcalc.py``) and SymPy's.

CPU time (``time.process_time``), not wall time, so that a busy machine changes the
figures less; still, compare runs taken side by side.

    python benchmarks/bench_derivations.py [NAME ...]
"""
from __future__ import annotations

import subprocess
import sys

from tinygrad_attn.study.derivations import NAMES

_ONE = ("import sys, time\n"
        "from tinygrad_attn.study.derivations import run\n"
        "t0 = time.process_time()\n"
        "ok = run(sys.argv[1]).ok\n"
        "print(time.process_time() - t0, ok)\n")


def cpu_seconds(name: str) -> tuple[float, bool]:
    """CPU seconds of building derivation ``name`` in a fresh process, and whether every
    claim in it was proven."""
    out = subprocess.run([sys.executable, "-c", _ONE, name], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), out[1] == "True"


def main() -> None:
    names = sys.argv[1:] or list(NAMES)
    print(f"{'derivation':<22} {'CPU s':>6}  proven")
    total = 0.0
    for name in names:
        sec, ok = cpu_seconds(name)
        total += sec
        print(f"{name:<22} {sec:>6.1f}  {'yes' if ok else 'NO'}", flush=True)
    print(f"{'total':<22} {total:>6.1f}")


if __name__ == "__main__":
    main()
