"""Serving the base model and its role adapters: local checkpoints, vLLM, and an in-process backend.

`prepare_model` and `VLLMServer` import no heavy library at module level; `InProcessChatModel`
(in `mapcoder_lite.serving.inprocess`) needs torch, transformers and peft when it loads.
"""

from mapcoder_lite.serving.models import DEFAULT_MODEL, KNOWN_MODELS, ModelPrepareError, cache_root, prepare_model
from mapcoder_lite.serving.vllm import VLLMServer, VLLMServerError, list_models, load_adapter, unload_adapter

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "ModelPrepareError",
    "VLLMServer",
    "VLLMServerError",
    "cache_root",
    "list_models",
    "load_adapter",
    "prepare_model",
    "unload_adapter",
]
