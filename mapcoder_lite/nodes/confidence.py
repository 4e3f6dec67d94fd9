"""Confidence node: score one plan 0-100 so plans are coded best first."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.graph.state import PlanTask, State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.prompts import confidence as prompt


def confidence(task: PlanTask, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    candidate = {"plan": task.get("plan", ""), "example_index": task["example_index"]}
    if not candidate["plan"]:
        # Nothing to judge: the planner's failure is already counted; rank this plan last.
        return {"candidate_plans": [candidate | {"confidence": 0, "explanation": "the planner gave no plan"}]}
    context = context_of(runtime.context)
    messages = prompt.build_messages(task["problem"], candidate["plan"], task["language"])
    scored, call = models.ask("confidence", messages, context)
    # Fallback for an unreadable score: confidence 0.
    score = (
        {"confidence": scored.confidence, "explanation": scored.explanation}
        if scored
        else {"confidence": 0, "explanation": "unreadable confidence answer"}
    )
    return call.update() | {"candidate_plans": [candidate | score]}


def rank_plans(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Order plans by descending confidence (ties keep retrieval order); start with the first. With
    Context.plan_diversity a plan that repeats a higher-ranked one is dropped: coding it again would
    spend the coder's and debugger's calls on a copy (three planners shown no example write one plan)."""
    ranked = sorted(state["candidate_plans"], key=lambda p: (-p["confidence"], p["example_index"]))
    if context_of(runtime.context).plan_diversity:
        ranked = _distinct(ranked)
    plans = [plan | {"tried": False, "passed": False, "attempts": []} for plan in ranked]
    # The best attempt so far is the direct one, if the run made it (Context.direct_first), else none.
    return {"plans": plans, "plan_index": 0, "debug_round": 0, "best": state.get("best") or {}}


def _distinct(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plans in order, without those whose text (case and spacing aside) an earlier one has; two
    empty plans (failed planners) both mean "solve it directly", so the second goes too. A kept plan
    counts the copies dropped after it (`copies`), so a run's output shows how often plans coincide."""
    kept: dict[str, dict[str, Any]] = {}
    for plan in plans:
        text = " ".join(plan["plan"].lower().split())
        if text in kept:
            kept[text]["copies"] += 1
        else:
            kept[text] = plan | {"copies": 0}
    return list(kept.values())
