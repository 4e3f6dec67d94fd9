"""Ctrl-C during an eval stops it at once, keeps what finished and says how to resume.

The endpoint is a stub that accepts chat requests and never answers in time: the worst case, model
calls in flight in worker threads, which asyncio.run and the interpreter would otherwise wait for.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Stuck(BaseHTTPRequestHandler):
    arrived = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Stuck.arrived.set()
        time.sleep(60)  # a long generation on a busy CPU server


@pytest.fixture
def stuck_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stuck)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stuck.arrived.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_ctrl_c_stops_an_eval_with_calls_in_flight(stuck_endpoint: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-c", "from mapcoder_lite.cli import main; main()", "eval", "--dataset", "humaneval",
               "--limit", "3", "--strategy", "direct", "--model", "stub", "--base-url", stuck_endpoint,
               "--concurrency", "3", "--out", str(out), "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _Stuck.arrived.wait(60), "no model call arrived"
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        seconds = time.monotonic() - started
    finally:
        process.kill()
    assert process.returncode == 130, output
    assert seconds < 15, f"took {seconds:.1f} s to stop"  # not the 60 s the calls in flight would take
    assert "interrupted" in output and "run the same command again to resume" in output, output
    assert (out / "run.json").is_file()  # the run directory is there to resume from
    assert not (out / "results.jsonl").exists() or (out / "results.jsonl").read_text() == ""
