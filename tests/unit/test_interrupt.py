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
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Reply, completion, json_endpoint

MODELS: Reply = (200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})


class Stuck:
    """The model's answers: each after `delay` seconds (a long generation on a busy CPU server);
    `arrived` is set when the first call comes in."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.delay = 60.0

    def __call__(self, request: dict[str, Any]) -> Reply:
        self.arrived.set()
        time.sleep(self.delay)
        return 200, completion("stub", "```python\ndef f():\n    return 1\n```")


@pytest.fixture
def stuck() -> Stuck:
    return Stuck()


@pytest.fixture
def stub_endpoint(stuck: Stuck) -> Iterator[str]:
    with json_endpoint(stuck, get=lambda path: MODELS) as url:
        yield url


def _eval(endpoint: str, out: Path, concurrency: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from mapcoder_lite.cli import main; main()", "eval", "--dataset", "humaneval",
               "--limit", "3", "--strategy", "direct", "--model", "stub", "--base-url", endpoint,
               "--concurrency", str(concurrency), "--out", str(out), "--no-progress"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_ctrl_c_once_finishes_the_problems_in_flight_and_starts_no_new_one(
        stub_endpoint: str, stuck: Stuck, tmp_path: Path) -> None:
    stuck.delay = 3.0
    out = tmp_path / "run"
    process = _eval(stub_endpoint, out, concurrency=1)
    try:
        assert stuck.arrived.wait(60), "no model call arrived"
        process.send_signal(signal.SIGINT)  # while HumanEval/0's call is in flight
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, output
    assert "finishing the problems in flight" in output and "run the same command again to resume" in output
    finished = [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert finished == ["HumanEval/0"], output  # the one in flight, answered and scored; nothing after it


def test_ctrl_c_twice_stops_an_eval_with_calls_in_flight(stub_endpoint: str, stuck: Stuck, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = _eval(stub_endpoint, out, concurrency=3)
    try:
        assert stuck.arrived.wait(60), "no model call arrived"
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
