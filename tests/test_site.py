"""The guide works offline and renders right.

The site is built once with ``mkdocs build --strict``; its HTML is then read for what a
reader would see broken: a script or stylesheet fetched from the network, raw ``$`` or
``\\(`` outside rendered math (math the renderer never saw), an image whose file is missing.
A few pages are then opened in headless Chromium with every host name unresolvable (no
network): the formulas must have been typeset by the shipped MathJax. Their screenshots are
kept in ``$TINYGRAD_ATTN_SCREENSHOTS`` (``.ci/run`` sets it: CI artefacts).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# page -> must it carry formulas (the typeset count is checked on every page)
PAGES_IN_CHROMIUM = {"index.html": True, "graphs/index.html": False,
                     "mechanisms/index.html": True, "derivations/additive/index.html": True,
                     "derivations/scaled_dot_product/index.html": True,
                     "derivations/claim_expectation/index.html": True}

MATH = re.compile(r'<(span|div) class="(?:arithmatex|md-ellipsis)">.*?</\1>', re.S)
VERBATIM = re.compile(r"<(pre|code|script|style|textarea)\b[^>]*>.*?</\1>", re.S)
REMOTE = re.compile(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"')
IMAGE = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"')


def page_problems(html: str, page: Path, site: Path) -> list[str]:
    """What a reader of this page would see broken (empty if nothing)."""
    name = page.relative_to(site).as_posix()
    problems = [f"{name}: loads {url} from the network" for url in REMOTE.findall(html)]
    text = MATH.sub("", VERBATIM.sub("", html))
    for token in ("$", "\\(", "\\["):
        k = text.find(token)
        if k >= 0:
            context = re.sub(r"\s+", " ", text[max(0, k - 60):k + 40])
            problems.append(f"{name}: raw {token!r} outside rendered math: ...{context}...")
    for src in IMAGE.findall(html):
        if src.startswith("data:") or "//" in src:
            continue
        target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
        if not target.is_file():
            problems.append(f"{name}: broken image {src}")
    return problems


def site_problems(site: Path) -> list[str]:
    """Every page's problems."""
    out: list[str] = []
    for page in sorted(site.rglob("*.html")):
        out += page_problems(page.read_text(encoding="utf-8"), page, site)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                          "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out


def test_the_site_fetches_nothing_and_shows_no_raw_math_or_broken_image(site):
    assert (site / "javascripts/mathjax/tex-svg-full.js").stat().st_size > 1_000_000
    assert site_problems(site) == []


def test_the_checker_reports_each_kind_of_problem(tmp_path):
    (tmp_path / "img.png").write_bytes(b"png")
    page = tmp_path / "page.html"
    good = ('<p>x <span class="arithmatex">\\(a_i\\)</span> costs <code>$5</code></p>'
            '<img src="img.png"><script>var s = "$";</script>')
    assert page_problems(good, page, tmp_path) == []
    bad = ('<script src="https://cdn.example.org/mathjax.js"></script>'
           '<p>so $<span class="arithmatex">\\(x\\)</span>$ and \\(y\\)</p><img src="nope.png">')
    found = "\n".join(page_problems(bad, page, tmp_path))
    assert "loads https://cdn.example.org/mathjax.js" in found
    assert "raw '$'" in found and "raw '\\\\('" in found
    assert "broken image nope.png" in found


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "headless Chromium is needed (Debian: apt-get install chromium)"
    return exe


def open_offline(page: Path, *extra: str) -> str:
    """Open a page in headless Chromium with no network; return its DOM after scripts ran."""
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000", *extra,
            page.as_uri()]
    run = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.parametrize("name", PAGES_IN_CHROMIUM)
def test_formulas_are_typeset_offline_in_chromium(site, name, tmp_path):
    dom = open_offline(site / name, "--dump-dom")
    spans = len(re.findall(r'class="arithmatex"', dom))
    typeset = len(re.findall(r"<mjx-container", dom))
    assert spans > 0 or not PAGES_IN_CHROMIUM[name]
    assert typeset >= spans, f"{spans - typeset} formulas of {name} were not typeset"
    assert not re.search(r'<g[^>]*data-mml-node="merror"', dom), "a TeX error in " + name
    shots = Path(os.environ.get("TINYGRAD_ATTN_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / ((name.removesuffix("index.html").strip("/") or "home").replace("/", "_")
                   + ".png")
    open_offline(site / name, "--window-size=1280,1600", f"--screenshot={png}")
    assert png.stat().st_size > 10_000


def test_a_page_whose_renderer_comes_from_a_cdn_is_caught_offline(site, tmp_path):
    """The Chromium probe can fail: the same page with MathJax from a CDN stays untypeset."""
    page = site / "derivations/additive/index.html"
    html = page.read_text(encoding="utf-8").replace(
        "../../javascripts/mathjax/tex-svg-full.js",
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg-full.js")
    copy = page.with_name("cdn.html")
    copy.write_text(html, encoding="utf-8")
    dom = open_offline(copy, "--dump-dom")
    assert re.findall(r'class="arithmatex"', dom) and "<mjx-container" not in dom
    assert any("loads https://cdn.jsdelivr.net" in p for p in page_problems(html, copy, site))


def test_the_main_jobs_derivation_pages_render_offline(tmp_path):
    """``study.pages``: each derivation .md becomes an .html page whose formulas MathJax
    (copied beside the pages) typesets with no network; .md links point to .html."""
    from tinygrad_attn.study.pages import render_folder

    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / "a.md").write_text(
        "# Page A\n\n1. **Step.** so\n   $$\\bar V = P^\\top \\bar O .$$\n2. see [b](b.md) "
        "and `$not math$`, with $x_i < y$.\n\n| a | b |\n|---|---|\n| $\\lvert i \\rvert$ "
        "| 1 |\n", encoding="utf-8")
    (folder / "b.md").write_text("# B\n\nback to [a](a.md#step)\n", encoding="utf-8")
    written = render_folder(folder)
    assert {p.name for p in written} >= {"a.html", "b.html", "tex-svg-full.js"}
    page = (folder / "a.html").read_text(encoding="utf-8")
    assert 'href="b.html"' in page and "<code>$not math$</code>" in page
    assert "x_i &lt; y" in page and problems_outside_math(page) == []
    assert 'href="a.html#step"' in (folder / "b.html").read_text(encoding="utf-8")
    dom = open_offline(folder / "a.html", "--dump-dom")
    assert len(re.findall(r"<mjx-container", dom)) == 3


def problems_outside_math(html: str) -> list[str]:
    """Raw math delimiters left outside rendered math in one page."""
    text = MATH.sub("", VERBATIM.sub("", html))
    return [t for t in ("$", "\\(", "\\[") if t in text]
