"""Time each for-every-size proof (tinygrad_attn.verify.everysize); print a Markdown table.

    python benchmarks/bench_everysize.py            # claims only
    python benchmarks/bench_everysize.py --negative # also the negative controls

Each proof runs with cold caches (``indexcalc.clear_caches()``) so its time stands alone;
the time includes building the expressions and ``sympy.diff``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinygrad_attn.verify import everysize as es  # noqa: E402
from tinygrad_attn.verify.indexcalc import clear_caches, prove_equal  # noqa: E402
from tinygrad_attn.verify.proof import Proof  # noqa: E402


def time_claim(claim: es.Claim) -> Proof:
    """Build, differentiate and prove one claim from cold caches; seconds cover all three."""
    clear_caches()
    t0 = time.perf_counter()
    lhs, rhs, ranges = claim.build()
    proof = prove_equal(lhs, rhs, ranges, claim=claim.key)
    return dataclasses.replace(proof, seconds=time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--negative", action="store_true", help="time the negative controls")
    args = parser.parse_args()
    proofs = [time_claim(cl) for cl in es.CLAIMS]
    print(es.timing_table(proofs))
    if args.negative:
        print()
        print(es.timing_table([time_claim(cl) for cl in es.NEGATIVE_CONTROLS]))


if __name__ == "__main__":
    main()
