"""`mapcoder-lite finetune`: train one agent's LoRA adapter (registered with ``app.command("finetune")``).

Only typer and rich load here; torch, transformers, PEFT and TRL load once the data has been checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mapcoder_lite.cli_options import print_error
from mapcoder_lite.finetune.train import (
    AGENTS,
    BACKENDS,
    DEFAULT_MODULES,
    BackendError,
    DataError,
    TrainConfig,
    train,
)


def _modules(text: str) -> tuple[str, ...]:
    """``q,k,v,o`` or ``q_proj,v_proj``: short names get the ``_proj`` suffix Llama/Qwen layers use."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(n if n.endswith("_proj") or len(n) > 4 else f"{n}_proj" for n in names)


def finetune_command(
    agent: Annotated[str, typer.Option(help=f"Agent whose adapter to train: {', '.join(AGENTS)}.")],
    data: Annotated[Path, typer.Option(help="Training JSONL (prompt/completion chat form, from `data extract`).")],
    base_model: Annotated[Path, typer.Option(help="Base checkpoint directory (see `models prepare`).")],
    out: Annotated[Path | None, typer.Option(help="Adapter directory (default: adapters/AGENT).")] = None,
    validation: Annotated[Path | None, typer.Option(help="Validation JSONL; its loss is logged per epoch.")] = None,
    backend: Annotated[str, typer.Option(help=f"{', '.join(BACKENDS)}; auto: unsloth on a GPU, else peft.")] = "auto",
    rank: Annotated[int, typer.Option(help="LoRA rank (vLLM serves up to 32).")] = 32,
    alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 32,
    modules: Annotated[str, typer.Option(help="Target modules, comma-separated (q,k,v,o = q_proj,...).")] = "q,k,v,o",
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 3,
    batch: Annotated[int, typer.Option(help="Effective batch (micro-batch x gradient accumulation).")] = 16,
    micro_batch: Annotated[int, typer.Option(help="Examples per forward pass; lower it if memory runs out.")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate (linear warm-up and decay).")] = 2e-4,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per example, prompt plus answer; longer are cut.")] = 2048,
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="Recompute activations in the backward pass: less memory for long examples.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for initialization and data order.")] = 42,
    dtype: Annotated[str, typer.Option(help="auto (bf16 where native, else float32), float32, bfloat16.")] = "auto",
    language: Annotated[str, typer.Option(help="Code language the coder/debugger answers must use.")] = "python",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing adapter directory.")] = False,
) -> None:
    """Train one agent's rank-32 LoRA adapter on the frozen base model (answer-only loss)."""
    console = Console(stderr=True)
    config = TrainConfig(
        agent=agent, data=data, base_model=base_model, out=out, validation=validation, backend=backend, rank=rank,
        alpha=alpha, modules=_modules(modules) or DEFAULT_MODULES, epochs=epochs, batch=batch,
        micro_batch=micro_batch, lr=lr, max_steps=max_steps, max_length=max_length, seed=seed, dtype=dtype,
        gradient_checkpointing=gradient_checkpointing, language=language, overwrite=overwrite,
    )  # fmt: skip
    try:
        result = train(config)
    except (DataError, BackendError, FileExistsError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    losses = result.manifest["losses"]
    summary = f"train loss {losses['train_per_epoch'][-1]:.4f}" if losses["train_per_epoch"] else "no steps"
    if losses["validation_per_epoch"]:
        summary += f", validation loss {losses['validation_per_epoch'][-1]:.4f}"
    console.print(f"{agent}: {summary}, {result.manifest['seconds']:.0f} s")
    typer.echo(str(result.adapter_dir))  # stdout is just the path, for scripts
