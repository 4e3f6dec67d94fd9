"""`mapcoder-lite pipeline CONFIG`: every stage of the recipe in order, resumable (registered in cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mapcoder_lite.cli_options import exit_interrupted, print_error
from mapcoder_lite.pipeline.config import STAGES as STAGE_NAMES
from mapcoder_lite.pipeline.config import ConfigError, PipelineConfig, load_config, render_config


def pipeline_command(
    config: Annotated[Path | None, typer.Argument(help="The pipeline's TOML config (see --print-config).")] = None,
    stages: Annotated[str, typer.Option(help=f"Comma-separated stages to run, in order: {','.join(STAGE_NAMES)}.")
                      ] = ",".join(STAGE_NAMES),
    print_config: Annotated[bool, typer.Option(help="Print CONFIG (or the defaults) with every key, and exit.")
                            ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Collect trajectories → extract per-agent data → train one LoRA per agent → serve them all → evaluate
    the tuned graph against the untuned one and direct → report. Run it again to resume."""
    console = Console(soft_wrap=True)
    try:
        chosen = PipelineConfig() if config is None else load_config(config)
        if print_config:
            typer.echo(render_config(chosen), nl=False)
            return
        if config is None:
            raise ConfigError("give a config file; `mapcoder-lite pipeline --print-config > pipeline.toml` writes "
                              "one with every default")
        names = tuple(s.strip() for s in stages.split(",") if s.strip())
        unknown = [s for s in names if s not in STAGE_NAMES]
        if unknown or not names:
            raise ConfigError(f"--stages {stages!r}: choose from {', '.join(STAGE_NAMES)}")
    except ConfigError as error:
        print_error(console, error)
        raise typer.Exit(2) from None

    from mapcoder_lite.evals.datasets import DatasetError
    from mapcoder_lite.evals.errors import EvalError
    from mapcoder_lite.finetune.train import BackendError, DataError
    from mapcoder_lite.pipeline.run import Pipeline, PipelineError
    from mapcoder_lite.serving.models import ModelPrepareError
    from mapcoder_lite.serving.vllm import VLLMServerError

    def log(message: str) -> None:
        console.print(f"[dim]{message}[/dim]" if not message.startswith("──") else f"[bold]{message}[/bold]")

    pipeline = Pipeline(chosen, log=log, progress=progress, console=console)
    console.print(f"[dim]workdir {chosen.workdir}[/dim]")
    try:
        report = pipeline.run(tuple(s for s in STAGE_NAMES if s in names))
    except KeyboardInterrupt:  # the servers this run started are stopped by now (their `with` blocks)
        exit_interrupted(console, chosen.workdir)
    except (PipelineError, EvalError, DatasetError, DataError, BackendError, ModelPrepareError, VLLMServerError,
            ValueError) as error:
        print_error(
            console, label="stopped",
            error=f"{error}\nEverything finished so far is kept in {chosen.workdir}; fix "
                  "this and run the same command to resume.")
        raise typer.Exit(1) from None
    if report is not None and report.is_file():
        console.print(report.read_text(), markup=False, highlight=False)  # Markdown's [x](y) is not rich markup
