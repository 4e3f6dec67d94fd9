"""Retrieval agent node: recall k example problems and the algorithm behind the target problem."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from mapcoder_lite.graph.context import ROLES, Context, context_of
from mapcoder_lite.graph.state import State
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.prompts import retriever as prompt


def retriever(state: State, runtime: Runtime[Context], *, models: RoleModels) -> dict[str, Any]:
    context = context_of(runtime.context)
    language = state.get("language") or "python"
    messages = prompt.build_messages(state["problem"], language, context.k)
    retrieval, call = models.ask("retriever", messages, context, language)
    update = call.update()
    # Every role is listed from the start, so a run's output shows zero failures explicitly.
    update["format_failures"] = dict.fromkeys(ROLES, 0) | update["format_failures"]
    return update | {
        "language": language,
        "entry_point": state.get("entry_point"),
        # Fallback when nothing parsed: no examples, and planning works from the problem alone.
        "examples": retrieval.examples[: context.k] if retrieval else [],
        "algorithm": retrieval.algorithm if retrieval else "",
    }
