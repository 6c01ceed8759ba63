"""The guide names real code: every module path and dotted name in README.md, docs/ and
derivations/ exists, so a moved module cannot leave a stale reference behind."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "derivations").glob("*.md"))]

PATH = re.compile(r"\b(?:tinygrad_attn|benchmarks|tests|examples)/[\w/]*\w\.py\b")
DOTTED = re.compile(r"\btinygrad_attn(?:\.\w+)+")


def stale_paths(text: str) -> list[str]:
    """The file paths named in ``text`` that do not exist under the repository root."""
    return sorted({p for p in PATH.findall(text) if not (ROOT / p).exists()})


def resolves(dotted: str) -> bool:
    """Whether ``tinygrad_attn.a.b.c`` is a module, or an attribute reached from one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def stale_names(text: str) -> list[str]:
    return sorted({d for d in DOTTED.findall(text) if not resolves(d)})


# CHANGELOG.md names the old module paths on purpose: only its file paths are checked.
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_path_and_name_in_the_page_exists(page):
    text = page.read_text()
    assert stale_paths(text) == []
    if page.name != "CHANGELOG.md":
        assert stale_names(text) == []


def test_a_stale_reference_is_reported():
    """Negative control: the checks find a moved module and a missing attribute."""
    text = "see `tinygrad_attn/ops.py` and `tinygrad_attn.engine.ops.NoSuchOp`"
    assert stale_paths(text) == ["tinygrad_attn/ops.py"]
    assert stale_names(text) == ["tinygrad_attn.engine.ops.NoSuchOp"]
    assert stale_names("`tinygrad_attn.engine.ops.OPS`") == []


def test_the_readmes_first_look_prints_what_the_readme_shows(tmp_path):
    """The README's first example, run as a script, prints its report exactly as shown."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"## A first look\n\n```python\n(.*?)```\n\n```\n(.*?)```", text, re.S)
    assert found, "the README's 'A first look' section lost its code or its output"
    script = tmp_path / "first_look.py"
    script.write_text(found.group(1))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == found.group(2)
