"""Multi-head attention (Vaswani et al. 2017, sec. 3.2.2).

    Q = X_q W_q, K = X_kv W_k, V = X_kv W_v;  head h = SDPA on column block h;
    Y = [O_1 ... O_H] W_o
    W_o_bar = C^T Y_bar;  per head the SDPA backward;  W_q_bar = X_q^T [Q_h_bar]_h, ...
    X_kv_bar = [K_h_bar]_h W_k^T + [V_h_bar]_h W_v^T
Proven for the head-by-head reference (fused=False) and the batched fused path.

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes multi_head.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_multi_head``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("multi_head", out_dir)``.

Run from the repository root:  python derivations/multi_head.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("multi_head"))
