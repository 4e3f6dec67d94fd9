"""`mapcoder-lite collect`, `relabel` and `extract`, ready for ``app.command("collect")(collect_command)``."""

from __future__ import annotations

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
    RetryErrorsOption,
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
    run_to_the_end,
)
from mapcoder_lite.collection.context import HIDDEN_REPORTS, SupervisorContext
from mapcoder_lite.collection.relabel import RELABEL_ROLES
from mapcoder_lite.collection.tracks import (
    DATASETS_DIR,
    SELF_SAMPLES,
    SELF_TEMPERATURE,
    SUPERVISED,
    TEACHER_ROLES,
    TRACKS,
    CollectSettings,
    CollectSummary,
    check_reference,
    check_split,
    check_track,
    collect_problems,
    default_collect_dir,
    track_context,
    uses_reference,
)
from mapcoder_lite.evals.datasets import DatasetError, Problem, dataset_spec, load_problems
from mapcoder_lite.finetune.split import SPLIT_SEED, VALIDATION_FRACTION
from mapcoder_lite.graph.context import PAPER_T, ROLES, Context
from mapcoder_lite.roles import SAMPLED_TRACKS

TrackOption = Annotated[str, typer.Option(help=f"{' | '.join(TRACKS)}.")]
SAMPLED = " and ".join(SAMPLED_TRACKS)
SplitOption = Annotated[
    str, typer.Option(help="Split to collect on: a training or validation split (a test split is refused: the "
                           "problems' examples are trained on).")
]
SamplesOption = Annotated[
    int | None,
    typer.Option(help=f"{SAMPLED}: runs per problem, each its own record (default {SELF_SAMPLES}).")
]
CollectTemperatureOption = Annotated[
    float | None,
    typer.Option(help=f"Sampling temperature (default 0; {SAMPLED}: {SELF_TEMPERATURE:g}, and 0 is refused)."),
]
CollectOutOption = Annotated[
    Path | None,
    typer.Option(help="Collection directory; the same one resumes. Default: runs/collect/<track>-<dataset>-<split>."),
]
RoleApiKeyOption = Annotated[
    list[str] | None,
    typer.Option(help="ROLE=ENV_VAR: the variable holding a role's API key (a teacher on a hosted API); "
                      "repeatable."),
]
ValidationOption = Annotated[float, typer.Option(help="Share of problems in the validation split.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the train/validation assignment of problems.")]
# The supervisor's options; the defaults they name are SupervisorContext's, which an unset option keeps.
SupervisorModelOption = Annotated[
    str | None, typer.Option(help=f"Supervisor model of {SUPERVISED} (default {SupervisorContext.supervisor_model}).")
]
SupervisorBaseUrlOption = Annotated[
    str | None, typer.Option(help=f"Supervisor endpoint (default {SupervisorContext.supervisor_base_url}).")
]
SupervisorApiKeyEnvOption = Annotated[
    str | None,
    typer.Option(help=f"Variable holding the supervisor's key (default {SupervisorContext.supervisor_api_key_env})."),
]
CorrectionRoundsOption = Annotated[
    int | None,
    typer.Option(help=f"Most supervisor rounds per failed run (default {SupervisorContext.correction_rounds})."),
]
HiddenReportOption = Annotated[
    str | None,
    typer.Option(help=f"{' | '.join(HIDDEN_REPORTS)}: what the supervisor sees of the hidden tests "
                      f"(default {SupervisorContext.supervisor_hidden_report})."),
]

ReferenceOption = Annotated[
    bool | None,
    typer.Option("--supervisor-reference/--no-supervisor-reference",
                 help="Show the supervisor each problem's reference solution (training splits only; every "
                      "problem must have one). Agents never see it; extraction drops completions copying it."),
]


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


# Most of its length is the option list; the steps are the helpers below it.
def collect_command(
    track: TrackOption,
    dataset: DatasetOption,
    split: SplitOption,
    limit: LimitOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    role_model: RoleModelOption = None,
    role_base_url: RoleBaseUrlOption = None,
    role_api_key: RoleApiKeyOption = None,
    lite: LiteOption = False,
    supervisor_model: SupervisorModelOption = None,
    supervisor_base_url: SupervisorBaseUrlOption = None,
    supervisor_api_key_env: SupervisorApiKeyEnvOption = None,
    correction_rounds: CorrectionRoundsOption = None,
    supervisor_hidden_report: HiddenReportOption = None,
    supervisor_reference: ReferenceOption = None,
    k: KOption = None,
    t: TOption = None,
    temperature: CollectTemperatureOption = None,
    samples: SamplesOption = None,
    max_tokens: MaxTokensOption = None,
    sandbox: SandboxOption = None,
    structured_outputs: StructuredOutputsOption = None,
    test_timeout: TestTimeoutOption = None,
    concurrency: ConcurrencyOption = 4,
    problem_timeout: ProblemTimeoutOption = None,
    out: CollectOutOption = None,
    data_dir: DataDirOption = None,
    source: SourceOption = "auto",
    validation_fraction: ValidationOption = VALIDATION_FRACTION,
    seed: SeedOption = SPLIT_SEED,
    retry_errors: RetryErrorsOption = False,
    progress: ProgressOption = True,
) -> None:
    """Collect training trajectories on a benchmark split, then extract per-agent datasets from them."""
    console = Console(soft_wrap=True)
    try:
        check_track(track)
        check_split(split, dataset)
        spec = dataset_spec(dataset)
        keys = ",".join(role_api_key or [])  # Context.validate checks each ROLE=ENV_VAR
        # Collection runs the paper's graph: its debugging rounds too, unless asked otherwise.
        context = make_context(base_url, model, role_model, lite, role_base_url, k=k,
                               t=PAPER_T if t is None else t, temperature=temperature,
                               max_tokens=max_tokens, sandbox=sandbox, test_timeout_s=test_timeout,
                               role_api_keys=keys or None, structured_outputs=structured_outputs)
        if track in SAMPLED_TRACKS:  # its own setting, which refuses 0
            context = track_context(track, context, temperature=temperature)
        context = _checked_track_context(track, context, supervisor_model=supervisor_model,
                                         supervisor_base_url=supervisor_base_url,
                                         supervisor_api_key_env=supervisor_api_key_env,
                                         correction_rounds=correction_rounds,
                                         supervisor_hidden_report=supervisor_hidden_report,
                                         supervisor_reference=supervisor_reference)
        problems = load_problems(spec.name, split, limit=limit, data_dir=data_dir, source=source)
        if uses_reference(context):
            check_reference(track, spec.name, split, problems)
        settings = CollectSettings.for_track(track, spec.name, split, context, samples)
        out_dir = out or default_collect_dir(track, spec.name, split)
    except (DatasetError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    sampled = f" x {settings.samples} samples at temperature {context.temperature:g}" if settings.samples else ""
    _print_plan(console, track, settings, f"{len(problems)} problems of {spec.name}/{split}{sampled} -> {out_dir}")
    summary = _collect(console, track, problems, dataset=spec.name, split=split, context=context, out_dir=out_dir,
                       concurrency=concurrency, problem_timeout_s=problem_timeout, progress=progress,
                       validation_fraction=validation_fraction, seed=seed, samples=samples,
                       retry_errors=retry_errors)
    run = summary.run
    console.print(f"hidden tests passed by {run.passed}/{run.done} runs; {run.new} runs made now in "
                  f"{run.seconds:.1f} s, {run.errors} with errors.")
    if run.interrupted:
        exit_interrupted(console, out_dir)
    print_datasets(console, summary.datasets, out_dir / DATASETS_DIR)


def _checked_track_context(track: str, context: Context, **supervisor: Any) -> Context:
    """The track's context (with the supervisor's settings that are given); every API key it names must be
    set now, not found missing mid-run."""
    if track != SUPERVISED and any(v is not None for v in supervisor.values()):
        raise ValueError(f"--supervisor-* and --correction-rounds apply to {SUPERVISED} only")
    context = track_context(track, context, **supervisor)
    missing = context.missing_supervisor_key() if isinstance(context, SupervisorContext) else None
    if missing:
        raise ValueError(missing)
    for role in ROLES:
        context.api_key_for(role)  # a named key variable that is unset fails here
    return context


def _print_plan(console: Console, track: str, settings: CollectSettings, what: str) -> None:
    """Who answers each role (and a note when a teacher role is a student model), and what is collected."""
    same = [role for role in TEACHER_ROLES[track] if settings.teachers[role] in settings.students.values()]
    if same:
        console.print(f"[yellow]note:[/yellow] the teacher role {', '.join(same)} uses a student model; pass "
                      f"--role-model {same[0]}=NAME (and --role-base-url) for a strong teacher")
    endpoints = ", ".join(f"{role}={settings.models[role]}@{url}" for role, url in settings.endpoints.items())
    console.print(f"[dim]{track}: {endpoints}"
                  + (f"; supervisor={settings.supervisor['model']}@{settings.supervisor['base_url']}"
                     if settings.supervisor else "") + "[/dim]")
    console.print(f"[dim]{what}[/dim]")


def _collect(console: Console, track: str, problems: list[Problem], *, out_dir: Path, **options: Any) -> CollectSummary:
    """The collection run; Ctrl-C, a lost server or a failed run end the command, saying what is kept."""
    work = collect_problems(track, problems, out_dir=out_dir, console=console, ctrl_c_drains=True, **options)
    return run_to_the_end(console, work, out_dir, kept="trajectories")


RelabelOutOption = Annotated[
    Path | None,
    typer.Option(help="Relabel directory; the same one resumes. Default: runs/collect/relabel-<dataset>-<split>."),
]


def relabel_command(
    sources: Annotated[list[Path], typer.Option(
        "--from", help="A finished collection directory to relabel (any track); repeatable, all of one dataset "
                       "split.")],
    teacher_model: Annotated[str, typer.Option(help="The teacher model (its name at --teacher-base-url).")],
    teacher_base_url: Annotated[str | None, typer.Option(
        help=f"The teacher's OpenAI-compatible endpoint (default {Context.base_url}).")] = None,
    teacher_api_key_env: Annotated[str | None, typer.Option(
        help="Variable holding the teacher endpoint's API key (a hosted API).")] = None,
    roles: Annotated[str, typer.Option(
        help=f"Comma-separated roles the teacher relabels: {','.join(RELABEL_ROLES)}.")] = ",".join(RELABEL_ROLES),
    reference: Annotated[bool, typer.Option(
        "--reference/--no-reference",
        help="Show the debugger teacher each problem's reference solution (training splits only; every problem "
             "must have one). Training examples never hold it; extraction drops fixes copying it.")] = True,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    sandbox: SandboxOption = None,
    structured_outputs: StructuredOutputsOption = None,
    test_timeout: TestTimeoutOption = None,
    concurrency: ConcurrencyOption = 4,
    out: RelabelOutOption = None,
    data_dir: DataDirOption = None,
    source: SourceOption = "auto",
    validation_fraction: ValidationOption = VALIDATION_FRACTION,
    seed: SeedOption = SPLIT_SEED,
    progress: ProgressOption = True,
) -> None:
    """Have a teacher relabel finished collections: confidence scores written knowing each plan's outcome,
    fixes of the failing programs written seeing the reference; then extract their datasets."""
    from mapcoder_lite.collection.relabel import check_roles, default_relabel_dir, read_sources, relabel, relabel_work

    console = Console(soft_wrap=True)
    try:
        chosen = check_roles(roles)
        keys = ",".join(f"{role}={teacher_api_key_env}" for role in chosen) if teacher_api_key_env else None
        context = make_context(teacher_base_url, teacher_model, temperature=temperature, max_tokens=max_tokens,
                               sandbox=sandbox, test_timeout_s=test_timeout, structured_outputs=structured_outputs,
                               role_api_keys=keys)
        for role in chosen:
            context.api_key_for(role)  # a named key variable that is unset fails here
        _, dataset, split = read_sources(sources)
        # The debugger's fixes are scored on the problems' hidden tests (and the teacher sees their references).
        problems = load_problems(dataset, split, data_dir=data_dir, source=source) if "debugger" in chosen else None
        work = relabel_work(sources, roles=chosen, problems=problems, reference=reference, seed=seed)
        out_dir = out or default_relabel_dir(dataset, split)
        todo = len(work.to_run(out_dir))
    except (DatasetError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    shown = " (the debugger's with the reference solution)" if reference and "debugger" in chosen else ""
    console.print(f"[dim]relabel: {', '.join(chosen)} by {teacher_model}@{context.base_url}{shown}[/dim]")
    console.print(f"[dim]{len(work.tasks)} teacher calls over {len(work.sources)} runs of {dataset}/{split}, "
                  f"{todo} to make -> {out_dir}[/dim]")
    job = relabel(sources, context=context, roles=chosen, problems=problems, reference=reference, out_dir=out_dir,
                  concurrency=concurrency, progress=progress, console=console, validation_fraction=validation_fraction,
                  seed=seed, ctrl_c_drains=True)
    summary = run_to_the_end(console, job, out_dir, kept="teacher answers")
    console.print(f"{summary.passed} of {summary.done} teacher answers meet the bar (a fix passing the hidden tests, "
                  f"a score agreeing with the outcome); {summary.new} made now in {summary.seconds:.1f} s, "
                  f"{summary.errors} with errors.")
    if summary.interrupted:
        exit_interrupted(console, out_dir)
    print_datasets(console, summary.datasets, out_dir / DATASETS_DIR)


def extract_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Collection directories of `mapcoder-lite collect`.")],
    out: Annotated[Path, typer.Option(help="Where the per-agent datasets go.")],
    validation_fraction: ValidationOption = VALIDATION_FRACTION,
    seed: SeedOption = SPLIT_SEED,
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
