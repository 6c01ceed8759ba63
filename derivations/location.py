"""Location-based attention (Luong et al. 2015, eq. 8).

    S = Q W  (W: d x n, no keys),  P = softmax_rows(S),  O = P V
    Q_bar = S_bar W^T,  W_bar = Q^T S_bar,  V_bar = P^T O_bar

This script proves every claim of the derivation at explicit sizes (closed form ==
sympy.diff, engine backward == sympy.diff) and writes location.md next to itself. The
mathematics lives in tinygrad_attn/study/derive.py (``_location``), so the installed package can
rebuild the document too: ``tinygrad_attn.derive.run("location", out_dir)``.

Run from the repository root:  python derivations/location.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("location"))
