"""Whole graph runs against the real vLLM server: from the CLI, and through `langgraph dev`.

The 135M test model rarely writes a correct program; these tests check that a run completes end to
end with per-role adapters, and that whatever the model answers is recorded, not that it passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client

from tests.integration.vllm_setup import AGENT_NODES, small_run
from tests.servers import ROOT, langgraph_dev

pytestmark = pytest.mark.integration

OUTPUT_KEYS = {"code", "passed", "plans", "trajectory", "format_failures", "llm_calls"}
def test_solve_command_runs_the_graph_through_vllm(vllm_server: Any) -> None:
    context = small_run(vllm_server)
    command = [
        sys.executable, "-m", "mapcoder_lite.cli", "solve", str(ROOT / "examples" / "two_sum.json"),
        "--base-url", context["base_url"], "--model", context["model"],
        "--role-model", "planner=planner", "--role-model", "coder=coder",
        "--k", "1", "--t", "1", "--max-tokens", "192", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert OUTPUT_KEYS.issubset(result)
    models = {call["role"]: call["model"] for call in result["trajectory"]}
    assert models["planner"] == "planner" and models["coder"] == "coder"
    assert models["retriever"] == vllm_server.served_model_name
    assert all(call["completion_tokens"] > 0 for call in result["trajectory"])  # real usage counted
    assert result["llm_calls"] == len(result["trajectory"]) >= 4
    assert "retriever" in done.stderr and "sample_testing" in done.stderr  # steps shown as they happen


def test_langgraph_server_runs_the_graph_against_vllm(vllm_server: Any, tmp_path: Path) -> None:
    problem = json.loads((ROOT / "examples" / "two_sum.json").read_text())
    context = small_run(vllm_server)
    with langgraph_dev(tmp_path / "langgraph.log") as url:
        client = get_sync_client(url=url)
        (assistant,) = client.assistants.search(graph_id="mapcoder_lite")
        thread = client.threads.create()
        output = client.runs.wait(thread["thread_id"], assistant["assistant_id"], input=problem, context=context)
        streamed = [
            part
            for part in client.runs.stream(
                None, assistant["assistant_id"], input=problem, context=context, stream_mode=["updates"]
            )
            if part.event == "updates"
        ]
    assert OUTPUT_KEYS.issubset(output), output
    assert isinstance(output["code"], str) and isinstance(output["passed"], bool)
    assert output["llm_calls"] == len(output["trajectory"]) >= 4
    assert {call["model"] for call in output["trajectory"] if call["role"] == "coder"} == {"coder"}
    nodes = {node for part in streamed for node in part.data}
    assert AGENT_NODES.issubset(nodes), nodes
