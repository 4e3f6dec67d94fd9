"""Command-line options shared by every command that runs the graph (solve, demo, eval, collect)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from mapcoder_lite.evals.datasets import DATASETS, SOURCES
from mapcoder_lite.graph.context import PAPER_T, RETRIEVALS, ROLES, STRUCTURED_OUTPUTS, Context

T = TypeVar("T")

# typer option types; each command declares `base_url: BaseUrlOption = None` and so on.
BaseUrlOption = Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")]
ModelOption = Annotated[str | None, typer.Option(help="Model name for every role.")]
RoleModelOption = Annotated[
    list[str] | None, typer.Option(help="ROLE=NAME: the model (adapter) of one role; repeatable.")
]
RoleBaseUrlOption = Annotated[
    list[str] | None, typer.Option(help="ROLE=URL: the endpoint of one role when not --base-url; repeatable.")
]
LiteOption = Annotated[bool, typer.Option(help="MapCoder-Lite: each role asks for the adapter named after it.")]
# The defaults these options name are Context's: an option left unset keeps it (see make_context).
KOption = Annotated[int | None, typer.Option(help=f"Examples recalled, hence plans (default {Context.k}).")]
TOption = Annotated[int | None, typer.Option(
    help=f"Debugging rounds per plan (default {Context.t}; collect: the paper's {PAPER_T}).")]
DirectFirstOption = Annotated[
    bool | None,
    typer.Option("--direct-first/--no-direct-first",
                 help="Try one direct answer before retrieval, and stop if it passes the samples "
                      f"(default {'on' if Context.direct_first else 'off'}); "
                      "--no-direct-first runs the paper's MapCoder."),
]
StopRepeatsOption = Annotated[
    bool | None,
    typer.Option("--stop-repeats/--no-stop-repeats",
                 help="End a plan's debugging when the debugger returns code it already tried "
                      f"(default {'on' if Context.stop_repeats else 'off'})."),
]
PlanDiversityOption = Annotated[
    bool | None,
    typer.Option("--plan-diversity/--no-plan-diversity",
                 help="Drop plans that repeat a higher-ranked one and ask the coder again for a program already "
                      f"tested (default {'on' if Context.plan_diversity else 'off'})."),
]
TemperatureOption = Annotated[
    float | None, typer.Option(help=f"Sampling temperature (default {Context.temperature:g}).")
]
MaxTokensOption = Annotated[int | None, typer.Option(help="Maximum tokens of one answer.")]
SandboxOption = Annotated[str | None, typer.Option(help="Where generated code runs: 'local' or 'e2b'.")]
StructuredOutputsOption = Annotated[
    str | None,
    typer.Option(help=f"{' | '.join(STRUCTURED_OUTPUTS)}: have the server decode each role's answers in its format "
                      "(default auto: on for a vLLM endpoint)."),
]
RetrievalOption = Annotated[
    str | None,
    typer.Option(help=f"{' | '.join(RETRIEVALS)}: the planner's examples recalled by the retriever model (the "
                      "paper's, default), the nearest verified exemplars of --bank (no model call), or both."),
]
BankOption = Annotated[
    Path | None, typer.Option(help="Exemplar bank directory (`mapcoder-lite bank build`), for --retrieval bank|both.")
]

# Options of the commands that run over a benchmark (eval, collect).
DatasetOption = Annotated[str, typer.Option(help=f"Benchmark: {', '.join(DATASETS)}.")]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the first N problems.")]
TestTimeoutOption = Annotated[float | None, typer.Option(help="Seconds per test (samples and hidden tests).")]
ConcurrencyOption = Annotated[int, typer.Option(help="Problems run at the same time.")]
ProblemTimeoutOption = Annotated[
    float | None, typer.Option(help="Seconds one problem may take before it is recorded as failed.")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(help="Folder laid out like MapCoder's data/ (default: $MAPCODER_LITE_DATA_DIR, else ../shared/data)."),
]
SourceOption = Annotated[
    str, typer.Option(help=f"{' | '.join(SOURCES)}: local files, the Hugging Face Hub, or local when there.")
]
RetryErrorsOption = Annotated[bool, typer.Option(help="Run again the problems a resumed run recorded with an "
                                                      "error (a timeout, a lost server).")]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar.")]


def parse_role_pairs(pairs: list[str], suffix: str, what: str) -> dict[str, str]:
    """`ROLE=VALUE` options as Context fields ({"coder" + suffix: VALUE}); bad ones are a clear error."""
    chosen: dict[str, str] = {}
    for pair in pairs:
        role, sep, value = pair.partition("=")
        if not sep or not value or role not in ROLES:
            raise typer.BadParameter(f"{pair!r}: expected ROLE={what} with ROLE one of {', '.join(ROLES)}")
        chosen[f"{role}{suffix}"] = value
    return chosen


def make_context(
    base_url: str | None = None,
    model: str | None = None,
    role_model: list[str] | None = None,
    lite: bool = False,
    role_base_url: list[str] | None = None,
    **settings: Any,
) -> Context:
    """A Context from command-line options; options left unset keep the environment's or defaults."""
    overrides = {key: value for key, value in settings.items() if value is not None}
    if isinstance(overrides.get("bank"), Path):  # absolute: a graph may run elsewhere than the command
        overrides["bank"] = str(overrides["bank"].expanduser().resolve())
    if base_url:
        overrides["base_url"] = base_url
    if model:
        overrides["model"] = model
    overrides |= parse_role_pairs(role_model or [], "_model", "MODEL")
    overrides |= parse_role_pairs(role_base_url or [], "_base_url", "URL")
    known = {f.name for f in fields(Context)}
    unknown = set(overrides) - known
    if unknown:
        raise typer.BadParameter(f"unknown settings {sorted(unknown)}")
    return Context.lite(**overrides) if lite else Context(**overrides)


def print_error(console: Any, error: object, label: str = "error") -> None:
    """`label: error` on the console, the error's text shown as written: a message naming a TOML
    section ("[collect]") or a list would otherwise be read as rich markup and lose those words."""
    from rich.markup import escape

    console.print(f"[red]{label}:[/red] {escape(str(error))}")


def exit_interrupted(console: Any, kept: str | os.PathLike[str]) -> NoReturn:
    """After Ctrl-C (see evals.runner.Interrupts): say what is kept and leave now (exit 130).

    After a second Ctrl-C, model calls still in flight hold non-daemon threads that the interpreter
    would wait for at exit (minutes on a CPU server); everything finished is already on disk.
    """
    console.print(f"[yellow]interrupted:[/yellow] everything finished is kept in {kept}; run the same command "
                  "again to resume.")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def run_to_the_end(console: Any, work: Coroutine[Any, Any, T], out_dir: str | os.PathLike[str],
                   kept: str = "results") -> T:
    """Run a resumable run (an eval, a collection): Ctrl-C, a lost server or a failed run end the
    command (exit 130, 3, 2), saying where what is done is kept."""
    from mapcoder_lite.evals.runner import EndpointDown, EvalError  # heavy: only the running commands need it

    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        exit_interrupted(console, out_dir)
    except EndpointDown as error:
        print_error(console, label="stopped", error=f"{error}\nThe {kept} so far are kept in {out_dir}; start the "
                                                     "server and run the same command again to resume.")
        raise typer.Exit(3) from None
    except EvalError as error:
        print_error(console, error)
        raise typer.Exit(2) from None
