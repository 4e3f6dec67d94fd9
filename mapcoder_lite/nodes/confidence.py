"""Confidence node: score plans 0-100 so they are coded best first; and the ranking itself."""

from __future__ import annotations

import math
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.graph.state import PlanTask, State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.nodes.planner import plan_task
from mapcoder_lite.prompts import confidence as prompt

NO_PLAN = "the planner gave no plan"
ALONE = "not scored: no other plan to rank it against"


def gather_plans(state: State) -> dict[str, Any]:
    """Every planner branch has written its plan (a fan-in): which ones to score is decided next."""
    return {}


def fan_out_scores(state: State, runtime: Runtime[Context]) -> list[Send] | str:
    """One confidence branch per plan to score: every plan written (the paper's graph); with
    Context.plan_diversity one per distinct text, and none when a single text is left, since a plan's
    copies are dropped at ranking and a lone plan has nothing to be ranked against."""
    written = [draft for draft in _in_order(state) if draft["plan"]]
    if context_of(runtime.context).plan_diversity:
        written = _distinct(written)
        written = written if len(written) > 1 else []
    if not written:
        return "rank_plans"
    return [Send("confidence", plan_task(state, d["example_index"], plan=d["plan"])) for d in written]


def confidence(task: PlanTask, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    candidate = {"plan": task.get("plan", ""), "example_index": task["example_index"]}
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
    """Order plans by descending confidence (ties keep retrieval order); start with the first. An empty
    plan ranks last (confidence 0), an unscored copy takes its scored twin's confidence, a lone unscored
    plan (None) ranks first. With Context.plan_diversity a plan that repeats a higher-ranked one is
    dropped: coding it again would spend the coder's and debugger's calls on a copy (three planners
    shown no example write one plan)."""
    ranked = sorted(_scored(state), key=lambda p: (-_rank_score(p["confidence"]), p["example_index"]))
    if context_of(runtime.context).plan_diversity:
        ranked = _distinct(ranked)
    plans = [plan | {"tried": False, "passed": False, "attempts": []} for plan in ranked]
    # The best attempt so far is the direct one, if the run made it (Context.direct_first), else none.
    return {"plans": plans, "plan_index": 0, "debug_round": 0, "best": state.get("best") or {}}


def _scored(state: State) -> list[dict[str, Any]]:
    """Every plan written, with its confidence and explanation: its own score, else its twin's."""
    own = {p["example_index"]: p for p in state.get("candidate_plans") or []}
    twins = {_text(p["plan"]): p for p in own.values()}
    plans = []
    for draft in _in_order(state):
        if draft["example_index"] in own:
            plans.append(own[draft["example_index"]])
            continue
        twin = twins.get(_text(draft["plan"])) if draft["plan"] else None
        if not draft["plan"]:
            score = {"confidence": 0, "explanation": NO_PLAN}
        elif twin:
            score = {"confidence": twin["confidence"], "explanation": twin["explanation"]}
        else:
            score = {"confidence": None, "explanation": ALONE}
        plans.append(draft | score)
    return plans


def _rank_score(confidence: int | None) -> float:
    return math.inf if confidence is None else confidence


def _in_order(state: State) -> list[dict[str, Any]]:
    return sorted(state.get("drafts") or [], key=lambda draft: draft["example_index"])


def _text(plan: str) -> str:
    """A plan's text, case and spacing aside: what makes two plans copies."""
    return " ".join(plan.lower().split())


def _distinct(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plans in order, without those whose text an earlier one has; two empty plans (failed
    planners) both mean "solve it directly", so the second goes too. A kept plan counts the copies
    dropped after it (`copies`), so a run's output shows how often plans coincide."""
    kept: dict[str, dict[str, Any]] = {}
    for plan in plans:
        text = _text(plan["plan"])
        if text in kept:
            kept[text]["copies"] += 1
        else:
            kept[text] = plan | {"copies": 0}
    return list(kept.values())
