"""`mapcoder-lite eval` and `mapcoder-lite report`, ready for ``app.command("eval")(eval_command)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mapcoder_lite.cli_options import (
    BankOption,
    BaseUrlOption,
    ConcurrencyOption,
    DataDirOption,
    DatasetOption,
    DirectFirstOption,
    KOption,
    LimitOption,
    LiteOption,
    MaxTokensOption,
    ModelOption,
    PlanDiversityOption,
    ProblemTimeoutOption,
    ProgressOption,
    RetrievalOption,
    RetryErrorsOption,
    RoleBaseUrlOption,
    RoleModelOption,
    SandboxOption,
    SourceOption,
    StopRepeatsOption,
    StructuredOutputsOption,
    TemperatureOption,
    TestTimeoutOption,
    TOption,
    exit_interrupted,
    make_context,
    print_error,
    run_to_the_end,
)
from mapcoder_lite.evals.datasets import DatasetError, dataset_spec, load_problems
from mapcoder_lite.evals.rundir import RunSettings, default_out_dir
from mapcoder_lite.evals.runner import Runner
from mapcoder_lite.evals.strategies import STRATEGIES, make_strategy


# Most of its length is the option list; the run itself is the Runner's.
def eval_command(
    dataset: DatasetOption,
    split: Annotated[str | None, typer.Option(help="Split (MBPP: train, validation, test, prompt). "
                                                   "Default: the benchmark's test split.")] = None,
    limit: LimitOption = None,
    strategy: Annotated[str, typer.Option(help=f"{' | '.join(STRATEGIES)}; reference scores the "
                                               "dataset's own solutions, with no model.")] = "mapcoder",
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    role_model: RoleModelOption = None,
    role_base_url: RoleBaseUrlOption = None,
    lite: LiteOption = False,
    k: KOption = None,
    t: TOption = None,
    direct_first: DirectFirstOption = None,
    stop_repeats: StopRepeatsOption = None,
    plan_diversity: PlanDiversityOption = None,
    retrieval: RetrievalOption = None,
    bank: BankOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    sandbox: SandboxOption = None,
    structured_outputs: StructuredOutputsOption = None,
    test_timeout: TestTimeoutOption = None,
    concurrency: ConcurrencyOption = 4,
    problem_timeout: ProblemTimeoutOption = None,
    out: Annotated[Path | None, typer.Option(help="Run directory; the same one resumes a run. "
                                                  "Default: runs/<dataset>-<split>-<strategy>[-<model>].")] = None,
    data_dir: DataDirOption = None,
    source: SourceOption = "auto",
    score_all_tests: Annotated[bool, typer.Option(help="Run every hidden test even after one fails (a "
                                                       "full report; the verdict is the same).")] = False,
    retry_errors: RetryErrorsOption = False,
    progress: ProgressOption = True,
) -> None:
    """Run a strategy over a benchmark, score every program on the hidden tests, and record it all."""
    console = Console(soft_wrap=True)  # long paths and messages stay on one line
    try:
        spec = dataset_spec(dataset)
        chosen_split = split or spec.default_split
        context = make_context(base_url, model, role_model, lite, role_base_url, k=k, t=t, direct_first=direct_first,
                               stop_repeats=stop_repeats, plan_diversity=plan_diversity,
                               retrieval=retrieval, bank=bank, temperature=temperature, max_tokens=max_tokens,
                               sandbox=sandbox, test_timeout_s=test_timeout, structured_outputs=structured_outputs)
        chosen = make_strategy(strategy)
        problems = load_problems(spec.name, chosen_split, limit=limit, data_dir=data_dir, source=source)
        settings = RunSettings.make(spec.name, chosen_split, chosen, context)
        out_dir = out or default_out_dir(settings)
        runner = Runner(out_dir, chosen, settings, context, concurrency=concurrency,
                        problem_timeout_s=problem_timeout, stop_early=not score_all_tests, progress=progress,
                        console=console, ctrl_c_drains=True, retry_errors=retry_errors)
    except (DatasetError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None

    if settings.models:
        console.print(f"[dim]endpoint {context.base_url}; models: "
                      + ", ".join(f"{role}={name}" for role, name in settings.models.items()) + "[/dim]")
    if settings.bank:
        console.print(f"[dim]retrieval {context.retrieval}: exemplar bank {context.bank} (sha256 "
                      f"{settings.bank[:12]}…)[/dim]")
    console.print(f"[dim]{problems.describe()} of {spec.name}/{chosen_split} -> {out_dir}[/dim]")
    summary = run_to_the_end(console, runner.run(problems), out_dir)
    skipped = f", {summary.not_applicable} without a reference solution" if summary.not_applicable else ""
    console.print(
        f"pass@1 {summary.pass_at_1:.1%} ({summary.passed}/{summary.done}); {summary.new} solved now in "
        f"{summary.seconds:.1f} s, {summary.errors} with errors{skipped}. Results: {out_dir}"
    )
    if summary.interrupted:
        exit_interrupted(console, out_dir)


def report_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories of `mapcoder-lite eval`.")],
    chart: Annotated[Path | None, typer.Option(help="Where to write the PNG chart (default: report.png in the "
                                                    "runs' common folder).")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Also write the table to this Markdown file.")] = None,
    common: Annotated[bool, typer.Option(help="Score every run on the problems all of them finished (for "
                                              "comparing runs that were stopped part-way).")] = False,
) -> None:
    """Compare runs: a Markdown table side by side, and a PNG chart."""
    from mapcoder_lite.evals.report import report

    try:
        if chart is None:  # beside the runs, never into whatever folder the command ran in (a repository)
            chart = Path(os.path.commonpath([path.resolve() for path in run_dirs])) / "report.png"
        table, written = report(run_dirs, chart, common=common)
    except (FileNotFoundError, ValueError) as error:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    typer.echo(table, nl=False)
    if markdown is not None:
        markdown.write_text(table, encoding="utf-8")
    Console(stderr=True, soft_wrap=True).print(f"[dim]chart: {written}[/dim]")
