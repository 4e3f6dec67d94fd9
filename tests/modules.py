"""Loading a script that is not in a package (benchmarks/, examples/, a graph langgraph.json names) as a
module, the way its runner does: registered in sys.modules, so its dataclasses and type hints resolve."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, f"{path} is not a Python file"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py."""
    return load_file(ROOT / "benchmarks" / f"{name}.py", f"benchmark_{name}")
