"""The package's layers, read from its imports: the rule they follow, and their picture.

Each folder (or top-level module) of ``tinygrad_attn`` is a layer with a rank
(:data:`RANKS`).  The rule: a module imports only its own layer and layers of lower
rank, so ``pictures`` and ``verify`` (both rank 3) never import each other.  The
package's own ``__init__.py`` is exempt: it loads the upper layers lazily for ``ta.draw``
and ``ta.symbolic``.  The only import cycle allowed is ``engine/tensor.py <->
engine/ops.py, engine/ops_more.py`` (:data:`ALLOWED_CYCLES`): the op table (its two
modules) builds on Tensor and Tensor's methods call the op table, joined by one commented
import at the bottom of tensor.py.

The imports are read from the source files with :mod:`ast` (relative and absolute,
inside functions too), never by importing the package, so any tree can be checked::

    python -m tinygrad_attn.pictures.architecture     # writes docs/images/architecture.svg

draws the layers with the project's own Graphviz code and prints what breaks the rule.
In the picture a subfolder of a layer (``study/derivations/``) is one node, each arrow
between layers carries its number of imports in a badge on it, and the exempt
``__init__.py`` lists its imports in its box instead of sending an arrow to every layer.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .graph import digraph, render

if TYPE_CHECKING:  # annotations only: graphviz loads when a picture is made
    import graphviz

#: The layers by rank: a module may import its own layer and layers of lower rank only.
RANKS: dict[str, float] = {"engine": 0, "attention": 1, "nn": 2, "pictures": 3, "verify": 3,
                           "study": 4, "cli": 5, "testing": 5}
#: The package's ``__init__.py``: exempt as an importer.  As a target it stands between
#: study and the command line (it re-exports every layer up to study), so only cli.py and
#: testing.py may import the package itself.
ROOT = "__init__.py"
ROOT_RANK = 4.5
#: The import cycles allowed, as sorted tuples of modules.
ALLOWED_CYCLES: tuple[tuple[str, ...], ...] = (
    ("engine/ops.py", "engine/ops_more.py", "engine/tensor.py"),)
#: Where the package's source is: the tree this module belongs to.
PACKAGE = Path(__file__).resolve().parents[1]
#: The picture in the documentation, relative to the repository root.
PICTURE = Path("docs/images/architecture.svg")


@dataclass(frozen=True)
class Import:
    """``source`` imports ``target`` (module paths relative to the package) at ``line``."""

    source: str
    target: str
    line: int


@dataclass(frozen=True)
class Violation:
    """A module outside the layer table, or an import the rule forbids."""

    source: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.why}"


def modules(root: Path = PACKAGE) -> list[str]:
    """Every ``.py`` file of the package under ``root``, as a path relative to it."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                  if "__pycache__" not in p.parts)


def layer(module: str) -> str:
    """The layer of a module path: its folder, or a top-level module's name (``cli``)."""
    first = module.split("/", 1)[0]
    return "__init__" if module == ROOT else first.removesuffix(".py")


def rank(module: str) -> float | None:
    """The rank of a module's layer; None for a module outside the layer table."""
    return ROOT_RANK if module == ROOT else RANKS.get(layer(module))


# ----------------------------------------------------------------------------- reading

def _resolve(parts: list[str], names: set[str]) -> str:
    """The module file that dotted ``parts`` (inside the package) name: a package's
    ``__init__.py`` or a ``.py`` file; the longest prefix that is one."""
    for k in range(len(parts), -1, -1):
        stem = "/".join(parts[:k])
        for candidate in (f"{stem}/__init__.py" if stem else ROOT, f"{stem}.py"):
            if candidate in names:
                return candidate
    return ROOT


def _targets(node: ast.AST, module: str, package: str, names: set[str]) -> list[str]:
    """The package modules one ``import`` or ``from ... import`` statement loads."""
    if isinstance(node, ast.Import):
        return [_resolve(a.name.split(".")[1:], names) for a in node.names
                if a.name == package or a.name.startswith(package + ".")]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        if not (node.module == package or (node.module or "").startswith(package + ".")):
            return []
        base = node.module.split(".")[1:]
    else:
        here = module.split("/")[:-1]  # the package the module sits in
        if node.level - 1 > len(here):
            return []
        base = here[:len(here) - (node.level - 1)] + (node.module or "").split(".")
        base = [p for p in base if p]
    # `from . import ops` loads the module ops.py, `from .x import f` loads x.py
    return list(dict.fromkeys(_resolve(base + [a.name], names) for a in node.names))


def read_imports(root: Path = PACKAGE) -> list[Import]:
    """Every import of a package module by a package module under ``root``, read with
    :mod:`ast`: absolute and relative, at module level or inside functions."""
    names = set(modules(root))
    found = []
    for module in sorted(names):
        tree = ast.parse((root / module).read_text(encoding="utf-8"), filename=module)
        for node in ast.walk(tree):
            for target in _targets(node, module, root.name, names):
                if target != module:
                    found.append(Import(module, target, node.lineno))
    return sorted(found, key=lambda i: (i.source, i.line, i.target))


# ----------------------------------------------------------------------------- checking

def rule_violations(root: Path = PACKAGE) -> list[Violation]:
    """The modules outside the layer table and the imports that break the layer rule."""
    bad = [Violation(m, 0, f"layer {layer(m)!r} is not in the layer table (RANKS in "
                           f"tinygrad_attn/pictures/architecture.py)")
           for m in modules(root) if rank(m) is None]
    for imp in read_imports(root):
        why = forbidden(imp)
        if why:
            bad.append(Violation(imp.source, imp.line, why))
    return bad


def forbidden(imp: Import) -> str:
    """Why the layer rule forbids ``imp``, or ``""`` when it is allowed."""
    src, dst = layer(imp.source), layer(imp.target)
    if imp.source == ROOT or src == dst or rank(imp.source) is None or rank(imp.target) is None:
        return ""
    if rank(imp.target) < rank(imp.source):
        return ""
    if {src, dst} == {"pictures", "verify"}:
        return f"imports {imp.target}: pictures and verify never import each other"
    return (f"imports {imp.target}: {src} (rank {rank(imp.source):g}) may import only its "
            f"own layer and lower ranks; {dst} is rank {rank(imp.target):g}")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules reachable from ``start`` through one import or more."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def import_cycles(imports: Sequence[Import]) -> list[tuple[str, ...]]:
    """The import cycles: each group of modules that import one another, directly or
    through others (a strongly connected component), as a sorted tuple."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
    reach = {m: _reachable(graph, m) for m in graph}
    cycles = {tuple(sorted(x for x in reach[m] if m in reach.get(x, ())))
              for m in graph if m in reach[m]}
    return sorted(cycles)


def unexpected_cycles(root: Path = PACKAGE) -> list[tuple[str, ...]]:
    """The import cycles under ``root`` other than :data:`ALLOWED_CYCLES`."""
    return [c for c in import_cycles(read_imports(root)) if c not in ALLOWED_CYCLES]


# ----------------------------------------------------------------------------- drawing

#: The colours of the picture: an arrow between layers, and an import or cycle that
#: breaks the rule.
INK, RED = "#4a5a70", "#c0392b"


def drawn_as(module: str) -> str:
    """The node a module is drawn as: itself, or the subfolder of its layer that holds
    it (``study/derivations/x.py`` -> ``study/derivations/``), drawn as one node."""
    parts = module.split("/")
    return module if len(parts) <= 2 else "/".join(parts[:2]) + "/"


def _layer_title(name: str, mods: list[str], package: str) -> str:
    """``engine/   rank 0``, ``cli.py   rank 5``; the package's own ``__init__.py``."""
    if name == "__init__":
        return f"{package}/__init__.py: the public names (exempt)"
    where = f"{name}/" if any("/" in m for m in mods) else f"{name}.py"
    return f"{where}   rank {RANKS[name]:g}" if name in RANKS else f"{where}   no rank"


def _rank_groups(root: Path) -> list[list[str]]:
    """The layers present under ``root`` grouped by rank, highest rank first (a layer
    outside the table on top)."""
    by_rank: dict[float, list[str]] = {}
    for name in sorted({layer(m) for m in modules(root)}):
        r = ROOT_RANK if name == "__init__" else RANKS.get(name, float("inf"))
        by_rank.setdefault(r, []).append(name)
    return [by_rank[r] for r in sorted(by_rank, reverse=True)]


def _layer_nodes(c: graphviz.Digraph, mods: list[str]) -> list[str]:
    """The nodes of one layer's modules in cluster ``c``: a module by its file name, a
    subfolder as one folder-shaped node counting its modules.  Returns the node names,
    the modules first."""
    names = sorted(dict.fromkeys(map(drawn_as, mods)), key=lambda n: (n.endswith("/"), n))
    for n in names:
        if n.endswith("/"):
            count = sum(drawn_as(m) == n for m in mods)
            c.node(n, f"{n.split('/')[-2]}/\n{count} modules", shape="folder",
                   style="filled", fillcolor="#f7f9fc")
        else:
            c.node(n, n.rsplit("/", 1)[-1])
    return names


def _add_layer(g: graphviz.Digraph, index: int, name: str, mods: list[str],
               package: str, note: str = "", per_row: int = 5) -> tuple[str, str]:
    """Cluster ``index``: the layer's modules (and a ``note`` in small grey type after
    them) in rows of at most ``per_row``, as even as can be.  Returns the middle node of
    the top row and of the bottom row: the arrows between layers end at the first and
    start at the second, so they enter a layer from above and leave it below."""
    fill = "#fbf3dc" if name == "__init__" else "#eef3f9" if name in RANKS else "#fdeeee"
    with g.subgraph(name=f"cluster_{index}") as c:
        c.attr(label=_layer_title(name, mods, package), style="rounded,filled",
               color="#8a9bb0", fillcolor=fill, fontsize="12", labeljust="l",
               fontcolor="#333333")
        names = _layer_nodes(c, mods)
        if note:
            c.node(f"{name} note", note, shape="plaintext", style="", fontsize="9",
                   fontcolor="#555555")
            names.append(f"{name} note")
        width = -(-len(names) // -(-len(names) // per_row))  # ceil(n / number of rows)
        rows = [names[k:k + width] for k in range(0, len(names), width)]
        for row in (row for row in rows if len(row) > 1):
            with c.subgraph() as r:
                r.attr(rank="same")
                for a, b in zip(row, row[1:]):  # in alphabetical order
                    r.edge(a, b, style="invis")
        middle = [row[(len(row) - 1) // 2] for row in rows]
        for a, b in zip(middle, middle[1:]):
            c.edge(a, b, style="invis", weight="8")
    return middle[0], middle[-1]


def _between_layers(imports: Sequence[Import]) -> dict[tuple[str, str], list[Import]]:
    """The imports from one layer into another, by (importing layer, imported layer)."""
    between: dict[tuple[str, str], list[Import]] = {}
    for i in imports:
        if layer(i.source) != layer(i.target):
            between.setdefault((layer(i.source), layer(i.target)), []).append(i)
    return dict(sorted(between.items()))


def _layer_edges(g: graphviz.Digraph, imports: Sequence[Import], order: list[str],
                 ends: dict[str, tuple[str, str]]) -> None:
    """An arrow from layer to layer, cluster border to cluster border, through a small
    badge on it holding its number of imports; where the rule forbids one of them, a red,
    heavier arrow with the number beside it, left out of the layout (it may point up).
    The exempt face's arrows are not drawn: its cluster lists what it imports
    (:func:`face_summary`)."""
    for (a, b), found in _between_layers(imports).items():
        if a == "__init__":
            continue
        tail = dict(ltail=f"cluster_{order.index(a)}")
        head = dict(lhead=f"cluster_{order.index(b)}")
        if any(forbidden(i) for i in found):
            g.edge(ends[a][1], ends[b][0], xlabel=f" {len(found)} ", color=RED, fontcolor=RED,
                   penwidth="1.8", constraint="false", **tail, **head)
            continue
        badge = f"imports {a} {b}"
        g.node(badge, str(len(found)), shape="box", style="rounded,filled", fontsize="9",
               fillcolor="#ffffff", color=INK, width="0", height="0", margin="0.04,0.01")
        weight = str(len(found))  # the heavier arrows run straighter
        g.edge(ends[a][1], badge, arrowhead="none", weight=weight, **tail)
        g.edge(badge, ends[b][0], weight=weight, **head)


def face_summary(imports: Sequence[Import]) -> str:
    """What the exempt ``__init__.py`` imports, written in its cluster instead of drawn
    as arrows: ``imports engine/ (1), attention/ (1), ...`` with the number of imports
    from each layer; ``""`` when it imports none."""
    found = Counter(layer(i.target) for i in imports if i.source == ROOT)
    if not found:
        return ""
    names = sorted(found, key=lambda n: (RANKS.get(n, float("inf")), n))
    listed = ", ".join(f"{n}{'/' if n != 'nn' else '.py'} ({found[n]})" for n in names)
    return f"imports {listed}\nto re-export them (listed here, not drawn as arrows)"


def _module_edges(g: graphviz.Digraph, imports: Sequence[Import]) -> None:
    """The modules of each import cycle, joined by dashed arrows: grey for the allowed
    cycle, red for any other (a loop on a subfolder's node when the cycle is inside it)."""
    for cycle in import_cycles(imports):
        allowed = cycle in ALLOWED_CYCLES
        pairs = sorted({(drawn_as(i.source), drawn_as(i.target)) for i in imports
                        if i.source in cycle and i.target in cycle})
        for k, (a, b) in enumerate(pairs):  # the first arrow names the cycle
            label = "" if k else " allowed cycle" if allowed else " cycle"
            g.edge(a, b, style="dashed", constraint="false", fontsize="9", label=label,
                   color="#888888" if allowed else RED,
                   fontcolor="#666666" if allowed else RED)


def draw_layers(root: Path = PACKAGE) -> graphviz.Digraph:
    """The layers under ``root`` as a ``graphviz.Digraph``: a cluster per layer, highest
    rank on top, a subfolder of a layer as one node; an arrow from layer to layer with
    its number of imports on it, red where the rule forbids it; the exempt face's imports
    listed in its cluster; the modules of a cycle joined by dashed arrows."""
    imports, groups = read_imports(root), _rank_groups(root)
    g = digraph("architecture")
    g.attr(rankdir="TB", compound="true", newrank="true", nodesep="0.2", ranksep="0.22",
           fontname="Helvetica", labelloc="t", fontsize="14",
           label=f"{root.name}, layer by layer: a module imports only its own layer and "
                 "lower ranks\n(an arrow: the imports from one layer into another, their "
                 "number on it; a subfolder is one node)")
    g.attr("node", fontname="Helvetica", fontsize="10", shape="box", style="rounded,filled",
           fillcolor="#ffffff", color="#8a8a8a", height="0.26", margin="0.06,0.02")
    g.attr("edge", fontname="Helvetica", fontsize="10", color=INK, arrowsize="0.7")
    order = [name for group in groups for name in group]
    notes = {"__init__": face_summary(imports)}
    ends = {name: _add_layer(g, i, name, [m for m in modules(root) if layer(m) == name],
                             root.name, notes.get(name, "")) for i, name in enumerate(order)}
    for group in groups:  # the layers of one rank side by side, top rows level
        with g.subgraph() as same:
            same.attr(rank="same")
            for name in group:
                same.node(ends[name][0])
    for upper, lower in zip(groups, groups[1:]):  # stack the ranks top to bottom
        for a in upper:
            for b in lower:
                g.edge(ends[a][1], ends[b][0], style="invis", weight="2")
    _layer_edges(g, imports, order, ends)
    _module_edges(g, imports)
    return g


def picture_digest(g: graphviz.Digraph) -> str:
    """A digest of a picture's DOT source; the written SVG carries it in a comment, so a
    test can tell that a committed picture is what the code draws now."""
    return hashlib.sha256(g.source.encode("utf-8")).hexdigest()[:16]


def write_picture(path: str | Path = PICTURE, root: Path = PACKAGE,
                  renderer: str = "auto") -> Path:
    """Draw the layers under ``root`` and write the picture to ``path`` (the format by
    suffix, as ``ta.render``), with the digest of its DOT source in an SVG comment."""
    g = draw_layers(root)
    g.attr(comment=f"architecture digest {picture_digest(g)}")
    return render(g, path, renderer=renderer)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tinygrad_attn.pictures.architecture [PATH]``: write the picture, print
    the rule's violations and the cycles; exit status 1 if anything breaks the rule."""
    parser = argparse.ArgumentParser(prog="python -m tinygrad_attn.pictures.architecture",
                                     description="draw the package's layers; check the rule")
    parser.add_argument("path", nargs="?", default=str(PICTURE), help=f"default {PICTURE}")
    parser.add_argument("--root", default=str(PACKAGE), help="the package folder to read")
    args = parser.parse_args(argv)
    root = Path(args.root)
    print(write_picture(args.path, root))
    bad, cycles = rule_violations(root), unexpected_cycles(root)
    for v in bad:
        print("violation:", v)
    for c in cycles:
        print("cycle:", " <-> ".join(c))
    allowed = [c for c in import_cycles(read_imports(root)) if c in ALLOWED_CYCLES]
    print(f"{len(bad)} violations, {len(cycles)} cycles besides the allowed "
          f"{', '.join(' <-> '.join(c) for c in allowed) or '(none present)'}")
    return 1 if bad or cycles else 0


if __name__ == "__main__":
    raise SystemExit(main())
