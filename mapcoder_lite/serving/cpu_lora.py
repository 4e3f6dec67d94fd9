"""Faster multi-LoRA matmuls for vLLM on the CPU, loaded into vLLM as a general plugin.

vLLM's CPU punica ops (``vllm.lora.ops.torch_ops``) gather one adapter matrix per *token*
(``weights[indices]``, a ``tokens x out x in`` copy) and multiply with ``einsum``. On this machine
that made a LoRA request about five times slower than the base model and bounded MapCoder-Lite's
throughput. These replacements multiply each adapter's tokens as one matrix product: the same
arithmetic per token, a few hundred times less memory traffic. One semantic difference, on
purpose: a token with index ``-1`` (a base-model request; vLLM: "-1 means no lora should be
applied") gets no adapter. vLLM 0.32's CPU ops index ``weights[-1]``, the last slot, so a base-model
request batched with adapter requests was answered through the last adapter (seen here: the base
model's confidence answers came back in the adapter's words whenever an adapter request ran beside
them, and in its own words alone).

The plugin is registered under ``vllm.general_plugins`` (pyproject.toml), so vLLM loads it in every
process it starts, engine core included. It only patches when ``MAPCODER_LITE_CPU_LORA`` is
``grouped`` — which `VLLMServer` sets — so other vLLM servers in the same environment are untouched.
"""

from __future__ import annotations

import os

import torch

from mapcoder_lite.serving.vllm import CPU_LORA_ENV

PATCHED_MESSAGE = "mapcoder-lite: per-adapter CPU LoRA ops in use (MAPCODER_LITE_CPU_LORA=grouped)"


def _per_adapter(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, dtype: torch.dtype
                 ) -> torch.Tensor:
    """``out[i] = weights[indices[i]] @ inputs[i]`` (0 where ``indices[i] < 0``), one product per adapter."""
    inputs = inputs.to(dtype)
    if weights.dim() == 4:  # (slots, 1, out, in)
        weights = weights.squeeze(1)
    slots = torch.unique(indices).tolist()
    if len(slots) == 1 and slots[0] >= 0:
        return inputs @ weights[slots[0]].to(dtype).T
    out = inputs.new_zeros(inputs.shape[0], weights.shape[1])  # rows of index -1 stay zero: no adapter
    for slot in (s for s in slots if s >= 0):
        rows = indices == slot
        out[rows] = inputs[rows] @ weights[slot].to(dtype).T
    return out


def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
    outputs = _per_adapter(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
    outputs = _per_adapter(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    common = min(outputs.shape[1], output_tensor.shape[1])  # adapter and model may pad differently
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def bgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                      lora_indices_tensor: torch.Tensor, slice_offset: int, slice_size: int,
                      add_inputs: bool = True) -> None:
    outputs = _per_adapter(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset: slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset: slice_offset + slice_size] = outputs


def register() -> None:
    """vLLM's plugin hook. Idempotent: vLLM may call it more than once per process."""
    if os.environ.get(CPU_LORA_ENV, "").lower() != "grouped":
        return
    from vllm.logger import init_logger
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    replacements = {"bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice}
    # lora_ops' sgmv_* call its bgmv_* through module globals; punica_cpu imported the names directly.
    for module in (lora_ops, punica_cpu):
        for name, function in replacements.items():
            if hasattr(module, name):
                setattr(module, name, function)
    init_logger("vllm.plugins.mapcoder_lite_cpu_lora").info(PATCHED_MESSAGE)  # under "vllm": its handlers print it
