"""The main job, ``tinygrad-attn demo``: every built-in mechanism run, gradient-checked
three ways, its derivation proven, its graphs drawn, all written to one folder with an
``index.html`` that links everything.
"""
from __future__ import annotations

import html
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import attention as A
from ..verify.gradcheck import GradcheckReport, gradcheck
from ..engine import Tensor


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
    example: Example
    report: GradcheckReport | None = None
    derivation_ok: bool | None = None
    derivation_file: str | None = None
    graphs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.errors and self.report is not None and self.report.ok
                and self.derivation_ok is not False)


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, width: int = 28) -> None:
        self.total, self.width, self.done = total, width, 0
        self.tty = sys.stderr.isatty()

    def show(self, what: str) -> None:
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} {what}"
        if self.tty:
            sys.stderr.write("\r" + line[:100].ljust(100))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def step(self, what: str) -> None:
        self.done += 1
        self.show(what)

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


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


def _derive(name: str, folder: Path) -> tuple[bool, str]:
    from .derivations import run

    result = run(name, folder)
    return bool(result.ok), Path(result.path).name


def run_demo(out: Path, symbolic: bool = True, examples: list[Example] | None = None,
             derivations: list[str] | None = None, pictures: list[str] | None = None) -> int:
    """Run every example (default :data:`EXAMPLES`) and derivation (default all) into
    ``out``; print a summary; return the exit code (1 if anything fails)."""
    out = Path(out)
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    (out / "derivations").mkdir(parents=True, exist_ok=True)
    from .derivations import NAMES

    examples = EXAMPLES if examples is None else examples
    derivations = list(NAMES) if derivations is None else derivations
    from .claim_pictures import PICTURES, write_pictures

    pictures = list(PICTURES) if pictures is None else pictures
    progress = Progress(len(examples) * 2 + len(derivations) + 1)
    outcomes = []
    derived: dict[str, tuple[bool, str]] = {}
    for name in derivations:
        progress.show(f"derivation {name}")
        try:
            derived[name] = _derive(name, out / "derivations")
        except Exception as exc:  # reported in the table, the run goes on
            derived[name] = (False, f"error: {type(exc).__name__}: {exc}")
        progress.step(f"derivation {name}")
    for ex in examples:
        t0 = time.perf_counter()
        oc = Outcome(ex)
        progress.show(f"{ex.name}: gradcheck")
        try:
            oc.report = _check(ex, symbolic)
        except Exception as exc:
            oc.errors.append(f"gradcheck: {type(exc).__name__}: {exc}")
        progress.step(f"{ex.name}: graphs")
        try:
            oc.graphs = _graphs(ex, out / "graphs")
        except Exception as exc:
            oc.errors.append(f"graphs: {type(exc).__name__}: {exc}")
        if ex.derivation in derived:
            oc.derivation_ok, oc.derivation_file = derived[ex.derivation]
        oc.seconds = time.perf_counter() - t0
        outcomes.append(oc)
        progress.step(ex.name)
    progress.show("pictures of the claims")
    try:
        write_pictures(out / "claims", pictures)
    except Exception as exc:
        outcomes.append(Outcome(Example("claims", "pictures of the claims", "", {}, print),
                                errors=[f"pictures: {type(exc).__name__}: {exc}"]))
    progress.step("pictures of the claims")
    progress.close()
    (out / "index.html").write_text(_index_html(outcomes, derived, pictures, out, symbolic))
    print(_summary(outcomes, symbolic))
    failed = [f"{n} ({f})" for n, (ok, f) in derived.items() if not ok]
    print(f"derivations: {len(derived) - len(failed)} of {len(derived)} proven"
          + (f"; NOT proven: {', '.join(failed)}" if failed else ""))
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
        deriv = "-" if oc.derivation_ok is None else ("proven" if oc.derivation_ok else "FAIL")
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


def _index_html(outcomes: list[Outcome], derived: dict[str, tuple[bool, str]],
                pictures: list[str], out: Path, symbolic: bool) -> str:
    esc = html.escape
    rows = []
    for oc in outcomes:
        fd, sym = _worst(oc.report, symbolic)
        ex = oc.example
        deriv = "-" if oc.derivation_ok is None else (
            f'<a href="derivations/{esc(oc.derivation_file or "")}">'
            f'{"proven" if oc.derivation_ok else "FAILED"}</a>')
        status = "ok" if oc.ok else "FAIL"
        rows.append(f'<tr class="{status}"><td><a href="#{ex.name}">{esc(ex.title)}</a></td>'
                    f"<td>{esc(ex.source)}</td><td>{fd}</td><td>{sym}</td><td>{deriv}</td>"
                    f"<td>{status}</td></tr>")
    sections = []
    for oc in outcomes:
        ex = oc.example
        shapes = ", ".join(f"{n}: {'×'.join(map(str, s))}" for n, s in ex.shapes.items())
        svgs = []
        for g in oc.graphs:
            svg = (out / "graphs" / g).read_text()
            svg = svg[svg.find("<svg"):]  # inline: drop the XML prolog and doctype
            svgs.append(f'<figure><a href="graphs/{g}">{svg}</a>'
                        f"<figcaption>{esc(g)}</figcaption></figure>")
        report = esc(str(oc.report)) if oc.report is not None else ""
        errors = "".join(f"<p class=FAIL>{esc(e)}</p>" for e in oc.errors)
        sections.append(f'<section id="{ex.name}"><h2>{esc(ex.title)}</h2>'
                        f"<p>{esc(ex.source)}; inputs {esc(shapes)}</p>{errors}"
                        f"<pre>{report}</pre><div class=graphs>{''.join(svgs)}</div></section>")
    passed = sum(oc.ok for oc in outcomes)
    deriv_items = "".join(
        f'<li><a href="derivations/{esc(f)}">{esc(n)}</a>: '
        f'{"all claims proven" if ok else "<b class=FAIL>NOT proven</b>"}</li>'
        if f.endswith(".md") else f"<li>{esc(n)}: <b class=FAIL>{esc(f)}</b></li>"
        for n, (ok, f) in derived.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tinygrad_attn demo</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .3em .8em; border: 1px solid #ccc; }}
tr.FAIL, .FAIL {{ color: #b00; font-weight: bold; }}
pre {{ background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 85%; }}
.graphs {{ display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }}
figure svg {{ max-width: 560px; height: auto; }}
</style></head><body>
<h1>tinygrad_attn: every mechanism checked</h1>
<p>{passed} of {len(outcomes)} mechanisms pass. Each is gradient-checked three ways: the
engine's backward, central finite differences in float64{', and SymPy’s exact gradient'
if symbolic else ''}; its derivation (closed matrix form vs SymPy's entrywise derivative,
and the engine's backward vs both) is proven at explicit sizes.</p>
<table><tr><th>mechanism</th><th>paper</th><th>max |engine − FD|</th>
<th>max |engine − SymPy|</th><th>derivation</th><th>result</th></tr>
{''.join(rows)}</table>
<h2>Derivations</h2>
<p>Each derivation states a mechanism, derives its gradients step by step, states the
closed matrix form, and proves it equal to SymPy's entrywise derivative and to the
engine's backward (Markdown with LaTeX).</p>
<ul>{deriv_items}</ul>
<h2>What attention is: the claims, pictured</h2>
<p>The context is an expectation; self-attention is a convolution whose kernel is computed
from the data; cross attention is masked self-attention; causal masking; attention over
image patches; the O(n²) cost. Each claim is proven in its <code>claim_*</code>
derivation above.</p>
<div class=graphs>{''.join(f'<figure><a href="claims/{esc(p)}"><img src="claims/{esc(p)}" '
                             f'width="520"></a><figcaption>{esc(p)}</figcaption></figure>'
                             for p in pictures)}</div>
{''.join(sections)}
</body></html>
"""
