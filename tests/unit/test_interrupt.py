"""Ctrl-C during an eval: once finishes the problems in flight and starts no new one, twice stops at
once; either way what finished is kept and the message says how to resume (exit 130).

The endpoints are stubs: one answers after a short delay, one never answers in time (model calls in
flight in worker threads, which asyncio.run and the interpreter would otherwise wait for).
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
    delay = 60.0  # a long generation on a busy CPU server

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
        time.sleep(_Stuck.delay)
        answer = {"id": "stub", "object": "chat.completion", "created": 0, "model": "stub",
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": "```python\ndef f():\n    return 1\n```"}}],
                  "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stub_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stuck)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stuck.arrived.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _eval(endpoint: str, out: Path, concurrency: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from mapcoder_lite.cli import main; main()", "eval", "--dataset", "humaneval",
               "--limit", "3", "--strategy", "direct", "--model", "stub", "--base-url", endpoint,
               "--concurrency", str(concurrency), "--out", str(out), "--no-progress"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_ctrl_c_once_finishes_the_problems_in_flight_and_starts_no_new_one(
        stub_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Stuck, "delay", 3.0)
    out = tmp_path / "run"
    process = _eval(stub_endpoint, out, concurrency=1)
    try:
        assert _Stuck.arrived.wait(60), "no model call arrived"
        process.send_signal(signal.SIGINT)  # while HumanEval/0's call is in flight
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, output
    assert "finishing the problems in flight" in output and "run the same command again to resume" in output
    finished = [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert finished == ["HumanEval/0"], output  # the one in flight, answered and scored; nothing after it


def test_ctrl_c_twice_stops_an_eval_with_calls_in_flight(stub_endpoint: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = _eval(stub_endpoint, out, concurrency=3)
    try:
        assert _Stuck.arrived.wait(60), "no model call arrived"
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
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
