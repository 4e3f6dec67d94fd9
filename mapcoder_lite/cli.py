"""The `mapcoder-lite` command."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from mapcoder_lite.cli_options import (
    BankOption,
    BaseUrlOption,
    DirectFirstOption,
    KOption,
    LiteOption,
    MaxTokensOption,
    ModelOption,
    PlanDiversityOption,
    RetrievalOption,
    RoleBaseUrlOption,
    RoleModelOption,
    SandboxOption,
    StopRepeatsOption,
    StructuredOutputsOption,
    TemperatureOption,
    TOption,
    make_context,
    print_error,
)
from mapcoder_lite.graph.context import DEFAULT_MODEL, ROLES, Context
from mapcoder_lite.llm import RoleCallError
from mapcoder_lite.nodes.retriever import bank_of
from mapcoder_lite.problem import ProblemError, load_problem

app = typer.Typer(
    name="mapcoder-lite",
    help="MapCoder-Lite: retriever, planner, confidence, coder and debugger agents on one small model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """MapCoder-Lite: retriever, planner, confidence, coder and debugger agents on one small model."""


def _first_line(text: str, width: int = 80) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def describe_step(node: str, update: dict[str, Any]) -> str:
    """One line for one graph step, as the run goes."""
    calls = update.get("trajectory") or []
    cost = ""
    if calls:
        call = calls[0]
        if call.get("error"):
            flag = " [red]refused: prompt longer than the context window[/red]"
        elif not call["parsed"]:
            flag = " [red]format failure[/red]"
        else:
            flag = ""
        cost = f"  [dim]{call['seconds']:.1f}s, {call['prompt_tokens']}+{call['completion_tokens']} tok[/dim]{flag}"
    if node == "retriever":
        examples = update.get("examples", [])
        banked = [e.get("id", "?") for e in examples if e.get("source") == "bank"]
        found = f"{len(examples) - len(banked)} examples recalled"
        if banked:
            found = f"{len(banked)} from the bank ({', '.join(banked)})" + (f", {found}" if calls else "")
        algorithm = _first_line(update.get("algorithm", "")) or "none named"
        return f"{found}; algorithm: {algorithm}{cost}"
    if node == "planner":
        return f"plan: {_first_line(calls[0]['response']) if calls else ''}{cost}"
    if node == "confidence":
        plan = (update.get("candidate_plans") or [{}])[0]
        return f"confidence {plan.get('confidence')} for the plan from example {plan.get('example_index', 0) + 1}{cost}"
    if node == "rank_plans":
        if update["plans"] and update["plans"][0]["confidence"] is None:
            return "one plan: nothing to rank it against, so not scored"
        return "plans in order of confidence: " + ", ".join(str(p["confidence"]) for p in update["plans"])
    if node == "coder":
        lines = len(update.get("current_code", "").splitlines())
        return f"{lines} lines of code{cost}"
    if node == "direct":
        lines = len(update.get("current_code", "").splitlines())
        report = update["test_report"]
        verdict = "done" if report["all_passed"] else "MapCoder takes over"
        return (f"{lines} lines of code straight from the problem; {report['samples_passed']}/{report['total']} "
                f"samples passed: {verdict}{cost}")
    if node == "sample_testing":
        report = update["test_report"]
        colour = "green" if report["all_passed"] else "yellow"
        return f"[{colour}]{report['samples_passed']}/{report['total']} samples passed[/{colour}]"
    if node == "debugger":
        return f"debugging round {update.get('debug_round')}{cost}"
    if node == "next_plan":
        return f"moving on to plan {update['plan_index'] + 1}"
    if node == "finish":
        return "[green]passed the samples[/green]" if update.get("passed") else "[yellow]best attempt returned[/yellow]"
    return ""


def summarize(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The numbers printed after a run: outcome, where the code came from (the direct answer, or a plan
    and its confidence), calls, tokens, time."""
    calls = result.get("trajectory", [])
    plans = result.get("plans", [])
    index = next((i for i, p in enumerate(plans) if any(a["code"] == result.get("code") for a in p["attempts"])),
                 None)
    direct = result.get("direct") or {}
    if index is not None:
        source = f"plan {index + 1} of {len(plans)}"
    else:
        source = "the direct answer" if direct.get("code") and direct["code"] == result.get("code") else "none"
    return {
        "passed": result.get("passed", False),
        "code_from": source,
        "plan_confidence": plans[index]["confidence"] if index is not None else None,
        "llm_calls": result.get("llm_calls", 0),
        "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
        "completion_tokens": sum(c["completion_tokens"] for c in calls),
        "seconds": round(seconds, 1),
        "format_failures": result.get("format_failures", {}),
    }


def solve_problem(problem: dict[str, Any], context: Context, console: Console, graph: Any = None) -> dict[str, Any]:
    """Run the graph on one problem, printing each step as it happens; returns the output state."""
    if graph is None:
        from mapcoder_lite.graph import graph as default_graph

        graph = default_graph
    result: dict[str, Any] = {}
    for mode, chunk in graph.stream(problem, context=context, stream_mode=["updates", "values"]):
        if mode == "values":
            result = chunk
            continue
        for node, update in chunk.items():
            if update:
                console.print(f"[bold cyan]{node:>14}[/bold cyan]  {describe_step(node, update)}")
    return result


@app.command()
# Most of its length is the option list; the run is solve_problem's.
def solve(
    problem_file: Annotated[
        Path, typer.Argument(help="JSON with the graph's input keys, or a Markdown/plain-text statement with samples.")
    ],
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the output state as JSON on stdout.")] = False,
) -> None:
    """Solve one programming problem, showing each agent step as it happens."""
    # With --json, progress goes to stderr so stdout stays machine-readable.
    console = Console(stderr=as_json)
    try:
        problem = load_problem(problem_file)
        context = make_context(
            base_url, model, role_model, lite, role_base_url, k=k, t=t, direct_first=direct_first,
            stop_repeats=stop_repeats, plan_diversity=plan_diversity, retrieval=retrieval, bank=bank,
            temperature=temperature, max_tokens=max_tokens, sandbox=sandbox, structured_outputs=structured_outputs,
        )
        bank_of(context)  # a missing or damaged bank is refused before anything runs
    except (ProblemError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    console.print(
        f"[dim]endpoint {context.base_url}; models: "
        + ", ".join(f"{r}={context.model_for(r)}" for r in ROLES)
        + "[/dim]"
    )
    start = time.perf_counter()
    try:
        result = solve_problem(dict(problem), context, console)
    except RoleCallError as error:
        print_error(console, error)
        raise typer.Exit(3) from None
    summary = summarize(result, time.perf_counter() - start)
    if as_json:
        sys.stdout.write(json.dumps(result | {"summary": summary}, indent=2) + "\n")
        return
    console.print(Syntax(result.get("code") or "# no code", problem.get("language") or "python"))
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two_sum.md"


@app.command()
def demo(
    problem_file: Annotated[Path, typer.Argument(help="Problem to solve (default: examples/two_sum.md).")] = EXAMPLE,
    model: Annotated[str, typer.Option(help="Model to prepare and serve for every role.")] = DEFAULT_MODEL,
    adapters: Annotated[Path | None, typer.Option(help="Trained adapters (e.g. a pipeline's WORKDIR/adapters): "
                                                       "each agent found there uses its own; the rest the base.")
                        ] = None,
    k: KOption = None,
    t: TOption = None,
    direct_first: DirectFirstOption = None,
    retrieval: RetrievalOption = None,
    bank: BankOption = None,
) -> None:
    """The embedded default end to end: prepare the model, start vLLM here, solve a problem, stop vLLM."""
    from mapcoder_lite.serving.cli import prepare_with_status
    from mapcoder_lite.serving.models import ModelPrepareError, cache_root
    from mapcoder_lite.serving.vllm import VLLMServer, VLLMServerError, discover_adapters

    console = Console()
    stages: dict[str, float] = {}
    try:
        problem = load_problem(problem_file)
        bank_of(make_context(retrieval=retrieval, bank=bank))  # refused before minutes of model start-up
        loras = discover_adapters(adapters) if adapters is not None else {}
        start = time.perf_counter()
        model_dir = prepare_with_status(console, model, None, "auto", True)
        stages["prepare model"] = time.perf_counter() - start
        log_path = cache_root() / "logs" / "vllm-demo.log"
        start = time.perf_counter()
        with console.status(f"starting vLLM on this machine (log {log_path})…"):
            server = VLLMServer(model_dir, loras, served_model_name=model, log_path=log_path).start()
        stages["start vLLM"] = time.perf_counter() - start
        with server:
            roles = [f"{role}={role}" for role in loras]  # the adapter is served under its agent's name
            context = make_context(server.base_url, model, role_model=roles, k=k, t=t, direct_first=direct_first,
                                   retrieval=retrieval, bank=bank)
            console.print(f"[dim]vLLM serves {model} at {server.base_url}"
                          + (f" with adapters for {', '.join(loras)}" if loras else "") + "[/dim]")
            start = time.perf_counter()
            result = solve_problem(dict(problem), context, console)
            stages["solve"] = time.perf_counter() - start
    except (ProblemError, ModelPrepareError, VLLMServerError, RoleCallError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    console.print(Syntax(result.get("code") or "# no code", problem.get("language") or "python"))
    table = Table(show_header=False, box=None)
    for key, value in summarize(result, stages["solve"]).items():
        table.add_row(key.replace("_", " "), str(value))
    for stage, seconds in stages.items():
        table.add_row(f"{stage} (s)", f"{seconds:.1f}")
    console.print(table)


def _register_commands() -> None:
    # These modules import only typer and rich at module level; vLLM, torch and matplotlib load
    # inside the commands, so `mapcoder-lite --help` stays fast.
    from mapcoder_lite.bank.cli import bank_app
    from mapcoder_lite.collection.cli import collect_command, extract_command, relabel_command
    from mapcoder_lite.evals.cli import eval_command, report_command
    from mapcoder_lite.finetune.cli import finetune_command
    from mapcoder_lite.pipeline.cli import pipeline_command
    from mapcoder_lite.serving.cli import models_app, serve

    app.add_typer(models_app, name="models", help="Prepare local model checkpoints.")
    app.add_typer(bank_app, name="bank", help="Build and inspect verified exemplar banks for retrieval.")
    app.command("serve")(serve)
    app.command("eval")(eval_command)
    app.command("report")(report_command)
    app.command("collect")(collect_command)
    app.command("relabel")(relabel_command)
    app.command("extract")(extract_command)
    app.command("finetune")(finetune_command)
    app.command("pipeline")(pipeline_command)


_register_commands()


def _stop_like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_signals_like_ctrl_c() -> None:
    """SIGTERM (`kill`, `timeout`, a job scheduler) and SIGHUP end a command the way Ctrl-C does, so
    that its `finally` blocks and atexit handlers run. SIGTERM's default action runs neither, and a
    pipeline killed that way left the vLLM server it had started running on both cores. A signal the
    command was started ignoring stays ignored (`nohup` ignores SIGHUP so that a run outlives its shell)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _stop_like_ctrl_c)


def main() -> None:
    stop_signals_like_ctrl_c()
    app()


if __name__ == "__main__":
    main()
