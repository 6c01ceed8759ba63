"""The main job, ``tinygrad-attn demo``: every built-in mechanism run, gradient-checked
three ways, its derivation checked, its graphs drawn, the claims pictured, all written to
one folder with an ``index.html`` that links everything.

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
from .derivations import NAMES, run


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


def _check(ex: Example, symbolic: bool) -> GradcheckReport:
    inputs = ex.inputs()
    return gradcheck(ex.call, *inputs, symbolic=symbolic)


def _graphs(ex: Example, folder: Path) -> list[str]:
    from ..pictures.graph import draw, render

    inputs = ex.inputs()
    context, weights = ex.call(*inputs)
    names = []
    for backward in (False, True):
        stem = ex.name + ("-backward" if backward else "")
        g = draw(context, backward=backward, formulas=backward,
                 collapse="head *" if ex.name == "multi_head" else None,
                 title=f"{ex.title} ({ex.source})" + (" — backward" if backward else ""))
        render(g, folder / f"{stem}.svg")
        names.append(f"{stem}.svg")
    return names


def _derive_all(names: list[str], folder: Path,
                progress: Progress) -> dict[str, tuple[bool, str, str]]:
    """Each derivation checked and written into ``folder``: name -> (holds, file name or
    the error, its verdict in a table cell).  An error is reported, and the run goes on."""
    derived = {}
    for k, name in enumerate(names):
        progress.update(k, f"derivation {name}")
        try:
            result = run(name, folder)
            derived[name] = (result.ok, Path(result.path).name, result.short)
        except Exception as exc:  # reported in the table, the run goes on
            derived[name] = (False, f"error: {type(exc).__name__}: {exc}", "FAILED")
    return derived


def _run_example(ex: Example, folder: Path, symbolic: bool,
                 derived: dict[str, tuple[bool, str, str]]) -> Outcome:
    """Gradient-check ``ex`` and draw its graphs into ``folder``; errors are recorded."""
    t0 = time.perf_counter()
    oc = Outcome(ex)
    try:
        oc.report = _check(ex, symbolic)
    except Exception as exc:
        oc.errors.append(f"gradcheck: {type(exc).__name__}: {exc}")
    try:
        oc.graphs = _graphs(ex, folder)
    except Exception as exc:
        oc.errors.append(f"graphs: {type(exc).__name__}: {exc}")
    if ex.derivation in derived:
        oc.derivation_ok, oc.derivation_file, oc.derivation_verdict = derived[ex.derivation]
    oc.seconds = time.perf_counter() - t0
    return oc


def _draw_pictures(folder: Path, pictures: list[str]) -> list[Outcome]:
    """The claims' pictures into ``folder``; an error becomes a failed outcome."""
    from .claim_pictures import write_pictures

    try:
        write_pictures(folder, pictures)
    except Exception as exc:
        return [Outcome(Example("claims", "pictures of the claims", "", {}, print),
                        errors=[f"pictures: {type(exc).__name__}: {exc}"])]
    return []


def run_demo(out: Path, symbolic: bool = True, examples: list[Example] | None = None,
             derivations: list[str] | None = None, pictures: list[str] | None = None) -> int:
    """Run every example (default :data:`EXAMPLES`), derivation (default all) and picture
    of the claims (default all) into ``out``; write ``out/index.html``; print a summary;
    return the exit code (1 if anything fails)."""
    from .claim_pictures import PICTURES

    out = Path(out)
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    examples = EXAMPLES if examples is None else examples
    derivations = list(NAMES) if derivations is None else derivations
    pictures = list(PICTURES) if pictures is None else pictures
    total = len(derivations) + len(examples) + 1
    with Progress(total, label="demo") as progress:
        derived = _derive_all(derivations, out / "derivations", progress)
        outcomes = []
        for k, ex in enumerate(examples, start=len(derivations)):
            progress.update(k, f"{ex.name}: gradcheck and graphs")
            outcomes.append(_run_example(ex, out / "graphs", symbolic, derived))
        progress.update(total - 1, "pictures of the claims")
        outcomes += _draw_pictures(out / "claims", pictures)
        progress.update(total, "done")
    (out / "index.html").write_text(index_html(outcomes, derived, pictures, out, symbolic),
                                    encoding="utf-8")
    print(_summary(outcomes, symbolic))
    failed = [f"{n} ({f})" for n, (ok, f, _) in derived.items() if not ok]
    verdicts = [v for _, _, v in derived.values()]
    exact = verdicts.count("proven (exact)")
    tested = sum(v.startswith("proven (1 - 2^-") for v in verdicts)
    print(f"derivations: {len(derived) - len(failed)} of {len(derived)} hold: {exact} proven "
          f"exactly, {tested} by identity testing, "
          f"{verdicts.count('agrees numerically')} agree numerically (not a proof)"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    print(f"\nwritten: {out / 'index.html'}")
    return 0 if all(oc.ok for oc in outcomes) and not failed else 1


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
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
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
        f'<a href="derivations/{escape(oc.derivation_file or "")}">'
        f'{escape(oc.derivation_verdict)}</a>')
    return (f'<tr class="{status}"><td><a href="#{escape(ex.name)}">{escape(ex.title)}</a>'
            f"</td><td>{escape(ex.source)}</td><td>{fd}</td><td>{sym}</td><td>{deriv}</td>"
            f"<td>{status}</td></tr>")


def _derivation_item(name: str, ok: bool, file: str, verdict: str) -> str:
    """One derivation's list item: a link and how its claims were decided."""
    if not file.endswith(".md"):                       # the run failed: ``file`` says why
        return f"<li>{escape(name)}: <b class=FAIL>{escape(file)}</b></li>"
    shown = escape(verdict) if ok else f"<b class=FAIL>{escape(verdict)}</b>"
    return f'<li><a href="derivations/{escape(file)}">{escape(name)}</a>: {shown}</li>'


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
