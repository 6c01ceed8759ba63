"""Additive attention (Bahdanau et al. 2014, eq. 6).

    U_ijr = (Q W_q)_ir + (K W_k)_jr,  H = tanh(U),  S = H v,  P = softmax_rows(S),  O = P V
    U_bar_ijr = S_bar_ij v_r (1 - H_ijr^2),  A = sum_j U_bar,  B = sum_i U_bar
    Q_bar = A W_q^T,  W_q_bar = Q^T A,  K_bar = B W_k^T,  W_k_bar = K^T B,
    v_bar = sum_ij S_bar_ij H_ij:,  V_bar = P^T O_bar

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes additive.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_additive``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("additive", out_dir)``.

Run from the repository root:  python derivations/additive.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("additive"))
