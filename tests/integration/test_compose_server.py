"""MapCoder-Lite as a subgraph of a parent app, served by `langgraph dev` and driven through `langgraph_sdk`
against the real vLLM server (SmolLM2-135M): settings per assistant, nested steps on the stream, a pause
for review on the server's checkpointer, and a resume that does not run the agents again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client

from tests.integration.vllm_setup import AGENT_NODES, small_run
from tests.servers import ROOT, langgraph_dev

pytestmark = pytest.mark.integration


def test_parent_graph_pauses_for_review_and_resumes_under_langgraph_dev(vllm_server: Any, tmp_path: Path) -> None:
    task = (ROOT / "examples" / "two_sum.md").read_text()
    with langgraph_dev(tmp_path / "langgraph.log") as url:
        client = get_sync_client(url=url)
        # The run's settings live on an assistant of its own, as a deployment would configure one.
        assistant = client.assistants.create("solve_and_review", context=small_run(vllm_server), name="small run")
        drawn = client.assistants.get_graph(assistant["assistant_id"], xray=1)
        thread = client.threads.create()["thread_id"]
        first = list(client.runs.stream(thread, assistant["assistant_id"], input={"task": task},
                                        stream_mode=["updates", "custom"], stream_subgraphs=True))
        paused = client.threads.get_state(thread)
        second = list(client.runs.stream(thread, assistant["assistant_id"],
                                         command={"resume": {"approved": True, "note": "fine"}},
                                         stream_mode=["updates", "custom"], stream_subgraphs=True))
        final = client.threads.get_state(thread)

    errors = [part.data for part in first + second if part.event == "error"]
    assert not errors, errors
    # Studio's drawing has MapCoder-Lite's agents nested under the parent's node.
    assert {f"solve:{node}" for node in AGENT_NODES} <= {node["id"] for node in drawn["nodes"]}

    # Each agent step streamed as a nested update (namespace solve:<task>) and as a progress event.
    nested = {node for part in first if part.event.startswith("updates|solve:") for node in part.data}
    assert AGENT_NODES.issubset(nested), nested
    progress = [part.data for part in first if part.event.startswith("custom")]
    assert AGENT_NODES.issubset(event["node"] for event in progress)
    assert all(event["source"] == "mapcoder_lite" for event in progress)
    # The assistant's context reached the subgraph: the coder asked for its adapter.
    assert {event["model"] for event in progress if event["node"] == "coder"} == {"coder"}

    assert paused["next"] == ["review"]
    (question,) = paused["tasks"][0]["interrupts"]
    assert question["value"]["question"] == "Approve this code?"
    assert isinstance(question["value"]["code"], str) and isinstance(question["value"]["passed"], bool)

    # Resuming ran the review and the answer only: no agent step again.
    assert not [part for part in second if part.event.startswith(("updates|solve:", "custom"))]
    values = final["values"]
    assert final["next"] == [] and values["approved"] is True
    assert values["answer"].endswith("The reviewer approved it. Reviewer: fine")
    assert values["code"] == question["value"]["code"]
    assert 4 <= values["llm_calls"] <= 5  # k=1, t=1: retriever, planner, confidence, coder, at most one debug
