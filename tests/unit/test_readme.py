"""The README's diagram stays true to the compiled graph."""

from __future__ import annotations

import re
from pathlib import Path

from mapcoder_lite.graph import graph

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_diagram_has_every_node_and_edge_of_the_graph() -> None:
    diagram = re.search(r"```mermaid\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    drawn = graph.get_graph()
    for node in drawn.nodes:
        if not node.startswith("__"):
            assert re.search(rf"\b{node}\b", diagram), f"README diagram lacks node {node}"
    for edge in drawn.edges:
        if edge.source.startswith("__") or edge.target.startswith("__"):
            continue
        assert re.search(rf"\b{edge.source}\b[^\n]*-->\s*{edge.target}\b", diagram), (
            f"README diagram lacks edge {edge.source} -> {edge.target}"
        )
