"""Dot-product and general attention (Luong et al. 2015, eq. 8).

    dot:     S = Q K^T       Q_bar = S_bar K,      K_bar = S_bar^T Q
    general: S = Q W K^T     Q_bar = S_bar K W^T,  K_bar = S_bar^T Q W,  W_bar = Q^T S_bar K

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes dot_product_general.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_dot_general``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("dot_product_general", out_dir)``.

Run from the repository root:  python derivations/dot_product_general.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("dot_product_general"))
