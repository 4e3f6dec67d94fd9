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

from mapcoder_lite.serving.vllm import IDLE_WAIT_ENV, VLLMServer, exit_with_parent

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


# A command that started a server in its own process group (as VLLMServer does) and stops it in a
# `finally`, with no parent-death signal: only the command's stop signals can end the server.
COMMAND = """
import os, signal, subprocess, sys, time
from mapcoder_lite.cli import stop_signals_like_ctrl_c
for sig in (signal.SIGTERM, signal.SIGHUP):  # as a shell starts it, whatever started the test suite
    signal.signal(sig, signal.SIG_DFL)
if sys.argv[1] == "handled":
    stop_signals_like_ctrl_c()
server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
try:
    print(server.pid, flush=True)
    time.sleep(120)
finally:
    os.killpg(server.pid, signal.SIGTERM)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_command_told_to_stop_stops_its_server_first(sig: signal.Signals) -> None:
    for handled in (True, False):  # without the handlers the server outlives the command
        command = subprocess.Popen([sys.executable, "-c", COMMAND, "handled" if handled else "default"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert command.stdout is not None
            server = int(command.stdout.readline())
            command.send_signal(sig)
            command.wait(timeout=30)
            deadline = time.monotonic() + 10
            while _alive(server) and time.monotonic() < deadline and handled:
                time.sleep(0.05)
            assert _alive(server) != handled
        finally:
            command.kill()
            if "server" in locals() and _alive(server):
                os.kill(server, signal.SIGKILL)


def test_a_signal_the_command_was_started_ignoring_stays_ignored() -> None:
    # `nohup mapcoder-lite pipeline ...`: the run must outlive the shell's SIGHUP.
    script = ("import signal\nfrom mapcoder_lite.cli import stop_signals_like_ctrl_c\n"
              "signal.signal(signal.SIGHUP, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
              "stop_signals_like_ctrl_c()\n"
              "print(signal.getsignal(signal.SIGHUP) == signal.SIG_IGN, callable(signal.getsignal(signal.SIGTERM)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_not_armed_from_a_worker_thread() -> None:
    # The signal fires when the forking *thread* ends; a worker thread's end would kill a live server.
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(exit_with_parent()))
    worker.start()
    worker.join()
    assert seen == [None]
    assert (exit_with_parent() is not None) == sys.platform.startswith("linux")


def test_own_thread_binding_turns_on_idle_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IDLE_WAIT_ENV, raising=False)
    assert IDLE_WAIT_ENV not in VLLMServer(tmp_path, threads=0).environment()  # vLLM's binding keeps a core to spin on
    every = VLLMServer(tmp_path).environment()  # the default: every core this process may use
    assert every[IDLE_WAIT_ENV] == "1" and every["OMP_NUM_THREADS"] == str(len(os.sched_getaffinity(0)))
    assert VLLMServer(tmp_path, threads=2).environment()[IDLE_WAIT_ENV] == "1"
    assert VLLMServer(tmp_path, cpus=[1]).environment()[IDLE_WAIT_ENV] == "1"
    monkeypatch.setenv(IDLE_WAIT_ENV, "0")  # the user's choice wins
    assert VLLMServer(tmp_path, threads=2).environment()[IDLE_WAIT_ENV] == "0"


def test_idle_wait_readers_never_spin_and_never_block_for_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    zmq = pytest.importorskip("zmq")
    shm_broadcast = pytest.importorskip("vllm.distributed.device_communicators.shm_broadcast")
    from mapcoder_lite.serving import idle_wait

    monkeypatch.setenv(IDLE_WAIT_ENV, "1")
    monkeypatch.setattr(shm_broadcast.SpinCondition, "wait", shm_broadcast.SpinCondition.wait)  # undone after
    idle_wait.register()
    patched = shm_broadcast.SpinCondition.wait
    idle_wait.register()
    assert shm_broadcast.SpinCondition.wait is patched  # idempotent: one wrapper, not two
    context = zmq.Context()
    reader = shm_broadcast.SpinCondition(True, context, f"ipc:///tmp/mapcoder-idle-{os.getpid()}")
    yields: list[int] = []
    monkeypatch.setattr(shm_broadcast, "sched_yield", lambda: yields.append(1))
    try:
        reader.record_read()  # unpatched, the next second would spin on sched_yield
        start = time.monotonic()
        for _ in range(20):
            reader.wait()  # no writer at all: unpatched and uncapped, this blocks for ever
        assert time.monotonic() - start < 2.0
        assert yields == []
    finally:
        context.destroy(linger=0)
        delattr(shm_broadcast.SpinCondition, "_mapcoder_lite_idle_wait")  # the next register() patches again
