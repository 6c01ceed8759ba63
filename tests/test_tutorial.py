"""The tutorial's steps, on the example variant it uses (docs/tutorial.md)."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import tinygrad_attn as ta
from tinygrad_attn.cli import load_function, main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "alibi_attention.py"


def test_tutorial_variant_passes_the_three_way_check(capsys):
    code = main(["check", f"{EXAMPLE}:alibi_attention", "--shape", "q=4x8",
                 "--shape", "k=4x8", "--shape", "v=4x8", "--symbolic"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SymPy exact gradient" in out and "PASSED" in out


def test_tutorial_variant_engine_backward_is_proven_equal_to_sympy():
    d = ta.symbolic.derive(load_function(f"{EXAMPLE}:alibi_attention"),
                           {"q": (2, 2), "k": (2, 2), "v": (2, 1)})
    assert d.prove_engine().ok


def test_tutorial_graph_command_writes_an_svg_with_the_score_cluster(tmp_path, capsys):
    out = tmp_path / "alibi.svg"
    assert main(["graph", f"{EXAMPLE}:figure", "-o", str(out)]) == 0
    text = " ".join(ElementTree.parse(out).getroot().itertext())
    assert "score" in text and "softmax" in text
