"""APPS: stdin/stdout problems and function-style ones (starter code), in MapCoder's layout or the hub's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapcoder_lite.evals.datasets.errors import DatasetError
from mapcoder_lite.evals.datasets.fields import as_list
from mapcoder_lite.evals.datasets.problem import Problem, ProblemSet
from mapcoder_lite.evals.datasets.records import hub_records, read_records
from mapcoder_lite.evals.datasets.stdio import FUNCTION_NOTE, STDIO_NOTE, stdio_tests

if TYPE_CHECKING:
    from mapcoder_lite.evals.datasets.registry import DatasetSpec


def _apps_reference(solutions: Any, starter_code: str) -> str | None:
    """The first solution of a stdin/stdout APPS problem.

    Function-style problems get none: their tests pass the arguments as str() lines, which loses
    their types (the string "1234" and the number 1234 read alike), so a solution written for the
    original call-based tests cannot be driven from them reliably. (A model faces the same
    ambiguity, with the statement and starter code to resolve it.)
    """
    if (starter_code or "").strip():
        return None
    try:
        options = as_list(solutions, "solutions")
    except DatasetError:
        return None
    return str(options[0]) if options else None


def apps_id(record: dict[str, Any]) -> str:
    """MapCoder's layout names a problem by `id` (or `name`); the hub's rows by `problem_id`."""
    if "input_output" in record:
        return f"APPS/{record['problem_id']}"
    return f"APPS/{record['id'] if 'id' in record else record['name']}"


def apps_problem(record: dict[str, Any]) -> Problem:
    """APPS in MapCoder's layout: description, sample_io (the samples), test_list (hidden), starter_code.

    A record straight from the hub (question, input_output, solutions) is converted the way MapCoder's
    convert-apps-xcode.py did: arguments joined one per line, the first two tests as samples.
    """
    if "input_output" in record:
        record = _apps_from_hub(record)
    starter = (record.get("starter_code") or "").strip("\n")
    statement = str(record["description"]).strip()
    statement += (f"\n\nStarter code:\n```python\n{starter}\n```\n\n{FUNCTION_NOTE}" if starter.strip()
                  else f"\n\n{STDIO_NOTE}")
    return Problem(
        id=apps_id(record),
        problem=statement,
        sample_tests=stdio_tests(as_list(record.get("sample_io"), "sample_io"), "sample_io"),
        hidden_tests=stdio_tests(as_list(record.get("test_list"), "test_list"), "test_list"),
        reference=_apps_reference(record.get("solutions"), record.get("starter_code") or ""),
        meta={"difficulty": record.get("difficulty"), "function_style": bool(starter.strip())},
    )


def _apps_from_hub(row: dict[str, Any]) -> dict[str, Any]:
    io = json.loads(row["input_output"]) if row.get("input_output") else {"inputs": [], "outputs": []}
    tests = [{"input": "\n".join(str(x) for x in i) if isinstance(i, list) else str(i),
              "output": o if isinstance(o, list) else [o]}
             for i, o in zip(io.get("inputs", []), io.get("outputs", []), strict=False)]
    return {"id": row["problem_id"], "description": row["question"], "difficulty": row.get("difficulty"),
            "sample_io": tests[:2], "test_list": tests, "starter_code": row.get("starter_code") or "",
            "solutions": row.get("solutions")}


def apps_local(spec: DatasetSpec, path: Path, data_dir: Path | None, split: str) -> ProblemSet:
    records = read_records(path, apps_id)
    return ProblemSet.of((apps_problem(r) for r in records.items), records)


def apps_hub(spec: DatasetSpec, split: str, data_dir: Path | None) -> ProblemSet:
    records = hub_records(spec.hub_name, spec.hub_config, split, apps_id)
    return ProblemSet.of((apps_problem(r) for r in records.items), records)
