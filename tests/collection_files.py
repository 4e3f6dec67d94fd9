"""Collection run directories written by hand, as the runner writes them, and the call records in them.

Extraction reads nothing else, so tests of extraction and of the pipeline's later stages build
their collections from these instead of running the agents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mapcoder_lite.evals.rundir import safe_name


def call(role: str, user: str, response: str, **extra: Any) -> dict[str, Any]:
    """One call record of a trajectory (`mapcoder_lite.llm.Call.record()`)."""
    messages = [{"role": "system", "content": f"You are the {role}."}, {"role": "user", "content": user}]
    return {"role": role, "model": f"{role}-model", "messages": messages, "response": response, "parsed": True,
            "prompt_tokens": 10, "completion_tokens": 5, "seconds": 0.1} | extra


def retrieval(i: int) -> str:
    """A retriever answer in the strict format, with one example (k = 1)."""
    return (f"<root>\n<problem>\n<description>Example {i}</description>\n<code>x = {i}</code>\n"
            f"<planning>1. set x</planning>\n</problem>\n<algorithm>Math</algorithm>\n</root>")


FIX = "def f():\n    return 1"
FIXING = "1. return one\n```python\n" + FIX + "\n```"  # a debugger answer whose code passes every sample
FIXED_PLAN = {"plan": "1. return one", "tried": True, "passed": True, "confidence": 80, "attempts": [
    {"code": "def f():\n    return 0", "debug_round": 0, "samples_passed": 0, "total": 1},
    {"code": FIX, "debug_round": 1, "samples_passed": 1, "total": 1}]}


def write_run(path: Path, track: str, problems: dict[str, dict[str, Any]]) -> Path:
    """A collection directory as the runner writes it: run.json, results.jsonl, trajectories/."""
    (path / "trajectories").mkdir(parents=True)
    settings = {"dataset": "toy", "split": "train", "strategy": track, "track": track, "k": 1, "t": 1,
                "teachers": {"retriever": "big"}, "students": {"coder": "small"}}
    (path / "run.json").write_text(json.dumps({"settings": settings}))
    lines = []
    for problem_id, problem in problems.items():
        saved = {"id": problem_id, "input": {"language": "python"}, "trajectory": problem["trajectory"],
                 "plans": problem.get("plans", []), "code": problem.get("code", FIX)}
        name = safe_name(problem_id)  # as the runner names them: "MBPP/601" -> "MBPP_601"
        (path / "trajectories" / f"{name}.json").write_text(json.dumps(saved))
        lines.append({"id": problem_id, "passed": problem.get("passed", True), "error": problem.get("error"),
                      "code": saved["code"], "trajectory_file": f"trajectories/{name}.json"}
                     | ({"meta": problem["meta"]} if "meta" in problem else {}))
    (path / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
