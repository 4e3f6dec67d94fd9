"""A parent graph with its own state that runs MapCoder-Lite as a subgraph and waits for a human review.

    task (a statement with samples) -> solve (MapCoder-Lite, nested) -> review (interrupt) -> answer

The parent knows nothing of MapCoder-Lite's state: `as_subgraph` maps its `task` to the graph's
input and the graph's output back to `code`, `passed`, `summary`. With a checkpointer the run pauses
at `review`; resuming with `Command(resume=True)` (or `{"approved": False, "note": "..."}`) goes
on from there without running the agents again. `langgraph.json` exports it as `solve_and_review`:

    graph = build(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    graph.invoke({"task": Path("examples/two_sum.md").read_text()}, config, context=Context(k=1))
    graph.invoke(Command(resume=True), config)["answer"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from mapcoder_lite.compose import as_subgraph, result_of
from mapcoder_lite.graph import Context
from mapcoder_lite.problem import parse_statement


class ReviewInput(TypedDict):
    task: str  # a Markdown or plain-text statement with its samples, as `mapcoder-lite solve` reads it


class ReviewOutput(TypedDict):
    code: str
    passed: bool
    summary: str
    llm_calls: int
    approved: bool
    note: str
    answer: str


class ReviewState(ReviewInput, ReviewOutput, total=False):
    """The app's own state: nothing of MapCoder-Lite's plans or trajectory is kept."""


def task_to_problem(state: ReviewState) -> dict[str, Any]:
    # A task without samples fails here, before any model call, with what to add.
    return dict(parse_statement(state["task"], "task"))


def output_to_state(output: dict[str, Any]) -> dict[str, Any]:
    # `seconds` is 0 here: the parent keeps the outcome, not the timing of one attempt at it.
    result = result_of(output, seconds=0.0)
    return {"code": result["code"], "passed": result["passed"], "summary": result["summary"],
            "llm_calls": result["llm_calls"]}


def review(state: ReviewState) -> dict[str, Any]:
    """Pause for a person: resume with True / False, or {"approved": bool, "note": str}."""
    decision = interrupt({"question": "Approve this code?", "code": state.get("code", ""),
                          "passed": state.get("passed", False), "summary": state.get("summary", "")})
    if isinstance(decision, bool):
        return {"approved": decision, "note": ""}
    if isinstance(decision, Mapping) and isinstance(decision.get("approved"), bool):
        return {"approved": decision["approved"], "note": str(decision.get("note") or "")}
    raise ValueError(f"resume the review with True, False or {{'approved': bool, 'note': str}}, not {decision!r}")


def answer(state: ReviewState) -> dict[str, Any]:
    verdict = "approved" if state["approved"] else "rejected"
    note = f" Reviewer: {state['note']}" if state.get("note") else ""
    return {"answer": f"{state['summary']} The reviewer {verdict} it.{note}"}


def build(
    chat_models: Mapping[str, BaseChatModel] | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    interrupt_before: tuple[str, ...] = (),
) -> CompiledStateGraph:
    """The app; `chat_models` as in `build_graph` (tests), `interrupt_before` our node names (e.g. "coder")."""
    builder = StateGraph(ReviewState, context_schema=Context, input_schema=ReviewInput, output_schema=ReviewOutput)
    # The run's Context (per run, or per assistant on a server) reaches the agents: the parent's
    # context_schema is Context, which as_subgraph passes on.
    builder.add_node("solve", as_subgraph(task_to_problem, output_to_state, chat_models=chat_models,
                                          interrupt_before=interrupt_before))
    builder.add_node("review", review)
    builder.add_node("answer", answer)
    builder.add_edge(START, "solve")
    builder.add_edge("solve", "review")
    builder.add_edge("review", "answer")
    builder.add_edge("answer", END)
    compiled = builder.compile(checkpointer=checkpointer)
    compiled.name = "Solve and review"
    return compiled


# Exported by langgraph.json; the server adds its own checkpointer, which the review needs.
graph = build()
