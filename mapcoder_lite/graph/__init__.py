"""The graph: its state, its runtime context, and its wiring."""

from mapcoder_lite.graph.context import ROLES, Context
from mapcoder_lite.graph.graph import build_graph, graph
from mapcoder_lite.graph.state import InputState, OutputState, State

__all__ = ["ROLES", "Context", "InputState", "OutputState", "State", "build_graph", "graph"]
