"""The literate derivations (derivations/*.py, tinygrad_attn/study/derive.py): every claim in
them is proven, and every committed ``derivations/<name>.md`` is exactly what the code
produces now (so a change to the engine or to a derivation cannot leave a stale proof)."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from tinygrad_attn.study import derive

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, derive.Result]:
    """Every derivation built once (by running its script) into a temporary directory."""
    out = tmp_path_factory.mktemp("derivations")
    results = {}
    for name in derive.NAMES:
        results[name] = derive.run(name, out)
    return results


def test_every_derivation_has_a_script_and_a_document():
    scripts = {p.stem for p in DERIVATIONS.glob("*.py")}
    documents = {p.stem for p in DERIVATIONS.glob("*.md")} - {"README"}
    assert scripts == set(derive.NAMES) == documents
    readme = (DERIVATIONS / "README.md").read_text()
    assert all(f"({name}.md)" in readme for name in derive.NAMES)


@pytest.mark.parametrize("name", derive.NAMES)
def test_every_claim_of_the_derivation_is_proven(built, name):
    result = built[name]
    assert result.checks, f"{name} proves nothing"
    assert result.ok, str(result)
    assert "## Proven at explicit sizes" in result.markdown


@pytest.mark.parametrize("name", derive.NAMES)
def test_committed_document_is_what_the_derivation_produces_now(built, name):
    committed = (DERIVATIONS / f"{name}.md").read_text(encoding="utf-8")
    assert committed == built[name].markdown, (
        f"derivations/{name}.md is stale: run `python derivations/{name}.py`")


def test_script_writes_its_document_next_to_itself(tmp_path, monkeypatch, built):
    """The thin script runs the same code: copy it elsewhere, run it, get the same file."""
    script = tmp_path / "softmax.py"
    script.write_text((DERIVATIONS / "softmax.py").read_text())
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.syspath_prepend(str(ROOT))
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    assert (tmp_path / "softmax.md").read_text() == built["softmax"].markdown


def test_sdpa_derivation_proves_the_fused_backward_and_the_rowsum_identity(built):
    claims = [c.claim for c in built["scaled_dot_product"].checks]
    assert any("fused op" in c for c in claims)
    assert any(r"\operatorname{rowsum}(\bar P \odot P)" in c for c in claims)


def test_a_wrong_closed_form_is_reported_not_proven():
    """Negative control for the document machinery: a derivation whose closed form drops
    the rowsum term of the softmax backward is reported as NOT PROVEN."""
    import numpy as np

    from tinygrad_attn.verify.symbolic import derive as derive_sym

    der = derive_sym(lambda s: s.softmax(-1), {"s": (3,)})
    p, g = der.outputs[0], der.cotangents[0]
    proof = der.prove({"s": p * g})
    check = derive.Check("wrong", "$n = 3$", proof)
    assert not proof.ok and "**NOT PROVEN**" in check.row
    assert derive.Result("x", "", [check]).ok is False
    del np


def test_unknown_derivation_is_refused_with_the_names():
    with pytest.raises(ValueError, match="scaled_dot_product"):
        derive.run("flash")
    with pytest.raises(ValueError, match="'all'"):
        derive.run_cli("flash", ".")


def test_run_cli_writes_the_document_and_returns_0(tmp_path, capsys, built):
    assert derive.run_cli("softmax", tmp_path) == 0
    assert (tmp_path / "softmax.md").read_text() == built["softmax"].markdown
    assert "softmax: all proven" in capsys.readouterr().out
