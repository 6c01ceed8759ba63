"""Self-attention over the patches of an image.

    X = patchify(I) (N, p p C);  O = softmax(X W_q (X W_k)^T / sqrt d_k) X W_v;
    I' = unpatchify(O W_o);   the VJP of patchify is unpatchify
Proven: the patch layout, unpatchify(patchify(I)) == I, the patchify VJP, and the
engine backward of the whole image attention (composed and fused) against sympy.diff.

This script proves every claim of the derivation at explicit sizes and writes claim_image.md
next to itself. The mathematics lives in tinygrad_attn/claims.py (``_image_doc``), so the
installed package can rebuild the document too:
``tinygrad_attn.derive.run("claim_image", out_dir)``.

Run from the repository root:  python derivations/claim_image.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("claim_image"))
