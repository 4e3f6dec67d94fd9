"""`mapcoder-lite bank build` and `mapcoder-lite bank show`, ready for ``app.add_typer(bank_app, name="bank")``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mapcoder_lite.cli_options import (
    DataDirOption,
    DatasetOption,
    ProgressOption,
    SandboxOption,
    SourceOption,
    TestTimeoutOption,
    print_error,
)

bank_app = typer.Typer(no_args_is_help=True, help="Build and inspect verified exemplar banks for retrieval.")


def _stats_table(manifest: dict, out: Path) -> Table:
    counts = manifest["counts"]
    table = Table(show_header=False, box=None, title=f"exemplar bank {out}", title_justify="left")
    table.add_row("dataset", f"{manifest['dataset']} ({', '.join(manifest['splits'])})")
    table.add_row("problems", str(counts["problems"]))
    table.add_row("exemplars (code verified)", f"{counts['exemplars']}  "
                  + ", ".join(f"{split} {n}" for split, n in counts["per_split"].items()))
    table.add_row("failed verification", str(counts["failed"]))
    table.add_row("with a plan / without", f"{counts['with_plan']} / {counts['without_plan']}"
                  + ("" if manifest.get("runs") else "  (no --runs given: no plans)"))
    if counts.get("code_from_runs"):
        table.add_row("code from runs", str(counts["code_from_runs"]))
    table.add_row("sha256", manifest["sha256"])
    table.add_row("seconds", f"{manifest.get('seconds', 0):.1f}")
    return table


@bank_app.command("build")
def build_command(
    dataset: DatasetOption,
    split: Annotated[str, typer.Option(help="Training splits, comma-separated (MBPP: train,validation); a test "
                                            "split is refused.")],
    out: Annotated[Path, typer.Option(help="Bank directory (replaces a bank there).")],
    runs: Annotated[list[Path] | None, typer.Option(help="Eval or collect run directory on a training split whose "
                                                         "passing runs give the exemplars' plans; repeatable.")
                    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N problems of each split.")] = None,
    data_dir: DataDirOption = None,
    source: SourceOption = "auto",
    sandbox: SandboxOption = None,
    test_timeout: TestTimeoutOption = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Problems verified at the same time.")] = 2,
    progress: ProgressOption = True,
) -> None:
    """Verify every problem of a dataset's training splits in the sandbox and write the exemplar bank."""
    from mapcoder_lite.bank.build import build_bank
    from mapcoder_lite.bank.store import BankError
    from mapcoder_lite.evals.datasets import DatasetError

    console = Console(soft_wrap=True)
    try:
        stats = build_bank(dataset, split.split(","), out, runs=runs or [], limit=limit, data_dir=data_dir,
                           source=source, sandbox=sandbox or "local", test_timeout_s=test_timeout or 10.0,
                           concurrency=concurrency, progress=progress, console=console)
    except (BankError, DatasetError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    console.print(_stats_table(stats.manifest, out))
    for failure in stats.failed[:10]:
        console.print(f"[yellow]not verified[/yellow] {failure['id']}: {escape(failure['reason'])}", highlight=False)
    if len(stats.failed) > 10:
        console.print(f"… and {len(stats.failed) - 10} more (manifest.json lists them all)")


@bank_app.command("show")
def show_command(
    bank: Annotated[Path, typer.Argument(help="Bank directory.")],
    query: Annotated[str | None, typer.Option(help="A problem's text: show the exemplars retrieval would give it.")
                     ] = None,
    k: Annotated[int, typer.Option(min=1, help="Exemplars to show for --query.")] = 3,
) -> None:
    """A bank's stats, checked as a run checks it; with --query, the k nearest exemplars of that text."""
    from mapcoder_lite.bank.store import BankError, load_bank

    console = Console(soft_wrap=True)
    try:
        loaded = load_bank(bank)
    except BankError as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    console.print(_stats_table(loaded.manifest, bank))
    if query:
        for exemplar in loaded.nearest(query, k):
            plan = "with a plan" if exemplar.planning else "no plan"
            console.print(f"[bold]{exemplar.id}[/bold] ({exemplar.split}, {plan}): {escape(exemplar.description)}",
                          highlight=False)
