"""Coding agent node: write the program for the current plan."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.graph.state import State
from mapcoder_lite.llm import PromptTooLong, RoleModels, merge_calls
from mapcoder_lite.nodes.testing import is_tested
from mapcoder_lite.prompts import coder as prompt


def coder(state: State, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = context_of(runtime.context)
    language = state.get("language") or "python"
    plans = [dict(plan) for plan in state["plans"]]
    plan = plans[state["plan_index"]]
    plan["tried"] = True
    messages = prompt.build_messages(
        state["problem"],
        state["sample_tests"],
        language,
        plan["plan"],
        state.get("algorithm", ""),
        state.get("entry_point"),
    )
    update = {"plans": plans, "current_plan": plan["plan"]}
    try:
        code, call = models.ask("coder", messages, context, language)
    except PromptTooLong as refused:
        # A plan too long to code within the context window: no code, and no debugging of nothing.
        return refused.call.update() | update | {"current_code": "", "debug_round": context.t}
    calls = [call]
    if context.plan_diversity and is_tested(code or "", state):
        # The program is one whose verdict is known (at temperature 0 another plan often yields the
        # same code): a sample at diversity_temperature gives the plan a program of its own.
        plan["repeated"] = True
        resample = replace(context, temperature=context.diversity_temperature)
        code, second = models.ask("coder", messages, resample, language)
        calls.append(second)
        plan["still_repeated"] = is_tested(code or "", state)
    # Fallback: no usable code is a failed attempt (empty code), which debugging may still rescue.
    return merge_calls(calls) | update | {"current_code": code or "", "debug_round": 0}


def next_plan(state: State) -> dict[str, Any]:
    """Move on to the next-most-confident plan after the current one used up its debugging rounds."""
    return {"plan_index": state["plan_index"] + 1, "debug_round": 0}
