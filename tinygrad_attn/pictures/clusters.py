"""Scopes as clusters: nodes and edges grouped by scope path, some scopes collapsed.

``with ta.scope("score"):`` records the scope path on every op made inside it; the
picture draws each scope as a Graphviz cluster, nested as the scopes were, and a
scope chosen by ``collapse=`` as one node (a green 3-D box) that counts the ops in it.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:  # annotations only: graphviz loads when a picture is made
    import graphviz

#: What ``draw(collapse=...)`` accepts: see :func:`collapse_rule`.
Collapse = Union[bool, str, Iterable[str], Callable[[tuple[str, ...]], bool], None]

#: Graphviz node attributes by kind of node.
STYLE = {
    "op": dict(shape="box", style="rounded,filled", fillcolor="#ffffff", color="#444444"),
    "input": dict(shape="ellipse", style="filled", fillcolor="#dbe9f8", color="#3b6ea5"),
    "param": dict(shape="box", style="filled", fillcolor="#fbe7b5", color="#a67c1b"),
    "const": dict(shape="note", style="filled", fillcolor="#f0f0f0", color="#aaaaaa",
                  fontcolor="#555555", fontsize="9"),
    "scope": dict(shape="box3d", style="filled", fillcolor="#eef3e6", color="#5b7a3a"),
    "vjp": dict(shape="box", style="rounded,filled", fillcolor="#fdeeee", color="#9c3b3b"),
    "sum": dict(shape="circle", style="filled", fillcolor="#ffffff", color="#9c3b3b",
                width="0.3", height="0.3", fixedsize="true", fontsize="12"),
}
#: Added to an output node: a double border.
OUTPUT_STYLE = dict(peripheries="2", penwidth="1.4")
#: Cluster fills by nesting depth (cycled).
CLUSTER_FILL = ("#f6f6f6", "#ececec", "#e2e2e2")


def collapse_rule(collapse: Collapse) -> Callable[[tuple[str, ...]], bool]:
    """A predicate on scope paths: True when that scope is drawn as a single node.

    ``None``/``False``: none; ``True``: every top-level scope; a name or glob pattern
    (``"head *"``) or a list of them: the scopes whose own name matches; a callable: itself.
    """
    if collapse is None or collapse is False:
        return lambda path: False
    if collapse is True:
        return lambda path: len(path) == 1
    if callable(collapse):
        return collapse
    patterns = [collapse] if isinstance(collapse, str) else list(collapse)
    for p in patterns:
        if not isinstance(p, str):
            raise TypeError(f"draw: collapse must be a bool, a scope name (glob patterns "
                            f"such as 'head *' allowed), a list of them or a predicate; "
                            f"got an element {p!r}")
    return lambda path: any(fnmatch.fnmatchcase(path[-1], p) for p in patterns)


def _collapsed_prefix(path: tuple[str, ...], rule: Callable) -> tuple[str, ...] | None:
    for k in range(1, len(path) + 1):
        if rule(path[:k]):
            return path[:k]
    return None


class ClusterBuilder:
    """Nodes and edges grouped by scope path, turned into nested clusters at the end."""

    def __init__(self, rule: Callable[[tuple[str, ...]], bool]) -> None:
        self.rule = rule
        self.nodes: dict[tuple[str, ...], list[tuple[str, str, dict]]] = {}
        self.edges: list[tuple[str, str, dict]] = []
        self.edge_set: set[tuple[str, str]] = set()
        self.collapsed: dict[tuple[str, ...], dict[str, Any]] = {}
        self.outputs: set[str] = set()

    def where(self, node_id: str, scope: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """The id a node is drawn as (a collapsed scope's id) and the cluster it sits in."""
        pre = _collapsed_prefix(scope, self.rule)
        if pre is None:
            return node_id, scope
        box = self.collapsed.setdefault(pre, {"id": "s" + str(len(self.collapsed)),
                                              "ops": 0, "out": []})
        return box["id"], pre[:-1]

    def node(self, node_id: str, scope: tuple[str, ...], label: str, style: dict,
             output: bool = False, absorb: bool = True) -> str:
        """Add a node and return the id it is drawn as.  Inside a collapsed scope an op
        is absorbed into the scope's box, while a leaf (``absorb=False``) is drawn just
        outside it."""
        drawn, cluster = self.where(node_id, scope)
        if drawn != node_id and not absorb:
            drawn = node_id
        if drawn != node_id:  # absorbed into a collapsed scope
            for box in self.collapsed.values():
                if box["id"] == drawn:
                    box["ops"] += 1
            if output:
                self.outputs.add(drawn)
            return drawn
        attrs = dict(style, **(OUTPUT_STYLE if output else {}))
        self.nodes.setdefault(cluster, []).append((node_id, label, attrs))
        return drawn

    def edge(self, a: str, b: str, **attrs: str) -> None:
        """An edge from ``a`` to ``b`` (drawn ids), once; none from a node to itself."""
        if a != b and (a, b) not in self.edge_set:
            self.edge_set.add((a, b))
            self.edges.append((a, b, attrs))

    def note_leaving(self, drawn: str, shape_text: str) -> None:
        """A value of shape ``shape_text`` leaves the collapsed box ``drawn`` (its label
        lists the first three)."""
        for box in self.collapsed.values():
            if box["id"] == drawn and shape_text not in box["out"]:
                box["out"].append(shape_text)

    def finish(self, g: graphviz.Digraph, what: str) -> None:
        """Write every node, cluster and edge into ``g``; a collapsed box reads
        ``<scope>``, ``<count> <what>`` and the shapes leaving it."""
        for path, box in self.collapsed.items():
            label = f"{path[-1]}\n{box['ops']} {what}"
            if box["out"]:
                label += "\n→ " + ", ".join(box["out"][:3])
            attrs = dict(STYLE["scope"], **(OUTPUT_STYLE if box["id"] in self.outputs else {}))
            self.nodes.setdefault(path[:-1], []).append((box["id"], label, attrs))
        clusters: list[tuple[str, ...]] = []
        for p in list(self.nodes):  # every ancestor of a populated path is a cluster too
            for k in range(1, len(p) + 1):
                if p[:k] not in clusters:
                    clusters.append(p[:k])
        order = {p: i for i, p in enumerate(clusters)}
        self._emit(g, (), clusters, order)
        for a, b, attrs in self.edges:
            g.edge(a, b, **attrs)
        self._line_up(g)

    def _line_up(self, g: Any) -> None:
        """Sibling collapsed scopes with no edges between them (the heads of multi-head
        attention) are drawn side by side in the order they were made."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for path, box in self.collapsed.items():
            groups.setdefault(path[:-1], []).append(box["id"])
        for ids in groups.values():
            if len(ids) < 2 or any(a in ids and b in ids for a, b in self.edge_set):
                continue
            with g.subgraph() as row:
                row.attr(rank="same")
                for a, b in zip(ids, ids[1:]):
                    row.edge(a, b, style="invis")

    def _emit(self, g: Any, path: tuple[str, ...], clusters: list, order: dict) -> None:
        for node_id, label, attrs in self.nodes.get(path, []):
            g.node(node_id, label, **attrs)
        for child in clusters:
            if len(child) == len(path) + 1 and child[:len(path)] == path:
                with g.subgraph(name=f"cluster_{order[child]}") as c:
                    c.attr(label=child[-1], style="rounded,filled", color="#9a9a9a",
                           fillcolor=CLUSTER_FILL[(len(child) - 1) % len(CLUSTER_FILL)],
                           fontcolor="#333333", fontsize="11", labeljust="l")
                    self._emit(c, child, clusters, order)
