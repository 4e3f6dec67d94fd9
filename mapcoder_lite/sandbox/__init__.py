"""Sandboxed execution of generated code, and sample/hidden test running on top of it.

    sandbox = get_sandbox("local")          # or "e2b"
    report = run_tests(sandbox, code, ["assert add(1, 2) == 3"], entry_point="add")
    report.all_passed, report.render()
"""

from __future__ import annotations

import threading
from typing import Any

from mapcoder_lite.sandbox.base import LANGUAGES, LanguageSpec, Limits, RunResult, Sandbox, language_spec
from mapcoder_lite.sandbox.local import LocalSandbox
from mapcoder_lite.sandbox.tests import TestOutcome, TestReport, clip, run_check, run_tests, validate_tests

__all__ = [
    "BACKENDS",
    "LANGUAGES",
    "E2BSandbox",
    "LanguageSpec",
    "Limits",
    "LocalSandbox",
    "RunResult",
    "Sandbox",
    "TestOutcome",
    "TestReport",
    "clip",
    "get_sandbox",
    "language_spec",
    "run_check",
    "run_program",
    "run_tests",
    "validate_tests",
]

BACKENDS = ("local", "e2b")
_shared: dict[str, Sandbox] = {}
_shared_lock = threading.Lock()


def get_sandbox(backend: str = "local", **kwargs: Any) -> Sandbox:
    """A sandbox backend by name. Without kwargs the instance is shared per backend (one remote e2b
    sandbox is then reused across calls); with kwargs a new one is built."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown sandbox backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if kwargs:
        return _build(backend, **kwargs)
    with _shared_lock:
        if backend not in _shared:
            _shared[backend] = _build(backend)
        return _shared[backend]


def _build(backend: str, **kwargs: Any) -> Sandbox:
    if backend == "e2b":
        from mapcoder_lite.sandbox.e2b import E2BSandbox

        return E2BSandbox(**kwargs)
    return LocalSandbox(**kwargs)


def run_program(
    sandbox: Sandbox, code: str, *, language: str = "python", stdin: str = "", limits: Limits | None = None
) -> RunResult:
    """Run one program once (same as sandbox.run)."""
    return sandbox.run(code, language=language, stdin=stdin, limits=limits)


def __getattr__(name: str) -> Any:
    if name == "E2BSandbox":  # importing it does not need the optional e2b package
        from mapcoder_lite.sandbox.e2b import E2BSandbox

        return E2BSandbox
    raise AttributeError(name)
