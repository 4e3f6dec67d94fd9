"""Types shared by every sandbox backend: limits, run results, the backend protocol, the language table."""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program run."""

    timeout_s: float = 10.0  # wall clock per program
    cpu_s: int = 10
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    file_size_mb: int = 16
    max_processes: int = 64  # processes + threads the program may have, itself included
    max_output_bytes: int = 1_000_000  # stdout+stderr captured; beyond it is cut and truncated=True

    @classmethod
    def per_test(cls, timeout_s: float = 10.0, memory_mb: int = 1024) -> Limits:
        """One test's limits, sample or hidden alike: the wall-clock limit, with a CPU limit to match."""
        return cls(timeout_s=timeout_s, cpu_s=max(1, math.ceil(timeout_s)), memory_mb=memory_mb)

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cpu_s", "memory_mb", "file_size_mb", "max_processes", "max_output_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive (got {getattr(self, name)!r})")


@dataclass
class RunResult:
    """What one program run did. exit_code is None when the sandbox killed it (timeout, output cap);
    negative when a signal ended it (-9 for SIGKILL)."""

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    seconds: float
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe_failure(self, limits: Limits | None = None) -> str | None:
        """One line on why the run did not end normally, or None when it exited 0."""
        if self.timed_out:
            timeout = f" after {limits.timeout_s:g}s" if limits else ""
            return f"timed out{timeout}"
        if self.truncated and self.exit_code is None:
            cap = f" {limits.max_output_bytes} bytes" if limits else " the cap"
            return f"killed: output exceeded{cap}"
        if self.exit_code is None:
            return "killed by the sandbox"
        if self.exit_code < 0:
            return f"killed by signal {signal_name(-self.exit_code)}"
        if self.exit_code != 0:
            return f"exit code {self.exit_code}"
        return None


def clip(text: str, limit: int, *, tail_heavy: bool = False) -> str:
    """Keep head and tail of text within limit chars, saying how much was cut. tail_heavy keeps more of
    the end (tracebacks end with the useful line)."""
    if len(text) <= limit:
        return text
    digits = len(str(len(text)))
    room = limit - len("\n...[ chars cut]...\n") - digits
    if room < 30:  # too small for head and tail: keep the head and still say what was cut
        head = limit - len("...[ chars cut]") - digits
        return f"{text[:head]}...[{len(text) - head} chars cut]" if head > 0 else text[:limit]
    head = room // 3 if tail_heavy else room * 2 // 3
    tail = room - head
    return f"{text[:head]}\n...[{len(text) - head - tail} chars cut]...\n{text[len(text) - tail:]}"


def with_stderr(error: str, result: RunResult, limit: int = 2_000) -> str:
    """An error line followed by the end of what the program wrote to stderr, if anything."""
    tail = result.stderr.strip()
    if tail:
        error += "\nstderr:\n" + clip(tail, limit)
    return error


def signal_name(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return str(signum)
    hint = {
        "SIGXCPU": " (CPU time limit)",
        "SIGXFSZ": " (file size limit)",
        "SIGKILL": " (CPU/memory limit or killed)",
        "SIGSEGV": " (segmentation fault, possibly out of memory or stack)",
    }.get(name, "")
    return name + hint


@runtime_checkable
class Sandbox(Protocol):
    name: str

    def run(
        self, code: str, *, language: str = "python", stdin: str = "", limits: Limits | None = None
    ) -> RunResult: ...


@dataclass(frozen=True)
class LanguageSpec:
    """How to run one language: the source file name and the command. "{python}" in the command is the
    backend's Python interpreter and "{file}" the source file, so one table serves every backend."""

    filename: str
    command: tuple[str, ...]


# Add other languages here (a compile step would be a second command; none needed yet).
LANGUAGES: dict[str, LanguageSpec] = {
    "python": LanguageSpec("main.py", ("{python}", "{file}")),
}
_ALIASES = {"python3": "python", "py": "python", "py3": "python"}


def language_spec(language: str) -> LanguageSpec:
    key = _ALIASES.get(language.lower(), language.lower())
    spec = LANGUAGES.get(key)
    if spec is None:
        raise ValueError(
            f"unsupported language {language!r}; the sandbox supports: {', '.join(sorted(LANGUAGES))}"
        )
    return spec


def command_for(spec: LanguageSpec, *, python: str, file: str) -> list[str]:
    return [part.format(python=python, file=file) for part in spec.command]
