"""Session fixtures for the serving tests: a small real model, LoRA adapters made here, one vLLM server.

The model is `smollm2-135m-instruct` (a GGUF shipped in a PyPI package, converted once into the
mapcoder-lite cache). The adapters are rank-32 LoRA on q/k/v/o made with PEFT, with lora_B drawn at
random (PEFT initializes it to zero, which would make an adapter equal to the base model) from a
fixed seed, so each adapter answers differently from the base model yet stays coherent. One vLLM
server serves them for the whole session on a free port and is always stopped at the end.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: starts real servers or models (langgraph dev, vLLM); slower")


def _vllm_python() -> str:
    return os.environ.get("MAPCODER_LITE_VLLM_PYTHON") or sys.executable


def _vllm_available() -> bool:
    python = _vllm_python()
    if python == sys.executable:
        return importlib.util.find_spec("vllm") is not None
    return subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode == 0


def _need(modules: list[str]) -> None:
    """Skip when optional serving dependencies are missing, unless the run demands them."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if "vllm" in modules and "vllm" in missing and _vllm_available():
        missing.remove("vllm")  # vLLM lives in another environment ($MAPCODER_LITE_VLLM_PYTHON)
    if missing:
        message = f"serving dependencies not installed: {', '.join(missing)}"
        if os.environ.get("MAPCODER_LITE_REQUIRE_SERVING"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The prepared test model (converted once, then taken from the cache)."""
    _need(["torch", "transformers", "gguf"])
    from mapcoder_lite.serving.models import prepare_model

    override = os.environ.get("MAPCODER_LITE_TEST_MODEL_DIR")
    return Path(override) if override else prepare_model(TEST_MODEL)


@pytest.fixture(scope="session")
def adapters(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{name: adapter dir} for the startup adapters and the one loaded at run time."""
    _need(["torch", "transformers", "peft"])
    seeds = dict(STARTUP_ADAPTERS) | {RUNTIME_ADAPTER[0]: RUNTIME_ADAPTER[1]}
    from mapcoder_lite.serving.inprocess import make_random_adapters

    return make_random_adapters(model_dir, tmp_path_factory.mktemp("adapters"), seeds, std=LORA_STD)


def startup_adapter_server(model_dir: Path, adapters: dict[str, Path], log_path: Path,
                           max_loras: int | None = None) -> VLLMServer:
    """A (not yet started) vLLM server for the test model with the startup adapters."""
    from mapcoder_lite.serving.vllm import VLLMServer

    return VLLMServer(model_dir, {name: adapters[name] for name in STARTUP_ADAPTERS}, max_loras=max_loras,
                      max_model_len=2048, kv_cache_gib=1, python=_vllm_python(), log_path=log_path,
                      startup_timeout_s=600)


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, adapters: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One vLLM server for the session: the base model plus the startup adapters, room for one more."""
    _need(["vllm"])
    # the runtime adapter must fit in the same batch slots
    server = startup_adapter_server(model_dir, adapters, tmp_path_factory.mktemp("vllm") / "server.log",
                                    max_loras=len(STARTUP_ADAPTERS) + 1)
    try:
        server.start()
        yield server
    finally:
        server.stop()  # kills the whole process group: API server, engine core, workers
