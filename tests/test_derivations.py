"""The literate derivations (tinygrad_attn/study/derivations/): every claim in them is
proven, and every committed ``derivations/<name>.md`` is exactly what the code produces now
(so a change to the engine or to a derivation cannot leave a stale proof)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_attn.study.derivations as derivations
from tinygrad_attn.study.derivations.document import Check, Result, source_path

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"
SOURCES = ROOT / "tinygrad_attn" / "study" / "derivations"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Result]:
    """Every derivation built once into a temporary directory."""
    out = tmp_path_factory.mktemp("derivations")
    return {name: derivations.run(name, out) for name in derivations.NAMES}


def test_every_derivation_has_one_source_module_and_a_document():
    modules = {p.stem for p in SOURCES.glob("*.py")} - {"__init__", "document", "algebra"}
    documents = {p.stem for p in DERIVATIONS.glob("*.md")} - {"README"}
    assert modules == set(derivations.NAMES) == documents
    assert not list(DERIVATIONS.glob("*.py")), "the source of a document is its module"
    readme = (DERIVATIONS / "README.md").read_text()
    for name in derivations.NAMES:
        assert f"({name}.md)" in readme and source_path(name) in readme, name


@pytest.mark.parametrize("name", derivations.NAMES)
def test_every_claim_of_the_derivation_is_proven(built, name):
    result = built[name]
    assert result.checks, f"{name} proves nothing"
    assert result.ok, str(result)
    assert all(c.proof.proven for c in result.checks), str(result)   # no numbers-only row
    assert "## Checked at explicit sizes" in result.markdown


@pytest.mark.parametrize("name", derivations.NAMES)
def test_committed_document_is_what_the_derivation_produces_now(built, name):
    committed = (DERIVATIONS / f"{name}.md").read_text(encoding="utf-8")
    assert committed == built[name].markdown, (
        f"derivations/{name}.md is stale: run `tinygrad-attn derive {name} --out derivations`")


@pytest.mark.parametrize("name", derivations.NAMES)
def test_document_names_its_source_and_links_the_notation(built, name):
    header = built[name].markdown.splitlines()[2]
    assert f"`{source_path(name)}`" in header
    assert "](../docs/notation.md)" in header
    assert (ROOT / source_path(name)).is_file()


def test_module_run_as_a_script_writes_its_document(tmp_path, built):
    """``python -m tinygrad_attn.study.derivations.softmax --out DIR`` runs the same code."""
    done = subprocess.run([sys.executable, "-W", "error", "-m",
                           "tinygrad_attn.study.derivations.softmax", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "softmax.md").read_text() == built["softmax"].markdown
    assert "softmax: all proven (exact)" in done.stdout


def test_importing_the_package_loads_no_sympy():
    code = ("import sys, tinygrad_attn.study.derivations as d; "
            "assert 'sympy' not in sys.modules, 'sympy loaded'; print(len(d.NAMES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == str(len(derivations.NAMES))


def test_sdpa_derivation_proves_the_fused_backward_and_the_rowsum_identity(built):
    claims = [c.claim for c in built["scaled_dot_product"].checks]
    assert any("fused op" in c for c in claims)
    assert any(r"\operatorname{rowsum}(\bar P \odot P)" in c for c in claims)


def test_a_wrong_closed_form_is_reported_not_proven():
    """Negative control for the document machinery: a derivation whose closed form drops
    the rowsum term of the softmax backward is reported as FAILED."""
    from tinygrad_attn.verify.symbolic import derive as derive_sym

    der = derive_sym(lambda s: s.softmax(-1), {"s": (3,)})
    p, g = der.outputs[0], der.cotangents[0]
    proof = der.prove({"s": p * g})
    check = Check("wrong", "$n = 3$", proof)
    assert not proof.ok and "**FAILED**" in check.row
    result = Result("x", "", [check])
    assert result.ok is False and str(result).startswith("x: FAILED")
    assert result.short == "FAILED"


def test_report_exits_1_when_a_claim_is_not_proven(monkeypatch):
    """The exit status follows the proofs, not only the absence of errors."""
    failing = Result("softmax", "# x\n", [])
    failing.checks.append(Check("wrong", "", type("P", (), {"ok": False, "proven": False,
                                                            "verdict": "FAILED"})()))
    monkeypatch.setattr(derivations, "run", lambda name, out_dir=None: failing)
    lines: list[str] = []
    assert derivations.report(["softmax"], echo=lines.append) == 1
    assert lines[0].startswith("softmax: FAILED")


def test_unknown_derivation_is_refused_with_the_names():
    with pytest.raises(ValueError, match="scaled_dot_product"):
        derivations.run("flash")


def test_report_writes_the_document_and_returns_0(tmp_path, built):
    lines: list[str] = []
    assert derivations.report(["softmax"], tmp_path, echo=lines.append) == 0
    assert (tmp_path / "softmax.md").read_text() == built["softmax"].markdown
    assert lines[0].startswith("softmax: all proven (exact)")


def test_worked_example_numbers_are_checked_and_a_wrong_step_is_rejected():
    """derivations/worked_example.md: the hand steps equal the engine; dropping the D term
    of the softmax backward (the classic slip) gives numbers the same check rejects."""
    import numpy as np
    import sympy as sp

    from tinygrad_attn.study.derivations import worked_example as W
    from tinygrad_attn.verify.symbolic import equivalent

    x = {k: np.array([[sp.Integer(e) for e in r] for r in v], dtype=object)
         for k, v in W.POINT.items()}
    st = W.steps(x["Q"], x["K"], x["V"], x["O_bar"])
    assert all(sp.simplify(sum(r)) == 0 for r in st["S_bar"])     # rows of S-bar sum to 0
    wrong = st["P"] * st["P_bar"] @ x["K"] / sp.sqrt(2)            # no D term
    assert equivalent({"Q": st["Q_bar"]}, {"Q": st["Q_bar"]}, subject="same").ok
    assert not equivalent({"Q": wrong}, {"Q": st["Q_bar"]}, subject="no D").ok
