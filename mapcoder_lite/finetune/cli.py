"""`mapcoder-lite finetune`: train one agent's LoRA adapter (registered with ``app.command("finetune")``).

Its options are `TrainConfig`'s fields marked for the command line: name, default and help come from
the field, so a setting is declared once, in `mapcoder_lite.finetune.train`.

Only typer and rich load here; torch, transformers, PEFT and TRL load once the data has been checked.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import typer
from rich.console import Console

from mapcoder_lite.cli_options import exit_interrupted, print_error
from mapcoder_lite.finetune.checkpoints import folder_of, last_checkpoint
from mapcoder_lite.finetune.train import DEFAULT_MODULES, BackendError, DataError, TrainConfig, train


def _modules(text: str) -> tuple[str, ...]:
    """``q,k,v,o`` or ``q_proj,v_proj``: short names get the ``_proj`` suffix Llama/Qwen layers use;
    no name at all: the default modules."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(n if n.endswith("_proj") or len(n) > 4 else f"{n}_proj" for n in names) or DEFAULT_MODULES


def _short_modules(modules: tuple[str, ...]) -> str:
    """The text `_modules` reads back as these modules: ``q,k,v,o`` for the default."""
    return ",".join(m.removesuffix("_proj") for m in modules)


# Options typed as text that is not the field's value: (text -> value, value -> default text).
_AS_TEXT: dict[str, tuple[Callable[[str], Any], Callable[[Any], str]]] = {"modules": (_modules, _short_modules)}


def _option_type(annotation: Any) -> Any:
    """A field's type as an option: a path field takes a Path."""
    options = get_args(annotation)
    if any((get_origin(option) or option) is os.PathLike for option in options):
        return Path | None if type(None) in options else Path
    return annotation


def _option(spec: Field[Any], annotation: Any) -> inspect.Parameter:
    """The `finetune` option of one TrainConfig field; a field without a default is a required option."""
    default = spec.default
    if spec.name in _AS_TEXT:
        annotation, default = str, _AS_TEXT[spec.name][1](default)
    return inspect.Parameter(
        spec.name, inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if default is MISSING else default,
        annotation=Annotated[_option_type(annotation), typer.Option(help=spec.metadata["help"])],
    )  # fmt: skip


def options() -> list[inspect.Parameter]:
    """The command's options, in TrainConfig's field order."""
    hints = get_type_hints(TrainConfig)
    return [_option(spec, hints[spec.name]) for spec in fields(TrainConfig) if spec.metadata["cli"]]


def finetune_command(**settings: Any) -> None:
    console = Console(stderr=True)
    for name, (parse, _) in _AS_TEXT.items():
        settings[name] = parse(settings[name])
    config = TrainConfig(**settings)
    try:
        result = train(config)
    except (DataError, BackendError, FileExistsError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        folder = folder_of(config.resolved_out())
        if (kept := last_checkpoint(folder) if folder.is_dir() else None) is None:
            console.print(f"[yellow]interrupted[/yellow] before the first checkpoint (one every "
                          f"{config.checkpoint_minutes:g} min): nothing to resume.")
            raise typer.Exit(130) from None
        exit_interrupted(console, kept)
    losses = result.manifest["losses"]
    summary = f"train loss {losses['train_per_epoch'][-1]:.4f}" if losses["train_per_epoch"] else "no steps"
    if losses["validation_per_epoch"]:
        summary += f", validation loss {losses['validation_per_epoch'][-1]:.4f}"
    console.print(f"{config.agent}: {summary}, {result.manifest['seconds']:.0f} s")
    typer.echo(str(result.adapter_dir))  # stdout is just the path, for scripts


# typer reads the options from the signature and the help from the docstring; both come from TrainConfig.
finetune_command.__signature__ = inspect.Signature(options(), return_annotation=None)  # type: ignore[attr-defined]
finetune_command.__doc__ = (f"Train one agent's rank-{TrainConfig.rank} LoRA adapter on the frozen base model "
                            "(answer-only loss).")
