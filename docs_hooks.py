"""MkDocs hooks for the guide.

- The derivations (derivations/*.md, linked into docs/ by a symlink) link to the guide as
  ../docs/PAGE.md, which is right on GitHub; on the site they sit inside docs/, so those
  links become ../PAGE.md.
- Display math (``$$ ... $$``) written inside a paragraph or a list item is made a block of
  its own (blank lines around it, the list item's indentation kept): pymdownx.arithmatex
  recognises display math only at the start of a block, and would otherwise read the two
  dollars as an empty inline formula and leave a stray ``$`` on each side.
- The math renderer ships with the site: MathJax's ``tex-svg-full.js`` (one self-contained
  file; the SVG output needs no web fonts) is copied from the installed
  ``sphinx-mathjax-offline`` package (PyPI, a packaging of MathJax 3; the main job's pages
  use the same copy, :mod:`tinygrad_attn.study.pages`) into ``javascripts/mathjax/``, so a
  reader's browser never fetches anything from the network.
"""

from __future__ import annotations

from mkdocs.structure.files import File

from tinygrad_attn.study.pages import MATHJAX_FILE, mathjax_source

MATHJAX_DEST = "javascripts/mathjax"


def isolate_display_math(markdown: str) -> str:
    """Put every ``$$ ... $$`` display in a block of its own, separated by blank lines.

    Inside a list item written with a 3-space continuation indent (right on GitHub),
    Python-Markdown needs 4 spaces for a second block of the item: the display and the
    item's lines after it are indented to 4. Code blocks (``` fences) are left alone. A
    display that opens after text on the same line is not handled (none is written so);
    the site test finds any stray ``$``."""
    out: list[str] = []
    lines = markdown.split("\n")
    in_fence, k = False, 0
    while k < len(lines):
        line = lines[k]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if in_fence or not stripped.startswith("$$"):
            out.append(line)
            k += 1
            continue
        indent = len(line) - len(stripped)
        shift = " " * (4 - indent) if 0 < indent < 4 else ""
        end = k
        while lines[end].count("$$") % 2 == (1 if end == k else 0) and end + 1 < len(lines):
            end += 1
        if out and out[-1].strip():
            out.append("")
        out.extend(shift + x for x in lines[k:end + 1])
        k = end + 1
        if k < len(lines) and lines[k].strip():
            out.append("")
        rest = k
        while shift and k < len(lines) and lines[k].strip() and \
                len(lines[k]) - len(lines[k].lstrip()) >= indent:
            out.append(shift + lines[k])
            k += 1
        if k > rest and k < len(lines) and lines[k].strip():
            out.append("")
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):  # noqa: D103 - MkDocs hook signature
    if page.file.src_uri.startswith("derivations/"):
        markdown = markdown.replace("](../docs/", "](../")
    return isolate_display_math(markdown)


def on_files(files, config):  # noqa: D103 - MkDocs hook signature
    files.append(File(MATHJAX_FILE, str(mathjax_source().parent), config["site_dir"] + "/"
                      + MATHJAX_DEST, use_directory_urls=False))
    return files
