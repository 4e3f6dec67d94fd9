"""How a problem is solved in an eval: `direct`, `cot`, `mapcoder` (the graph), or `reference`.

All strategies on a model use the same endpoint and model names through `RoleModels`: `direct` and
`cot` are one call to the coder role's model (so ``--model`` / ``--role-model coder=...`` pick it),
`mapcoder` is the graph (one model name for all roles is plain MapCoder; per-role adapter names are
MapCoder-Lite). `reference` uses no model: it returns the dataset's reference solution, so a run
checks the loaders and the scoring themselves.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from mapcoder_lite.evals.datasets import Problem
from mapcoder_lite.evals.scoring import check_samples, scoring_limits
from mapcoder_lite.graph.context import ROLES, Context
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.prompts import direct as direct_prompt
from mapcoder_lite.sandbox import validate_tests

STRATEGIES = ("direct", "cot", "mapcoder", "reference")


@dataclass
class Attempt:
    """What a strategy produced for one problem. Filled as the strategy goes, so a crash or a
    timeout still leaves the calls made so far for the record."""

    code: str = ""
    samples_passed: bool | None = None  # the graph's own verdict on the samples; None if not tested
    plans: list[dict[str, Any]] = field(default_factory=list)
    direct: dict[str, Any] | None = None  # the graph's direct attempt, when it made one
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    format_failures: dict[str, int] = field(default_factory=dict)
    llm_calls: int = 0
    resumed: bool = False  # continued from a checkpoint an earlier session left

    def take(self, state: Mapping[str, Any]) -> None:
        """Hold a graph's state so far (a crash or a timeout still leaves it for the record), or what
        one call adds to a state (`Call.update`) with its code."""
        self.trajectory = list(state.get("trajectory") or [])
        self.plans = list(state.get("plans") or [])
        self.direct = state.get("direct") or self.direct
        self.format_failures = dict(state.get("format_failures") or {})
        self.llm_calls = int(state.get("llm_calls") or 0)
        # "code" appears when the graph finishes (the passing or best program); until then the
        # latest program is what a crash would leave.
        self.code = state["code"] if "code" in state else state.get("current_code") or self.code
        if "passed" in state:
            self.samples_passed = bool(state["passed"])

    @property
    def prompt_tokens(self) -> int:
        return sum(int(c.get("prompt_tokens", 0)) for c in self.trajectory)

    @property
    def completion_tokens(self) -> int:
        return sum(int(c.get("completion_tokens", 0)) for c in self.trajectory)


class Strategy(ABC):
    name: str = ""
    roles: ClassVar[tuple[str, ...]] = ()  # the roles whose models it calls (recorded in run.json)

    def applicable(self, problem: Problem) -> bool:
        return True

    @abstractmethod
    async def solve(self, problem: Problem, context: Context, attempt: Attempt,
                    checkpointer: BaseCheckpointSaver | None = None) -> Attempt:
        """Solve `problem`, filling `attempt` as it goes; returns it. A graph strategy saves its
        progress in `checkpointer` under the problem's id and continues from there when called again."""


class GraphStrategy(Strategy):
    """One graph run per problem, streamed so the attempt holds the state so far if the run dies."""

    def __init__(self) -> None:
        self.graph = self.build()
        self._checkpointed: tuple[BaseCheckpointSaver, CompiledStateGraph] | None = None

    @abstractmethod
    def build(self, checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
        """Compile the strategy's graph."""

    def graph_input(self, problem: Problem) -> dict[str, Any]:
        # Only what the graph may see, and the id, which no prompt shows: a bank retrieval skips that problem.
        return dict(problem.graph_input()) | {"id": problem.id}

    async def solve(self, problem: Problem, context: Context, attempt: Attempt,
                    checkpointer: BaseCheckpointSaver | None = None) -> Attempt:
        graph = self.graph
        config: RunnableConfig | None = None
        inputs: dict[str, Any] | None = self.graph_input(problem)
        if checkpointer is not None:
            if self._checkpointed is None or self._checkpointed[0] is not checkpointer:
                self._checkpointed = (checkpointer, self.build(checkpointer))  # compiled once per run
            graph = self._checkpointed[1]
            config = RunnableConfig(configurable={"thread_id": problem.id})
            saved = await graph.aget_state(config)
            if saved.values:  # an earlier session got this far: go on from its last step, repeat nothing
                attempt.resumed = True
                attempt.take(saved.values)
                if not saved.next:
                    return attempt  # it had finished; only its record was missing
                inputs = None
        async for state in graph.astream(inputs, config, context=context, stream_mode="values"):
            attempt.take(state)
        return attempt


class OneCall(Strategy):
    """`direct` / `cot`: one call to the coder role's model."""

    roles = ("coder",)

    def __init__(self, chat_models: Mapping[str, BaseChatModel] | None = None, *, cot: bool = False) -> None:
        self.models = RoleModels(chat_models)
        self.cot = cot
        self.name = "cot" if cot else "direct"

    async def solve(self, problem: Problem, context: Context, attempt: Attempt,
                    checkpointer: BaseCheckpointSaver | None = None) -> Attempt:
        graph_input = problem.graph_input()  # only what the graph would see
        validate_tests(graph_input["sample_tests"], problem.language, allow_empty=True)
        messages = direct_prompt.build_messages(
            graph_input["problem"], graph_input["sample_tests"], problem.language, graph_input.get("entry_point"),
            cot=self.cot,
        )
        # The coder's parser takes the last fenced block, so a cot answer's reasoning before it is skipped;
        # the answer grammar is this prompt's own (cot reasons before its code block).
        grammar = functools.partial(direct_prompt.answer_grammar, cot=self.cot)
        code, call = await asyncio.to_thread(self.models.ask, "coder", messages, context, problem.language, grammar)
        attempt.take(call.update() | {"code": code or ""})
        return attempt


class MapCoder(GraphStrategy):
    """The graph, one run per problem."""

    name = "mapcoder"
    roles = ROLES

    def __init__(self, chat_models: Mapping[str, BaseChatModel] | None = None) -> None:
        self.chat_models = chat_models
        super().__init__()

    def build(self, checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
        from mapcoder_lite.graph import build_graph

        return build_graph(self.chat_models, checkpointer)


class Reference(Strategy):
    """The dataset's reference solution, no model: must score 1.0 (else loading/scoring is wrong).
    Its samples are run too, which checks that the samples the graph is shown are right."""

    name = "reference"

    def applicable(self, problem: Problem) -> bool:
        return problem.reference is not None

    async def solve(self, problem: Problem, context: Context, attempt: Attempt,
                    checkpointer: BaseCheckpointSaver | None = None) -> Attempt:
        if problem.reference is None:
            raise ValueError(f"{problem.id} has no reference solution")
        attempt.code = problem.reference
        if problem.sample_tests:
            limits = scoring_limits(context.test_timeout_s, context.memory_mb)
            report = await asyncio.to_thread(check_samples, problem, problem.reference,
                                             sandbox=context.sandbox, limits=limits)
            attempt.samples_passed = report.all_passed
        return attempt


def make_strategy(name: str, chat_models: Mapping[str, BaseChatModel] | None = None) -> Strategy:
    """A strategy by name; chat_models (role -> chat model) replace the endpoint's, as in build_graph."""
    if name == "direct":
        return OneCall(chat_models)
    if name == "cot":
        return OneCall(chat_models, cot=True)
    if name == "mapcoder":
        return MapCoder(chat_models)
    if name == "reference":
        return Reference()
    raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
