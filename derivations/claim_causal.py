"""Causal masking: the future cannot reach the past.

    P_tj = 0 exactly for j > t,  dO_t / dX_j = 0 exactly for j > t
    (masking after the softmax leaks through the normaliser: shown with sympy.diff)
Proven: masked weights and the dependence of O_t on later inputs are exactly 0, in
sympy.diff and in the engine's backward.

This script proves every claim of the derivation at explicit sizes and writes claim_causal.md
next to itself. The mathematics lives in tinygrad_attn/claims.py (``_causal_claim_doc``), so the
installed package can rebuild the document too:
``tinygrad_attn.derive.run("claim_causal", out_dir)``.

Run from the repository root:  python derivations/claim_causal.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("claim_causal"))
