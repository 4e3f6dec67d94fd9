"""A server child must not outlive the process that started it, even when that process is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mapcoder_lite.serving.vllm import exit_with_parent

PARENT = """
import subprocess, sys, time
from mapcoder_lite.serving.vllm import exit_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         start_new_session=True, preexec_fn=exit_with_parent())
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its reaping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_child_in_its_own_session_dies_with_a_sigkilled_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: what `timeout -s KILL pytest` does
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its parent"
    finally:
        parent.kill()
        if "child" in locals() and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_not_armed_from_a_worker_thread() -> None:
    # The signal fires when the forking *thread* ends; a worker thread's end would kill a live server.
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(exit_with_parent()))
    worker.start()
    worker.join()
    assert seen == [None]
    assert (exit_with_parent() is not None) == sys.platform.startswith("linux")
