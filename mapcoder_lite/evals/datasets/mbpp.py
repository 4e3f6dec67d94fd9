"""MBPP (the full benchmark, by task-number split) and mbpp-py (MultiPL-E's typed MBPP subset)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapcoder_lite.evals.datasets.errors import DatasetError
from mapcoder_lite.evals.datasets.fields import BUILTINS, as_list, parse_python, task_number
from mapcoder_lite.evals.datasets.problem import Problem, ProblemSet
from mapcoder_lite.evals.datasets.records import Records, hub_records, read_records

if TYPE_CHECKING:
    from mapcoder_lite.evals.datasets.registry import DatasetSpec

MBPP_SPLITS: dict[str, range] = {
    "train": range(601, 975),
    "validation": range(511, 601),
    "test": range(11, 511),
    "prompt": range(1, 11),
}


def mbpp_id(record: dict[str, Any]) -> str:
    return f"MBPP/{record['task_id']}"


def mbpp_problem(record: dict[str, Any]) -> Problem:
    """MBPP: the first test of test_list is the sample (as in MapCoder); all of test_list is hidden."""
    tests = [str(t) for t in as_list(record["test_list"], "test_list")]
    reference = record.get("code")
    setup = (record.get("test_setup_code") or "").replace("\r\n", "\n").strip()
    # The sample carries the setup its assert reads (MBPP/367's tree `root`), or no program passes it.
    sample = f"{setup}\n{tests[0]}" if setup and tests else None
    return Problem(
        id=mbpp_id(record),
        problem=str(record["text"]).strip(),
        sample_tests=[sample] if sample else tests[:1],
        entry_point=called_function(tests[0], defined_functions(reference)) if tests else None,
        hidden_tests=tests,
        test_setup=record.get("test_setup_code") or "",
        reference=reference,
        meta={"task_id": int(record["task_id"])},
    )


def called_function(test: str, defined: Iterable[str] = ()) -> str | None:
    """The function an assert tests: a name the reference defines, else the first non-builtin call."""
    try:
        tree = parse_python(test)
    except SyntaxError:
        return None
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    defined = set(defined)
    for name in calls:
        if name in defined:
            return name
    return next((name for name in calls if name not in BUILTINS), None)


def defined_functions(code: str | None) -> list[str]:
    if not code:
        return []
    try:
        tree = parse_python(code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _mbpp_from(records: Records, split: str) -> ProblemSet:
    ids = MBPP_SPLITS[split]
    chosen = sorted((r for r in records.items if int(r["task_id"]) in ids), key=lambda r: int(r["task_id"]))
    return ProblemSet.of((mbpp_problem(r) for r in chosen), records)


def mbpp_local(spec: DatasetSpec, path: Path, data_dir: Path | None, split: str) -> ProblemSet:
    return _mbpp_from(read_records(path, mbpp_id), split)


def mbpp_hub(spec: DatasetSpec, split: str, data_dir: Path | None) -> ProblemSet:
    # The "full" config has the same four splits with the same task-id ranges.
    return _mbpp_from(hub_records(spec.hub_name, spec.hub_config, split, mbpp_id), split)


def mbpp_py_problem(record: dict[str, Any]) -> Problem:
    """MultiPL-E's typed MBPP subset (MapCoder's MBPP file): typed prompt, sample_io, check().

    It has no reference solutions: MultiPL-E took its problems from sanitized MBPP and changed some
    signatures and tests, so the full MBPP's `code` fails 79 of its 397 checks and is not a reference.
    """
    number = _mbpp_py_number(record)
    prompt = record["prompt"]
    return Problem(
        id=mbpp_py_id(record),
        problem=prompt,
        sample_tests=[str(t) for t in as_list(record.get("sample_io"), "sample_io")],
        entry_point=record["entry_point"],
        check=record["test"],
        prefix=prompt if prompt.endswith("\n") else prompt + "\n",
        meta={"name": record["name"], "task_id": number},
    )


def _mbpp_py_number(record: dict[str, Any]) -> int:
    """MBPP's task number in a MultiPL-E name ("mbpp_234_volume_cube"); -1 for a name without one."""
    name = record["name"]
    return task_number(name.split("_")[1]) if "_" in name else -1


def mbpp_py_id(record: dict[str, Any]) -> str:
    return f"MBPP/{_mbpp_py_number(record)}"


def mbpp_py_local(spec: DatasetSpec, path: Path, data_dir: Path | None, split: str) -> ProblemSet:
    records = read_records(path, mbpp_py_id)
    return ProblemSet.of(sorted((mbpp_py_problem(r) for r in records.items), key=lambda p: p.meta["task_id"]),
                         records)


def mbpp_py_hub(spec: DatasetSpec, split: str, data_dir: Path | None) -> ProblemSet:
    raise DatasetError("mbpp-py (MultiPL-E's MBPP subset) loads only from a local file: "
                       f"{spec.files['test'][0]} under the data dir")
