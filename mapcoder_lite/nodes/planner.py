"""Planning agent node: one plan from one recalled example (k of these run in parallel)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.graph.state import PlanTask, State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.prompts import planner as prompt


def plan_task(state: State, example_index: int, *, example: dict[str, str] | None = None,
              plan: str | None = None) -> PlanTask:
    """A planner or confidence branch's task: the problem all branches share, and the branch's own
    example (planner) or plan (confidence)."""
    task = PlanTask(
        problem=state["problem"],
        sample_tests=state["sample_tests"],
        entry_point=state.get("entry_point"),
        language=state.get("language") or "python",
        algorithm=state.get("algorithm", ""),
        example=example,
        example_index=example_index,
    )
    if plan is not None:
        task["plan"] = plan
    return task


def fan_out_plans(state: State) -> list[Send]:
    """One planner branch per recalled example; a single example-less branch when none parsed."""
    examples: list[dict[str, str] | None] = list(state.get("examples") or []) or [None]
    return [Send("planner", plan_task(state, index, example=example)) for index, example in enumerate(examples)]


def planner(task: PlanTask, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = context_of(runtime.context)
    messages = prompt.build_messages(
        task["problem"], task["sample_tests"], task["language"], task["example"], task["algorithm"]
    )
    plan, call = models.ask("planner", messages, context)
    return call.update() | {"drafts": [{"plan": plan or "", "example_index": task["example_index"]}]}
