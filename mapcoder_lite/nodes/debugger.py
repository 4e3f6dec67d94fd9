"""Debugging agent node: revise the plan and the code from the failing sample-test report."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.graph.state import State
from mapcoder_lite.llm import PromptTooLong, RoleModels
from mapcoder_lite.prompts import debugger as prompt


def debugger(state: State, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = context_of(runtime.context)
    language = state.get("language") or "python"
    messages = prompt.build_messages(
        state["problem"],
        state["sample_tests"],
        language,
        state["current_plan"],
        state["current_code"],
        state["test_report"]["rendered"],
        state.get("algorithm", ""),
        state.get("entry_point"),
    )
    try:
        revision, call = models.ask("debugger", messages, context, language)
    except PromptTooLong as refused:
        # Code and test output grew past the context window: this plan's debugging is over.
        return refused.call.update() | {"debug_round": context.t}
    update = call.update() | {"debug_round": state["debug_round"] + 1}
    if revision is None:
        # Fallback: keep the last plan and code; this round is spent and counted as a format failure.
        return update
    return update | {"current_plan": revision.plan or state["current_plan"], "current_code": revision.code}
