"""The main job (`tinygrad-attn demo`) on a subset, and the derive and bench commands."""
from __future__ import annotations

from xml.etree import ElementTree

import numpy as np

import tinygrad_attn as ta
from tinygrad_attn.study import demo
from tinygrad_attn.cli import main


def _subset(*names):
    return [ex for ex in demo.EXAMPLES if ex.name in names]


def test_demo_writes_index_graphs_and_derivations_and_passes(tmp_path, capsys):
    code = demo.run_demo(tmp_path, examples=_subset("additive", "causal"),
                         derivations=["softmax"], pictures=["claims_cross.png"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 passed, 0 failed" in out
    assert "derivations: 1 of 1 hold: 1 proven exactly, 0 by identity testing" in out
    index = (tmp_path / "index.html").read_text()
    assert index.count("<svg") == 4                          # forward + backward, inlined
    assert 'href="derivations/softmax.md"' in index
    assert (tmp_path / "claims" / "claims_cross.png").stat().st_size > 1000
    for svg in (tmp_path / "graphs").glob("*.svg"):
        ElementTree.parse(svg)                               # well-formed
    assert (tmp_path / "derivations" / "softmax.md").read_text().startswith("#")


def test_demo_fails_with_exit_code_1_when_a_gradient_is_wrong(tmp_path, capsys):
    class Wrong(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 2.5

    bad = demo.Example("wrong", "A wrong VJP", "nobody", {"q": (2, 3), "K": (4, 3),
                                                          "V": (4, 2)},
                       lambda q, K, V: ta.attention.dot_product(Wrong.apply(q), K, V))
    code = demo.run_demo(tmp_path, examples=[bad], derivations=[], pictures=[],
                         symbolic=False)
    out = capsys.readouterr().out
    assert code == 1
    assert "0 passed, 1 failed" in out and "FAIL" in out
    assert 'class="FAIL"' in (tmp_path / "index.html").read_text()


def test_index_html_escapes_what_it_shows(tmp_path):
    ex = demo.Example("x<y", "A <b> title", "Smith & Jones", {"q": (2,)}, print)
    page = demo.index_html([demo.Outcome(ex, errors=["boom <script>"])],
                           {"softmax": (True, "softmax.md", "proven (exact)"),
                            "bad": (False, "error: <x>", "FAILED")},
                           ["claims_cross.png"], tmp_path, symbolic=False)
    for raw in ("<b> title", "<script>", "Smith & Jones", "error: <x>"):
        assert raw not in page
    for shown in ("A &lt;b&gt; title", "boom &lt;script&gt;", "Smith &amp; Jones",
                  'href="derivations/softmax.md"', 'src="claims/claims_cross.png"',
                  "0 of 1 mechanisms pass", 'id="x&lt;y"', "softmax</a>: proven (exact)"):
        assert shown in page, shown
    assert "SymPy’s exact gradient" not in page and "$" not in page


def test_every_builtin_example_runs_and_returns_context_and_weights():
    for ex in demo.EXAMPLES:
        context, weights = ex.call(*ex.inputs())
        assert np.all(np.isfinite(context.data)) and np.all(weights.data >= 0), ex.name


def test_derive_command_proves_and_writes_markdown(tmp_path, capsys):
    assert main(["derive", "softmax", "--out", str(tmp_path)]) == 0
    assert "softmax: all proven" in capsys.readouterr().out
    assert (tmp_path / "softmax.md").is_file()
    assert main(["derive", "nope"]) == 2


def test_bench_command_runs_a_benchmark_script(capsys):
    assert main(["bench", "engine", "--sizes", "32", "--repeat", "1"]) == 0
    assert main(["bench", "no_such_benchmark"]) == 2


def test_train_command_is_routed_to_the_trainer(tmp_path, capsys):
    code = main(["train", "reverse", "--model", "rnn", "--steps", "3",
                 "--out", str(tmp_path)])
    assert code == 0
    assert any(tmp_path.rglob("*.npz"))
