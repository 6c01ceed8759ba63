"""Content-based (cosine) attention (Graves et al. 2014, NTM eq. 5).

    C = Q_hat K_hat^T (rows normalised),  S = beta C,  P = softmax_rows(S),  O = P V
    Q_hat_bar = beta S_bar K_hat,  Q_bar = (Q_hat_bar - rowsum(Q_hat_bar * Q_hat) Q_hat) / |Q|
    (and the same for K),  beta_bar = <S_bar, C>,  V_bar = P^T O_bar

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes content.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_content``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("content", out_dir)``.

Run from the repository root:  python derivations/content.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("content"))
