"""The main job, ``tinygrad-attn demo``: every built-in mechanism run, gradient-checked
three ways, its derivation checked, its graphs drawn, the claims pictured, all written to
one folder with an ``index.html`` that links everything.

The work is cut into units (one derivation, one example's check, its graphs, one
picture) run on every core and taken from the cache when nothing they depend on changed
(:mod:`~tinygrad_attn.study.units`, :mod:`~tinygrad_attn.study.cache`); the run ends by
printing the seconds of each phase.

:func:`run_demo` does the work and prints a summary; :func:`index_html` fills the page's
template (:data:`PAGE`) with one piece per part: the table, the derivations, the
pictures, a section per mechanism.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from string import Template
from typing import Any, Callable

import numpy as np

from .. import attention as A
from ..engine import Tensor
from ..verify.gradcheck import GradcheckReport, gradcheck
from ..verify.progress import Progress
from .cache import Cache, Done, Unit
from .derivations import NAMES, run
from .pages import html_page, render_folder
from .units import Job, cores, run_jobs


@dataclass(frozen=True)
class Example:
    """One built-in mechanism at a small size: inputs named and shaped, and the call."""

    name: str
    title: str
    source: str
    shapes: dict[str, tuple[int, ...]]
    call: Callable[..., Any]
    derivation: str | None = None
    positive: tuple[str, ...] = ()

    def inputs(self, seed: int = 0) -> list[Tensor]:
        rng = np.random.default_rng(seed)
        return [Tensor(rng.uniform(0.5, 1.5, s) if n in self.positive else
                       rng.standard_normal(s), requires_grad=True, name=n)
                for n, s in self.shapes.items()]


PAD = A.padding_mask([3, 2], 4)    # (2, 1, 4): a batch of 2 with lengths 3 and 2

EXAMPLES: list[Example] = [
    Example("content", "Content-based (cosine) attention", "Graves et al. 2014",
            {"q": (2, 3), "K": (4, 3), "V": (4, 2)},
            lambda q, K, V: A.content(q, K, V, beta=2.0), "content"),
    Example("additive", "Additive attention", "Bahdanau et al. 2014",
            {"q": (2, 3), "K": (4, 3), "V": (4, 2), "W_q": (3, 3), "W_k": (3, 3), "v": (3,)},
            A.additive, "additive"),
    Example("location", "Location-based attention", "Luong et al. 2015",
            {"q": (2, 3), "V": (4, 2), "W": (3, 4)}, A.location, "location"),
    Example("general", "General attention", "Luong et al. 2015",
            {"q": (2, 3), "K": (4, 3), "V": (4, 2), "W": (3, 3)}, A.general, "dot_product_general"),
    Example("dot_product", "Dot-product attention", "Luong et al. 2015",
            {"q": (2, 3), "K": (4, 3), "V": (4, 2)}, A.dot_product, "dot_product_general"),
    Example("scaled_dot_product", "Scaled dot-product attention (fused op)",
            "Vaswani et al. 2017", {"Q": (3, 4), "K": (4, 4), "V": (4, 2)},
            A.scaled_dot_product, "scaled_dot_product"),
    Example("scaled_dot_product_composed", "Scaled dot-product attention (composed ops)",
            "Vaswani et al. 2017", {"Q": (3, 4), "K": (4, 4), "V": (4, 2)},
            lambda Q, K, V: A.scaled_dot_product(Q, K, V, fused=False), "scaled_dot_product"),
    Example("causal", "Causal self-attention", "Vaswani et al. 2017",
            {"Q": (4, 3), "K": (4, 3), "V": (4, 2)},
            lambda Q, K, V: A.scaled_dot_product(Q, K, V, causal=True), "causal_masking"),
    Example("padding", "Padding mask (a batch of lengths 3 and 2)", "Vaswani et al. 2017",
            {"Q": (2, 2, 3), "K": (2, 4, 3), "V": (2, 4, 2)},
            lambda Q, K, V: A.scaled_dot_product(Q, K, V, mask=PAD)),
    Example("self_attention", "Self-attention", "Vaswani et al. 2017",
            {"X": (3, 4), "W_q": (4, 2), "W_k": (4, 2), "W_v": (4, 2)}, A.self_attention),
    Example("cross_attention", "Cross (encoder-decoder) attention", "Vaswani et al. 2017",
            {"X_dec": (2, 3), "X_enc": (4, 3), "W_q": (3, 2), "W_k": (3, 2), "W_v": (3, 2)},
            A.cross_attention),
    Example("multi_head", "Multi-head attention (2 heads)", "Vaswani et al. 2017",
            {"X": (3, 4), "W_q": (4, 4), "W_k": (4, 4), "W_v": (4, 4), "W_o": (4, 4)},
            lambda X, W_q, W_k, W_v, W_o: A.multi_head(X, X, W_q, W_k, W_v, W_o, 2),
            "multi_head"),
]


@dataclass
class Outcome:
    """What the demo found for one example: its gradient check, derivation, graphs."""

    example: Example
    report: GradcheckReport | None = None
    derivation_ok: bool | None = None
    derivation_file: str | None = None
    derivation_verdict: str = "-"
    graphs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.errors and self.report is not None and self.report.ok
                and self.derivation_ok is not False)


# ------------------------------------------------------------------------------ units
# Each unit writes its files into ``folder`` and returns a value: what the cache stores
# (:mod:`tinygrad_attn.study.units` runs them on every core, from the cache if it can).

def derive_unit(folder: Path, name: str) -> tuple[bool, str, str]:
    """Derivation ``name`` checked and written into ``folder``: (holds, file name, its
    verdict in a table cell)."""
    result = run(name, folder)
    return result.ok, Path(result.path or "").name, result.short


def picture_unit(folder: Path, name: str) -> None:
    """One picture of the claims drawn into ``folder``."""
    from .claim_pictures import write_pictures

    write_pictures(folder, [name])


def check_unit(folder: Path, ex: Example, symbolic: bool) -> GradcheckReport:
    """``ex`` gradient-checked three ways (two with ``symbolic=False``)."""
    return gradcheck(ex.call, *ex.inputs(), symbolic=symbolic)


def graphs_unit(folder: Path, ex: Example) -> list[str]:
    """``ex``'s graph forward and backward (with the VJP formulas) as SVG in ``folder``;
    returns the file names."""
    from ..pictures.graph import draw, render

    context, weights = ex.call(*ex.inputs())
    names = []
    for backward in (False, True):
        stem = ex.name + ("-backward" if backward else "")
        g = draw(context, backward=backward, formulas=backward,
                 collapse="head *" if ex.name == "multi_head" else None,
                 title=f"{ex.title} ({ex.source})" + (" — backward" if backward else ""))
        render(g, folder / f"{stem}.svg")
        names.append(f"{stem}.svg")
    return names


#: The examples whose results may be cached: their code is in this package.
BUILTIN = frozenset(id(ex) for ex in EXAMPLES)
#: The phases of the job, by unit kind, in the order the timings are printed.
PHASES = {"derivation": "derivations", "check": "checks", "graphs": "graphs",
          "picture": "claims"}


def jobs(out: Path, examples: list[Example], derivations: list[str],
          pictures: list[str], symbolic: bool) -> list[Job]:
    """One job per derivation, example check, example's graphs and picture, writing
    into ``out``'s folders (what :func:`run_demo` runs; ``benchmarks/bench_demo.py`` too)."""
    todo = [Job(Unit("derivation", n), derive_unit, (n,), out / "derivations")
            for n in derivations]
    for ex in examples:
        mine = id(ex) in BUILTIN
        todo.append(Job(Unit("check", ex.name, (symbolic,)), check_unit, (ex, symbolic),
                        out / "graphs", portable=False, cacheable=mine))
        todo.append(Job(Unit("graphs", ex.name), graphs_unit, (ex,), out / "graphs",
                        portable=False, cacheable=mine))
    todo += [Job(Unit("picture", p), picture_unit, (p,), out / "claims") for p in pictures]
    return todo


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _outcomes(examples: list[Example], results: dict[Unit, Done | Exception],
              derived: dict[str, tuple[bool, str, str]], symbolic: bool) -> list[Outcome]:
    """Each example's outcome from its check's and graphs' results; errors recorded."""
    outcomes = []
    for ex in examples:
        oc = Outcome(ex)
        check = results[Unit("check", ex.name, (symbolic,))]
        graphs = results[Unit("graphs", ex.name)]
        for what, done in (("gradcheck", check), ("graphs", graphs)):
            if isinstance(done, Exception):
                oc.errors.append(f"{what}: {_error(done)}")
            else:
                oc.seconds += done.seconds
        oc.report = None if isinstance(check, Exception) else check.value
        oc.graphs = [] if isinstance(graphs, Exception) else graphs.value
        if ex.derivation in derived:
            oc.derivation_ok, oc.derivation_file, oc.derivation_verdict = \
                derived[ex.derivation]
        outcomes.append(oc)
    return outcomes


def _derived(names: list[str], results: dict[Unit, Done | Exception]
             ) -> dict[str, tuple[bool, str, str]]:
    """name -> (holds, file name or the error, its verdict in a table cell)."""
    derived = {}
    for name in names:
        done = results[Unit("derivation", name)]
        derived[name] = ((False, f"error: {_error(done)}", "FAILED")
                         if isinstance(done, Exception) else done.value)
    return derived


def _picture_failures(pictures: list[str], results: dict[Unit, Done | Exception]
                      ) -> list[Outcome]:
    """One failed outcome listing the pictures that raised, or none."""
    errors = [f"pictures: {p}: {_error(d)}" for p in pictures
              if isinstance(d := results[Unit("picture", p)], Exception)]
    if not errors:
        return []
    return [Outcome(Example("claims", "pictures of the claims", "", {}, print),
                    errors=errors)]


def run_demo(out: Path, symbolic: bool = True, examples: list[Example] | None = None,
             derivations: list[str] | None = None, pictures: list[str] | None = None,
             cache: bool | Cache = True, workers: int | None = None) -> int:
    """Run every example (default :data:`EXAMPLES`), derivation (default all) and picture
    of the claims (default all) into ``out``; write ``out/index.html``; print a summary
    and the time of each phase; return the exit code (1 if anything fails).

    ``cache``: True takes unchanged results from :func:`~.cache.cache_folder` and stores
    new ones, False computes everything and stores nothing, or a :class:`~.cache.Cache`.
    ``workers``: processes to run on (default one a core)."""
    from .claim_pictures import PICTURES

    t0 = time.perf_counter()
    out = Path(out)
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    examples = EXAMPLES if examples is None else examples
    derivations = list(NAMES) if derivations is None else derivations
    pictures = list(PICTURES) if pictures is None else pictures
    store = Cache() if cache is True else (cache or None)
    workers = cores() if workers is None else workers
    todo = jobs(out, examples, derivations, pictures, symbolic)
    with Progress(len(todo), label="demo") as progress:
        results = run_jobs(todo, store, workers, progress)
    t1 = time.perf_counter()
    derived = _derived(derivations, results)
    outcomes = _outcomes(examples, results, derived, symbolic)
    outcomes += _picture_failures(pictures, results)
    if (out / "derivations").is_dir():                  # the pages the report links to
        render_folder(out / "derivations")
    (out / "index.html").write_text(index_html(outcomes, derived, pictures, out, symbolic),
                                    encoding="utf-8")
    print(_summary(outcomes, symbolic))
    failed = [f"{n} ({f})" for n, (ok, f, _) in derived.items() if not ok]
    print(_derivations_line(derived, failed))
    print(_timings(results, time.perf_counter() - t1, time.perf_counter() - t0, store,
                   workers))
    print(f"\nwritten: {out / 'index.html'}")
    return 0 if all(oc.ok for oc in outcomes) and not failed else 1


def _derivations_line(derived: dict[str, tuple[bool, str, str]], failed: list[str]) -> str:
    """How many derivations hold, and how their claims were decided."""
    verdicts = [v for _, _, v in derived.values()]
    exact = verdicts.count("proven (exact)")
    tested = sum(v.startswith("proven (1 - 2^-") for v in verdicts)
    return (f"derivations: {len(derived) - len(failed)} of {len(derived)} hold: {exact} "
            f"proven exactly, {tested} by identity testing, "
            f"{verdicts.count('agrees numerically')} agree numerically (not a proof)"
            + (f"; FAILED: {', '.join(failed)}" if failed else ""))


def _timings(results: dict[Unit, Done | Exception], writing: float, wall: float,
             cache: Cache | None, workers: int) -> str:
    """The seconds of work in each phase (summed over the processes that ran it side by
    side), how many results came from the cache, the writing and the whole run."""
    parts = []
    for kind, phase in PHASES.items():
        done = [d for u, d in results.items() if u.kind == kind and isinstance(d, Done)]
        total = sum(u.kind == kind for u in results)
        if total:
            parts.append(f"{phase} {sum(d.seconds for d in done):.1f} s "
                         f"({sum(d.cached for d in done)} of {total} cached)")
    where = f"cache {cache.folder}" if cache is not None else "no cache"
    return (f"time: {', '.join(parts)}, summed over {workers} "
            f"process{'es' if workers > 1 else ''}; writing {writing:.1f} s; "
            f"{wall:.1f} s in all ({where})")


# ----------------------------------------------------------------------------- output

def _worst(report: GradcheckReport | None, symbolic: bool) -> tuple[str, str]:
    if report is None:
        return "-", "-"
    fd = max(r.max_abs_err for r in report.inputs)
    sym = "-" if not symbolic else \
        f"{max((r.sym_max_abs_err or 0.0) for r in report.inputs):.1e}"
    return f"{fd:.1e}", sym


def _summary(outcomes: list[Outcome], symbolic: bool) -> str:
    head = ("mechanism", "inputs", "|engine-FD|", "|engine-SymPy|", "derivation", "graphs",
            "result")
    rows = []
    for oc in outcomes:
        fd, sym = _worst(oc.report, symbolic)
        deriv = "-" if oc.derivation_ok is None else oc.derivation_verdict
        rows.append((oc.example.name, str(len(oc.example.shapes)), fd, sym, deriv,
                     str(len(oc.graphs)), "ok" if oc.ok else "FAIL"))
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r).rstrip() for r in rows]
    failed = [oc for oc in outcomes if not oc.ok]
    lines.append("")
    lines.append(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    for oc in failed:
        for e in oc.errors:
            lines.append(f"  {oc.example.name}: {e}")
        if oc.report is not None and not oc.report.ok:
            lines.append(str(oc.report))
    return "\n".join(lines)


PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tinygrad_attn demo</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; }
table { border-collapse: collapse; } td, th { padding: .3em .8em; border: 1px solid #ccc; }
tr.FAIL, .FAIL { color: #b00; font-weight: bold; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 85%; }
.graphs { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure svg { max-width: 560px; height: auto; }
</style></head><body>
<h1>tinygrad_attn: every mechanism checked</h1>
<p>$passed of $total mechanisms pass. Each is gradient-checked three ways: the
engine's backward, central finite differences in float64$sympy (a numerical comparison
at one point). Its derivation (closed matrix form vs the exact derivative, and the
engine's backward vs both) is decided at explicit sizes: <i>proven (exact)</i> when the
difference cancels exactly, <i>proven (1 - 2^-k)</i> by identity testing (a false
identity passes with probability at most 2^-k), or <i>agrees numerically</i> (not a
proof).</p>
<table><tr><th>mechanism</th><th>paper</th><th>max |engine − FD|</th>
<th>max |engine − SymPy|</th><th>derivation</th><th>result</th></tr>
$rows</table>
<h2>Derivations</h2>
<p>Each derivation states a mechanism, derives its gradients step by step, states the
closed matrix form, and checks it against the exact derivative and the engine's backward
(Markdown with LaTeX); each says how its claims were decided.</p>
<ul>$derivations</ul>
<h2>What attention is: the claims, pictured</h2>
<p>The context is an expectation; self-attention mixes positions like a convolution,
but with weights computed from the data; cross attention is masked self-attention;
causal masking; attention over image patches; the O(n²) cost. Each claim is checked in
its <code>claim_*</code> derivation above, with its verdict.</p>
<div class=graphs>$pictures</div>
$sections
</body></html>
""")
"""The page of :func:`index_html`; each ``$name`` is filled with escaped HTML."""


def _table_row(oc: Outcome, symbolic: bool) -> str:
    """One mechanism's row of the summary table."""
    fd, sym = _worst(oc.report, symbolic)
    ex, status = oc.example, "ok" if oc.ok else "FAIL"
    deriv = "-" if oc.derivation_ok is None else (
        f'<a href="derivations/{escape(html_page(oc.derivation_file or ""))}">'
        f'{escape(oc.derivation_verdict)}</a>')
    return (f'<tr class="{status}"><td><a href="#{escape(ex.name)}">{escape(ex.title)}</a>'
            f"</td><td>{escape(ex.source)}</td><td>{fd}</td><td>{sym}</td><td>{deriv}</td>"
            f"<td>{status}</td></tr>")


def _derivation_item(name: str, ok: bool, file: str, verdict: str) -> str:
    """One derivation's list item: a link and how its claims were decided."""
    if not file.endswith(".md"):                       # the run failed: ``file`` says why
        return f"<li>{escape(name)}: <b class=FAIL>{escape(file)}</b></li>"
    shown = escape(verdict) if ok else f"<b class=FAIL>{escape(verdict)}</b>"
    return (f'<li><a href="derivations/{escape(html_page(file))}">{escape(name)}</a>: '
            f"{shown}</li>")


def _picture(name: str) -> str:
    """One picture of the claims, linked to its file."""
    src = f"claims/{escape(name)}"
    return (f'<figure><a href="{src}"><img src="{src}" width="520"></a>'
            f"<figcaption>{escape(name)}</figcaption></figure>")


def _inline_svg(path: Path) -> str:
    """An SVG file's ``<svg>`` element, to inline (the XML prolog and doctype dropped)."""
    svg = path.read_text()
    return svg[svg.find("<svg"):]


def _section(oc: Outcome, graphs: Path) -> str:
    """One mechanism's section: its inputs, errors, gradient-check report and graphs."""
    ex = oc.example
    shapes = ", ".join(f"{n}: {'×'.join(map(str, s))}" for n, s in ex.shapes.items())
    figures = "".join(f'<figure><a href="graphs/{escape(g)}">{_inline_svg(graphs / g)}</a>'
                      f"<figcaption>{escape(g)}</figcaption></figure>" for g in oc.graphs)
    errors = "".join(f"<p class=FAIL>{escape(e)}</p>" for e in oc.errors)
    report = escape(str(oc.report)) if oc.report is not None else ""
    return (f'<section id="{escape(ex.name)}"><h2>{escape(ex.title)}</h2>'
            f"<p>{escape(ex.source)}; inputs {escape(shapes)}</p>{errors}"
            f"<pre>{report}</pre><div class=graphs>{figures}</div></section>")


def index_html(outcomes: list[Outcome], derived: dict[str, tuple[bool, str, str]],
               pictures: list[str], out: Path, symbolic: bool) -> str:
    """The report page: :data:`PAGE` filled for these outcomes, derivations and pictures
    (the graphs are read from ``out/graphs`` and inlined)."""
    return PAGE.substitute(
        passed=sum(oc.ok for oc in outcomes), total=len(outcomes),
        sympy=", and SymPy’s exact gradient" if symbolic else "",
        rows="".join(_table_row(oc, symbolic) for oc in outcomes),
        derivations="".join(_derivation_item(n, ok, f, v) for n, (ok, f, v) in derived.items()),
        pictures="".join(_picture(p) for p in pictures),
        sections="".join(_section(oc, out / "graphs") for oc in outcomes))
