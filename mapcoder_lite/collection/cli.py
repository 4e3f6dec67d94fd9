"""`mapcoder-lite collect` and `mapcoder-lite extract`, ready for ``app.command("collect")(collect_command)``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mapcoder_lite.cli_options import (
    BaseUrlOption,
    ConcurrencyOption,
    DataDirOption,
    DatasetOption,
    KOption,
    LimitOption,
    LiteOption,
    MaxTokensOption,
    ModelOption,
    ProblemTimeoutOption,
    ProgressOption,
    RoleBaseUrlOption,
    RoleModelOption,
    SandboxOption,
    SourceOption,
    StructuredOutputsOption,
    TemperatureOption,
    TestTimeoutOption,
    TOption,
    exit_interrupted,
    make_context,
    print_error,
)
from mapcoder_lite.collection.context import DEEPSEEK_BASE_URL, DEEPSEEK_MODEL, HIDDEN_REPORTS, SupervisorContext
from mapcoder_lite.collection.tracks import (
    DATASETS_DIR,
    SUPERVISED,
    TEACHER_ROLES,
    TRACKS,
    CollectSettings,
    check_track,
    collect_problems,
    default_collect_dir,
    track_context,
)
from mapcoder_lite.evals.datasets import DatasetError, dataset_spec, load_problems
from mapcoder_lite.evals.runner import EndpointDown, EvalError
from mapcoder_lite.graph.context import ROLES

RoleApiKeyOption = Annotated[
    list[str] | None,
    typer.Option(help="ROLE=ENV_VAR: the variable holding a role's API key (a teacher on a hosted API); "
                      "repeatable."),
]
ValidationOption = Annotated[float, typer.Option(help="Share of problems in the validation split.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the train/validation assignment of problems.")]


def print_datasets(console: Console, datasets: dict[str, dict[str, Any]], out: Path) -> None:
    table = Table("dataset", "train", "validation", "problems", "mean tokens (prompt/completion)", "dropped",
                  title=f"training sets in {out}")
    for role, stats in datasets.items():
        tokens = stats["mean_tokens"]
        dropped = stats["dropped"]
        top = next(iter(dropped["reasons"]), "")
        table.add_row(role, str(stats["examples"]["train"]), str(stats["examples"]["validation"]),
                      str(stats["problems"]["total"]), f"{tokens['prompt']:.0f} / {tokens['completion']:.0f}",
                      f"{dropped['share']:.0%} of {stats['candidates']}" + (f" (mostly: {top})" if top else ""))
    console.print(table)


def collect_command(
    track: Annotated[str, typer.Option(help=f"{' | '.join(TRACKS)}.")],
    dataset: DatasetOption,
    split: Annotated[str, typer.Option(help="Split to collect on (use a training split: the problems' "
                                            "examples are trained on).")],
    limit: LimitOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    role_model: RoleModelOption = None,
    role_base_url: RoleBaseUrlOption = None,
    role_api_key: RoleApiKeyOption = None,
    lite: LiteOption = False,
    supervisor_model: Annotated[str | None, typer.Option(help=f"Supervisor model of {SUPERVISED} "
                                                              f"(default {DEEPSEEK_MODEL}).")] = None,
    supervisor_base_url: Annotated[str | None, typer.Option(help="Supervisor endpoint (default "
                                                                 f"{DEEPSEEK_BASE_URL}).")] = None,
    supervisor_api_key_env: Annotated[str | None, typer.Option(help="Variable holding the supervisor's key "
                                                                    "(default DEEPSEEK_API_KEY).")] = None,
    correction_rounds: Annotated[int | None, typer.Option(help="Most supervisor rounds per failed run "
                                                               "(default 3).")] = None,
    supervisor_hidden_report: Annotated[str | None, typer.Option(help=f"{' | '.join(HIDDEN_REPORTS)}: what the "
                                                                      "supervisor sees of the hidden tests "
                                                                      "(default failing).")] = None,
    k: KOption = None,
    t: TOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    sandbox: SandboxOption = None,
    structured_outputs: StructuredOutputsOption = None,
    test_timeout: TestTimeoutOption = None,
    concurrency: ConcurrencyOption = 4,
    problem_timeout: ProblemTimeoutOption = None,
    out: Annotated[Path | None, typer.Option(help="Collection directory; the same one resumes. Default: "
                                                  "runs/collect/<track>-<dataset>-<split>.")] = None,
    data_dir: DataDirOption = None,
    source: SourceOption = "auto",
    validation_fraction: ValidationOption = 0.1,
    seed: SeedOption = 0,
    progress: ProgressOption = True,
) -> None:
    """Collect training trajectories on a benchmark split, then extract per-agent datasets from them."""
    console = Console(soft_wrap=True)
    try:
        check_track(track)
        spec = dataset_spec(dataset)
        keys = ",".join(role_api_key or [])  # Context.validate checks each ROLE=ENV_VAR
        context = make_context(base_url, model, role_model, lite, role_base_url, k=k, t=t, temperature=temperature,
                               max_tokens=max_tokens, sandbox=sandbox, test_timeout_s=test_timeout,
                               role_api_keys=keys or None, structured_outputs=structured_outputs)
        supervisor = {"supervisor_model": supervisor_model, "supervisor_base_url": supervisor_base_url,
                      "supervisor_api_key_env": supervisor_api_key_env, "correction_rounds": correction_rounds,
                      "supervisor_hidden_report": supervisor_hidden_report}
        if track != SUPERVISED and any(v is not None for v in supervisor.values()):
            raise ValueError(f"--supervisor-* and --correction-rounds apply to {SUPERVISED} only")
        context = track_context(track, context, **supervisor)
        missing = context.missing_supervisor_key() if isinstance(context, SupervisorContext) else None
        if missing:
            raise ValueError(missing)
        for role in ROLES:
            context.api_key_for(role)  # a named key variable that is unset fails here, not mid-run
        problems = load_problems(spec.name, split, limit=limit, data_dir=data_dir, source=source)
        settings = CollectSettings.for_track(track, spec.name, split, context)
        out_dir = out or default_collect_dir(track, spec.name, split)
    except (DatasetError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None

    same = [role for role in TEACHER_ROLES[track] if settings.teachers[role] in settings.students.values()]
    if same:
        console.print(f"[yellow]note:[/yellow] the teacher role {', '.join(same)} uses a student model; pass "
                      f"--role-model {same[0]}=NAME (and --role-base-url) for a strong teacher")
    endpoints = ", ".join(f"{role}={settings.models[role]}@{url}" for role, url in settings.endpoints.items())
    console.print(f"[dim]{track}: {endpoints}"
                  + (f"; supervisor={settings.supervisor['model']}@{settings.supervisor['base_url']}"
                     if settings.supervisor else "") + "[/dim]")
    console.print(f"[dim]{len(problems)} problems of {spec.name}/{split} -> {out_dir}[/dim]")
    try:
        summary = asyncio.run(collect_problems(
            track, problems, dataset=spec.name, split=split, context=context, out_dir=out_dir,
            concurrency=concurrency, problem_timeout_s=problem_timeout, progress=progress, console=console,
            validation_fraction=validation_fraction, seed=seed, ctrl_c_drains=True,
        ))
    except KeyboardInterrupt:
        exit_interrupted(console, out_dir)
    except EndpointDown as error:
        print_error(
            console, label="stopped",
            error=f"{error}\nThe trajectories so far are kept in {out_dir}; start the "
                  "server and run the same command again to resume.")
        raise typer.Exit(3) from None
    except EvalError as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    run = summary.run
    console.print(f"hidden tests passed by {run.passed}/{run.done} runs; {run.new} problems run now in "
                  f"{run.seconds:.1f} s, {run.errors} with errors.")
    if run.interrupted:
        exit_interrupted(console, out_dir)
    print_datasets(console, summary.datasets, out_dir / DATASETS_DIR)


def extract_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Collection directories of `mapcoder-lite collect`.")],
    out: Annotated[Path, typer.Option(help="Where the per-agent datasets go.")],
    validation_fraction: ValidationOption = 0.1,
    seed: SeedOption = 0,
    tokenizer: Annotated[str | None, typer.Option(help="Hugging Face tokenizer (name or path) for exact "
                                                       "token counts; default: an estimate.")] = None,
) -> None:
    """Merge collections into per-agent training sets (strict formats, no duplicates, split by problem)."""
    from mapcoder_lite.finetune.data import extract, hf_token_counter

    console = Console(soft_wrap=True)
    try:
        counter = hf_token_counter(tokenizer) if tokenizer else None
        datasets = extract(run_dirs, out, validation_fraction=validation_fraction, seed=seed, count_tokens=counter,
                           token_counter=f"tokenizer {tokenizer}" if tokenizer else "")
    except (FileNotFoundError, ValueError, OSError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    print_datasets(console, datasets, out)
