"""CodeContests: stdin/stdout problems in MapCoder's layout or the hub's (public, private, generated tests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapcoder_lite.evals.datasets.fields import as_list
from mapcoder_lite.evals.datasets.problem import Problem, ProblemSet
from mapcoder_lite.evals.datasets.records import hub_records, read_records
from mapcoder_lite.evals.datasets.stdio import STDIO_NOTE, stdio_tests

if TYPE_CHECKING:
    from mapcoder_lite.evals.datasets.registry import DatasetSpec


def codecontests_id(record: dict[str, Any]) -> str:
    return str(record.get("name") or record["id"])


def codecontests_problem(record: dict[str, Any]) -> Problem:
    """CodeContests in MapCoder's layout (sample_io, test_list) or the hub's (public/private/generated
    tests, solutions); a reference is the first Python 3 solution when the record has solutions."""
    if "public_tests" in record:
        def pairs(group: Any) -> list[dict[str, Any]]:
            group = group or {"input": [], "output": []}
            return [{"input": str(i), "output": [str(o)]}
                    for i, o in zip(group["input"], group["output"], strict=True)]

        samples = pairs(record["public_tests"])
        hidden = pairs(record.get("private_tests")) + pairs(record.get("generated_tests"))
    else:
        samples = stdio_tests(as_list(record.get("sample_io"), "sample_io"), "sample_io")
        hidden = stdio_tests(as_list(record.get("test_list"), "test_list"), "test_list")
    reference = None
    solutions = record.get("solutions")
    if isinstance(solutions, dict) and solutions.get("solution"):
        python3 = 3  # the hub's Language enum: 1 PYTHON (2), 3 PYTHON3
        pairs_ = zip(solutions["language"], solutions["solution"], strict=True)
        reference = next((code for lang, code in pairs_ if lang == python3), None)
    return Problem(
        id=codecontests_id(record),
        problem=f"{str(record['description']).strip()}\n\n{STDIO_NOTE}",
        sample_tests=samples,
        hidden_tests=hidden or [dict(s) for s in samples],
        reference=reference,
        meta={"difficulty": record.get("difficulty"), "tags": record.get("cf_tags", record.get("tags")),
              "hidden_from": "test_list" if hidden else "samples"},
    )


def codecontests_local(spec: DatasetSpec, path: Path, data_dir: Path | None, split: str) -> ProblemSet:
    records = read_records(path, codecontests_id)
    return ProblemSet.of((codecontests_problem(r) for r in records.items), records)


def codecontests_hub(spec: DatasetSpec, split: str, data_dir: Path | None) -> ProblemSet:
    hub_split = {"validation": "valid"}.get(split, split)
    records = hub_records(spec.hub_name, spec.hub_config, hub_split, codecontests_id)
    return ProblemSet.of((codecontests_problem(r) for r in records.items), records)
