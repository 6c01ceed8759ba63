"""Scaled dot-product attention (Vaswani et al. 2017, eq. 1).

    S = Q K^T / sqrt(d),  P = softmax_rows(S),  O = P V
    V_bar = P^T O_bar,  P_bar = O_bar V^T,  S_bar = P * (P_bar - rowsum(P_bar * P)),
    Q_bar = S_bar K / sqrt(d),  K_bar = S_bar^T Q / sqrt(d)
    rowsum(P_bar * P) = rowsum(O_bar * O)      (the identity of the fused backward)
Proven at (m, n, d, e) = (2, 3, 2, 1) and (3, 3, 3, 3): closed forms, the composed engine
backward and the fused op's hand-derived backward, all against sympy.diff.

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes scaled_dot_product.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_sdpa``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("scaled_dot_product", out_dir)``.

Run from the repository root:  python derivations/scaled_dot_product.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("scaled_dot_product"))
