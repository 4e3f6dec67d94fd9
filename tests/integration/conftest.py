"""Session fixtures for the serving tests: a small real model, LoRA adapters made here, one vLLM server.

The model is `smollm2-135m-instruct` (a GGUF shipped in a PyPI package, converted once into the
mapcoder-lite cache). The adapters are rank-32 LoRA on q/k/v/o made with PEFT, with lora_B drawn at
random (PEFT initializes it to zero, which would make an adapter equal to the base model) from a
fixed seed, so each adapter answers differently from the base model yet stays coherent. One vLLM
server serves them for the whole session on a free port and is always stopped at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.vllm_setup import (
    LORA_STD,
    RUNTIME_ADAPTER,
    STARTUP_ADAPTERS,
    TEST_MODEL,
    startup_adapter_server,
)
from tests.servers import need


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The prepared test model (converted once, then taken from the cache)."""
    need(["torch", "transformers", "gguf"])
    from mapcoder_lite.serving.models import prepare_model

    override = os.environ.get("MAPCODER_LITE_TEST_MODEL_DIR")
    return Path(override) if override else prepare_model(TEST_MODEL)


@pytest.fixture(scope="session")
def adapters(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{name: adapter dir} for the startup adapters and the one loaded at run time."""
    need(["torch", "transformers", "peft"])
    seeds = dict(STARTUP_ADAPTERS) | {RUNTIME_ADAPTER[0]: RUNTIME_ADAPTER[1]}
    from tests.adapters import make_random_adapters

    return make_random_adapters(model_dir, tmp_path_factory.mktemp("adapters"), seeds, std=LORA_STD)


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, adapters: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One vLLM server for the session: the base model plus the startup adapters, room for one more."""
    need(["vllm"])
    # the runtime adapter must fit in the same batch slots
    server = startup_adapter_server(model_dir, adapters, tmp_path_factory.mktemp("vllm") / "server.log",
                                    max_loras=len(STARTUP_ADAPTERS) + 1)
    try:
        server.start()
        yield server
    finally:
        server.stop()  # kills the whole process group: API server, engine core, workers
