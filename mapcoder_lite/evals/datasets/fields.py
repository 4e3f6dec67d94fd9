"""Reading a record's fields the way every loader does: list fields stored as strings, task numbers,
and Python source parsed without the warnings old benchmark code raises."""

from __future__ import annotations

import ast
import builtins
import json
import re
import warnings
from typing import Any

from mapcoder_lite.evals.datasets.errors import DatasetError

BUILTINS = set(dir(builtins))


def as_list(value: Any, what: str = "field") -> list[Any]:
    """A list field that some files store as a JSON or Python-literal string (never eval'd)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise DatasetError(f"{what} is neither JSON nor a Python literal: {text[:80]!r}") from exc
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise DatasetError(f"{what} should be a list, got {type(value).__name__}")
    return value


def task_number(task_id: str) -> int:
    """The number a task id ends with ("HumanEval/12" -> 12); -1 for an id without one."""
    match = re.search(r"(\d+)\s*$", str(task_id))
    return int(match.group(1)) if match else -1


def parse_python(source: str, mode: str = "exec") -> Any:
    """ast.parse without the warnings old benchmark code raises (invalid escapes in MBPP's regexes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode=mode)
