"""xCodeEval program synthesis: stdin/stdout problems, hidden tests from xCodeEval's unittest_db.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapcoder_lite.evals.datasets.errors import DatasetError
from mapcoder_lite.evals.datasets.fields import as_list
from mapcoder_lite.evals.datasets.problem import Problem, ProblemSet
from mapcoder_lite.evals.datasets.records import hub_records, read_records
from mapcoder_lite.evals.datasets.stdio import STDIO_NOTE, stdio_tests

if TYPE_CHECKING:
    from mapcoder_lite.evals.datasets.registry import DatasetSpec


def xcodeeval_id(record: dict[str, Any]) -> str:
    return str(record["src_uid"])


def xcodeeval_problem(record: dict[str, Any], unittests: dict[str, Any] | None = None) -> Problem:
    """xCodeEval program synthesis: samples from sample_inputs/outputs; hidden tests from the record's
    test_list, else xCodeEval's unittest_db.json (by src_uid), else only the samples (meta says so)."""
    inputs = as_list(record.get("sample_inputs"), "sample_inputs")
    outputs = as_list(record.get("sample_outputs"), "sample_outputs")
    samples = [{"input": str(i), "output": [str(o)]} for i, o in zip(inputs, outputs, strict=True)]
    uid = xcodeeval_id(record)
    if record.get("test_list"):
        hidden, origin = stdio_tests(as_list(record["test_list"], "test_list"), "test_list"), "test_list"
    elif unittests and uid in unittests:
        hidden, origin = stdio_tests(unittests[uid], "unittest_db"), "unittest_db"
    else:
        hidden, origin = [dict(s) for s in samples], "samples"
    parts = [f"Problem Description:\n{record['description']}"]
    for label, key in (("Input Specification", "input_spec"), ("Output Specification", "output_spec"),
                       ("Note", "notes")):
        if record.get(key):
            parts.append(f"{label}:\n{record[key]}")
    limits = ", ".join(str(record[k]) for k in ("time_limit", "memory_limit") if record.get(k))
    if limits:
        parts.append(f"Limits: {limits}")
    parts.append(STDIO_NOTE)
    return Problem(
        id=uid,
        problem="\n\n".join(parts),
        sample_tests=samples,
        hidden_tests=hidden,
        meta={"difficulty": record.get("difficulty"), "tags": record.get("tags"), "hidden_from": origin},
    )


def xcodeeval_local(spec: DatasetSpec, path: Path, data_dir: Path | None, split: str) -> ProblemSet:
    db_file = path.parent / spec.companion
    unittests = json.loads(db_file.read_text(encoding="utf-8")) if db_file.is_file() else None
    records = read_records(path, xcodeeval_id)
    return ProblemSet.of((xcodeeval_problem(r, unittests) for r in records.items), records)


def xcodeeval_hub(spec: DatasetSpec, split: str, data_dir: Path | None) -> ProblemSet:
    records = hub_records(spec.hub_name, spec.hub_config, split, xcodeeval_id)
    try:
        from huggingface_hub import hf_hub_download

        db_file = hf_hub_download(spec.hub_name, spec.companion, repo_type="dataset")
        unittests = json.loads(Path(db_file).read_text(encoding="utf-8"))
    except Exception as exc:  # the hub is down or the file moved: say so rather than score samples
        raise DatasetError(f"xCodeEval: could not fetch {spec.companion} from the hub ({exc})") from exc
    return ProblemSet.of((xcodeeval_problem(r, unittests) for r in records.items), records)
