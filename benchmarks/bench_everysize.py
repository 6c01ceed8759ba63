"""Time each for-every-size proof (tinygrad_attn.verify.everysize); print a Markdown table.

    python benchmarks/bench_everysize.py            # claims only
    python benchmarks/bench_everysize.py --negative # also the negative controls
    python benchmarks/bench_everysize.py --engine   # the engine's own code (ownbackward)

Each proof runs with cold caches (``indexcalc.clear_caches()``) so its time stands alone;
the time includes building the expressions and ``sympy.diff``.  With ``--engine`` each
case's row times the engine's forward and backward on index arrays, and each proof row
the ``sympy.diff`` of L and the normal forms (verify/ownbackward.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinygrad_attn.verify import everysize as es  # noqa: E402
from tinygrad_attn.verify import ownbackward as ob  # noqa: E402
from tinygrad_attn.verify.indexcalc import clear_caches, prove_equal  # noqa: E402
from tinygrad_attn.verify.proof import Proof  # noqa: E402


def time_claim(claim: es.Claim) -> Proof:
    """Build, differentiate and prove one claim from cold caches; seconds cover all three."""
    clear_caches()
    t0 = time.perf_counter()
    lhs, rhs, ranges = claim.build()
    proof = prove_equal(lhs, rhs, ranges, claim=claim.key)
    return dataclasses.replace(proof, seconds=time.perf_counter() - t0)


def time_case(case: ob.Case) -> ob.Run:
    """Run the engine on index arrays and prove every gradient of ``case``, cold caches."""
    clear_caches()
    return ob.prove_case(case)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--negative", action="store_true", help="time the negative controls")
    parser.add_argument("--engine", action="store_true",
                        help="time the engine's own code at symbolic sizes instead")
    args = parser.parse_args()
    if args.engine:
        print(ob.timing_table([time_case(case) for case in ob.CASES]))
        return
    proofs = [time_claim(cl) for cl in es.CLAIMS]
    print(es.timing_table(proofs))
    if args.negative:
        print()
        print(es.timing_table([time_claim(cl) for cl in es.NEGATIVE_CONTROLS]))


if __name__ == "__main__":
    main()
