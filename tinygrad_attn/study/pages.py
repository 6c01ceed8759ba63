"""Markdown pages rendered to HTML that read right offline: the main job's derivations.

The formulas are typeset in the reader's browser by MathJax 3, which is copied next to
the pages from the installed ``sphinx-mathjax-offline`` package (PyPI's packaging of
MathJax; the same copy the guide ships), so nothing is fetched from the network. Links
between the Markdown pages point to their HTML versions; the guide pages the derivations
cite (``../docs/NAME.md``) are rendered beside them when the guide's sources are at hand
(a checkout), with the images they show.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"

# $$ display $$ first, then $ inline $ (not across a blank line); code spans and fenced
# blocks are set aside before either is looked for.
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)\$")
IMAGE = re.compile(r"!\[[^\]]*\]\((?!https?:)([^)\s]+)\)")
MD_LINK = re.compile(r"\]\((?!https?:)([^)#\s]+)\.md(#[^)]*)?\)")

STYLE = """body{font:16px/1.55 system-ui,sans-serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#222}code,pre{font-family:ui-monospace,monospace;font-size:.9em}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.25em .6em}div.arithmatex{overflow-x:auto}
nav{font-size:.9em;margin-bottom:1.5em}"""


MATHJAX_FILE = "tex-svg-full.js"          # one self-contained file; SVG needs no fonts
MATHJAX_CONFIG = """window.MathJax = {tex: {inlineMath: [["\\\\(", "\\\\)"]],
displayMath: [["\\\\[", "\\\\]"]], processEscapes: true},
options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"}};"""


def mathjax_source() -> Path:
    """The installed MathJax 3 file (from the package ``sphinx-mathjax-offline``)."""
    import importlib.metadata

    try:
        files = importlib.metadata.files("sphinx-mathjax-offline") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == MATHJAX_FILE:
            return Path(f.locate())
    raise RuntimeError("MathJax comes from the package 'sphinx-mathjax-offline', which is "
                       "not installed: pip install sphinx-mathjax-offline")


def math_span(tex: str, display: bool) -> str:
    """A formula as MathJax finds it: TeX in a span (or div) of class ``arithmatex``."""
    tex = html.escape(tex.strip(), quote=False)
    return (f'<div class="arithmatex">\\[{tex}\\]</div>' if display
            else f'<span class="arithmatex">\\({tex}\\)</span>')


def render_markdown(text: str) -> str:
    """The HTML body of a Markdown page whose formulas are written ``$...$`` / ``$$...$$``."""
    import markdown

    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return f"KEPT{len(kept) - 1}ZZ"       # letters and digits: Markdown leaves them

    text = CODE.sub(lambda m: keep(m.group(0)), text)
    text = DISPLAY.sub(lambda m: keep(math_span(m.group(1), True)), text)
    text = INLINE.sub(lambda m: keep(math_span(m.group(1), False)), text)
    text = MD_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(2) or ''})", text)
    # code went back in before Markdown sees it (it must format it); math after
    text = re.sub(r"KEPT(\d+)ZZ", lambda m: kept[int(m.group(1))]
                  if kept[int(m.group(1))].startswith("`") else m.group(0), text)
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    return re.sub(r"KEPT(\d+)ZZ", lambda m: kept[int(m.group(1))], body)


def html_page(markdown_file: str) -> str:
    """The name of the HTML page :func:`render_folder` writes for ``NAME.md``."""
    return markdown_file[:-3] + ".html" if markdown_file.endswith(".md") else markdown_file


def page(title: str, body: str, mathjax: str, home: str | None = None) -> str:
    """A whole HTML page around ``body``; ``mathjax`` is the relative path of MathJax."""
    nav = f'<nav><a href="{html.escape(home)}">back to the report</a></nav>' if home else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title><style>{STYLE}</style>"
            f'<script>{MATHJAX_CONFIG}</script><script src="{html.escape(mathjax)}" defer>'
            f"</script></head><body>{nav}{body}</body></html>\n")


def render_folder(folder: Path, home: str | None = "../index.html") -> list[Path]:
    """Every ``NAME.md`` in ``folder`` written as ``NAME.html`` beside it; the guide pages
    they link (``../docs/NAME.md``) rendered into ``folder/../docs`` when found; MathJax
    copied to ``folder/../mathjax``. Returns the files written."""
    folder = Path(folder)
    mathjax = folder.parent / "mathjax" / MATHJAX_FILE
    mathjax.parent.mkdir(exist_ok=True)
    mathjax.write_bytes(mathjax_source().read_bytes())
    src = f"../mathjax/{MATHJAX_FILE}"
    written = [mathjax]
    cited: set[str] = set()
    for md in sorted(folder.glob("*.md")):
        text = md.read_text(encoding="utf-8")
        cited |= set(re.findall(r"\]\(\.\./docs/([\w-]+)\.md", text))
        title = next((ln[2:] for ln in text.splitlines() if ln.startswith("# ")), md.stem)
        target = md.with_suffix(".html")
        target.write_text(page(title, render_markdown(text), src, home), encoding="utf-8")
        written.append(target)
    docs_out = folder.parent / "docs"
    for name in sorted(cited):
        source = DOCS / f"{name}.md"
        if source.is_file():
            docs_out.mkdir(exist_ok=True)
            text = source.read_text(encoding="utf-8")
            target = docs_out / f"{name}.html"
            target.write_text(page(name, render_markdown(text), src, home), encoding="utf-8")
            written.append(target)
            written += copy_images(text, DOCS, docs_out)
    return written


def copy_images(text: str, source: Path, target: Path) -> list[Path]:
    """The local images a Markdown page shows, copied from ``source`` to ``target``."""
    copied = []
    for rel in IMAGE.findall(text):
        src = source / rel
        if src.is_file():
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            copied.append(dst)
    return copied
