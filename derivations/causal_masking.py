"""Causal masking.

    S_ij = -inf for j > i, so P_ij = 0 exactly and S_bar_ij = P_ij (P_bar_ij - D_i) = 0:
    a masked score has exactly zero gradient; a fully masked row gives a zero context
    and zero gradients (never 0/0).

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes causal_masking.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_causal``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("causal_masking", out_dir)``.

Run from the repository root:  python derivations/causal_masking.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("causal_masking"))
