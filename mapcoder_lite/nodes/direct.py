"""Direct attempt node: before any retrieval, the coder writes code straight from the problem.

A small model solves many problems in one call (untuned Qwen2.5-Coder-0.5B: about half of HumanEval),
and MapCoder's 8 to 25 calls cannot do better on those. The code is tested on the samples here; when
it passes, the run ends; when it does not, the full graph runs and this code stays a candidate for the
best attempt (`best`, plan_index -1). Context.direct_first=False skips this node: the paper's MapCoder.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from mapcoder_lite.graph.context import ROLES, Context, context_of
from mapcoder_lite.graph.state import State
from mapcoder_lite.llm import PromptTooLong, RoleModels
from mapcoder_lite.nodes.retriever import bank_of
from mapcoder_lite.nodes.testing import nothing_left_to_check, test_code
from mapcoder_lite.prompts import direct as prompt
from mapcoder_lite.sandbox import validate_tests


def start(state: State, runtime: Runtime[Context]) -> Literal["direct", "retriever"]:
    """The graph's entry: the direct attempt first (the default), or retrieval as in the paper. Tests
    that cannot run, and an exemplar bank that is missing or damaged (Context.retrieval 'bank' or
    'both'), are refused here, whichever way the run goes, before any model call is spent."""
    validate_tests(state["sample_tests"], state.get("language") or "python", allow_empty=True)
    context = context_of(runtime.context)
    bank_of(context)
    return "direct" if context.direct_first else "retriever"


def direct(state: State, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = context_of(runtime.context)
    language = state.get("language") or "python"
    messages = prompt.build_messages(state["problem"], state["sample_tests"], language, state.get("entry_point"))
    try:
        code, call = models.ask("coder", messages, context, language)
    except PromptTooLong as refused:
        update, code = refused.call.update(), None
    else:
        update = call.update()
    code = code or ""
    result = test_code(code, state, context)
    attempt = {"code": code, "plan": "", "debug_round": 0, "samples_passed": result["samples_passed"],
               "total": result["total"], "report": result["rendered"]}
    return update | {
        # Every role is listed from the start, so a run's output shows zero failures explicitly.
        "format_failures": dict.fromkeys(ROLES, 0) | update.get("format_failures", {}),
        "language": language,
        "entry_point": state.get("entry_point"),
        "direct": attempt,
        "plans": [],  # none yet; the output always has the key
        "current_code": code,
        "test_report": result,
        "best": attempt | {"plan_index": -1} if code.strip() else {},
    }


def after_direct(state: State) -> Literal["finish", "retriever"]:
    """Done when the direct code passes the samples (or there are none to check); else MapCoder."""
    return "finish" if nothing_left_to_check(state) else "retriever"
