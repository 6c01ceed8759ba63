"""The context vector is an expectation.

    c = sum_j p_j v_j = E_{J ~ p}[v_J]          (p = softmax(s): a distribution over positions)
    dc/ds_k = p_k (v_k - c)                     (the gradient is a covariance)
    c_N = (1/N) sum_k v_{J_k}:  E[c_N] = c,  E|c_N - c|^2 = tr Cov(v_J) / N   (rate 1/sqrt N)
Proven: the context of `attend` against sympy.stats' expectation; the score gradient
against sympy.diff; the Monte-Carlo mean and error for N = 1, 2, 3 with sympy.stats.

This script proves every claim of the derivation at explicit sizes and writes claim_expectation.md
next to itself. The mathematics lives in tinygrad_attn/claims.py (``_expectation_doc``), so the
installed package can rebuild the document too:
``tinygrad_attn.derive.run("claim_expectation", out_dir)``.

Run from the repository root:  python derivations/claim_expectation.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, if not installed
from tinygrad_attn.study.derive import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("claim_expectation"))
