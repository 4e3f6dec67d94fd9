"""What the integration tests with real models share: the test model, its adapters, the server with
the startup adapters, and a short run of the graph on it. Skipping (or failing) when serving
dependencies are missing, and where vLLM runs, are in tests/servers.py (a unit test needs them too).

The session fixtures built from these are in conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.servers import vllm_python

if TYPE_CHECKING:
    from mapcoder_lite.serving.vllm import VLLMServer

TEST_MODEL = "smollm2-135m-instruct"
LORA_STD = 0.05  # 0.02 leaves greedy answers unchanged, 0.1 already derails the 135M model
STARTUP_ADAPTERS = {"coder": 1, "planner": 2}  # role -> seed, served from the start
# Seeds chosen so that each adapter's greedy answer to PROMPT differs from the base model's.
PROMPT = "Write a Python function that returns the sum of a list of numbers."
RUNTIME_ADAPTER = ("debugger", 5)  # loaded into the running server by a test
# The graph's agent nodes: a run with small_run's settings passes through each.
AGENT_NODES = {"retriever", "planner", "confidence", "rank_plans", "coder", "sample_testing", "finish"}


def small_run(server: VLLMServer) -> dict[str, Any]:
    """Context for a short run of the paper's graph (every agent takes a turn): one plan, one debugging
    round, short answers; two roles on adapters."""
    return {
        "direct_first": False,
        "plan_diversity": False,  # the lone plan is scored too
        "base_url": server.base_url,
        "model": server.served_model_name,
        "planner_model": "planner",
        "coder_model": "coder",
        "k": 1,
        "t": 1,
        "max_tokens": 192,
    }


def startup_adapter_server(model_dir: Path, adapters: dict[str, Path], log_path: Path,
                           max_loras: int | None = None) -> VLLMServer:
    """A (not yet started) vLLM server for the test model with the startup adapters."""
    from mapcoder_lite.serving.vllm import VLLMServer

    return VLLMServer(model_dir, {name: adapters[name] for name in STARTUP_ADAPTERS}, max_loras=max_loras,
                      max_model_len=2048, kv_cache_gib=1, python=vllm_python(), log_path=log_path,
                      startup_timeout_s=600)
