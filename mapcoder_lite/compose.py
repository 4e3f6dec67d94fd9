"""MapCoder-Lite inside larger agent apps: the graph as a LangChain tool, or as a node of a parent graph.

    tool = as_tool()                                   # hand it to any tool-calling agent
    builder.add_node("solve", as_subgraph(to_input=..., from_output=...))   # a node of your own StateGraph

Both run the compiled graph (`build_graph`) as a subgraph of the caller's run, so the caller's
checkpointer, interrupts and `stream(subgraphs=True)` reach its steps, and both report each agent step
on LangGraph's custom stream (`stream_mode="custom"`) as a `ProgressEvent`. A problem is checked
before any model is called: bad input is a clear error, not a wasted run.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import StructuredTool
from langgraph.config import get_stream_writer
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime, get_runtime
from pydantic import BaseModel, Field, field_validator, model_validator
from typing_extensions import TypedDict

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.problem import check_problem
from mapcoder_lite.sandbox import language_spec

PROGRESS_SOURCE = "mapcoder_lite"
DEFAULT_TOOL_NAME = "solve_programming_problem"
DEFAULT_TOOL_DESCRIPTION = (
    "Write a program for a programming problem and test it. Recalls similar problems, plans, writes "
    "code, runs it on the sample tests in a sandbox and debugs it (MapCoder-Lite). Give the whole "
    "problem statement and its sample tests: 'assert f(...) == ...' lines for a function, or "
    "input/output pairs for a program reading standard input. Returns the code, whether it passes "
    "the samples, and a short summary."
)
# Upper bounds on what a calling model may ask for: one tool call makes at most 1 + 2k + k(t + 1) model
# calls (66 at these bounds) whatever the calling model writes.
MAX_TOOL_K = 5
MAX_TOOL_T = 10

ContextSource = Context | Mapping[str, Any] | Callable[[Runtime[Any]], Context | Mapping[str, Any]] | None


class ProgressEvent(TypedDict, total=False):
    """One agent step, as written to LangGraph's custom stream."""

    source: str  # always PROGRESS_SOURCE, so a parent app can tell these from its own custom events
    node: str
    message: str  # one line, as `mapcoder-lite solve` prints it
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    parsed: bool
    samples_passed: int
    total: int


class ToolResult(TypedDict):
    """What the tool returns: `code`, `passed` and `summary` go to the calling model; all of it is the artifact."""

    code: str
    passed: bool
    summary: str
    samples_passed: int
    total: int
    plans: int
    plans_tried: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    format_failures: dict[str, int]


class IOSample(BaseModel):
    """A sample test of a standard-input/standard-output program."""

    input: str = Field(description="Exactly what the program reads from standard input.")
    output: str = Field(description="Exactly what the program must print.")


class ToolSettings(BaseModel):
    """How hard to try; the endpoint and models are the app's choice, not the calling model's."""

    k: int | None = Field(
        default=None, ge=1, le=MAX_TOOL_K, description="Number of plans to write (similar problems recalled)."
    )
    t: int | None = Field(default=None, ge=0, le=MAX_TOOL_T, description="Debugging rounds for each plan.")


class SolveProblem(BaseModel):
    """The tool's arguments: one programming problem with its sample tests."""

    problem: str = Field(
        description="The whole problem statement. For a function problem, include its signature and docstring."
    )
    sample_tests: list[str | IOSample] = Field(
        min_length=1,
        description="Sample tests: 'assert add(1, 2) == 3' lines for a function problem, or objects with "
        "'input' and 'output' for a program that reads standard input.",
    )
    entry_point: str | None = Field(
        default=None,
        description="Name of the function to write (function problems; taken from the asserts when omitted). "
        "Leave out for standard-input programs.",
    )
    language: str = Field(default="python", description="Programming language of the code (python).")
    settings: ToolSettings | None = Field(default=None, description="Optional: how hard to try.")

    # Each check is a field validator: a tool-calling agent (LangGraph's ToolNode) passes on to the model
    # only the errors located at an argument, so the model reads what to fix in its call.
    @field_validator("problem")
    @classmethod
    def _has_statement(cls, problem: str) -> str:
        if not problem.strip():
            raise ValueError("'problem' must be a non-empty string with the statement")
        return problem

    @field_validator("sample_tests")
    @classmethod
    def _are_tests(cls, tests: list[str | IOSample]) -> list[str | IOSample]:
        for index, test in enumerate(tests):
            if isinstance(test, str) and not test.strip().startswith("assert"):
                raise ValueError(f"sample_tests[{index}] = {test!r} is neither an 'assert ...' string "
                                 "nor an object with 'input' and 'output'")
        return tests

    @field_validator("language")
    @classmethod
    def _runs_here(cls, language: str) -> str:
        language_spec(language)  # "unsupported language ...; the sandbox supports: python"
        return language

    @model_validator(mode="after")
    def _entry_point_from_asserts(self) -> SolveProblem:
        self.entry_point = check_problem(problem_dict(self), "solve_programming_problem").get("entry_point")
        return self


def problem_dict(args: SolveProblem) -> dict[str, Any]:
    tests = [test.model_dump() if isinstance(test, IOSample) else test for test in args.sample_tests]
    return {"problem": args.problem, "sample_tests": tests, "entry_point": args.entry_point, "language": args.language}


# -- running the graph --------------------------------------------------------------------------------


def _inside_graph_runtime() -> Runtime[Any] | None:
    """The runtime of the graph run we are called from, or None when called on our own."""
    try:
        return get_runtime()
    except (RuntimeError, KeyError):  # no runnable context, or one that is not a graph run
        return None


def _writer() -> Callable[[Any], None]:
    try:
        return get_stream_writer()
    except (RuntimeError, KeyError, AttributeError):
        return lambda _event: None  # called outside a graph: nobody to stream to


# The colour tags `describe_step` adds for the terminal. Only these are removed: the line also quotes
# model text (a plan's first line), where brackets are code, not markup.
_STYLE_TAGS = re.compile(r"\[/?(?:dim|red|green|yellow)\]")


def progress_event(node: str, update: Mapping[str, Any]) -> ProgressEvent:
    """The custom-stream event for one graph step."""
    # Imported here: the CLI module registers every command when imported, which plain use of the graph needs not.
    from mapcoder_lite.cli import describe_step

    message = _STYLE_TAGS.sub("", describe_step(node, update))
    event = ProgressEvent(source=PROGRESS_SOURCE, node=node, message=message)
    calls = update.get("trajectory") or []
    if calls:
        call = calls[0]
        event.update(model=call["model"], prompt_tokens=call["prompt_tokens"],
                     completion_tokens=call["completion_tokens"], seconds=call["seconds"], parsed=call["parsed"])
    report = update.get("test_report")
    if report:
        event.update(samples_passed=report["samples_passed"], total=report["total"])
    return event


def run_graph(graph: CompiledStateGraph, problem: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """Run the graph on one checked problem, writing each step to the custom stream; the output state.

    Called inside a node or tool of a parent graph, this run is a subgraph of the parent's run: it
    uses the parent's checkpointer, a static interrupt inside it pauses the parent, and on resume it
    goes on from its last step instead of starting over.
    """
    write = _writer()
    result: dict[str, Any] = {}
    for mode, chunk in graph.stream(dict(problem), context=context, stream_mode=["updates", "values"]):
        if mode == "values":
            result = chunk
            continue
        for node, update in chunk.items():
            if node != "__interrupt__" and update:
                write(progress_event(node, update))
    return result


def _attempt_of(result: Mapping[str, Any]) -> tuple[int | None, dict[str, Any] | None]:
    """The plan (index; -1 for the direct attempt) and attempt whose code was returned: the last
    attempt with that code."""
    found: tuple[int | None, dict[str, Any] | None] = (None, None)
    direct = result.get("direct")
    if direct and result.get("code") and direct.get("code") == result.get("code"):
        found = (-1, direct)
    for index, plan in enumerate(result.get("plans") or []):
        for attempt in plan.get("attempts") or []:
            if attempt.get("code") == result.get("code") and result.get("code"):
                found = (index, attempt)
    return found


def result_of(result: Mapping[str, Any], seconds: float) -> ToolResult:
    """The tool's answer: code, outcome, and a one-paragraph summary of how it was reached."""
    calls = result.get("trajectory") or []
    plans = result.get("plans") or []
    index, attempt = _attempt_of(result)
    total = attempt["total"] if attempt else 0
    samples_passed = attempt["samples_passed"] if attempt else 0
    prompt_tokens = sum(c["prompt_tokens"] for c in calls)
    completion_tokens = sum(c["completion_tokens"] for c in calls)
    cost = (f"{result.get('llm_calls', 0)} model calls, {prompt_tokens}+{completion_tokens} tokens, "
            f"{seconds:.1f} s.")
    if attempt is None or index is None:
        outcome = f"No usable code: no answer of the coder or the debugger held a program ({len(plans)} plans)."
    else:
        rounds = attempt.get("debug_round", 0)
        score = plans[index].get("confidence") if index >= 0 else None
        where = ("the direct attempt, before any plan" if index < 0 else
                 f"plan {index + 1} of {len(plans)}" + (f" (confidence {score})" if score is not None else "")
                 + (f" after {rounds} debugging round{'s' if rounds != 1 else ''}" if rounds else ""))
        if result.get("passed"):
            outcome = f"Passes all {total} sample tests with {where}."
        else:
            outcome = f"Does not pass the samples: the best attempt passes {samples_passed} of {total}, from {where}."
    return ToolResult(
        code=result.get("code") or "",
        passed=bool(result.get("passed")),
        summary=f"{outcome} {cost}",
        samples_passed=samples_passed,
        total=total,
        plans=len(plans),
        plans_tried=sum(1 for p in plans if p.get("tried")),
        llm_calls=result.get("llm_calls", 0),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=round(seconds, 1),
        format_failures=dict(result.get("format_failures") or {}),
    )


def _graph_for(graph: CompiledStateGraph | None, chat_models: Mapping[str, BaseChatModel] | None) -> CompiledStateGraph:
    if graph is not None and chat_models is not None:
        raise ValueError("pass either graph or chat_models, not both: chat_models builds a graph")
    if graph is not None:
        return graph
    from mapcoder_lite.graph.graph import build_graph

    # No checkpointer of its own: a graph run inside a parent's run takes the parent's.
    return build_graph(chat_models=chat_models)


def _context_for(source: ContextSource, runtime: Runtime[Any] | None) -> Context:
    """The run's Context: the one given (or computed from the parent's runtime), else the parent's own
    Context when the parent graph has `context_schema=Context`, else the defaults and environment."""
    if callable(source):
        if runtime is None:
            raise ValueError("a context function needs a parent graph run to read its runtime from")
        source = source(runtime)
    if source is not None:
        return context_of(source)
    parent = runtime.context if runtime is not None else None
    return parent if isinstance(parent, Context) else Context()


# -- as a tool ------------------------------------------------------------------------------------------


def as_tool(
    *,
    graph: CompiledStateGraph | None = None,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    context: ContextSource = None,
    name: str = DEFAULT_TOOL_NAME,
    description: str = DEFAULT_TOOL_DESCRIPTION,
) -> StructuredTool:
    """MapCoder-Lite as a LangChain tool that any tool-calling agent (e.g. LangGraph's prebuilt ReAct
    agent) can call.

    The calling model gets `{"code", "passed", "summary"}` as JSON; the tool message's `artifact`
    holds the same plus the numbers (`ToolResult`). Settings: `context` (a `Context`, a mapping of its
    fields, or a function of the parent's runtime), else the parent graph's own `Context`, else the
    defaults and `MAPCODER_LITE_<FIELD>` variables; the calling model may lower or raise only `k` and
    `t`, within MAX_TOOL_K and MAX_TOOL_T. `chat_models` (role -> chat model) or `graph` replace the
    endpoint's models, as in `build_graph`.
    """
    compiled = _graph_for(graph, chat_models)
    if not isinstance(context, Context) and context is not None and not callable(context):
        context_of(context)  # a typo in a field name fails here, not at the first tool call

    def solve(
        problem: str,
        sample_tests: list[Any],
        entry_point: str | None = None,
        language: str = "python",
        settings: ToolSettings | Mapping[str, Any] | None = None,
    ) -> tuple[str, ToolResult]:
        # The tool already validated these against SolveProblem; validating again normalises the types.
        args = SolveProblem(problem=problem, sample_tests=sample_tests, entry_point=entry_point, language=language,
                            settings=settings)
        run_context = _context_for(context, _inside_graph_runtime())
        overrides = args.settings.model_dump(exclude_none=True) if args.settings else {}
        if overrides:
            run_context = dataclasses.replace(run_context, **overrides)
        started = time.perf_counter()
        output = run_graph(compiled, problem_dict(args), run_context)
        result = result_of(output, time.perf_counter() - started)
        for_model = {key: result[key] for key in ("code", "passed", "summary")}
        return json.dumps(for_model, ensure_ascii=False), result

    return StructuredTool.from_function(
        func=solve,
        name=name,
        description=description,
        args_schema=SolveProblem,
        response_format="content_and_artifact",
    )


# -- as a subgraph --------------------------------------------------------------------------------------


def as_subgraph(
    to_input: Callable[[Any], Mapping[str, Any]],
    from_output: Callable[[dict[str, Any]], Mapping[str, Any]],
    *,
    graph: CompiledStateGraph | None = None,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    context: ContextSource = None,
    interrupt_before: Sequence[str] = (),
    interrupt_after: Sequence[str] = (),
) -> Callable[[Any, Runtime[Any]], dict[str, Any]]:
    """A node for a parent `StateGraph` whose state differs from ours: `builder.add_node("solve", node)`.

    `to_input(parent_state)` gives the problem (the graph's input keys: problem, sample_tests,
    entry_point, language), checked before any model call; `from_output(output_state)` gives the
    parent's update. The graph runs inside the node, as a subgraph: the parent's checkpointer records
    its steps, Studio and `get_graph(xray=1)` show them nested under the node, and `interrupt_before` /
    `interrupt_after` (our node names, e.g. `["coder"]` to review the ranked plans before any code is
    written) pause the parent's run there; resuming it (`invoke(None, config)`) goes on from that step.
    Settings as in `as_tool`.
    """
    compiled = _graph_for(graph, chat_models)
    known = set(compiled.nodes) - {"__start__"}
    for label, names in (("interrupt_before", interrupt_before), ("interrupt_after", interrupt_after)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"{label}: no node {unknown} in the graph; its nodes are {sorted(known)}")
    if interrupt_before or interrupt_after:
        compiled = compiled.copy({"interrupt_before_nodes": list(interrupt_before),
                                  "interrupt_after_nodes": list(interrupt_after)})

    def mapcoder_lite(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        problem = check_problem(dict(to_input(state)), "as_subgraph: to_input(state)")
        output = run_graph(compiled, problem, _context_for(context, runtime))
        return dict(from_output(output))

    return mapcoder_lite


__all__ = [
    "DEFAULT_TOOL_NAME",
    "MAX_TOOL_K",
    "MAX_TOOL_T",
    "PROGRESS_SOURCE",
    "IOSample",
    "ProgressEvent",
    "SolveProblem",
    "ToolResult",
    "ToolSettings",
    "as_subgraph",
    "as_tool",
    "progress_event",
    "result_of",
    "run_graph",
]
