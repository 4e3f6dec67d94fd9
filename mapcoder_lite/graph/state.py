"""The graph's state: what a caller sends in, what comes out, and what the agents pass between them."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

# typing_extensions.TypedDict: pydantic (hence Studio's schemas) rejects typing.TypedDict before 3.12.
from typing_extensions import TypedDict

# A sample test is an assert string (function problems) or {"input": ..., "output": ...} (stdin/stdout).
SampleTest = str | dict[str, Any]


def add_counts(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    """Reducer for per-role counters written by agents that may run in parallel."""
    merged = dict(left or {})
    for key, value in (right or {}).items():
        merged[key] = merged.get(key, 0) + value
    return merged


class InputState(TypedDict):
    """One programming problem."""

    problem: str
    sample_tests: list[SampleTest]
    entry_point: NotRequired[str | None]
    language: NotRequired[str]
    # The problem's id in its benchmark (evals pass it): a bank retrieval never returns that problem.
    id: NotRequired[str]
    # Code that runs before the program, as the benchmark's scoring runs it (HumanEval's prompt, whose
    # `from typing import List` a program may rely on): the samples judge the program scoring will run.
    prefix: NotRequired[str]


class OutputState(TypedDict):
    """What a run returns."""

    code: str
    passed: bool
    plans: list[dict[str, Any]]
    trajectory: Annotated[list[dict[str, Any]], operator.add]
    format_failures: Annotated[dict[str, int], add_counts]
    llm_calls: Annotated[int, operator.add]
    # The direct attempt (Context.direct_first): code, samples_passed, total, report; absent without it.
    direct: NotRequired[dict[str, Any]]


class State(InputState, OutputState):
    """Everything the agents share during a run."""

    examples: list[dict[str, str]]
    algorithm: str
    # Written by the parallel planner branches (plan, example_index), hence a reducer.
    drafts: Annotated[list[dict[str, Any]], operator.add]
    # The plans the confidence agent scored, by its parallel branches; rank_plans orders every draft.
    candidate_plans: Annotated[list[dict[str, Any]], operator.add]
    plan_index: int
    debug_round: int
    current_plan: str
    current_code: str
    test_report: dict[str, Any]
    best: dict[str, Any]


class PlanTask(TypedDict):
    """What one planner or confidence branch receives through `Send`: the shared problem, and its own
    example (planner) or plan (confidence)."""

    problem: str
    sample_tests: list[SampleTest]
    entry_point: str | None
    language: str
    algorithm: str
    example: dict[str, str] | None
    example_index: int
    plan: NotRequired[str]
