"""The closed-form attention gradients, proven for symbolic sizes (m queries, n keys,
widths d_q, d_k, d_v, h hidden units, H heads of width d_h, model width d_model).

Scaled dot-product and multi-head: Vaswani et al. 2017 (eq. 1, section 3.2.2).
Additive: Bahdanau et al. 2014 (eq. 6, appendix A.1.2). Dot and general: Luong et al. 2015.
Each proof is cross-checked numerically at small concrete sizes, and each negative control
(a dropped term, a missing factor, a wrong index) must be rejected -- and really be false.
"""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from tinygrad_attn.verify import everysize as es
from tinygrad_attn.verify import indexforms as F
from tinygrad_attn.verify.indexcalc import evaluate

# query and key widths differ (d_q != d_k), so a mixed-up range shows
CONCRETE = {F.m: 2, F.n: 3, F.d_k: 2, F.d_v: 2, F.d_q: 3, F.h: 2, F.H: 2, F.d_h: 2,
            F.d_model: 2}


def _numeric_gap(lhs: sp.Expr, rhs: sp.Expr, ranges: dict, sizes: dict, seed: int) -> float:
    """|lhs - rhs| at concrete sizes, random tensors, random free indices in range
    (seed 0: every free index 0, where all deltas of free indices are 1)."""
    rng = np.random.default_rng(seed)
    values: dict = dict(sizes)
    for var, (lo, hi) in ranges.items():
        pick = int(rng.integers(int(lo.subs(sizes)), int(hi.subs(sizes)) + 1))
        values[var] = pick if seed else 0
    ranks: dict = {}
    for ex in (lhs, rhs):
        for ind in ex.atoms(sp.Indexed):
            ranks[ind.base.label] = len(ind.indices)
    for label, rank in ranks.items():
        arr = rng.normal(scale=0.7, size=(4,) * rank)
        if label == F.M.label:  # a 0/1 mask that keeps key 0 in every row (Z != 0)
            arr = (rng.random(size=(4,) * rank) < 0.6).astype(float)
            arr[:, 0] = 1.0
        values[label] = arr
    left, right = evaluate(lhs, values), evaluate(rhs, values)
    return abs(left - right) / max(1.0, abs(left))


CLAIM_IDS = [cl.key for cl in es.CLAIMS]
NEG_IDS = [cl.key for cl in es.NEGATIVE_CONTROLS]


@pytest.mark.parametrize("claim", es.CLAIMS, ids=CLAIM_IDS)
def test_closed_form_gradient_is_proven_for_every_size(claim):
    proof = claim.prove()
    assert proof.ok, str(proof) + "\n" + "\n".join(proof.residual)
    assert not proof.residual


@pytest.mark.parametrize("claim", es.CLAIMS, ids=CLAIM_IDS)
def test_proven_identity_holds_numerically_at_concrete_sizes(claim):
    # soundness cross-check: what the normaliser proves, plain loops over the sums confirm
    lhs, rhs, ranges = claim.build()
    assert _numeric_gap(lhs, rhs, ranges, CONCRETE, seed=len(claim.key)) < 1e-9


@pytest.mark.parametrize("claim", es.NEGATIVE_CONTROLS, ids=NEG_IDS)
def test_wrong_closed_form_is_rejected(claim):
    proof = claim.prove()
    assert not proof.ok and proof.residual, str(proof)


@pytest.mark.parametrize("claim", es.NEGATIVE_CONTROLS, ids=NEG_IDS)
def test_negative_control_is_really_false(claim):
    # all sizes 2 (a wrong index then stays in range; 1/sqrt(2) != 1)
    lhs, rhs, ranges = claim.build()
    sizes = {s: 2 for s in CONCRETE}
    # a wrong index can agree at one point (x == y): one of a few random points must differ
    assert any(_numeric_gap(lhs, rhs, ranges, sizes, seed) > 1e-6 for seed in range(8))


def test_sdpa_claims_of_the_issue_are_all_present():
    # Vaswani 2017: bar V, bar P, bar S, the rowsum identity, bar Q, bar K, the softmax
    # Jacobian
    names = {cl.name for cl in es.claims_for("scaled_dot_product")}
    for want in ("bar V = P^T bar O", "bar P = bar O V^T",
                 "bar S = P * (bar P - rowsum(P * bar P))",
                 "rowsum(P * bar P) = rowsum(bar O * O)", "bar Q = bar S K / sqrt(d_k)",
                 "bar K = bar S^T Q / sqrt(d_k)", "softmax Jacobian",
                 "masked bar Q = bar S K / sqrt(d_k)"):
        assert want in names


def test_additive_claims_cover_every_parameter_and_input():
    # Bahdanau 2014: v, W_q, W_k, the query, the keys and the values
    names = " ".join(cl.name for cl in es.claims_for("additive"))
    for want in ("bar v =", "bar W_q =", "bar W_k =", "bar Q =", "bar K =", "bar V =",
                 "1 - tanh^2"):
        assert want in names


def test_every_claim_has_a_negative_control_in_its_mechanism():
    negs = {cl.mechanism for cl in es.NEGATIVE_CONTROLS}
    assert negs == set(es.MECHANISMS)


def test_every_size_section_states_what_is_proven_in_latex():
    text = es.every_size_section("scaled_dot_product")
    assert text.startswith("## For every size")
    assert "$$" in text and "\\frac{\\partial L}{\\partial Q_{xy}}" in text
    assert "not proven" not in text
    assert text.count(": proven") == len(es.claims_for("scaled_dot_product"))
    assert "explicit-size checks still add" in text
    assert "fully masked row" in text
    assert es.every_size_section("scaled_dot_product") == text  # deterministic


@pytest.mark.parametrize("mechanism", es.MECHANISMS)
def test_every_size_section_uses_the_project_notation(mechanism):
    # docs/notation.md: m queries, n keys, key width d_k, upstream gradient bar O,
    # the adjoint of X written bar X (no G, no dX)
    text = es.every_size_section(mechanism)
    assert "$m$ queries, $n$ keys" in text and "\\bar O" in text
    for old in ("G_{", "dS_{", "dP_{", "du_{", "de_{", "$e$", "its own"):
        assert old not in text, old
    if mechanism != "multi_head":
        assert "d_k" in text


def test_every_size_section_of_multi_head_says_what_the_notation_does_not_allow():
    text = es.every_size_section("multi_head")
    assert "PyTorch" in text and "not proven here" in text


def test_every_size_section_for_a_mechanism_not_yet_covered_says_so():
    assert "not yet proven" in es.every_size_section("location")
    with pytest.raises(ValueError):
        es.every_size_section("no_such_mechanism")


def test_timing_table_lists_every_proof():
    table = es.timing_table(es.prove_all("dot_product"))
    assert table.count("| proven |") == len(es.claims_for("dot_product"))


def test_identities_that_need_softmax_rows_to_sum_to_one_are_claimed_with_controls():
    """Z times 1/Z: the rows of P, of the softmax Jacobian and of bar S (issue 16), each
    with a negative control that sums a column instead or drops a term."""
    names = {cl.name for cl in es.claims_for("scaled_dot_product")}
    for want in ("softmax rows sum to one", "softmax Jacobian rows sum to zero",
                 "rows of bar S sum to zero", "masked softmax rows sum to one",
                 "masked rows of bar S sum to zero"):
        assert want in names
    bad = {cl.name for cl in es.claims_for("scaled_dot_product", negative=True)}
    for want in ("softmax columns sum to one", "softmax Jacobian columns sum to zero",
                 "rows of bar S sum to rows of bar P", "masked softmax columns sum to one"):
        assert want in bad


# ----------------------------------------------------------------------------- the page

PAGE = Path(__file__).resolve().parents[1] / "docs" / "everysize.md"
BEGIN = "<!-- claims: generated from everysize.CLAIMS and NEGATIVE_CONTROLS -->"
END = "<!-- /claims -->"


def claim_list_markdown() -> str:
    """The list docs/everysize.md shows: per mechanism, its claims then its controls."""
    lines = []
    for mechanism in es.MECHANISMS:
        for negative, word in ((False, "proven"), (True, "rejected")):
            names = [cl.name for cl in es.claims_for(mechanism, negative=negative)]
            lines.append(f"- `{mechanism}`, {word} ({len(names)}): "
                         + "; ".join(f"`{n}`" for n in names))
    total = (f"{len(es.CLAIMS)} claims, {len(es.NEGATIVE_CONTROLS)} negative controls.")
    return "\n".join(lines + ["", total])


def test_the_page_lists_every_claim_and_control_of_the_module():
    text = PAGE.read_text(encoding="utf-8")
    block = text.split(BEGIN)[1].split(END)[0].strip()
    assert block == claim_list_markdown(), (
        f"docs/everysize.md is stale; put this between the claims markers:\n"
        f"{claim_list_markdown()}")
    lines = {ln.split(" (")[0]: ln for ln in block.splitlines() if ln.startswith("- ")}
    for cl in es.CLAIMS + es.NEGATIVE_CONTROLS:      # a control is never listed as proven
        word = "proven" if cl.holds else "rejected"
        assert f"`{cl.name}`" in lines[f"- `{cl.mechanism}`, {word}"]
