"""Retrieval agent node: k example problems for the planner, and the algorithm behind the target problem.

Where they come from is Context.retrieval: `recall` (the paper's: the retriever model recalls k examples
and names the algorithm, one call), `bank` (the k nearest verified exemplars of the bank, no call, no
algorithm named) or `both` (the bank's nearest ceil(k/2) first, then the model's recalled examples, then
more of the bank's if the model recalled too few: k in all; the model names the algorithm, one call).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from mapcoder_lite.bank.store import Bank, load_bank
from mapcoder_lite.graph.context import ROLES, Context, context_of
from mapcoder_lite.graph.state import State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.prompts import retriever as prompt


def bank_of(context: Context) -> Bank | None:
    """The run's exemplar bank, checked, when its retrieval uses one (a BankError names the fix)."""
    return load_bank(context.bank) if context.retrieval != "recall" else None


def retriever(state: State, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = context_of(runtime.context)
    language = state.get("language") or "python"
    bank = bank_of(context)
    exemplars = [e.example() for e in bank.nearest(state["problem"], context.k, state.get("id"))] if bank else []
    # Every role is listed from the start, so a run's output shows zero failures explicitly.
    listed = dict.fromkeys(ROLES, 0)
    shared = {"language": language, "entry_point": state.get("entry_point")}
    if context.retrieval == "bank":
        # No model call: none is counted, none is in the trajectory.
        return shared | {"trajectory": [], "llm_calls": 0, "format_failures": listed, "examples": exemplars,
                         "algorithm": ""}
    messages = prompt.build_messages(state["problem"], language, context.k)
    retrieval, call = models.ask("retriever", messages, context, language)
    update = call.update()
    # Fallback when nothing parsed: no examples, and planning works from the problem alone.
    recalled = retrieval.examples if retrieval else []
    if context.retrieval == "both":
        first = exemplars[: (context.k + 1) // 2]
        examples = first + recalled[: context.k - len(first)]
        examples += exemplars[len(first):][: context.k - len(examples)]
    else:
        examples = recalled[: context.k]
    return update | shared | {
        "format_failures": listed | update["format_failures"],
        "examples": examples,
        "algorithm": retrieval.algorithm if retrieval else "",
    }
