"""Softmax and its Jacobian.

    p = softmax(s),  p_i = exp(s_i) / sum_k exp(s_k)
    dp_i/ds_j = p_i delta_ij - p_i p_j,  i.e.  J = diag(p) - p p^T
    VJP:  s_bar = p * (p_bar - <p_bar, p>)       (row-wise: P * (P_bar - rowsum(P_bar * P)))
Proven: J entrywise against sympy.diff (n = 2, 3); the VJP and the engine's Softmax
backward against sympy.diff of L = <p_bar, p> (n = 3, one row and two rows).

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes softmax.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_softmax``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("softmax", out_dir)``.

Run from the repository root:  python derivations/softmax.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("softmax"))
