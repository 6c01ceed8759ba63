"""Encoder-decoder attention is masked self-attention.

    Z = diag(X_enc, X_dec),  W_q' = [0; W_q],  W_k' = [W_k; 0],  W_v' = [W_v; 0]
    mask: every row attends the encoder positions only
    decoder rows of self_attention(Z, W_q', W_k', W_v', mask) == cross_attention(X_dec, X_enc)
Proven: outputs, weights and engine gradients equal (composed and fused).

This script proves every claim of the derivation at explicit sizes and writes claim_cross_as_self.md
next to itself. The mathematics lives in tinygrad_attn/claims.py (``_cross_doc``), so the
installed package can rebuild the document too:
``tinygrad_attn.derive.run("claim_cross_as_self", out_dir)``.

Run from the repository root:  python derivations/claim_cross_as_self.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("claim_cross_as_self"))
