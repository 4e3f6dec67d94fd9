"""E2B backend: runs each program in a remote E2B sandbox (package `e2b-code-interpreter`, key E2B_API_KEY).

One remote sandbox is created lazily and reused; each run gets its own directory there, removed after.
Limits are applied with the shell's ulimit and coreutils' timeout inside the remote sandbox.
"""

from __future__ import annotations

import base64
import os
import shlex
import threading
import time
import uuid
from typing import Any

from mapcoder_lite.sandbox.base import LanguageSpec, Limits, RunResult, command_for, language_spec

_INSTALL = "pip install 'mapcoder-lite[e2b]'  (or: pip install e2b-code-interpreter)"


class E2BSandbox:
    name = "e2b"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        template: str | None = None,
        sandbox_timeout_s: int = 600,
        allow_internet_access: bool = False,
        python: str = "python3",
    ) -> None:
        self._api_key = api_key or os.environ.get("E2B_API_KEY")
        if not self._api_key:
            raise RuntimeError(
                "the e2b sandbox needs an E2B API key: set the E2B_API_KEY environment variable "
                "(or pass api_key=...); keys are at https://e2b.dev/dashboard"
            )
        try:
            from e2b_code_interpreter import Sandbox as RemoteSandbox  # optional dependency
        except ImportError as exc:
            raise ImportError(f"the e2b sandbox needs the e2b-code-interpreter package: {_INSTALL}") from exc
        self._remote_cls: Any = RemoteSandbox
        self.template = template
        self.sandbox_timeout_s = sandbox_timeout_s
        self.allow_internet_access = allow_internet_access
        self.python = python
        self._remote: Any = None
        self._refreshed = 0.0
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- remote lifecycle

    def _sandbox(self) -> Any:
        with self._lock:
            now = time.monotonic()
            if self._remote is None:
                kwargs: dict[str, Any] = {"api_key": self._api_key, "timeout": self.sandbox_timeout_s}
                if self.template:
                    kwargs["template"] = self.template
                create = getattr(self._remote_cls, "create", None) or self._remote_cls  # 1.x: constructor
                try:
                    self._remote = create(allow_internet_access=self.allow_internet_access, **kwargs)
                except TypeError:  # older SDK without allow_internet_access
                    self._remote = create(**kwargs)
                self._refreshed = now
            elif now - self._refreshed > self.sandbox_timeout_s / 3:
                # The remote sandbox dies after sandbox_timeout_s; push that back while we use it.
                self._remote.set_timeout(self.sandbox_timeout_s)
                self._refreshed = now
            return self._remote

    def close(self) -> None:
        with self._lock:
            if self._remote is not None:
                try:
                    self._remote.kill()
                finally:
                    self._remote = None

    def __enter__(self) -> E2BSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- run

    def run(
        self, code: str, *, language: str = "python", stdin: str = "", limits: Limits | None = None
    ) -> RunResult:
        limits = limits or Limits()
        spec = language_spec(language)
        try:
            return self._run_once(code, spec, stdin, limits)
        except Exception as exc:
            if not _is_sandbox_gone(exc):
                raise
            with self._lock:
                self._remote = None  # expired or killed remotely: start a fresh one, once
            return self._run_once(code, spec, stdin, limits)

    def _run_once(self, code: str, spec: LanguageSpec, stdin: str, limits: Limits) -> RunResult:
        sbx = self._sandbox()
        workdir = f"/tmp/mcl-{uuid.uuid4().hex}"
        sbx.files.write(f"{workdir}/{spec.filename}", code)
        sbx.files.write(f"{workdir}/stdin.txt", stdin)
        cmd = " ".join(shlex.quote(p) for p in command_for(spec, python=self.python, file=spec.filename))
        cap = limits.max_output_bytes
        script = f"""
cd {shlex.quote(workdir)} || exit 99
start=$(date +%s%N)
(
  ulimit -c 0 -t {limits.cpu_s} -v {limits.memory_mb * 1024} -f {limits.file_size_mb * 1024} \
    -u {limits.max_processes + 16} 2>/dev/null
  exec timeout -s KILL {limits.timeout_s:g} {cmd} < stdin.txt > stdout.txt 2> stderr.txt
)
rc=$?
end=$(date +%s%N)
so=$(stat -c %s stdout.txt); se=$(stat -c %s stderr.txt)
a=$(( so < {cap} ? so : {cap} )); b=$(( {cap} - a )); b=$(( se < b ? se : b ))
echo "$rc $(( (end - start) / 1000 )) $so $se"
head -c "$a" stdout.txt | base64 -w0; echo
head -c "$b" stderr.txt | base64 -w0; echo
cd / && rm -rf {shlex.quote(workdir)}
"""
        # The ulimit line's -u slack: the remote user's count includes the sandbox's own shells.
        result = sbx.commands.run(script, timeout=limits.timeout_s + 60)
        lines = (result.stdout or "").splitlines()
        if len(lines) < 3:
            raise RuntimeError(f"unexpected reply from the e2b sandbox: {result.stdout!r} {result.stderr!r}")
        rc_text, micros, so, se = lines[0].split()
        rc, seconds = int(rc_text), int(micros) / 1e6
        truncated = int(so) + int(se) > cap
        timed_out = rc == 137 and seconds >= limits.timeout_s * 0.98
        exit_code: int | None = rc
        if timed_out or (truncated and rc != 0):
            exit_code = None
        elif rc > 128:
            exit_code = 128 - rc  # the shell reports a signal as 128+n; we use -n like the local backend
        return RunResult(
            stdout=base64.b64decode(lines[1]).decode("utf-8", errors="replace"),
            stderr=base64.b64decode(lines[2]).decode("utf-8", errors="replace"),
            exit_code=exit_code,
            timed_out=timed_out,
            seconds=seconds,
            truncated=truncated,
        )


def _is_sandbox_gone(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "not found" in text or "notfound" in text or "sandbox was killed" in text
