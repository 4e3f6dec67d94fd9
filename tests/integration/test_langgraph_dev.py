"""The graph loads under `langgraph dev` and shows its input, output and context schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client

from mapcoder_lite.graph.context import DEFAULT_T
from tests.servers import langgraph_dev

pytestmark = pytest.mark.integration


def test_langgraph_dev_serves_the_graph_and_its_schemas(tmp_path: Path) -> None:
    with langgraph_dev(tmp_path / "langgraph.log") as url:
        client = get_sync_client(url=url)
        assistants = client.assistants.search(graph_id="mapcoder_lite")
        assert len(assistants) == 1
        schemas = client.assistants.get_schemas(assistants[0]["assistant_id"])

    inputs = schemas["input_schema"]["properties"]
    assert {"problem", "sample_tests", "entry_point", "language"} <= set(inputs)
    assert set(schemas["input_schema"]["required"]) == {"problem", "sample_tests"}
    outputs = schemas["output_schema"]["properties"]
    assert {"code", "passed", "plans", "trajectory", "format_failures", "llm_calls"} <= set(outputs)
    context = schemas["context_schema"]["properties"]
    for name in (
        "k",
        "t",
        "base_url",
        "api_key",
        "model",
        "coder_model",
        "temperature",
        "max_tokens",
        "sandbox",
        "test_timeout_s",
    ):
        assert name in context, name
        assert context[name].get("description"), f"{name} has no description for Studio"
    assert context["k"]["default"] == 3 and context["t"]["default"] == DEFAULT_T
