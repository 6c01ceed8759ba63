"""The main job (`tinygrad-attn demo`) on a subset, its cache and its worker processes,
and the derive and bench commands."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn.cli import main
from tinygrad_attn.study import cache as C
from tinygrad_attn.study import demo


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every run here caches into a temporary folder, never the user's."""
    monkeypatch.setenv(C.ENV, str(tmp_path / "user-cache"))


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
    assert 'href="derivations/softmax.html"' in index        # the rendered page
    page = (tmp_path / "derivations" / "softmax.html").read_text()
    assert 'class="arithmatex"' in page and "../mathjax/tex-svg-full.js" in page
    assert (tmp_path / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000
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
                  'href="derivations/softmax.html"', 'src="claims/claims_cross.png"',
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


# ------------------------------------------------------------------- cache and workers

SMALL = {"examples": ["dot_product"], "derivations": ["softmax"],
         "pictures": ["claims_image_graph.svg"]}


def _counting(monkeypatch):
    """Each unit wrapped to count its calls: kind -> calls."""
    calls = {}
    for kind in ("derive_unit", "check_unit", "graphs_unit", "picture_unit"):
        original = getattr(demo, kind)

        def counted(*args, _original=original, _kind=kind):
            calls[_kind] = calls.get(_kind, 0) + 1
            return _original(*args)
        monkeypatch.setattr(demo, kind, counted)
    return calls


def _run(out, store, workers=1, **small):
    small = {**SMALL, **small}
    return demo.run_demo(out, examples=_subset(*small["examples"]),
                         derivations=small["derivations"], pictures=small["pictures"],
                         cache=store, workers=workers)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _table(printed: str) -> list[str]:
    """The printed rows of the mechanisms and the derivations line (no timings)."""
    return [line for line in printed.splitlines()
            if line.startswith(("dot_product", "derivations:", "1 passed"))]


def test_a_cache_hit_skips_the_work_and_writes_the_same_files(tmp_path, monkeypatch, capsys):
    calls = _counting(monkeypatch)
    store = C.Cache(tmp_path / "cache")
    assert _run(tmp_path / "cold", store) == 0
    cold = capsys.readouterr().out
    assert calls == {"derive_unit": 1, "check_unit": 1, "graphs_unit": 1, "picture_unit": 1}
    assert "derivations" in cold and "(0 of 1 cached)" in cold
    assert _run(tmp_path / "warm", C.Cache(tmp_path / "cache")) == 0
    warm = capsys.readouterr().out
    assert calls == {"derive_unit": 1, "check_unit": 1, "graphs_unit": 1, "picture_unit": 1}
    assert "derivations 0.0 s (1 of 1 cached)" in warm and "claims 0.0 s (1 of 1" in warm
    assert _table(warm) == _table(cold) and len(_table(cold)) == 3
    assert _files(tmp_path / "warm") == _files(tmp_path / "cold")
    assert (tmp_path / "warm" / "derivations" / "softmax.md").read_text().startswith("#")


def test_a_change_in_the_source_tree_invalidates_the_cache(tmp_path, monkeypatch, capsys):
    calls = _counting(monkeypatch)
    tree = tmp_path / "package"
    tree.mkdir()
    (tree / "module.py").write_text("x = 1\n")
    _run(tmp_path / "a", C.Cache(tmp_path / "cache", source=tree))
    _run(tmp_path / "b", C.Cache(tmp_path / "cache", source=tree))
    assert calls["derive_unit"] == 1
    (tree / "module.py").write_text("x = 2\n")                # the content changed
    _run(tmp_path / "c", C.Cache(tmp_path / "cache", source=tree))
    assert calls == {"derive_unit": 2, "check_unit": 2, "graphs_unit": 2, "picture_unit": 2}
    (tree / "new.py").write_text("")                           # a file added
    _run(tmp_path / "d", C.Cache(tmp_path / "cache", source=tree))
    assert calls["derive_unit"] == 3


def test_no_cache_recomputes_and_the_cli_flag_turns_the_cache_off(tmp_path, monkeypatch,
                                                                   capsys):
    calls = _counting(monkeypatch)
    store = C.Cache(tmp_path / "cache")
    _run(tmp_path / "a", store)
    _run(tmp_path / "b", False)
    assert calls["derive_unit"] == 2 and calls["check_unit"] == 2
    assert "(no cache)" in capsys.readouterr().out
    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda out, **kw: seen.append(kw) or 0)
    assert main(["demo", "--out", str(tmp_path / "c"), "--no-cache"]) == 0
    assert main(["demo", "--out", str(tmp_path / "c")]) == 0
    assert [kw["cache"] for kw in seen] == [False, True]


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2],           # cut short
                                    lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:],
                                    lambda b: b"garbage"])
def test_a_corrupted_entry_is_recomputed_not_trusted(tmp_path, monkeypatch, capsys, damage):
    calls = _counting(monkeypatch)
    store = C.Cache(tmp_path / "cache")
    _run(tmp_path / "a", store)
    entry = store.path(C.Unit("derivation", "softmax"))
    entry.write_bytes(damage(entry.read_bytes()))
    assert store.load(C.Unit("derivation", "softmax")) is None
    assert _run(tmp_path / "b", store) == 0
    assert calls["derive_unit"] == 2 and calls["check_unit"] == 1
    assert _files(tmp_path / "b") == _files(tmp_path / "a")
    assert store.load(C.Unit("derivation", "softmax")) is not None   # stored again


def test_worker_processes_give_the_same_files_and_report_a_failing_unit(tmp_path, capsys):
    store = C.Cache(tmp_path / "cache")
    code = _run(tmp_path / "two", store, workers=2, derivations=["softmax", "nope"])
    two = capsys.readouterr().out
    assert code == 1 and "FAILED: nope (error: ValueError: unknown derivation 'nope'" in two
    assert store.load(C.Unit("derivation", "nope")) is None           # errors are not kept
    assert store.load(C.Unit("derivation", "softmax")) is not None
    assert "summed over 2 processes;" in two
    assert _run(tmp_path / "one", False, workers=1, derivations=["softmax", "nope"]) == 1
    assert "summed over 1 process;" in (one := capsys.readouterr().out)
    assert "s in all (no cache)" in one
    assert _files(tmp_path / "two") == _files(tmp_path / "one")      # the same bytes


def test_an_example_passed_in_is_never_cached(tmp_path, monkeypatch, capsys):
    calls = _counting(monkeypatch)
    mine = demo.Example("dot_product", "mine", "me", {"q": (2, 3), "K": (4, 3), "V": (4, 2)},
                        ta.attention.dot_product)     # the name of a built-in, other code
    for out in ("a", "b"):
        demo.run_demo(tmp_path / out, examples=[mine], derivations=[], pictures=[],
                      cache=C.Cache(tmp_path / "cache"), workers=1, symbolic=False)
    assert calls["check_unit"] == 2 and calls["graphs_unit"] == 2


def test_the_cache_folder_follows_the_override_then_xdg_then_home(tmp_path, monkeypatch):
    assert C.cache_folder() == tmp_path / "user-cache"
    monkeypatch.delenv(C.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_folder() == tmp_path / "xdg" / "tinygrad_attn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.cache_folder() == tmp_path / "home" / ".cache" / "tinygrad_attn"
    assert C.Cache().folder == tmp_path / "home" / ".cache" / "tinygrad_attn"


def test_a_cache_folder_that_cannot_be_written_is_a_warning(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")                                  # the folder cannot be created
    with pytest.warns(UserWarning, match="cannot be written"):
        assert _run(tmp_path / "out", C.Cache(blocker / "cache")) == 0
    assert (tmp_path / "out" / "derivations" / "softmax.md").is_file()


def test_the_key_holds_the_library_versions_and_the_unit(tmp_path, monkeypatch):
    assert any(p.startswith("numpy==") for p in C.environment())
    assert any(p.startswith("sympy==") for p in C.environment())
    unit = C.Unit("derivation", "softmax")
    key = C.Cache(tmp_path).key(unit)
    assert C.Cache(tmp_path).key(unit) == key                          # stable
    assert C.Cache(tmp_path).key(C.Unit("derivation", "additive")) != key
    assert C.Cache(tmp_path).key(C.Unit("check", "x", (True,))) != \
        C.Cache(tmp_path).key(C.Unit("check", "x", (False,)))
    monkeypatch.setattr(C, "environment", lambda: ("numpy==0.0",))   # another NumPy
    assert C.Cache(tmp_path).key(unit) != key


def test_a_demo_of_derivations_only_prints_an_empty_table(tmp_path, capsys):
    assert demo.run_demo(tmp_path, examples=[], derivations=[], pictures=[]) == 0
    assert "0 passed, 0 failed" in capsys.readouterr().out
