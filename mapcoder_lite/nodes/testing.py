"""Sample testing: run the current code against the problem's samples in the sandbox."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from mapcoder_lite.graph.context import Context, context_of
from mapcoder_lite.graph.state import State
from mapcoder_lite.sandbox import Limits, get_sandbox, run_tests


def limits_of(context: Context) -> Limits:
    return Limits.per_test(context.test_timeout_s, context.memory_mb)


def test_code(code: str, state: State, context: Context) -> dict[str, Any]:
    """The samples' verdict on `code`, with the report the debugger reads (`rendered`)."""
    tests = state["sample_tests"]
    if not code.strip():
        return {"samples_passed": 0, "total": len(tests), "all_passed": False,
                "rendered": "No code was produced: the answer had no usable code block."}
    report = run_tests(
        get_sandbox(context.sandbox),
        code,
        tests,
        entry_point=state.get("entry_point"),
        language=state.get("language") or "python",
        limits=limits_of(context),
        # Run before the code as scoring runs it; the debugger is shown the code alone, and the report
        # numbers the code's lines as that code does.
        prefix=state.get("prefix") or "",
    )
    return report.to_dict() | {
        "samples_passed": report.passed,
        "total": report.total,
        # No sample is no evidence: the code is returned unverified, never as passing.
        "all_passed": report.all_passed and bool(tests),
        "rendered": report.render() if tests else "There are no sample tests: the code was not checked.",
    }


def sample_testing(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    context = context_of(runtime.context)
    code = state["current_code"]
    result = test_code(code, state, context)

    plans = [dict(plan) for plan in state["plans"]]
    attempt = {
        "code": code,
        "plan": state["current_plan"],
        "debug_round": state["debug_round"],
        "samples_passed": result["samples_passed"],
        "total": result["total"],
        "report": result["rendered"],
    }
    current = plans[state["plan_index"]]
    current["attempts"] = [*current["attempts"], attempt]
    current["passed"] = result["all_passed"]
    best = state.get("best") or {}
    # Strictly more samples passed replaces the best attempt, so ties keep the earlier one.
    if code.strip() and result["samples_passed"] > best.get("samples_passed", -1):
        best = attempt | {"plan_index": state["plan_index"]}
    return {"test_report": result, "plans": plans, "best": best}


def after_tests(state: State, runtime: Runtime[Context]) -> Literal["finish", "debugger", "next_plan"]:
    """Stop at the first passing code (or the first code at all, without samples); else debug (at most t
    rounds) unless the code is one already tried; else the next plan; else finish."""
    context = context_of(runtime.context)
    if nothing_left_to_check(state):
        return "finish"
    if state["debug_round"] < context.t and not (context.stop_repeats and _tried_before(state)):
        return "debugger"
    if state["plan_index"] + 1 < len(state["plans"]):
        return "next_plan"
    return "finish"


def nothing_left_to_check(state: State) -> bool:
    """The code just tested passes the samples, or there are none to debug against."""
    return state["test_report"]["all_passed"] or not state["sample_tests"]


def _tried_before(state: State) -> bool:
    """Whether the debugger just returned code this plan already tested: the samples' verdict is the
    same, and at temperature 0 a debugger shown the same plan, code and report repeats itself, so the
    rounds left would be spent on copies (a stuck plan cost up to t calls). The same code under another
    plan, or the direct attempt's, still gets debugged: the debugger sees a different plan there."""
    earlier = state["plans"][state["plan_index"]]["attempts"][:-1]  # the last is the code just tested
    return _among(state["current_code"], earlier)


def is_tested(code: str, state: State) -> bool:
    """Whether `code` was already tested in this run: as the direct attempt or under any plan."""
    attempts = [a for plan in state.get("plans", []) for a in plan.get("attempts", [])]
    return _among(code, [state["direct"], *attempts] if state.get("direct") else attempts)


def _among(code: str, attempts: list[dict[str, Any]]) -> bool:
    """Whether non-empty `code` is, normalised, the code of one of `attempts`."""
    program = normalized(code)
    return bool(program) and any(normalized(attempt.get("code", "")) == program for attempt in attempts)


def normalized(code: str) -> str:
    """Code compared for sameness: trailing spaces and blank lines do not count."""
    return "\n".join(line.rstrip() for line in code.splitlines() if line.strip())


def finish(state: State) -> dict[str, Any]:
    """The passing code, or else the best attempt (most samples passed) over every plan."""
    if state["test_report"]["all_passed"]:
        return {"code": state["current_code"], "passed": True}
    return {"code": (state.get("best") or {}).get("code", ""), "passed": False}
