"""Untrained LoRA adapters made on the spot, for tests and benchmarks that need adapters to serve.

Benchmarks import this too (they put the repository root on sys.path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mapcoder_lite.finetune.train import DEFAULT_MODULES


def make_random_adapters(
    base: str | Path,
    out: str | Path,
    seeds: Mapping[str, int],
    *,
    rank: int = 32,
    std: float = 0.05,
    target_modules: Sequence[str] = DEFAULT_MODULES,  # the modules `finetune` adapts
) -> dict[str, Path]:
    """Untrained LoRA adapters (one directory per name) for tests and benchmarks.

    PEFT starts lora_B at zero, which makes an adapter equal to the base model; here lora_A and
    lora_B are drawn from each name's seed so the adapter answers differently from the base model.
    ``std`` sets how far: on SmolLM2-135M 0.02 changes no greedy answer and 0.1 derails the model.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                        target_modules=list(target_modules))  # fmt: skip
    peft_model = get_peft_model(model, config)
    paths: dict[str, Path] = {}
    for name, seed in seeds.items():
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param_name, param in peft_model.named_parameters():
                if "lora_A" in param_name:  # PEFT's kaiming-uniform range, seeded
                    param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) / param.shape[1] ** 0.5)
                elif "lora_B" in param_name:
                    param.copy_(torch.randn(param.shape, generator=generator) * std)
        paths[name] = Path(out) / name
        peft_model.save_pretrained(paths[name])
    return paths
