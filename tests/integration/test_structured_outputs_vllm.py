"""Formats enforced at decoding on the real server: with structured outputs, every answer of the
135M test model (two roles on LoRA adapters) is in its role's strict format; without, the same
graph still runs on the tolerant parsers."""

from __future__ import annotations

from typing import Any

import pytest

from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.llm import probe_vllm
from mapcoder_lite.roles import role_spec

pytestmark = pytest.mark.integration

# A function problem the 135M model will not solve, so the debugger is called too.
PROBLEM = {
    "problem": "def second_largest(xs):\n    \"\"\"Return the second largest distinct number in xs.\"\"\"\n",
    "sample_tests": ["assert second_largest([3, 1, 4, 4, 2]) == 3", "assert second_largest([5, 9]) == 5"],
    "entry_point": "second_largest",
}
K = 2


def context(server: Any, structured_outputs: str) -> Context:
    """Two plans, one debugging round each; the planner and the coder on their adapters. The budget
    leaves room for a grammar's longest fields (a cut answer would be out of format, whatever the grammar)."""
    return Context(base_url=server.base_url, model=server.served_model_name, planner_model="planner",
                   coder_model="coder", k=K, t=1, max_tokens=1024, structured_outputs=structured_outputs,
                   direct_first=False, plan_diversity=False)  # every agent answers, every plan is scored


def test_every_answer_is_strict_with_structured_outputs_and_the_graph_runs_without(vllm_server: Any) -> None:
    assert probe_vllm(vllm_server.base_url, "EMPTY") is True  # what 'auto' asks

    on = build_graph().invoke(PROBLEM, context=context(vllm_server, "auto"))
    roles = {call["role"] for call in on["trajectory"]}
    assert roles == {"retriever", "planner", "confidence", "coder", "debugger"}, roles
    assert {call["model"] for call in on["trajectory"] if call["role"] in ("planner", "coder")} == {"planner", "coder"}
    assert on["format_failures"] == dict.fromkeys(roles, 0), on["format_failures"]
    for call in on["trajectory"]:
        assert role_spec(call["role"]).prompt.is_strict(call["response"], "python", K), call
    assert len(on["plans"]) == K  # exactly k examples retrieved, hence k plans

    off = build_graph().invoke(PROBLEM, context=context(vllm_server, "off"))
    assert off["llm_calls"] == len(off["trajectory"]) >= 4
    assert all(call["completion_tokens"] > 0 for call in off["trajectory"])
    # The same model without the grammar: not every answer is strict (else this test shows nothing).
    assert not all(role_spec(c["role"]).prompt.is_strict(c["response"], "python", K) for c in off["trajectory"])
