"""Self-attention costs n^2.

    multiply-adds = 3 n d d_k + 2 n^2 d_k,  weights: n^2 pairs,
    floats held by the graph: 3 n^2 + (...) n   (counted on the recorded graph)
Proven: the counts at n = 1..10 equal the polynomials (measured time and memory are in
docs/complexity.md and docs/study.md).

This script proves every claim of the derivation at explicit sizes and writes claim_cost.md
next to itself. The mathematics lives in tinygrad_attn/claims.py (``_cost_doc``), so the
installed package can rebuild the document too:
``tinygrad_attn.derive.run("claim_cost", out_dir)``.

Run from the repository root:  python derivations/claim_cost.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("claim_cost"))
