"""The supervised correction graph: MapCoder, hidden tests, and supervisor-guided retries of one agent.

    mapcoder (the whole MapCoder-Lite graph, a subgraph) -> hidden_testing
    hidden_testing -> done                        (passed, or correction_rounds used up)
                   -> supervisor
    supervisor     -> correct_plan -> coder -> sample_testing    (the planner is blamed)
                   -> correct_code ---------> sample_testing    (the coder is blamed)
                   -> done                        (an unreadable verdict: counted, not retried)
    sample_testing -> debugger -> sample_testing  (at most t rounds, as in MapCoder)
                   -> finish -> hidden_testing

The corrections work on the plan whose code was scored: a corrected plan (or corrected code for the
same plan) becomes a new entry of ``plans`` with its own attempts, so the first pass stays on record.

Hidden tests come in through ``scoring`` and are read by two nodes only: ``hidden_testing`` (scoring)
and ``supervisor``, which by default sees the counts and the first failing hidden test
(``supervisor_hidden_report="failing"``; ``"verdict"`` shows counts only). Agents never see them:
their prompts are built from the problem and its samples, and the supervisor's feedback is scrubbed
of verbatim quotes of the failing test before it reaches the blamed agent's retry. Without hidden
tests (a quick try in Studio) the samples stand in for them.

With ``supervisor_reference`` (reference-guided supervision, training splits only) ``scoring`` also
carries the problem's reference solution, and the supervisor alone is shown it; a problem without
one is refused before the first model call. The feedback is scrubbed of the reference's lines too,
and the supervisor's call record keeps the reference (``reference``) for extraction's leak check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal, NotRequired

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from mapcoder_lite.collection.context import SUPERVISOR_ROLES, SupervisorContext, supervisor_context_of
from mapcoder_lite.collection.records import corrected_pairs
from mapcoder_lite.evals.datasets import Problem
from mapcoder_lite.evals.scoring import score, scoring_limits
from mapcoder_lite.graph.context import ROLES, Context, context_of
from mapcoder_lite.graph.graph import build_graph
from mapcoder_lite.graph.state import InputState, OutputState, SampleTest, State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.nodes import coder, debugger, finish, sample_testing
from mapcoder_lite.prompts import coder as coder_prompt
from mapcoder_lite.prompts import planner as planner_prompt
from mapcoder_lite.prompts import supervisor as prompt

GRAPH_INPUT_KEYS = ("problem", "sample_tests", "entry_point", "language", "id", "prefix")


class Scoring(TypedDict, total=False):
    """A problem's hidden tests, as `mapcoder_lite.evals.Problem` holds them (scoring only)."""

    check: str | None
    hidden_tests: list[SampleTest]
    test_setup: str
    prefix: str
    reference: str | None  # a solution passing the hidden tests: the supervisor's only (supervisor_reference)


class CorrectionInput(InputState):
    """One problem (its `id` too), with the hidden tests that decide whether a run needs correcting."""

    scoring: NotRequired[Scoring]


class CorrectionOutput(OutputState):
    hidden_passed: bool
    hidden_report: dict[str, Any]
    rounds: int
    verdicts: list[dict[str, Any]]
    # passed (no correction needed) | corrected | unsolved | supervisor_unreadable
    outcome: str
    training_pairs: list[dict[str, Any]]


class CorrectionState(State, CorrectionInput, CorrectionOutput):
    """The MapCoder state plus the hidden-test verdict and the supervisor's rounds."""


def scoring_of(problem: Problem) -> Scoring:
    return Scoring(check=problem.check, hidden_tests=list(problem.hidden_tests), test_setup=problem.test_setup,
                   prefix=problem.prefix, reference=problem.reference)


def reference_of(state: CorrectionState, context: SupervisorContext) -> str | None:
    """The reference solution the supervisor is shown: None unless `supervisor_reference`, when a
    problem without one is refused (a ValueError) rather than supervised without it."""
    if not context.supervisor_reference:
        return None
    reference = ((state.get("scoring") or Scoring()).get("reference") or "").strip()
    if not reference:
        raise ValueError(f"problem {state.get('id') or '?'} has no reference solution, and supervisor_reference "
                         "is on (reference-guided supervision needs one for every problem)")
    return reference


def problem_of(state: CorrectionState) -> Problem:
    """The Problem that scoring runs; the samples stand in when no hidden tests were given."""
    scoring = state.get("scoring") or Scoring()
    hidden = list(scoring.get("hidden_tests") or [])
    check = scoring.get("check")
    if not hidden and not check:
        hidden = list(state["sample_tests"])
    return Problem(id=state.get("id") or "problem", problem=state["problem"], sample_tests=state["sample_tests"],
                   entry_point=state.get("entry_point"), language=state.get("language") or "python", check=check,
                   hidden_tests=hidden, test_setup=scoring.get("test_setup") or "", prefix=scoring.get("prefix") or "")


def focus_index(state: CorrectionState) -> int:
    """The plan whose code was returned (and scored): the passing one, else the best attempt's."""
    if (state.get("test_report") or {}).get("all_passed"):
        return state["plan_index"]
    best = (state.get("best") or {}).get("plan_index")
    return state["plan_index"] if best is None else best


def _language(state: CorrectionState) -> str:
    return state.get("language") or "python"


def _tag(update: dict[str, Any], rounds: int, **extra: Any) -> dict[str, Any]:
    """Mark the update's call records with the supervisor round they belong to."""
    for record in update.get("trajectory") or []:
        record.update(round=rounds, **extra)
    return update


def in_round(node: Callable[..., dict[str, Any]], models: RoleModels) -> Callable[..., dict[str, Any]]:
    """A MapCoder node (coder, debugger) reused in the loop, its calls tagged with the round."""

    def tagged(state: CorrectionState, runtime: Runtime[Context]) -> dict[str, Any]:
        return _tag(node(state, runtime, models=models), state.get("rounds", 0))

    tagged.__name__ = node.__name__
    return tagged


def make_mapcoder_node(main: CompiledStateGraph) -> Callable[..., dict[str, Any]]:
    """The first pass: the whole MapCoder graph as a subgraph, its full final state kept.

    Called inside the node (not added as a node) because its output schema drops what the
    corrections need (examples, algorithm, best attempt); LangGraph still shows it as a subgraph.
    """

    def mapcoder(state: CorrectionState, runtime: Runtime[Context]) -> dict[str, Any]:
        reference_of(state, supervisor_context_of(runtime.context))  # refused before any model call
        final: dict[str, Any] = {}
        graph_input = {key: state[key] for key in GRAPH_INPUT_KEYS if key in state}  # never the hidden tests
        for values in main.stream(graph_input, context=runtime.context, stream_mode="values"):
            final = values
        kept = {key: value for key, value in final.items() if key not in GRAPH_INPUT_KEYS}
        return kept | {"language": final.get("language") or _language(state), "rounds": 0, "verdicts": []}

    return mapcoder


def hidden_testing(state: CorrectionState, runtime: Runtime[Context]) -> dict[str, Any]:
    context = context_of(runtime.context)
    verdict = score(problem_of(state), state.get("code"), sandbox=context.sandbox,
                    limits=scoring_limits(context.test_timeout_s, context.memory_mb))
    plans = [dict(plan) for plan in state["plans"]]
    if plans:
        # Recorded on the plan so extraction can label its confidence answer by the outcome.
        plans[focus_index(state)]["hidden_passed"] = verdict.passed
    return {"hidden_passed": verdict.passed, "hidden_report": verdict.report, "plans": plans}


def after_hidden_tests(state: CorrectionState, runtime: Runtime[Context]) -> Literal["done", "supervisor"]:
    context = supervisor_context_of(runtime.context)
    if state["hidden_passed"] or state.get("rounds", 0) >= context.correction_rounds:
        return "done"
    return "supervisor"


def _failing_test_data(report: dict[str, Any]) -> list[str]:
    """The first failing hidden test's input and expected output, as strings."""
    failing = next((o for o in report.get("outcomes", []) if not o.get("passed")), {})
    values: list[str] = []
    for key in ("input", "expected"):
        value = failing.get(key)
        values.extend(str(v) for v in (value if isinstance(value, list) else [value]) if v is not None)
    return values


def supervisor(state: CorrectionState, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = supervisor_context_of(runtime.context)
    language = _language(state)
    plan = state["plans"][focus_index(state)]
    show_failing = context.supervisor_hidden_report == "failing"
    report = state.get("hidden_report") or {}
    reference = reference_of(state, context)
    messages = prompt.build_messages(
        state["problem"],
        state["sample_tests"],
        language,
        state.get("algorithm", ""),
        plan.get("plan", ""),
        plan.get("confidence"),
        plan.get("attempts") or [],
        prompt.render_hidden(report, show_failing=show_failing),
        [v for v in state.get("verdicts") or [] if v.get("agent")],
        reference,
    )
    parsed, call = models.ask("supervisor", messages, context)
    rounds = state.get("rounds", 0) + 1
    verdict: dict[str, Any] = {"round": rounds, "parsed": call.parsed, "strict": prompt.is_strict(call.response),
                               "agent": None, "feedback": "", "redacted": 0}
    if parsed is not None:
        feedback, cut = prompt.redact(parsed.feedback, _failing_test_data(report)) if show_failing \
            else (parsed.feedback, 0)
        if reference:  # a line of the reference quoted in the feedback would reach the agent
            feedback, quoted = prompt.redact(feedback, prompt.reference_lines(reference), mark="[the reference]")
            cut += quoted
        verdict |= {"agent": parsed.agent, "feedback": feedback, "analysis": parsed.analysis, "redacted": cut}
    # The record carries the reference it was shown, so extraction can check completions against it.
    update = _tag(call.update(), rounds, verdict=verdict, **({"reference": reference} if reference else {}))
    return update | {"rounds": rounds, "verdicts": [*(state.get("verdicts") or []), verdict]}


def after_supervisor(state: CorrectionState) -> Literal["correct_plan", "correct_code", "done"]:
    agent = (state.get("verdicts") or [{}])[-1].get("agent")
    if agent == "planner":
        return "correct_plan"
    if agent == "coder":
        return "correct_code"
    return "done"  # an unreadable verdict: counted as a supervisor format failure, not retried


def _retry(state: CorrectionState, agent: str, normal: list[dict[str, str]], previous: str,
           models: RoleModels, context: Context) -> tuple[str, dict[str, Any]]:
    """Call `agent` with its normal prompt plus the feedback; the record keeps the normal prompt."""
    feedback = state["verdicts"][-1]["feedback"]
    messages = prompt.with_feedback(normal, agent, previous, feedback, _language(state))
    parsed, call = models.ask(agent, messages, context, _language(state))
    update = _tag(call.update(), state["rounds"],
                  correction={"agent": agent, "feedback": feedback, "prompt": normal})
    return parsed or "", update


def correct_plan(state: CorrectionState, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    """The planner plans again, from the same example, with the supervisor's feedback."""
    context = context_of(runtime.context)
    plans = [dict(plan) for plan in state["plans"]]
    plan = plans[focus_index(state)]
    examples = state.get("examples") or []
    index = plan.get("example_index", 0)
    example = examples[index] if 0 <= index < len(examples) else None
    normal = planner_prompt.build_messages(state["problem"], state["sample_tests"], _language(state), example,
                                           state.get("algorithm", ""))
    new_plan, update = _retry(state, "planner", normal, plan.get("plan", ""), models, context)
    # Fallback for an unreadable retry: the old plan is coded again.
    entry = {key: plan.get(key) for key in ("confidence", "explanation", "example_index")} | {
        "plan": new_plan or plan.get("plan", ""), "tried": False, "passed": False, "attempts": [],
        "round": state["rounds"], "corrected": "planner",
    }
    return update | {"plans": [*plans, entry], "plan_index": len(plans), "debug_round": 0, "best": {},
                     "current_plan": entry["plan"]}


def correct_code(state: CorrectionState, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    """The coder codes the same plan again with the supervisor's feedback."""
    context = context_of(runtime.context)
    plans = [dict(plan) for plan in state["plans"]]
    plan = plans[focus_index(state)]
    normal = coder_prompt.build_messages(state["problem"], state["sample_tests"], _language(state),
                                         plan.get("plan", ""), state.get("algorithm", ""), state.get("entry_point"))
    previous = (plan.get("attempts") or [{}])[0].get("code", "")  # the coder's own program, before debugging
    code, update = _retry(state, "coder", normal, previous, models, context)
    entry = {key: plan.get(key) for key in ("plan", "confidence", "explanation", "example_index")} | {
        "tried": True, "passed": False, "attempts": [], "round": state["rounds"], "corrected": "coder",
    }
    # Fallback for an unreadable retry: no code, which debugging may still rescue (as in the coder node).
    return update | {"plans": [*plans, entry], "plan_index": len(plans), "debug_round": 0, "best": {},
                     "current_plan": entry["plan"], "current_code": code}


def after_correction_tests(state: CorrectionState, runtime: Runtime[Context]) -> Literal["finish", "debugger"]:
    """MapCoder's debugging loop on the one corrected plan: at most t rounds, no other plan."""
    if state["test_report"]["all_passed"] or state["debug_round"] >= context_of(runtime.context).t:
        return "finish"
    return "debugger"


def done(state: CorrectionState) -> dict[str, Any]:
    """The outcome, and the corrected (prompt without feedback -> answer) pairs when it passed."""
    verdicts = state.get("verdicts") or []
    if state.get("hidden_passed"):
        outcome = "corrected" if verdicts else "passed"
    elif verdicts and not verdicts[-1]["parsed"]:
        outcome = "supervisor_unreadable"
    else:
        outcome = "unsolved"
    pairs = corrected_pairs(state["trajectory"], state.get("code") or "", _language(state)) \
        if outcome == "corrected" else []
    return {"outcome": outcome, "training_pairs": pairs}


def build_supervisor_graph(
    chat_models: Mapping[str, BaseChatModel] | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """Compile the correction graph. `chat_models` maps a role (the five agents and "supervisor") to a
    chat model used instead of the endpoint, as in `build_graph`."""
    models = RoleModels(chat_models, roles=SUPERVISOR_ROLES)
    main = build_graph({role: m for role, m in (chat_models or {}).items() if role in ROLES})
    builder = StateGraph(CorrectionState, context_schema=SupervisorContext, input_schema=CorrectionInput,
                         output_schema=CorrectionOutput)

    builder.add_node("mapcoder", make_mapcoder_node(main))
    builder.add_node("hidden_testing", hidden_testing)
    builder.add_node("supervisor", partial(supervisor, models=models))
    builder.add_node("correct_plan", partial(correct_plan, models=models))
    builder.add_node("correct_code", partial(correct_code, models=models))
    builder.add_node("coder", in_round(coder, models))
    builder.add_node("sample_testing", sample_testing)
    builder.add_node("debugger", in_round(debugger, models))
    builder.add_node("finish", finish)
    builder.add_node("done", done)

    builder.add_edge(START, "mapcoder")
    builder.add_edge("mapcoder", "hidden_testing")
    builder.add_conditional_edges("hidden_testing", after_hidden_tests, ["done", "supervisor"])
    builder.add_conditional_edges("supervisor", after_supervisor, ["correct_plan", "correct_code", "done"])
    builder.add_edge("correct_plan", "coder")
    builder.add_edge("coder", "sample_testing")
    builder.add_edge("correct_code", "sample_testing")
    builder.add_conditional_edges("sample_testing", after_correction_tests, ["finish", "debugger"])
    builder.add_edge("debugger", "sample_testing")
    builder.add_edge("finish", "hidden_testing")
    builder.add_edge("done", END)

    compiled = builder.compile(checkpointer=checkpointer)
    compiled.name = "MapCoder-Lite supervised correction"
    return compiled


# Exported by langgraph.json; compiled without a checkpointer so `langgraph dev` can add its own.
graph = build_supervisor_graph()
