"""Self-attention is a convolution whose kernel is computed from the data.

    conv1d:  y_i = sum_m k_m x_{i+r-m} = sum_j W_ij x_j,  W_ij = k_{i-j+r}  (Toeplitz: fixed)
    self-attention:  W_ij = softmax_j(x_i W_q W_k^T x_j^T / sqrt d_k)    (from the data)
Proven: conv1d == np.convolve == Toeplitz product == `attend` with fixed scores (outputs
and gradients); its weights do not depend on x; its receptive field is the kernel.

This script proves every claim of the derivation at explicit sizes and writes claim_convolution.md
next to itself. The mathematics lives in tinygrad_attn/claims.py (``_convolution_doc``), so the
installed package can rebuild the document too:
``tinygrad_attn.derive.run("claim_convolution", out_dir)``.

Run from the repository root:  python derivations/claim_convolution.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("claim_convolution"))
