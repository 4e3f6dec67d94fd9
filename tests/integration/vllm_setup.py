"""What the integration tests with real models share: the test model, its adapters, where vLLM runs,
the server with the startup adapters, and skipping (or failing) when serving dependencies are missing.

The session fixtures built from these are in conftest.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mapcoder_lite.serving.vllm import VLLMServer

TEST_MODEL = "smollm2-135m-instruct"
LORA_STD = 0.05  # 0.02 leaves greedy answers unchanged, 0.1 already derails the 135M model
STARTUP_ADAPTERS = {"coder": 1, "planner": 2}  # role -> seed, served from the start
# Seeds chosen so that each adapter's greedy answer to PROMPT differs from the base model's.
PROMPT = "Write a Python function that returns the sum of a list of numbers."
RUNTIME_ADAPTER = ("debugger", 5)  # loaded into the running server by a test


def vllm_python() -> str:
    """The Python that runs vLLM: $MAPCODER_LITE_VLLM_PYTHON (another environment), else this one."""
    return os.environ.get("MAPCODER_LITE_VLLM_PYTHON") or sys.executable


def _vllm_available() -> bool:
    python = vllm_python()
    if python == sys.executable:
        return importlib.util.find_spec("vllm") is not None
    return subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode == 0


def need(modules: list[str]) -> None:
    """Skip when optional serving dependencies are missing, unless the run demands them."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if "vllm" in modules and "vllm" in missing and _vllm_available():
        missing.remove("vllm")  # vLLM lives in another environment ($MAPCODER_LITE_VLLM_PYTHON)
    if missing:
        message = f"serving dependencies not installed: {', '.join(missing)}"
        if os.environ.get("MAPCODER_LITE_REQUIRE_SERVING"):
            pytest.fail(message)
        pytest.skip(message)


def startup_adapter_server(model_dir: Path, adapters: dict[str, Path], log_path: Path,
                           max_loras: int | None = None) -> VLLMServer:
    """A (not yet started) vLLM server for the test model with the startup adapters."""
    from mapcoder_lite.serving.vllm import VLLMServer

    return VLLMServer(model_dir, {name: adapters[name] for name in STARTUP_ADAPTERS}, max_loras=max_loras,
                      max_model_len=2048, kv_cache_gib=1, python=vllm_python(), log_path=log_path,
                      startup_timeout_s=600)
