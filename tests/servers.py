"""Servers for tests: real ones started here (readiness waits, and no server left running), a local
JSON endpoint that answers as a test says, and skipping a test whose serving dependencies are missing
(unit and integration tests share it)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mapcoder_lite.serving.vllm import free_port  # re-exported for the tests: one definition

ROOT = Path(__file__).resolve().parents[1]


def vllm_python() -> str:
    """The Python that runs vLLM: $MAPCODER_LITE_VLLM_PYTHON (another environment), else this one."""
    return os.environ.get("MAPCODER_LITE_VLLM_PYTHON") or sys.executable


def _vllm_available() -> bool:
    python = vllm_python()
    if python == sys.executable:
        return importlib.util.find_spec("vllm") is not None
    return subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode == 0


def need(modules: list[str]) -> None:
    """Skip when optional serving dependencies are missing, unless the run demands them."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if "vllm" in modules and "vllm" in missing and _vllm_available():
        missing.remove("vllm")  # vLLM lives in another environment ($MAPCODER_LITE_VLLM_PYTHON)
    if missing:
        message = f"serving dependencies not installed: {', '.join(missing)}"
        if os.environ.get("MAPCODER_LITE_REQUIRE_SERVING"):
            pytest.fail(message)
        pytest.skip(message)


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Poll `url` until it answers 200; fail with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """Kill the server's whole process group (it was started in a session of its own)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def langgraph_dev(log: Path, env: dict[str, str] | None = None, timeout_s: float = 120) -> Iterator[str]:
    """`langgraph dev` on this project, on a free port; yields its URL and stops it afterwards."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "langgraph"),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    environment = os.environ | {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true"}
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment | (env or {}),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/ok", process, log, timeout_s)
        yield url
    finally:
        stop(process)


Reply = tuple[int, dict[str, Any]]  # HTTP status, JSON body


def not_found(path: str) -> Reply:
    return 404, {"error": {"message": f"no route {path}", "type": "NotFoundError", "code": 404}}


@contextlib.contextmanager
def json_endpoint(
    respond: Callable[[dict[str, Any]], Reply], get: Callable[[str], Reply] = not_found
) -> Iterator[str]:
    """A local HTTP endpoint answering each POSTed JSON request with `respond(request)` and each GET
    with `get(path)`, both (status, body); yields its OpenAI-style base URL (…/v1)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._send(*respond(json.loads(self.rfile.read(int(self.headers["Content-Length"])))))

        def do_GET(self) -> None:
            self._send(*get(self.path))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def completion(model: str, content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A chat completion answering `content` (or calling tools), as an OpenAI-style server sends it."""
    message = {"role": "assistant", "content": content} | ({"tool_calls": tool_calls} if tool_calls else {})
    return {"id": "1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
