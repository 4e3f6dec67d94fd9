"""The MapCoder-Lite graph, wired as the diagram reads.

START -> direct (Context.direct_first) -> finish             (its code passes the samples)
                                       -> retriever           (else; and START -> retriever without it)
retriever -> planner x k (parallel, `Send`) -> gather_plans -> confidence x (plans to score) -> rank_plans
          (Context.plan_diversity scores one plan of each text, none when one text is left)
rank_plans -> coder -> sample_testing
sample_testing -> finish            (the samples pass, or no plan is left)
               -> debugger -> sample_testing   (at most t rounds per plan)
               -> next_plan -> coder
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from mapcoder_lite.graph.context import Context
from mapcoder_lite.graph.state import InputState, OutputState, State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.nodes import (
    after_direct,
    after_tests,
    coder,
    confidence,
    debugger,
    direct,
    fan_out_plans,
    fan_out_scores,
    finish,
    gather_plans,
    next_plan,
    planner,
    rank_plans,
    retriever,
    sample_testing,
    start,
)


def build_graph(
    chat_models: Mapping[str, BaseChatModel] | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """Compile the graph. `chat_models` maps a role to a chat model used instead of the endpoint."""
    models = RoleModels(chat_models)
    builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)

    builder.add_node("direct", partial(direct, models=models))
    builder.add_node("retriever", partial(retriever, models=models))
    builder.add_node("planner", partial(planner, models=models))
    builder.add_node("gather_plans", gather_plans)
    builder.add_node("confidence", partial(confidence, models=models))
    builder.add_node("rank_plans", rank_plans)
    builder.add_node("coder", partial(coder, models=models))
    builder.add_node("sample_testing", sample_testing)
    builder.add_node("debugger", partial(debugger, models=models))
    builder.add_node("next_plan", next_plan)
    builder.add_node("finish", finish)

    builder.add_conditional_edges(START, start, ["direct", "retriever"])
    builder.add_conditional_edges("direct", after_direct, ["finish", "retriever"])
    builder.add_conditional_edges("retriever", fan_out_plans, ["planner"])
    builder.add_edge("planner", "gather_plans")  # one step after every planner branch has written
    builder.add_conditional_edges("gather_plans", fan_out_scores, ["confidence", "rank_plans"])
    builder.add_edge("confidence", "rank_plans")
    builder.add_edge("rank_plans", "coder")
    builder.add_edge("coder", "sample_testing")
    builder.add_conditional_edges("sample_testing", after_tests, ["finish", "debugger", "next_plan"])
    builder.add_edge("debugger", "sample_testing")
    builder.add_edge("next_plan", "coder")
    builder.add_edge("finish", END)

    compiled = builder.compile(checkpointer=checkpointer)
    compiled.name = "MapCoder-Lite"
    return compiled


# Exported by langgraph.json; compiled without a checkpointer so `langgraph dev` can add its own.
graph = build_graph()
