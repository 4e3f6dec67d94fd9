"""One module per agent; each node builds messages, asks its role's model (`RoleModels.ask`: the call
and the parsed answer), and turns the answer into a state update."""

from mapcoder_lite.nodes.coder import coder, next_plan
from mapcoder_lite.nodes.confidence import confidence, fan_out_scores, gather_plans, rank_plans
from mapcoder_lite.nodes.debugger import debugger
from mapcoder_lite.nodes.direct import after_direct, direct, start
from mapcoder_lite.nodes.planner import fan_out_plans, planner
from mapcoder_lite.nodes.retriever import retriever
from mapcoder_lite.nodes.testing import after_tests, finish, sample_testing

__all__ = [
    "after_direct",
    "after_tests",
    "coder",
    "confidence",
    "debugger",
    "direct",
    "fan_out_plans",
    "fan_out_scores",
    "finish",
    "gather_plans",
    "next_plan",
    "planner",
    "rank_plans",
    "retriever",
    "sample_testing",
    "start",
]
